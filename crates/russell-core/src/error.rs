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

/// Why a service was not started because one of its ports is taken (see
/// `service/task/ports.rs`). Each message names the port, the service and, where Russell
/// can see it, the holder's PID and command, and says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortConflict {
    /// Something listens, but no process Russell can read holds the socket.
    #[error(
        "port {port} of '{service}' is in use by a process Russell cannot see (another user?); free the port or change it in the config"
    )]
    Invisible { port: u16, service: String },
    /// Russell itself listens there (its API, say).
    #[error("port {port} of '{service}' is in use by Russell itself (PID {pid}); change the port")]
    Russell {
        port: u16,
        service: String,
        pid: u32,
    },
    /// `on_port_conflict = "fail"`.
    #[error(
        "port {port} of '{service}' is in use by PID {pid} ({command}); on_port_conflict = \"fail\": stop that process or change the port"
    )]
    Refused {
        port: u16,
        service: String,
        pid: u32,
        command: String,
    },
    /// `on_port_conflict = "adopt"` and the holder is neither this service nor healthy.
    #[error(
        "port {port} of '{service}' is in use by PID {pid} ({command}), which is neither this service nor healthy by its check; it was left alone: stop it, change the port, or set on_port_conflict = \"kill\""
    )]
    Stranger {
        port: u16,
        service: String,
        pid: u32,
        command: String,
    },
    /// The holder was stopped, but the port stayed taken.
    #[error(
        "port {port} of '{service}' is still in use 5 s after PID {pid} ({command}) was stopped; free the port or change it in the config"
    )]
    StillInUse {
        port: u16,
        service: String,
        pid: u32,
        command: String,
    },
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

    #[test]
    fn port_conflicts_name_port_service_holder_and_what_to_do() {
        use super::PortConflict::*;
        let (port, service, pid, command) = (8080, "kant".to_string(), 42, "x --y".to_string());
        let cases = [
            (
                Invisible {
                    port,
                    service: service.clone(),
                },
                "port 8080 of 'kant' is in use by a process Russell cannot see (another user?); free the port or change it in the config",
            ),
            (
                Russell {
                    port,
                    service: service.clone(),
                    pid,
                },
                "port 8080 of 'kant' is in use by Russell itself (PID 42); change the port",
            ),
            (
                Refused {
                    port,
                    service: service.clone(),
                    pid,
                    command: command.clone(),
                },
                "port 8080 of 'kant' is in use by PID 42 (x --y); on_port_conflict = \"fail\": stop that process or change the port",
            ),
            (
                Stranger {
                    port,
                    service: service.clone(),
                    pid,
                    command: command.clone(),
                },
                "port 8080 of 'kant' is in use by PID 42 (x --y), which is neither this service nor healthy by its check; it was left alone: stop it, change the port, or set on_port_conflict = \"kill\"",
            ),
            (
                StillInUse {
                    port,
                    service,
                    pid,
                    command,
                },
                "port 8080 of 'kant' is still in use 5 s after PID 42 (x --y) was stopped; free the port or change it in the config",
            ),
        ];
        for (conflict, message) in cases {
            assert_eq!(conflict.to_string(), message);
        }
    }
}
