//! The test fixtures of every crate in this workspace, in one place: free loopback ports,
//! bounded waits, what `/proc` says about a process, signals and cleanup by PID and
//! process group, the stand-in binaries, the config builders, and a real
//! `mdw serve russell` on a free port in a temp dir that is stopped in Drop.
//!
//! A dev-dependency only (`publish = false`). It depends on russell-config, russell-core
//! and russell-api, so it serves their integration tests (`tests/`), never their unit
//! tests inside `src/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod bins;
pub mod ci;
pub mod compat;
pub mod config;
pub mod env;
pub mod fixture;
pub mod harness;
pub mod inproc;
pub mod kill;
pub mod ports;
pub mod procs;
pub mod rng;
pub mod svc;
pub mod wait;

pub use bins::{Demo, Logged, demo_bin, mdw_bin, mdw_command, s, status_json};
pub use fixture::{Daemon, Fixture};
pub use kill::{kill_group, kill_marked, kill9, signal};
pub use ports::{free_port, http_get};
pub use procs::{alive, group_alive};
pub use rng::Rng;
pub use svc::{Svc, q};
pub use wait::{WAIT, wait_for, wait_until, wait_until_async};

/// Everything the black-box suites use, for `use test_support::prelude::*;`.
pub mod prelude {
    pub use crate::env::*;
    pub use crate::procs::*;
    pub use crate::{
        Daemon, Demo, Fixture, Svc, WAIT, free_port, group_alive, http_get, kill_group, kill9,
        mdw_bin, q, s, signal, wait_for, wait_until,
    };
}
