//! Russell's orchestrator core: one actor owns the service table, one task per service
//! owns its process, state and timers. See DESIGN.md "Core model".

pub mod error;
pub mod orchestrator;
pub mod status;

pub use error::CoreError;
pub use orchestrator::{Orchestrator, SpawnOptions};
pub use status::*;
