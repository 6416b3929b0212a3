//! mDW's `mdw.russell.RussellService` against a real `mdw serve russell`: every method
//! beside v1, the token rules, bad input, stand-ins that register like mDW's services, and
//! a registration storm; mDW's own services file end to end in a private network
//! namespace (`platform`); and a protoc-generated Python client (`python_client`). Fixtures: crates/test-support.

mod access;
mod input;
mod methods;
mod platform;
mod platform_fixture;
mod python_client;
mod registration;
mod reload;
mod storm;
