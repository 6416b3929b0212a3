//! The actor: one loop that owns the service table. It folds what the service tasks
//! report into the next snapshot, turns commands into batches (run beside the loop, so it
//! stays free), and publishes the snapshot, the dependency view and the state file, which
//! one writer task ([`write_state_file`]) puts on disk.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::Command;
use super::dispatch::{Dispatch, only_results};
use crate::events::LazyBroadcast;
use crate::service::{ActorMsg, DepNode, DepView};
use crate::state_file::{ProcessRecord, ServiceRecord, StateFile};
use crate::{
    Event, ExternalState, ExternalStatus, OrchestratorPhase, ServiceState, ServiceStatus, Snapshot,
};

/// What dependents see; `sent` (the dispatch's epochs) against `seen` marks services with
/// a command not yet acknowledged as "waiting" so that a stale `failed` is never taken for
/// the answer to a new start. `index` finds the nodes by short_name.
pub(super) fn dep_view(
    statuses: &[Arc<ServiceStatus>],
    externals: &[ExternalStatus],
    seen: &[u64],
    sent: &[Arc<std::sync::atomic::AtomicU64>],
    index: &Arc<std::collections::HashMap<String, usize>>,
) -> DepView {
    let services = statuses.iter().enumerate().map(|(i, s)| DepNode {
        short: s.short_name.clone(),
        external: false,
        state: s.state,
        healthy: s.healthy,
        disabled: !s.enabled,
        last_error: s.last_error.clone(),
        last_probe_error: s.last_probe_error.clone(),
        epoch: seen.get(i).copied().unwrap_or_default(),
        sent: sent.get(i).cloned(),
    });
    let externals = externals.iter().map(|e| DepNode {
        short: e.short_name.clone(),
        external: true,
        state: match e.state {
            ExternalState::Healthy => ServiceState::Running,
            ExternalState::Unhealthy => ServiceState::Unhealthy,
            ExternalState::Unknown => ServiceState::Waiting,
        },
        healthy: e.state == ExternalState::Healthy,
        disabled: false,
        last_error: e.last_error.clone(),
        last_probe_error: e.last_error.clone(),
        epoch: 0,
        sent: None,
    });
    DepView {
        nodes: services.chain(externals).collect(),
        index: index.clone(),
    }
}

