//! The mdw binary from outside, one test binary for all of it: the CLI verbs, the gRPC API
//! and the daemon against a real `mdw serve russell` with stand-in services on free ports,
//! `mdw cc` in a pseudo-terminal, `config check`, `export`, `probe` and `demo`.
//! Fixtures: crates/test-support.

mod api;
mod cc_e2e;
mod cli;
mod cli_pipe;
mod config_check;
mod daemon;
mod demo;
mod export;
mod probe;
