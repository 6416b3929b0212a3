//! Russell's orchestrator core: one actor owns the service table, one task per service
//! owns its process, state and timers. See DESIGN.md "Core model".

pub mod error;
mod events;
pub mod health;
mod logs;
pub mod orchestrator;
pub mod ports;
pub mod process;
pub mod resources;
mod service;
pub mod state_file;
pub mod status;

pub use error::CoreError;
pub use orchestrator::{Orchestrator, SpawnOptions};
pub use status::*;
