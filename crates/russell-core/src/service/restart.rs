//! Restart policy (pure): exponential backoff and the retry budget.
//!
//! Semantics (plan's max_retries): a start makes at most `max(1, max_retries)` attempts;
//! a service that was running is restarted automatically at most `max_retries` times
//! (each failed re-spawn counts as one more restart), the counter resets once it stayed
//! healthy for `restart_reset_after`; then `failed`. A manual start or restart gets a fresh
//! budget.

use std::time::Duration;

use russell_config::{RestartPolicy, ServiceKind};

/// What follows the exit of a service's process (or the unhealthy verdict, which counts
/// as a failure), by its `kind`, `restart` policy and whether the exit code is one of
/// `success_exit_codes`. Restarts stay within `max_retries`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterExit {
    /// Spawn again after the backoff.
    Restart,
    /// Final, and fine: `completed`.
    Complete,
    /// Final, and a failure: `failed`.
    Fail,
}

/// The restart policy as a table: `always` (a service's default, and what Russell did
/// before the key existed) restarts after every exit, `on-failure` only after a failure,
/// `never` not at all. A task's success is always final.
pub(crate) fn after_exit(kind: ServiceKind, policy: RestartPolicy, success: bool) -> AfterExit {
    use AfterExit::*;
    match (kind, policy, success) {
        (ServiceKind::Task, _, true) => Complete,
        (ServiceKind::Service, RestartPolicy::Always, _) => Restart,
        (_, RestartPolicy::Always | RestartPolicy::OnFailure, false) => Restart,
        (_, RestartPolicy::OnFailure | RestartPolicy::Never, true) => Complete,
        (_, RestartPolicy::Never, false) => Fail,
    }
}

/// Delay before restart `attempt` (1-based): `base · 2^(attempt-1)`, capped at `max`.
/// A zero base means "at once".
pub(crate) fn backoff(base: Duration, max: Duration, attempt: u32) -> Duration {
    if base.is_zero() {
        return Duration::ZERO;
    }
    let shift = attempt.saturating_sub(1).min(31);
    base.checked_mul(1u32 << shift).unwrap_or(max).min(max)
}

/// Attempts a single start may make.
pub(crate) fn start_attempts(max_retries: u32) -> u32 {
    max_retries.max(1)
}

/// Worst-case time a start of a service may take on its own: every attempt's start_timeout
/// plus the backoffs between them. Dependents use it (plus their dependency's own wait) as
/// the bound on waiting for that dependency.
pub(crate) fn start_budget(
    start_timeout: Duration,
    max_retries: u32,
    base: Duration,
    max: Duration,
) -> Duration {
    let attempts = start_attempts(max_retries);
    let backoffs: Duration = (1..attempts).map(|a| backoff(base, max, a)).sum();
    start_timeout.saturating_mul(attempts) + backoffs
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn after_exit_row_by_row() {
        use AfterExit::*;
        use RestartPolicy::*;
        use ServiceKind::*;
        let rows = [
            (Service, Always, true, Restart),
            (Service, Always, false, Restart),
            (Service, OnFailure, true, Complete),
            (Service, OnFailure, false, Restart),
            (Service, Never, true, Complete),
            (Service, Never, false, Fail),
            (Task, OnFailure, true, Complete),
            (Task, OnFailure, false, Restart),
            (Task, Never, true, Complete),
            (Task, Never, false, Fail),
        ];
        for (kind, policy, success, want) in rows {
            assert_eq!(
                after_exit(kind, policy, success),
                want,
                "{kind:?} {policy:?} success={success}"
            );
        }
    }

    #[test]
    fn doubles_up_to_the_cap() {
        let got: Vec<_> = (1..=7).map(|a| backoff(S, 30 * S, a)).collect();
        assert_eq!(got, [S, 2 * S, 4 * S, 8 * S, 16 * S, 30 * S, 30 * S]);
    }

    #[test]
    fn zero_means_at_once() {
        assert_eq!(backoff(Duration::ZERO, 30 * S, 5), Duration::ZERO);
    }

    #[test]
    fn huge_attempts_do_not_overflow() {
        assert_eq!(backoff(S, 30 * S, u32::MAX), 30 * S);
        assert_eq!(backoff(Duration::MAX, Duration::MAX, 3), Duration::MAX);
    }

    #[test]
    fn at_least_one_attempt() {
        assert_eq!(start_attempts(0), 1);
        assert_eq!(start_attempts(3), 3);
    }

    #[test]
    fn budget_sums_attempts_and_backoffs() {
        assert_eq!(start_budget(10 * S, 3, S, 30 * S), 30 * S + S + 2 * S);
        assert_eq!(start_budget(10 * S, 0, S, 30 * S), 10 * S);
    }

    /// The backoff is what the task sleeps; with a paused clock it elapses exactly.
    #[tokio::test(start_paused = true)]
    async fn sleeping_the_backoff_takes_exactly_it() {
        let start = tokio::time::Instant::now();
        for attempt in 1..=3 {
            tokio::time::sleep(backoff(S, 30 * S, attempt)).await;
        }
        assert_eq!(start.elapsed(), 7 * S);
    }
}
