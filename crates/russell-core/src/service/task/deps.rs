//! Waiting for dependencies: a service starts once every dependency is healthy; it gives
//! up after the slowest dependency's budget, at once when a dependency failed, and goes on
//! without an optional external after that external's `start_timeout`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::watch;
use tokio::time::Instant;

use super::ServiceTask;
use crate::events::event;
use crate::service::{DepNode, DepView, disabled_reason};
use crate::{EventKind, ServiceState};

impl ServiceTask {
    pub(super) fn enter_waiting(&mut self) {
        let now = Instant::now();
        self.wait_started = now;
        self.warned_optional.clear();
        let view = self.deps_rx.borrow_and_update().clone();
        let budget = self
            .deps
            .iter()
            .filter(|d| !self.dep_healthy(&view, &d.short))
            .map(|d| d.budget)
            .max()
            .unwrap_or_default();
        self.wait_deadline = now + budget;
        self.set_state(ServiceState::Waiting);
        let missing = self.missing_deps(&view);
        if !missing.is_empty() {
            self.emit(
                EventKind::Waiting,
                format!("waiting for {}", missing.join(", ")),
            );
        }
    }

    pub(super) fn missing_deps(&self, view: &DepView) -> Vec<String> {
        self.deps
            .iter()
            .filter(|d| !self.dep_healthy(view, &d.short))
            .filter_map(|d| view.node(&d.short))
            .map(|n| n.short.clone())
            .collect()
    }

    /// A command sent to that service and not yet acknowledged: its state in the view
    /// is stale (a `failed` or `running` from before the command).
    pub(super) fn dep_pending(&self, view: &DepView, short: &str) -> bool {
        view.node(short).is_some_and(pending)
    }

    pub(super) fn dep_healthy(&self, view: &DepView, short: &str) -> bool {
        view.node(short).is_some_and(|n| n.healthy && !pending(n))
    }

    /// The next instant a wait can end by time: the overall bound or an optional
    /// external's grace.
    pub(super) fn next_wait_timer(&self) -> Instant {
        self.deps
            .iter()
            .filter(|d| !self.warned_optional.contains(&d.short))
            .filter_map(|d| d.optional_after.map(|t| self.wait_started + t))
            .chain(std::iter::once(self.wait_deadline))
            .min()
            .unwrap_or(self.wait_deadline)
    }

    pub(super) async fn check_deps(&mut self) {
        if self.status.state != ServiceState::Waiting {
            return;
        }
        let view = self.deps_rx.borrow_and_update().clone();
        let now = Instant::now();
        let mut blocking = None;
        for d in &self.deps {
            let Some(n) = view.node(&d.short) else {
                continue;
            };
            if n.disabled {
                // It never starts: waiting for it would only delay the same answer.
                let why = format!(
                    "dependency '{}' is disabled ({})",
                    n.short,
                    disabled_reason(&self.shared.config_file)
                );
                return self.give_up(why);
            }
            let pending = self.dep_pending(&view, &d.short);
            if n.healthy && !pending {
                continue;
            }
            if !n.external && !pending && n.state == ServiceState::Failed {
                return self.give_up(dependency_failed(&n.short, &n.last_error));
            }
            if let Some(after) = d.optional_after
                && now >= self.wait_started + after
            {
                if self.warned_optional.insert(d.short.clone()) {
                    let msg = format!(
                        "optional dependency '{}' not healthy after {}: {}; starting without it",
                        n.short,
                        humantime::format_duration(after),
                        reason_of(n)
                    );
                    self.shared.emit(event(
                        EventKind::Waiting,
                        &self.svc.short_name,
                        msg,
                        ServiceState::Waiting,
                        None,
                    ));
                }
                continue;
            }
            blocking.get_or_insert((n.clone(), d.budget));
        }
        match blocking {
            // Boxed: a spawn (and its port-conflict handling) is rare.
            None => Box::pin(self.try_spawn()).await,
            Some((n, budget)) if now >= self.wait_deadline => {
                let why = format!(
                    "dependency '{}' not healthy after {}: {}",
                    n.short,
                    humantime::format_duration(budget),
                    reason_of(&n)
                );
                self.give_up(why);
            }
            Some(_) => {}
        }
    }
}

/// A command sent to that service and not yet acknowledged: its state in the view is
/// stale (a `failed` or `running` from before the command).
fn pending(n: &DepNode) -> bool {
    !n.external
        && n.sent
            .as_ref()
            .is_some_and(|sent| n.epoch < sent.load(Ordering::SeqCst))
}

/// The next change of the dependency view, watched only while `waiting` (boxed: a
/// short phase, and the future would otherwise weigh on every resting service).
pub(super) async fn deps_changed(
    waiting: bool,
    rx: &mut watch::Receiver<Arc<DepView>>,
) -> Result<(), watch::error::RecvError> {
    if waiting {
        Box::pin(rx.changed()).await
    } else {
        std::future::pending().await
    }
}

/// "dependency 'b' failed: X"; when `b` failed because of its own dependency, the chain
/// is named once instead of nested: "dependency 'c' failed because 'b' → 'a' did: X".
fn dependency_failed(short: &str, their_error: &str) -> String {
    match split_dependency_failure(their_error) {
        Some((chain, root)) => {
            let chain: Vec<String> = chain.iter().map(|s| format!("'{s}'")).collect();
            format!(
                "dependency '{short}' failed because {} did: {root}",
                chain.join(" → ")
            )
        }
        None => format!("dependency '{short}' failed: {their_error}"),
    }
}

/// The names and the root cause of a message made by [`dependency_failed`].
fn split_dependency_failure(msg: &str) -> Option<(Vec<&str>, &str)> {
    let short_name = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    };
    let (first, rest) = msg.strip_prefix("dependency '")?.split_once("' failed")?;
    if !short_name(first) {
        return None;
    }
    if let Some(root) = rest.strip_prefix(": ") {
        return Some((vec![first], root));
    }
    let (chain, root) = rest.strip_prefix(" because ")?.split_once(" did: ")?;
    let mut names = vec![first];
    for part in chain.split(" → ") {
        let name = part.strip_prefix('\'')?.strip_suffix('\'')?;
        if !short_name(name) {
            return None;
        }
        names.push(name);
    }
    Some((names, root))
}

fn reason_of(n: &DepNode) -> String {
    if !n.last_probe_error.is_empty() {
        n.last_probe_error.clone()
    } else if !n.last_error.is_empty() {
        n.last_error.clone()
    } else {
        format!("it is {}", n.state.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_chain_of_dependencies_is_named_once_not_nested() {
        let a = "exited with code 3 before it became healthy";
        let b = dependency_failed("a", a);
        assert_eq!(b, format!("dependency 'a' failed: {a}"));
        let c = dependency_failed("b", &b);
        assert_eq!(c, format!("dependency 'b' failed because 'a' did: {a}"));
        let d = dependency_failed("c", &c);
        assert_eq!(
            d,
            format!("dependency 'c' failed because 'b' → 'a' did: {a}")
        );
        // Anything else is quoted as it is.
        let odd = "dependency 'x' not healthy after 30s: dependency 'y' failed: z";
        assert_eq!(
            dependency_failed("w", odd),
            format!("dependency 'w' failed: {odd}")
        );
    }
}