pub(super) struct Actor {
    pub(super) dispatch: Dispatch,
    /// No state file existed: `restore` starts everything.
    pub(super) first_start: bool,
    /// Handles send commands; `None` once every handle is gone (→ detach).
    pub(super) cmd_rx: mpsc::UnboundedReceiver<Command>,
    /// Tasks report changes.
    pub(super) msg_rx: mpsc::UnboundedReceiver<ActorMsg>,
    /// Service tasks, external probers and the sampler; aborted when the actor ends.
    pub(super) tasks: JoinSet<()>,
    /// Start/stop batches in flight.
    pub(super) batches: JoinSet<()>,
    /// The final stop-all of a shutdown runs (the phase shows it like a batch).
    pub(super) ending: bool,
    /// Shared with the published snapshots: a publish copies 200 pointers, not 200
    /// statuses (during a start every probe result is a publish).
    pub(super) statuses: Vec<Arc<ServiceStatus>>,
    pub(super) externals: Vec<ExternalStatus>,
    pub(super) records: Vec<Option<ProcessRecord>>,
    /// Something a waiting dependent reads changed since the last publish.
    pub(super) deps_changed: bool,
    /// Something the state file records changed since the last publish.
    pub(super) records_changed: bool,
    /// Last epoch acknowledged by each service task.
    pub(super) seen: Vec<u64>,
    /// The actor publishes; handles read.
    pub(super) snapshot_tx: watch::Sender<Arc<Snapshot>>,
    /// The actor publishes; service tasks read while waiting for dependencies.
    pub(super) dep_tx: watch::Sender<Arc<DepView>>,
    /// The actor publishes; the state-file writer and the sampler read.
    pub(super) state_tx: watch::Sender<StateFile>,
    pub(super) writer: tokio::task::JoinHandle<()>,
    /// The FIFOs' directory on tmpfs, if they are not in `state_dir/run`.
    pub(super) runtime_dir: Option<PathBuf>,
    pub(super) started_at: SystemTime,
    /// Answers and events from tasks, delivered after the next publish in arrival order
    /// (so whoever gets one and then reads the snapshot sees at least that state).
    pub(super) deliveries: Vec<Box<dyn FnOnce() + Send>>,
    /// The actor broadcasts the tasks' events; `Orchestrator::events` hands out receivers.
    pub(super) events: Arc<LazyBroadcast<Event>>,
    /// Names and enabled flags for the handles; rewritten by a reload.
    pub(super) lookup: Arc<std::sync::RwLock<super::Lookup>>,
    /// What every task shares (a reload starts new external probers with it).
    pub(super) shared: Arc<crate::service::Shared>,
    /// Per external: its prober task (a reload replaces the prober of a changed one).
    pub(super) external_tasks: Vec<tokio::task::AbortHandle>,
    /// Which row each task reports to; rebuilt with the table.
    pub(super) rows: super::table::Rows,
    /// The id of the next task spawned.
    pub(super) next_id: crate::service::TaskId,
    /// Taken by each reload's batch for its stops and starts (one reload at a time).
    pub(super) reload_turn: Arc<tokio::sync::Mutex<()>>,
    /// The config running now, services and externals in table order; a reload diffs
    /// against it and replaces it.
    pub(super) config: russell_config::Config,
    /// The actor publishes what to watch; the watcher task reads.
    pub(super) watch_tx: watch::Sender<Arc<super::watcher::WatchSpec>>,
}

impl Actor {
    pub(super) async fn run(mut self) {
        let stop_at_end = loop {
            tokio::select! {
                biased;
                Some(msg) = self.msg_rx.recv() => {
                    self.on_msg(msg);
                    while let Ok(msg) = self.msg_rx.try_recv() {
                        self.on_msg(msg);
                    }
                }
                cmd = self.cmd_rx.recv() => match cmd {
                    None => break None,
                    Some(Command::End { stop, reply }) => break Some((stop, reply)),
                    Some(cmd) => self.on_command(cmd),
                },
                Some(_) = self.batches.join_next(), if !self.batches.is_empty() => {}
                // Tasks a reload removed (or whose prober it replaced) end: let them go.
                Some(_) = self.tasks.join_next(), if !self.tasks.is_empty() => continue,
            }
            self.publish();
        };
        let reply = match stop_at_end {
            Some((stop, reply)) => {
                if stop {
                    self.batches.abort_all();
                    self.ending = true;
                    let dispatch = self.dispatch.clone();
                    let mut stopping = Box::pin(dispatch.stop_all(false));
                    // Keep folding updates while stopping, so the snapshot shows it.
                    loop {
                        tokio::select! {
                            _ = &mut stopping => break,
                            Some(msg) = self.msg_rx.recv() => {
                                self.on_msg(msg);
                                self.publish();
                            }
                        }
                    }
                    while let Ok(msg) = self.msg_rx.try_recv() {
                        self.on_msg(msg);
                    }
                }
                Some(reply)
            }
            None => None,
        };
        self.batches.abort_all();
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        while let Ok(msg) = self.msg_rx.try_recv() {
            self.on_msg(msg);
        }
        self.publish();
        let mut snap = (**self.snapshot_tx.borrow()).clone();
        snap.phase = OrchestratorPhase::Stopped;
        self.snapshot_tx.send_replace(Arc::new(snap));
        drop(self.state_tx);
        let _ = self.writer.await;
        if let Some(dir) = &self.runtime_dir {
            // tmpfs entries would pile up until reboot: drop the FIFOs of services that no
            // longer run (a running one's stay, for the next Russell), then the empty dir.
            for (s, rec) in self.statuses.iter().zip(&self.records) {
                if rec.is_none() {
                    let (out, err) = crate::process::fifo::paths(dir, &s.short_name);
                    let _ = std::fs::remove_file(out);
                    let _ = std::fs::remove_file(err);
                }
            }
            let _ = std::fs::remove_dir(dir);
        }
        if let Some(reply) = reply {
            let _ = reply.send(());
        }
    }

