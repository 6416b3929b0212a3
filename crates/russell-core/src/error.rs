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

/// An error and its sources in one line (`cannot write state file …: No space left on
/// device`), for messages a user reads; thiserror's `Display` shows only the outer error.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn chain_keeps_the_cause() {
        let e = crate::state_file::StateFileError::Write {
            path: "/s/state.json".into(),
            source: std::io::Error::from_raw_os_error(28),
        };
        let line = super::chain(&e);
        assert!(
            line.starts_with("cannot write state file /s/state.json: "),
            "{line}"
        );
        assert!(line.contains("No space left on device"), "{line}");
    }
}
