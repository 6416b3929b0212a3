//! What follows a spawn: the process's exit, probe results, the start timeout, the
//! unhealthy verdict, restarts with backoff within the budget, and giving up.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::super::ActorMsg;
use russell_config::{RestartPolicy, ServiceKind};

use super::super::restart::{AfterExit, after_exit, backoff, start_attempts};
use super::ServiceTask;
use super::escaped::SWEEP_AFTER_EXIT;
use crate::events::event;
use crate::process::{self, ExitInfo};
use crate::{EventKind, ServiceState};

/// Shortest and longest pause between probes from a spawn until the first healthy probe.
const START_PROBE_MIN: Duration = Duration::from_millis(5);
const START_PROBE_MAX: Duration = Duration::from_millis(500);

/// Pause before the next start probe, `since_spawn` after the spawn: a 40th of that time,
/// within [`START_PROBE_MIN`] ..= [`START_PROBE_MAX`], never longer than `interval`.
fn start_probe_delay(since_spawn: Duration, interval: Duration) -> Duration {
    (since_spawn / 40)
        .clamp(START_PROBE_MIN, START_PROBE_MAX)
        .min(interval)
}
impl ServiceTask {
    pub(super) async fn on_exit(&mut self, info: ExitInfo) {
        let Some(mut proc) = self.proc.take() else {
            return;
        };
        self.probe_fut = None;
        self.status.healthy = false;
        let mut ev = event(
            EventKind::Exited,
            &self.svc.short_name,
            format!("PID {} {info}", proc.pid),
            self.status.state,
            Some(proc.pid),
        );
        ev.exit_code = info.code;
        ev.signal = info.signal;
        if info.code.is_some() {
            self.status.last_exit_code = info.code;
        }
        self.send_event(ev);
        // The leader is gone; what is left of its group (grandchildren) goes too, and a
        // moment later whatever of it left the group.
        if proc.anything_left().await {
            process::stop(
                &mut proc,
                process::stop_signal(&self.svc),
                self.svc.stop_timeout,
            )
            .await;
        }
        self.sweep_due = Some(Instant::now() + SWEEP_AFTER_EXIT);
        self.status.pid = None;
        let state = self.status.state;
        if !matches!(
            state,
            ServiceState::Starting | ServiceState::Running | ServiceState::Unhealthy
        ) {
            return;
        }
        let success = info
            .code
            .is_some_and(|c| self.svc.success_exit_codes.contains(&c));
        match after_exit(self.svc.kind, self.svc.restart, success) {
            AfterExit::Complete => self.complete(&info),
            AfterExit::Fail => self.give_up(format!(
                "{info} (restart = \"{}\")",
                self.svc.restart.as_str()
            )),
            AfterExit::Restart if state == ServiceState::Starting => {
                self.attempt_failed(format!("{info} before it became healthy"))
                    .await;
            }
            AfterExit::Restart => {
                self.supervising = true;
                self.restart_later(info.to_string());
            }
        }
    }

    /// Exited with a success code and not restarted: `completed`. A task now counts as
    /// healthy for its dependents, and a start waiting for it (`mdw run`, a start of a
    /// dependent) gets its success; a service's pending start gets a failure (it never
    /// became healthy).
    pub(super) fn complete(&mut self, info: &ExitInfo) {
        let task = self.svc.kind == ServiceKind::Task;
        self.set_state(ServiceState::Completed);
        self.status.healthy = task;
        self.status.last_error.clear();
        let took = self.since_spawn();
        let what = if task {
            format!("completed: {info}{took}")
        } else {
            format!(
                "completed: {info}{took}; not restarted (restart = \"{}\")",
                self.svc.restart.as_str()
            )
        };
        self.emit(EventKind::Completed, what.clone());
        if task {
            self.status.timing.healthy_at = Some(SystemTime::now());
            let result = self.result(true, "");
            for r in std::mem::take(&mut self.pending) {
                self.reply(r, result.clone());
            }
        } else {
            self.fail_pending(&what);
        }
        self.supervising = false;
    }

    pub(super) fn launch_probe(&mut self) {
        let svc = self.svc.clone();
        let slots = self.shared.probes.clone();
        let stats = self.status.probes.clone();
        self.probe_fut = Some(Box::pin(async move {
            // The timeout starts once the probe runs, not while it waits for a slot.
            let _slot = slots.acquire_owned().await;
            let hc = &svc.health_check;
            let began = Instant::now();
            let result = crate::health::probe(&hc.probe, hc.timeout).await;
            stats.record(began.elapsed(), result.is_ok());
            result.map_err(|e| e.to_string())
        }));
    }