    pub(super) fn on_msg(&mut self, msg: ActorMsg) {
        match msg {
            ActorMsg::Service {
                id,
                epoch,
                status,
                process,
            } => {
                // A task that a reload removed reports its stop to nobody.
                let Some(idx) = self.rows.service(id) else {
                    return;
                };
                let mut status = *status;
                let old = &self.statuses[idx];
                if process.is_some() {
                    status.cpu_percent = old.cpu_percent;
                    status.cpu_seconds = old.cpu_seconds;
                    status.rss_bytes = old.rss_bytes;
                }
                self.deps_changed |= status.state != old.state
                    || status.healthy != old.healthy
                    || status.last_error != old.last_error
                    || status.last_probe_error != old.last_probe_error
                    || epoch != self.seen[idx];
                self.records_changed |=
                    process != self.records[idx] || status.stopped_by_user != old.stopped_by_user;
                self.statuses[idx] = Arc::new(status);
                self.records[idx] = process;
                self.seen[idx] = epoch;
            }
            ActorMsg::External { id, status } => {
                let Some(idx) = self.rows.external(id) else {
                    return;
                };
                // What the dependency view reads of an external (see dep_view).
                let old = &self.externals[idx];
                self.deps_changed |=
                    status.state != old.state || status.last_error != old.last_error;
                self.externals[idx] = status;
            }
            ActorMsg::CameBack { id } => {
                let Some(idx) = self.rows.service(id) else {
                    return;
                };
                let targets: Vec<usize> = self.dispatch.graph.dependents[idx]
                    .iter()
                    .copied()
                    .filter(|&d| self.records[d].is_some())
                    .collect();
                if !targets.is_empty() {
                    let dispatch = self.dispatch.clone();
                    self.batches.spawn(async move {
                        futures_util::future::join_all(
                            targets.iter().map(|&d| dispatch.restart(d)),
                        )
                        .await;
                    });
                }
            }
            ActorMsg::Deliver(reply) => self.deliveries.push(reply),
            ActorMsg::Event(event) => {
                let tx = self.events.clone();
                self.deliveries.push(Box::new(move || tx.send(event)));
            }
            ActorMsg::Usage(usage) => {
                for (short, cpu, rss, cpu_seconds) in usage {
                    let row = self.rows.by_short(&short);
                    if let Some(s) = row.and_then(|i| self.statuses.get_mut(i)) {
                        let s = Arc::make_mut(s);
                        s.cpu_percent = cpu;
                        s.rss_bytes = rss;
                        s.cpu_seconds = cpu_seconds;
                    }
                }
            }
        }
    }

