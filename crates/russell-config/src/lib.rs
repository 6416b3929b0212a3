//! Typed mdw configuration: TOML loading, validation into [`Config`], start plan.
//! Pure: no I/O but reading the file (and `env_file` existence is not checked here).

pub mod model;

pub use model::*;
