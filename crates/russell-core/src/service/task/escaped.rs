//! Processes that left the service's process group (setsid, setpgid, double fork): found
//! by the marks every service carries ([`crate::proc::strays`]) and stopped like the
//! service, so that a stop leaves nothing of it running.

use std::time::Duration;

use super::ServiceTask;
use crate::EventKind;
use crate::events::event;
use crate::process::{self, Proc};
use crate::state_file::ProcessRecord;

/// How long after a process exited by itself its service looks for processes that left
/// its group (they may hold resources, and would pile up in a crash loop). Long enough
/// not to slow the restart, short enough that little piles up.
pub(super) const SWEEP_AFTER_EXIT: Duration = Duration::from_secs(1);

impl ServiceTask {
    /// Stops what is left of this service outside its group once the group is gone
    /// ([`crate::proc::strays::escapees`]): a stop leaves nothing of it running.
    pub(super) async fn sweep_escapees(&mut self) {
        self.sweep_due = None;
        let dir = self.shared.state_dir.clone();
        let shorts = vec![self.svc.short_name.clone()];
        let found =
            tokio::task::spawn_blocking(move || crate::proc::strays::escapees(&dir, &shorts))
                .await
                .unwrap_or_default();
        let found = found.into_iter().map(|s| s.record).collect();
        self.stop_escapees(found).await;
    }

    /// Stops `found` (processes marked as this service, outside its group), except what
    /// the current process started: only what is older than it is left over.
    pub(super) async fn stop_escapees(&mut self, mut found: Vec<ProcessRecord>) {
        if let Some(current) = &self.proc {
            found.retain(|rec| rec.start_time < current.start_time);
        }
        if !found.is_empty() {
            self.stop_marked(found, "a process that left the service's process group")
                .await;
        }
    }

    /// Stops processes marked as this service that are not its own process (`what` says
    /// what they are, for the event and the log), all at once, each like the service:
    /// stop_signal, stop_timeout, SIGKILL, group and all when they lead one.
    pub(super) async fn stop_marked(&mut self, found: Vec<ProcessRecord>, what: &str) {
        let procs: Vec<Proc> = found
            .iter()
            .map(|rec| Proc::adopt(rec.pid, rec.start_time))
            .collect();
        for proc in &procs {
            tracing::warn!(service = %self.svc.short_name, pid = proc.pid, "stopping {what}");
            self.shared.emit(event(
                EventKind::Stopping,
                &self.svc.short_name,
                format!(
                    "stopping PID {} ({}), {what}",
                    proc.pid,
                    proc.command.join(" ")
                ),
                self.status.state,
                Some(proc.pid),
            ));
        }
        let (signal, grace) = (process::stop_signal(&self.svc), self.svc.stop_timeout);
        futures_util::future::join_all(procs.into_iter().map(|mut proc| async move {
            process::stop(&mut proc, signal, grace).await;
        }))
        .await;
    }
}