    pub(super) fn on_command(&mut self, cmd: Command) {
        let dispatch = self.dispatch.clone();
        match cmd {
            Command::StartAll { force, reply } => {
                // Disabled services are left out (and out of the results); a service that
                // depends on one fails naming it.
                let all: Vec<usize> = (0..self.statuses.len())
                    .filter(|&i| self.statuses[i].enabled)
                    .collect();
                self.batches.spawn(async move {
                    if force {
                        dispatch.stop_all(false).await;
                    }
                    let _ = reply.send(only_results(dispatch.start(all, Vec::new()).await));
                });
            }
            Command::Restore { reply } => {
                let (targets, blocked) = self.restore_plan();
                self.batches.spawn(async move {
                    let _ = reply.send(only_results(dispatch.start(targets, blocked).await));
                });
            }
            Command::StopAll { reply } => {
                self.batches.spawn(async move {
                    let order = dispatch.stop_all(true).await;
                    let stopped = order.into_iter().map(|i| dispatch.shorts[i].clone());
                    let _ = reply.send(stopped.collect());
                });
            }
            Command::Start { short, reply } => {
                let Some(i) = self.rows.by_short(&short) else {
                    let _ = reply.send(self.not_in_file(&short));
                    return;
                };
                let mut targets: Vec<usize> = dispatch
                    .graph
                    .service_deps(i)
                    .into_iter()
                    .filter(|&d| {
                        self.statuses[d].enabled
                            && matches!(
                                self.statuses[d].state,
                                ServiceState::Stopped | ServiceState::Failed
                            )
                    })
                    .collect();
                targets.push(i);
                self.batches.spawn(async move {
                    let results = dispatch.start(targets, Vec::new()).await;
                    let mine = results
                        .into_iter()
                        .find_map(|(j, r)| (j == i).then_some(r))
                        .unwrap_or_else(|| dispatch.gone(i));
                    let _ = reply.send(mine);
                });
            }
            Command::Stop { short, reply } => {
                let Some(i) = self.rows.by_short(&short) else {
                    let _ = reply.send(());
                    return;
                };
                self.batches.spawn(async move {
                    dispatch.stop(i, true, true).await;
                    let _ = reply.send(());
                });
            }
            Command::Restart { short, reply } => {
                let Some(i) = self.rows.by_short(&short) else {
                    let _ = reply.send(self.not_in_file(&short));
                    return;
                };
                self.batches.spawn(async move {
                    let _ = reply.send(dispatch.restart(i).await);
                });
            }
            Command::Reload {
                config,
                dry_run,
                reply,
            } => self.on_reload(*config, dry_run, reply),
            Command::RestartFor { short, why, reply } => {
                let Some(idx) = self.rows.by_short(&short) else {
                    let _ = reply.send(self.not_in_file(&short));
                    return;
                };
                self.batches.spawn(async move {
                    let _ = reply.send(dispatch.restart_for(idx, why).await);
                });
            }
            Command::Watched { short, why } => {
                // Only a running service restarts; a stopped one starts on the new file
                // when it is started.
                let Some(idx) = self.rows.by_short(&short) else {
                    return;
                };
                if self.records[idx].is_some() && self.statuses[idx].enabled {
                    self.batches.spawn(async move {
                        dispatch.restart_for(idx, why).await;
                    });
                }
            }
            Command::End { .. } => {}
        }
    }

    /// The answer to a command for a service that a reload removed after the handle
    /// looked its name up.
    fn not_in_file(&self, short: &str) -> crate::StartResult {
        crate::StartResult {
            name: short.to_string(),
            success: false,
            error: format!(
                "'{short}' is no longer in {}; a reload removed it",
                self.config.source.display()
            ),
            attempts: 0,
        }
    }

    /// On a first start: every enabled service. Later: every enabled service not stopped by
    /// the user; services that need a user-stopped one are blocked with its name. (A
    /// service that needs a disabled one is started and fails naming it.)
    pub(super) fn restore_plan(&self) -> (Vec<usize>, Vec<(usize, String)>) {
        let n = self.statuses.len();
        let enabled = (0..n).filter(|&i| self.statuses[i].enabled);
        if self.first_start {
            return (enabled.collect(), Vec::new());
        }
        let stopped: HashSet<usize> = (0..n)
            .filter(|&i| self.statuses[i].stopped_by_user)
            .collect();
        let (mut targets, mut blocked) = (Vec::new(), Vec::new());
        for i in enabled.filter(|i| !stopped.contains(i)) {
            let graph = &self.dispatch.graph;
            match graph
                .service_deps(i)
                .into_iter()
                .find(|d| stopped.contains(d))
            {
                Some(d) => blocked.push((
                    i,
                    format!(
                        "not started: dependency '{}' was stopped by the user; start it first",
                        self.statuses[d].short_name
                    ),
                )),
                None => targets.push(i),
            }
        }
        (targets, blocked)
    }