    pub(super) async fn on_probe(&mut self, result: Result<(), String>) {
        self.probe_fut = None;
        let now = Instant::now();
        let hc = &self.svc.health_check;
        self.status.last_health_check = Some(SystemTime::now());
        let ok = result.is_ok();
        self.status.last_probe_error = result.err().unwrap_or_default();
        match (self.status.state, ok) {
            (ServiceState::Starting, true) => return self.became_healthy(),
            (ServiceState::Starting, false) => {
                // Soon again, ever less often as the start drags on (start grace).
                self.failures += 1;
                self.next_probe = now + start_probe_delay(now - self.spawned, hc.interval);
                return;
            }
            (ServiceState::Running, true) => self.failures = 0,
            (ServiceState::Unhealthy, true) => {
                self.failures = 0;
                self.successes += 1;
                if self.successes >= hc.success_threshold.max(1) {
                    self.set_state(ServiceState::Running);
                    self.emit(EventKind::Healthy, "healthy again");
                }
            }
            (ServiceState::Running | ServiceState::Unhealthy, false) => {
                self.successes = 0;
                self.failures += 1;
                let threshold = hc.failure_threshold.max(1);
                let msg = format!(
                    "health check failed ({}/{threshold}): {}",
                    self.failures, self.status.last_probe_error
                );
                self.set_state(ServiceState::Unhealthy);
                self.emit(EventKind::HealthCheckFailed, msg);
                if self.failures >= threshold {
                    // Boxed: a stop is rare, and its state would weigh on every wake.
                    return Box::pin(self.unhealthy_verdict()).await;
                }
            }
            _ => {}
        }
        self.next_probe = now + self.svc.health_check.interval;
    }

    pub(super) fn became_healthy(&mut self) {
        self.set_state(ServiceState::Running);
        self.status.healthy = true;
        self.status.last_error.clear();
        self.status.timing.healthy_at = Some(SystemTime::now());
        self.running_since = Instant::now();
        self.next_probe = self.running_since + self.svc.health_check.interval;
        self.failures = 0;
        self.successes = 0;
        let took = self.since_spawn();
        self.emit(EventKind::Healthy, format!("healthy{took}"));
        let result = self.result(true, "");
        for r in std::mem::take(&mut self.pending) {
            self.reply(r, result.clone());
        }
        if (self.supervising || self.came_back) && self.svc.restart_dependents {
            let _ = self
                .shared
                .to_actor
                .send(ActorMsg::CameBack { id: self.id });
        }
        self.came_back = false;
        self.supervising = true;
    }

    pub(super) async fn on_start_timeout(&mut self) {
        let limit = humantime::format_duration(self.svc.health_check.start_timeout);
        let why = if self.svc.kind == ServiceKind::Task {
            format!("did not complete within start_timeout {limit}")
        } else {
            format!(
                "not healthy within start_timeout {limit}: {}",
                non_empty(&self.status.last_probe_error, "no probe passed")
            )
        };
        self.emit(EventKind::Unhealthy, why.clone());
        self.stop_process("start_timeout passed").await;
        self.sweep_escapees().await;
        self.attempt_failed(why).await;
    }

    pub(super) async fn unhealthy_verdict(&mut self) {
        self.status.healthy = false;
        let why = format!(
            "unhealthy: {} consecutive failed probes, last: {}",
            self.failures, self.status.last_probe_error
        );
        self.emit(EventKind::Unhealthy, why.clone());
        self.stop_process("unhealthy").await;
        self.sweep_escapees().await;
        if self.svc.restart == RestartPolicy::Never {
            return self.give_up(format!("{why} (restart = \"never\")"));
        }
        self.supervising = true;
        self.restart_later(why);
    }

    /// A spawn attempt did not lead to a healthy process.
    pub(super) async fn attempt_failed(&mut self, why: String) {
        if self.svc.restart == RestartPolicy::Never {
            return self.give_up(format!("{why} (restart = \"never\")"));
        }
        if self.supervising {
            return self.restart_later(why);
        }
        let max = start_attempts(self.svc.max_retries);
        if self.attempts >= max {
            let n = self.attempts;
            return self.give_up(format!(
                "{why} (gave up after {n} attempt{})",
                if n == 1 { "" } else { "s" }
            ));
        }
        let delay = backoff(
            self.svc.restart_backoff,
            self.svc.restart_backoff_max,
            self.attempts,
        );
        self.status.last_error = why.clone();
        self.backoff(self.attempts + 1, delay, why);
    }

