//! The mdw binary from outside, one test binary for all of it: the CLI verbs, the gRPC API
//! and the daemon against a real `mdw serve russell` with stand-in services on free ports,
//! `mdw cc` in a pseudo-terminal, `config check` (and its variables), `export`, `probe`,
//! `demo`, `reload`, `run`, the HTTP view and searching logs. Fixtures: crates/test-support.

mod api;
mod cc_e2e;
mod cli;
mod cli_pipe;
mod config_check;
mod config_vars;
mod daemon;
mod demo;
mod export;
mod http;
mod logs_search;
mod probe;
mod reload;
mod run_task;
