//! The reliability suite (docs/RELIABILITY.md), black-box: Russell is the real
//! `mdw serve russell` binary on a free loopback port, its services are real `mdw demo`
//! processes, state is read from `/proc`. The environment and its cleanup (by marker, PID
//! and process group): crates/test-support/src/env.rs.
//!
//! The fast cases run with `cargo test -p mdw --test reliability`; the long ones are
//! `#[ignore]`d (docs/RELIABILITY.md shows how to run them).

mod bad_input;
mod chaos;
mod crash;
mod flapping;
mod load;
mod reload_storm;
mod resources;
mod security;
