//! Getting a process: spawning one (after the port check), or adopting one that a
//! previous Russell left running.

use std::time::SystemTime;

use russell_config::{Probe, ServiceKind};
use tokio::time::Instant;

use super::super::restart::start_attempts;
use super::ServiceTask;
use crate::process::{self, Proc};
use crate::state_file::ProcessRecord;
use crate::{EventKind, ServiceState};

impl ServiceTask {
    pub(super) async fn try_spawn(&mut self) {
        self.attempts += 1;
        self.set_state(ServiceState::Starting);
        let what = if self.supervising {
            format!(
                "restarting (restart {}/{})",
                self.status.restart_count, self.svc.max_retries
            )
        } else {
            format!(
                "starting (attempt {}/{})",
                self.attempts,
                start_attempts(self.svc.max_retries)
            )
        };
        self.emit(EventKind::Starting, what);
        match self.check_ports().await {
            Ok(Some(holder)) => {
                let msg = format!(
                    "adopted PID {} already serving its port ({})",
                    holder.pid,
                    holder.command.join(" ")
                );
                self.took_process(holder);
                self.emit(EventKind::Adopted, msg);
                return;
            }
            Ok(None) => {}
            Err(conflict) => {
                let why = conflict.to_string();
                self.emit(EventKind::PortConflict, why.clone());
                return self.give_up(why);
            }
        }
        match process::spawn(&self.svc, &self.shared.run_dir, &self.shared.state_dir) {
            Ok(spawned) => {
                self.pump = Some(crate::logs::spawn_pump(
                    self.shared.logs.clone(),
                    self.svc.short_name.clone(),
                    spawned.stdout,
                    spawned.stderr,
                ));
                let pid = spawned.proc.pid;
                self.took_process(spawned.proc);
                self.emit(EventKind::Started, format!("spawned PID {pid}"));
                if self.svc.kind == ServiceKind::Task {
                    // It runs until it exits: `running`, not yet healthy (see outcome.rs).
                    self.set_state(ServiceState::Running);
                } else if self.svc.health_check.probe == Probe::None {
                    self.became_healthy();
                }
            }
            Err(e) => {
                let why = crate::error::chain(&e);
                self.attempt_failed(why).await;
            }
        }
    }

    pub(super) fn took_process(&mut self, proc: Proc) {
        let now = Instant::now();
        self.status.pid = Some(proc.pid);
        self.status.adopted = proc.adopted;
        self.status.command = proc.command.clone();
        self.status.started_at = Some(SystemTime::now());
        self.status.timing.spawned_at = self.status.started_at;
        self.status.timing.healthy_at = None;
        self.status.healthy = false;
        self.status.last_probe_error.clear();
        self.proc = Some(proc);
        self.set_state(ServiceState::Starting);
        self.start_deadline = now + self.svc.health_check.start_timeout;
        self.spawned = now;
        self.next_probe = now;
        self.probe_fut = None;
        self.failures = 0;
        self.successes = 0;
    }

    /// A process left by the previous Russell and still alive (recorded in the state file,
    /// or found by its marks when `unrecorded`): adopt it and let the probes decide
    /// (healthy → running; not within start_timeout → restarted).
    pub(super) fn adopt_left_behind(&mut self, rec: ProcessRecord, unrecorded: bool) {
        let mut proc = Proc::adopt(rec.pid, rec.start_time);
        if rec.pgid == Some(rec.pid) {
            proc.pgid = Some(rec.pid);
        }
        match process::fifo::open_readers(&self.shared.run_dir, &self.svc.short_name) {
            Ok((out, err)) => {
                self.pump = Some(crate::logs::spawn_pump(
                    self.shared.logs.clone(),
                    self.svc.short_name.clone(),
                    out,
                    err,
                ));
            }
            // The process still runs and is adopted; only its output is lost until the
            // next restart. Say so, or `mdw logs` just stays silent.
            Err(e) => tracing::warn!(
                service = %self.svc.short_name,
                pid = rec.pid,
                run_dir = %self.shared.run_dir.display(),
                error = %e,
                "cannot reopen the output FIFOs of the adopted process; its output is not kept until it restarts"
            ),
        }
        self.attempts = 1;
        self.supervising = true;
        self.status.timing.requested_at = Some(SystemTime::now());
        self.took_process(proc);
        let how = if unrecorded {
            // The user's last word was the start that spawned it.
            self.status.stopped_by_user = false;
            "started by a previous Russell that died before recording it"
        } else {
            "left running by a previous Russell"
        };
        self.emit(EventKind::Adopted, format!("adopted PID {} {how}", rec.pid));
        if self.svc.kind == ServiceKind::Task {
            self.set_state(ServiceState::Running);
        } else if self.svc.health_check.probe == Probe::None {
            self.became_healthy();
        }
    }
}