    pub(super) fn phase(&self) -> OrchestratorPhase {
        // Batches are only counted, not named, once spawned; the services' states say the
        // rest.
        let states = self.statuses.iter().map(|s| s.state);
        let busy = self.ending || !self.batches.is_empty();
        let any = |f: fn(ServiceState) -> bool| self.statuses.iter().any(|s| f(s.state));
        if busy && any(|s| s == ServiceState::Stopping) {
            OrchestratorPhase::Stopping
        } else if busy && any(|s| matches!(s, ServiceState::Waiting | ServiceState::Starting)) {
            OrchestratorPhase::Starting
        } else if states
            .clone()
            .any(|s| crate::service::state::has_process(s) || s == ServiceState::Restarting)
        {
            OrchestratorPhase::Running
        } else {
            OrchestratorPhase::Stopped
        }
    }

    /// Publishes the snapshot (and dependency view and state file), then delivers the
    /// answers that waited for it.
    pub(super) fn publish(&mut self) {
        self.publish_state();
        for deliver in self.deliveries.drain(..) {
            deliver();
        }
    }

    pub(super) fn publish_state(&mut self) {
        let snapshot = Snapshot {
            phase: self.phase(),
            started_at: self.started_at,
            services: self.statuses.clone(),
            externals: self.externals.clone(),
        };
        self.snapshot_tx.send_replace(Arc::new(snapshot));
        // Waiting tasks wake on every new view: only when something they read changed.
        if std::mem::take(&mut self.deps_changed) {
            let view = dep_view(
                &self.statuses,
                &self.externals,
                &self.seen,
                &self.dispatch.epochs,
                &self.rows.nodes,
            );
            self.dep_tx.send_replace(Arc::new(view));
        }
        if !std::mem::take(&mut self.records_changed) {
            return;
        }
        let state = StateFile {
            version: 1,
            run_dir: self.runtime_dir.clone(),
            services: self
                .statuses
                .iter()
                .zip(&self.records)
                .map(|(s, r)| {
                    let rec = ServiceRecord {
                        process: *r,
                        stopped_by_user: s.stopped_by_user,
                    };
                    (s.short_name.clone(), rec)
                })
                .collect(),
        };
        self.state_tx.send_if_modified(|old| {
            let changed = *old != state;
            if changed {
                *old = state;
            }
            changed
        });
    }
}

/// Writes the state file whenever it changes (coalescing bursts), and once more when the
/// actor drops the sender.
pub(super) async fn write_state_file(dir: PathBuf, mut rx: watch::Receiver<StateFile>) {
    let mut last: Option<StateFile> = None;
    loop {
        let current = rx.borrow_and_update().clone();
        if last.as_ref() != Some(&current) {
            write_logged(current.clone(), dir.clone()).await;
            last = Some(current);
        }
        if rx.changed().await.is_err() {
            let current = rx.borrow().clone();
            if last.as_ref() != Some(&current) {
                write_logged(current, dir).await;
            }
            return;
        }
    }
}

/// Writes the state file on the blocking pool. A failure is logged with its cause (e.g.
/// "No space left on device"): without the file the next Russell cannot adopt what still
/// runs, so the last write at shutdown matters most.
async fn write_logged(state: StateFile, dir: PathBuf) {
    match tokio::task::spawn_blocking(move || state.write(&dir)).await {
        Ok(Err(e)) => tracing::warn!(error = %crate::error::chain(&e), "state file not written"),
        Err(e) => tracing::warn!(error = %e, "state file writer failed"),
        Ok(Ok(())) => {}
    }
}
