//! Russell's orchestrator core: one actor owns the service table, one task per service
//! owns its process, state and timers. See DESIGN.md "Core model".

pub mod error;
pub mod health;
pub mod orchestrator;
pub mod ports;
pub mod resources;
pub mod status;

pub use error::CoreError;
pub use orchestrator::{Orchestrator, SpawnOptions};
pub use status::*;
