//! Russell's orchestrator core: one actor owns the service table, one task per service
//! owns its process, state and timers (see `orchestrator/mod.rs` and `service/task/mod.rs`).

pub mod error;
mod events;
pub mod health;
pub mod log_search;
mod logs;
pub mod orchestrator;
pub mod probe_stats;
pub mod proc;
pub mod process;
mod service;
pub mod state_file;
pub mod status;

pub use error::CoreError;
pub use orchestrator::{Orchestrator, ReloadError, ReloadReport, SpawnOptions};
pub use status::*;
