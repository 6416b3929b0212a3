//! The lifecycle of a managed service as a table of allowed transitions (pure).
//!
//! The service task asks [`allowed`] before every state change; an illegal transition is
//! logged and refused (see `service::task`).

use crate::ServiceState::{self, *};

/// Every allowed `(from, to)` pair. Staying in the same state is always allowed and not listed.
pub(crate) const TRANSITIONS: &[(ServiceState, ServiceState)] = &[
    // start requested / adopted at startup / blocked by a stopped dependency
    (Stopped, Waiting),
    (Stopped, Starting),
    (Stopped, Failed),
    // dependencies healthy → spawn; a dependency failed or took too long; stopped while waiting
    (Waiting, Starting),
    (Waiting, Failed),
    (Waiting, Stopped),
    // first healthy probe; exited early (retry or give up); start_timeout (stop it first); stop
    (Starting, Running),
    (Starting, Restarting),
    (Starting, Failed),
    (Starting, Stopping),
    // a probe failed; exited; stop
    (Running, Unhealthy),
    (Running, Restarting),
    (Running, Failed),
    (Running, Stopping),
    // recovered; failure_threshold reached (stop it first) or exited; stop
    (Unhealthy, Running),
    (Unhealthy, Restarting),
    (Unhealthy, Failed),
    (Unhealthy, Stopping),
    // backoff over → wait for dependencies again; manual start with a fresh budget; stop
    (Restarting, Waiting),
    (Restarting, Failed),
    (Restarting, Stopped),
    // group gone: stopped for good, or as part of a restart
    (Stopping, Stopped),
    (Stopping, Restarting),
    (Stopping, Failed),
    // manual start with a fresh budget; stop clears the failure
    (Failed, Waiting),
    (Failed, Stopped),
    // exited with a success code and not restarted (a task ran to completion)
    (Starting, Completed),
    (Running, Completed),
    (Unhealthy, Completed),
    // run again (manual start of a service, `mdw run` of a task); stop
    (Completed, Waiting),
    (Completed, Stopped),
];

/// Whether a service may go from `from` to `to`.
pub(crate) fn allowed(from: ServiceState, to: ServiceState) -> bool {
    from == to || TRANSITIONS.contains(&(from, to))
}

/// Whether a process (spawned or adopted) can exist in this state.
pub(crate) fn has_process(state: ServiceState) -> bool {
    matches!(state, Starting | Running | Unhealthy | Stopping)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [ServiceState; 9] = [
        Stopped, Waiting, Starting, Running, Unhealthy, Restarting, Stopping, Failed, Completed,
    ];

    /// The table, row by row: for each state, exactly the states it may go to.
    #[test]
    fn table_row_by_row() {
        let rows: [(ServiceState, &[ServiceState]); 9] = [
            (Stopped, &[Waiting, Starting, Failed]),
            (Waiting, &[Starting, Failed, Stopped]),
            (
                Starting,
                &[Running, Restarting, Failed, Stopping, Completed],
            ),
            (
                Running,
                &[Unhealthy, Restarting, Failed, Stopping, Completed],
            ),
            (
                Unhealthy,
                &[Running, Restarting, Failed, Stopping, Completed],
            ),
            (Restarting, &[Waiting, Failed, Stopped]),
            (Stopping, &[Stopped, Restarting, Failed]),
            (Failed, &[Waiting, Stopped]),
            (Completed, &[Waiting, Stopped]),
        ];
        for (from, tos) in rows {
            for to in ALL {
                let expected = from == to || tos.contains(&to);
                assert_eq!(allowed(from, to), expected, "{from:?} -> {to:?}");
            }
        }
    }

    #[test]
    fn a_running_service_is_never_stopped_without_stopping() {
        for from in [Starting, Running, Unhealthy] {
            assert!(
                !allowed(from, Stopped),
                "{from:?} -> Stopped skips the stop"
            );
        }
    }

    #[test]
    fn process_states() {
        let with: Vec<_> = ALL.into_iter().filter(|s| has_process(*s)).collect();
        assert_eq!(with, [Starting, Running, Unhealthy, Stopping]);
    }
}
