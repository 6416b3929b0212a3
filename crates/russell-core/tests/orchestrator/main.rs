//! russell-core's orchestrator with real processes (the stand-in `mdw-demo`, `sh`, `sleep`)
//! on real loopback ports picked free at run time, one test binary with a module per area:
//! the service lifecycle (`services`), what mDW's file needs of the core (`compat`), the
//! probes and /proc readers (`probes`, `ollama_probe`), one-shot tasks (`tasks`), reload
//! and watch (`reload`, `reload_add_remove`, `watch`). Fixtures: crates/test-support.
//! A crash of Russell (`crash.rs`) is tested apart: it makes its test process a child
//! subreaper, which must not reach these tests' processes.

#![allow(clippy::unwrap_used)]

mod compat;
mod ollama_probe;
mod probes;
mod reload;
mod reload_add_remove;
mod services;
mod tasks;
mod watch;