    /// An automatic restart (the service had been running), within max_retries.
    pub(super) fn restart_later(&mut self, why: String) {
        let n = self.status.restart_count + 1;
        if n > self.svc.max_retries {
            let max = self.svc.max_retries;
            return self.give_up(format!(
                "{why} (gave up after {max} restart{})",
                if max == 1 { "" } else { "s" }
            ));
        }
        self.status.restart_count = n;
        self.status.last_error = why.clone();
        self.came_back = true;
        let delay = backoff(self.svc.restart_backoff, self.svc.restart_backoff_max, n);
        self.backoff(n, delay, why);
    }

    pub(super) fn backoff(&mut self, attempt: u32, delay: Duration, why: String) {
        self.set_state(ServiceState::Restarting);
        self.backoff_until = Instant::now() + delay;
        let mut ev = event(
            EventKind::Restarting,
            &self.svc.short_name,
            format!(
                "{why}; restart {attempt} in {}",
                humantime::format_duration(delay)
            ),
            ServiceState::Restarting,
            None,
        );
        ev.attempt = Some(attempt);
        ev.delay = Some(delay);
        self.shared.emit(ev);
    }

    /// `failed`, keeping the reason; pending starts get it.
    pub(super) fn give_up(&mut self, why: String) {
        self.set_state(ServiceState::Failed);
        self.status.healthy = false;
        self.status.last_error = why.clone();
        self.fail_pending(&why);
        self.emit(EventKind::Failed, why);
    }

    /// Graceful stop of the current process (stop_signal, stop_timeout, SIGKILL, until the
    /// group is empty). Publishes `stopping` first. Returns how the process ended, or
    /// `None` when there was none.
    pub(super) async fn stop_process(&mut self, why: &str) -> Option<String> {
        let mut proc = self.proc.take()?;
        self.probe_fut = None;
        self.status.healthy = false;
        self.set_state(ServiceState::Stopping);
        self.emit(
            EventKind::Stopping,
            format!("{why}: sending {}", self.svc.stop_signal.name),
        );
        self.publish();
        let outcome = process::stop(
            &mut proc,
            process::stop_signal(&self.svc),
            self.svc.stop_timeout,
        )
        .await;
        if outcome.killed {
            self.emit(
                EventKind::Stopping,
                format!(
                    "PID {} did not stop within {}; killed its group",
                    proc.pid,
                    humantime::format_duration(self.svc.stop_timeout)
                ),
            );
        }
        if outcome.leftovers {
            self.emit(
                EventKind::Stopping,
                format!(
                    "processes of group {} survived SIGKILL",
                    proc.pgid.unwrap_or(proc.pid)
                ),
            );
        }
        self.status.pid = None;
        Some(format!("PID {} {}", proc.pid, outcome.exit))
    }

    /// " after 1.2s": the time since the process was spawned, for an event's message
    /// (empty when it was not spawned by this task).
    fn since_spawn(&self) -> String {
        self.status
            .timing
            .spawned_at
            .and_then(|s| s.elapsed().ok())
            .map(|d| format!(" after {}", humantime::format_duration(round_ms(d))))
            .unwrap_or_default()
    }
}

fn non_empty<'a>(s: &'a str, default: &'a str) -> &'a str {
    if s.is_empty() { default } else { s }
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_probes_come_fast_at_first_and_thin_out_as_a_start_drags_on() {
        let ms = Duration::from_millis;
        let interval = Duration::from_secs(2);
        assert_eq!(start_probe_delay(ms(0), interval), ms(5));
        assert_eq!(start_probe_delay(ms(200), interval), ms(5));
        assert_eq!(start_probe_delay(ms(2000), interval), ms(50));
        assert_eq!(start_probe_delay(ms(60_000), interval), ms(500));
        // Never above the configured interval.
        assert_eq!(start_probe_delay(ms(60_000), ms(100)), ms(100));
        assert_eq!(start_probe_delay(ms(0), ms(1)), ms(1));
    }
}
