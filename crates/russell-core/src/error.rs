//! Errors callers of the orchestrator can react to.

/// An orchestrator command could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// No service or external with that name or short_name.
    #[error("no service named '{0}' (use a name or short_name from the config)")]
    NotFound(String),
    /// The service's state forbids the request.
    #[error("service '{service}' is {state}: {what}")]
    InvalidState {
        service: String,
        state: &'static str,
        what: String,
    },
    /// The orchestrator is shutting down or gone.
    #[error("russell is shutting down")]
    ShuttingDown,
    /// The state directory could not be used.
    #[error("state directory {path}: {what}")]
    StateDir {
        path: std::path::PathBuf,
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// `state_dir/state.json` could not be read or is not valid; its message names the
    /// file and what to do, and its source is the cause.
    #[error(transparent)]
    StateFile(#[from] crate::state_file::StateFileError),
}
