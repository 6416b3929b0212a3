//! The task that owns one service: its process, lifecycle state, probes and timers.
//!
//! One `select!` loop reacts to whatever happens first: a command, the child's exit, a
//! probe result, the probe tick, a dependency change, the dependency-wait deadline, the
//! start timeout, the end of a restart backoff. Commands are handled one at a time, so two
//! commands for one service can never produce two processes. A graceful stop runs inline
//! (commands for this service queue meanwhile); status reads never wait for it because
//! they read the actor's snapshot.
//!
//! Probing: right after a spawn, then after [`start_probe_delay`] (a 40th of the time since
//! the spawn, 5 ms to 500 ms, capped by `interval`) until the first success, so a start
//! takes about the service's real readiness time (within 2.5 % of it, or 5 ms) while a
//! service that needs a minute to load costs a few hundred probes, not thousands; then every
//! `interval`. Failures before the first success do not count (start grace, bounded by
//! `start_timeout`). Once running, `failure_threshold` consecutive failures are the
//! unhealthy verdict (stop, then restart by policy); below it the state is `unhealthy`
//! but the service still counts as healthy; `success_threshold` consecutive successes make
//! it `running` again.
//!
//! What a spawn (first start, restart, manual restart) reads: `env_file` is read again at
//! every spawn (so editing it takes effect at the next restart); command, working_dir,
//! `env` and every other setting come from the config Russell was started with.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use russell_config::{PortConflictPolicy, Probe, Service};
use tokio::sync::{oneshot, watch};
use tokio::time::{Instant, sleep_until};

use super::restart::{backoff, start_attempts};
use super::{ActorMsg, DepSpec, DepView, LeftBehind, ServiceCmd, Shared, state};
use crate::events::event;
use crate::process::{self, ExitInfo, Proc};
use crate::state_file::ProcessRecord;
use crate::{EventKind, ServiceState, ServiceStatus, StartResult};
use futures_channel::mpsc::UnboundedReceiver;
use futures_util::StreamExt as _;

/// Probe period of externals until their first healthy verdict.
pub(crate) const FAST_PROBE: Duration = Duration::from_millis(50);

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

type ProbeFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// What woke the loop.
enum Wake {
    Cmd(Option<ServiceCmd>),
    Exit(ExitInfo),
    ProbeDone(Result<(), String>),
    ProbeDue,
    Deps,
    StartTimeout,
    BackoffOver,
    ResetDue,
    SweepDue,
}

/// Everything the task needs at birth.
pub(crate) struct TaskInit {
    pub idx: usize,
    pub svc: Arc<Service>,
    pub shared: Arc<Shared>,
    pub deps_rx: watch::Receiver<Arc<DepView>>,
    pub deps: Vec<DepSpec>,
    /// Per service: the epoch of the last command sent (bumped by the actor's dispatch).
    pub epochs: Arc<Vec<AtomicU64>>,
    pub cmds: UnboundedReceiver<ServiceCmd>,
    pub status: ServiceStatus,
}

pub(crate) struct ServiceTask {
    idx: usize,
    svc: Arc<Service>,
    shared: Arc<Shared>,
    deps_rx: watch::Receiver<Arc<DepView>>,
    deps: Vec<DepSpec>,
    epochs: Arc<Vec<AtomicU64>>,
    cmds: UnboundedReceiver<ServiceCmd>,
    status: ServiceStatus,
    epoch: u64,
    proc: Option<Proc>,
    pump: Option<crate::logs::Pump>,
    /// Replies owed for the start under way.
    pending: Vec<oneshot::Sender<StartResult>>,
    /// Spawn attempts of the current start.
    attempts: u32,
    /// It was running since the last manual start: a failure now is an automatic restart.
    supervising: bool,
    /// Healthy again after a restart → ask the actor to restart dependents.
    came_back: bool,
    probe_fut: Option<ProbeFuture>,
    next_probe: Instant,
    failures: u32,
    successes: u32,
    wait_started: Instant,
    wait_deadline: Instant,
    warned_optional: HashSet<usize>,
    start_deadline: Instant,
    /// When the current process was spawned (or adopted): paces the start probes.
    spawned: Instant,
    backoff_until: Instant,
    running_since: Instant,
    /// A look for processes that left the group of a process that exited by itself, a
    /// moment after the exit (not in the way of the restart).
    sweep_due: Option<Instant>,
    /// Processes recorded as this service's by a previous Russell: may be replaced on a
    /// port conflict.
    known: Vec<ProcessRecord>,
}

impl ServiceTask {
    /// Boxed: [`ServiceTask::run`] takes it so, which keeps the task's future from
    /// holding the whole struct twice (the argument and its binding).
    pub(crate) fn new(init: TaskInit) -> Box<Self> {
        let now = Instant::now();
        Box::new(Self {
            idx: init.idx,
            svc: init.svc,
            shared: init.shared,
            deps_rx: init.deps_rx,
            deps: init.deps,
            epochs: init.epochs,
            cmds: init.cmds,
            status: init.status,
            epoch: 0,
            proc: None,
            pump: None,
            pending: Vec::new(),
            attempts: 0,
            supervising: false,
            came_back: false,
            probe_fut: None,
            next_probe: now,
            failures: 0,
            successes: 0,
            wait_started: now,
            wait_deadline: now,
            warned_optional: HashSet::new(),
            start_deadline: now,
            spawned: now,
            backoff_until: now,
            sweep_due: None,
            running_since: now,
            known: Vec::new(),
        })
    }

    /// Runs until the actor goes away (or aborts it). Then the process is left running
    /// (detach): a shutdown stops every service before it ends the tasks. `adopt` is a
    /// process left by a previous Russell (alive, same start time); `known` is what the
    /// state file recorded for this service (replaceable on a port conflict); `left` says
    /// whether `adopt` came from the marks instead, and which second copies to stop first.
    pub(crate) async fn run(
        mut self: Box<Self>,
        adopt: Option<ProcessRecord>,
        known: Option<ProcessRecord>,
        left: LeftBehind,
    ) {
        self.known.extend(known);
        if !left.strays.is_empty() {
            // A Russell that died within milliseconds of a spawn never recorded it; the
            // one that runs is adopted below.
            let what = "a second copy started by a previous Russell that died before recording it";
            Box::pin(self.stop_marked(left.strays, what)).await;
        }
        if let Some(rec) = adopt {
            self.adopt_left_behind(rec, left.unrecorded);
        }
        self.publish();
        // The handlers that can wait (stops, port conflicts, /proc scans) run boxed: their
        // state would otherwise be inlined into this future, which every service keeps for
        // its whole life while it mostly rests in `next_wake`.
        loop {
            match self.next_wake().await {
                Wake::Cmd(None) => break,
                Wake::Cmd(Some(cmd)) => Box::pin(self.on_command(cmd)).await,
                Wake::Exit(info) => Box::pin(self.on_exit(info)).await,
                Wake::ProbeDone(r) => self.on_probe(r).await,
                Wake::ProbeDue => {
                    // Nothing visible changed: no snapshot.
                    self.launch_probe();
                    continue;
                }
                Wake::Deps => self.check_deps().await,
                Wake::StartTimeout => Box::pin(self.on_start_timeout()).await,
                Wake::BackoffOver => self.enter_waiting(),
                Wake::ResetDue => self.status.restart_count = 0,
                Wake::SweepDue => Box::pin(self.sweep_escapees()).await,
            }
            self.publish();
        }
    }

    async fn next_wake(&mut self) -> Wake {
        let st = self.status.state;
        let waiting = st == ServiceState::Waiting;
        let restarting = st == ServiceState::Restarting;
        // One sleep waits for the earliest timer (a sleep per timer would all be kept in
        // this future, which every service holds while it rests).
        let next = self.timers().iter().filter_map(|t| t.0).min();
        tokio::select! {
            biased;
            c = self.cmds.next() => Wake::Cmd(c),
            e = wait_proc(&mut self.proc) => Wake::Exit(e),
            r = poll_probe(&mut self.probe_fut) => Wake::ProbeDone(r),
            r = deps_changed(waiting, &mut self.deps_rx) => match r {
                Ok(()) => Wake::Deps,
                Err(_) => Wake::Cmd(None),
            },
            // An elapsed (or zero) backoff must not wait for the timer wheel's next tick.
            () = std::future::ready(()), if restarting && self.backoff_until <= Instant::now() => Wake::BackoffOver,
            () = sleep_until_some(next) => self.timer_wake(),
        }
    }

    /// The timers of the current state: (deadline if armed, what it means), in order of
    /// precedence.
    fn timers(&self) -> [(Option<Instant>, Wake); 6] {
        let st = self.status.state;
        // A service without a check has no probe timer (it is healthy once spawned).
        let probing = self.proc.is_some()
            && self.probe_fut.is_none()
            && self.svc.health_check.probe != Probe::None
            && matches!(
                st,
                ServiceState::Starting | ServiceState::Running | ServiceState::Unhealthy
            );
        let starting = st == ServiceState::Starting && self.proc.is_some();
        let resetting = st == ServiceState::Running && self.status.restart_count > 0;
        [
            (
                (st == ServiceState::Waiting).then(|| self.next_wait_timer()),
                Wake::Deps,
            ),
            (starting.then_some(self.start_deadline), Wake::StartTimeout),
            (probing.then_some(self.next_probe), Wake::ProbeDue),
            (
                (st == ServiceState::Restarting).then_some(self.backoff_until),
                Wake::BackoffOver,
            ),
            (
                resetting.then(|| self.running_since + self.svc.restart_reset_after),
                Wake::ResetDue,
            ),
            (self.sweep_due, Wake::SweepDue),
        ]
    }

    /// The sleep for the earliest timer ended: of the timers due by now, the first in
    /// precedence; else (the clock disagrees) the earliest.
    fn timer_wake(&self) -> Wake {
        let now = Instant::now();
        let armed = || {
            self.timers()
                .into_iter()
                .filter_map(|(at, wake)| Some((at?, wake)))
        };
        armed()
            .find(|t| t.0 <= now)
            .or_else(|| armed().min_by_key(|t| t.0))
            .map_or(Wake::Deps, |t| t.1)
    }

    // ----- commands -------------------------------------------------------------------

    async fn on_command(&mut self, cmd: ServiceCmd) {
        match cmd {
            ServiceCmd::Start { epoch, reply } => {
                self.epoch = epoch;
                self.status.stopped_by_user = false;
                self.start(reply);
            }
            ServiceCmd::Stop {
                epoch,
                by_user,
                sweep,
                reply,
            } => {
                self.epoch = epoch;
                // A shutdown's stop keeps what the user asked for before.
                self.status.stopped_by_user |= by_user;
                self.stop_for_good("stopped").await;
                if sweep {
                    self.sweep_escapees().await;
                }
                self.reply(reply, ());
            }
            ServiceCmd::StopEscapees { found, reply } => {
                self.stop_escapees(found).await;
                self.reply(reply, ());
            }
            ServiceCmd::Restart { epoch, reply } => {
                self.epoch = epoch;
                self.status.stopped_by_user = false;
                if matches!(
                    self.status.state,
                    ServiceState::Waiting | ServiceState::Starting
                ) {
                    // A fresh process is on its way already: share its outcome.
                    self.pending.push(reply);
                    return;
                }
                let had_process = self.proc.is_some();
                self.stop_for_good("stopped for a restart").await;
                self.sweep_escapees().await;
                self.came_back = had_process;
                self.start(Some(reply));
            }
            ServiceCmd::Block {
                epoch,
                reason,
                reply,
            } => {
                self.epoch = epoch;
                if self.proc.is_some() {
                    self.start(Some(reply));
                } else {
                    self.status.last_error = reason.clone();
                    self.reply(reply, self.result(false, &reason));
                    self.emit(EventKind::Waiting, reason);
                }
            }
        }
    }

    /// Starts unless a start is under way or it is healthy; manual starts get a fresh budget.
    fn start(&mut self, reply: Option<oneshot::Sender<StartResult>>) {
        use ServiceState::*;
        match self.status.state {
            Running | Unhealthy => {
                if let Some(r) = reply {
                    let mut result = self.result(true, "");
                    result.attempts = 0;
                    self.reply(r, result);
                }
            }
            Waiting | Starting | Stopping => self.pending.extend(reply),
            Restarting | Stopped | Failed => {
                self.pending.extend(reply);
                self.attempts = 0;
                self.supervising = false;
                self.status.restart_count = 0;
                self.status.last_error.clear();
                self.status.timing = crate::StartTiming {
                    requested_at: Some(SystemTime::now()),
                    ..Default::default()
                };
                self.enter_waiting();
            }
        }
    }

    /// Stops the process (if any) and stays stopped; answers pending starts with a failure.
    async fn stop_for_good(&mut self, why: &str) {
        if self.status.state == ServiceState::Stopped {
            return;
        }
        let exit = self.stop_process(why).await;
        self.set_state(ServiceState::Stopped);
        self.status.healthy = false;
        self.status.pid = None;
        self.status.started_at = None;
        self.status.adopted = false;
        self.fail_pending("stopped before it became healthy");
        if let Some(exit) = exit {
            self.emit(EventKind::Stopped, format!("{why}: {exit}"));
        }
    }

    // ----- waiting for dependencies ---------------------------------------------------

    fn enter_waiting(&mut self) {
        let now = Instant::now();
        self.wait_started = now;
        self.warned_optional.clear();
        let view = self.deps_rx.borrow_and_update().clone();
        let budget = self
            .deps
            .iter()
            .filter(|d| !self.dep_healthy(&view, d.node))
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

    fn missing_deps(&self, view: &DepView) -> Vec<String> {
        self.deps
            .iter()
            .filter(|d| !self.dep_healthy(view, d.node))
            .filter_map(|d| view.nodes.get(d.node))
            .map(|n| n.short.clone())
            .collect()
    }

    /// A command sent to that service and not yet acknowledged: its state in the view
    /// is stale (a `failed` or `running` from before the command).
    fn dep_pending(&self, view: &DepView, node: usize) -> bool {
        let sent = self
            .epochs
            .get(node)
            .map_or(0, |e| e.load(Ordering::SeqCst));
        view.nodes
            .get(node)
            .is_some_and(|n| !n.external && n.epoch < sent)
    }

    fn dep_healthy(&self, view: &DepView, node: usize) -> bool {
        view.nodes.get(node).is_some_and(|n| n.healthy) && !self.dep_pending(view, node)
    }

    /// The next instant a wait can end by time: the overall bound or an optional
    /// external's grace.
    fn next_wait_timer(&self) -> Instant {
        self.deps
            .iter()
            .filter(|d| !self.warned_optional.contains(&d.node))
            .filter_map(|d| d.optional_after.map(|t| self.wait_started + t))
            .chain(std::iter::once(self.wait_deadline))
            .min()
            .unwrap_or(self.wait_deadline)
    }

    async fn check_deps(&mut self) {
        if self.status.state != ServiceState::Waiting {
            return;
        }
        let view = self.deps_rx.borrow_and_update().clone();
        let now = Instant::now();
        let mut blocking = None;
        for d in &self.deps {
            let Some(n) = view.nodes.get(d.node) else {
                continue;
            };
            let pending = self.dep_pending(&view, d.node);
            if n.healthy && !pending {
                continue;
            }
            if !n.external && !pending && n.state == ServiceState::Failed {
                return self.give_up(dependency_failed(&n.short, &n.last_error));
            }
            if let Some(after) = d.optional_after
                && now >= self.wait_started + after
            {
                if self.warned_optional.insert(d.node) {
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

    // ----- spawning -------------------------------------------------------------------

    async fn try_spawn(&mut self) {
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
            Err(why) => {
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
                if self.svc.health_check.probe == Probe::None {
                    self.became_healthy();
                }
            }
            Err(e) => {
                let why = crate::error::chain(&e);
                self.attempt_failed(why).await;
            }
        }
    }

    fn took_process(&mut self, proc: Proc) {
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

    /// Stops what is left of this service outside its group once the group is gone
    /// ([`process::strays::escapees`]): a stop leaves nothing of it running.
    async fn sweep_escapees(&mut self) {
        self.sweep_due = None;
        let dir = self.shared.state_dir.clone();
        let shorts = vec![self.svc.short_name.clone()];
        let found = tokio::task::spawn_blocking(move || process::strays::escapees(&dir, &shorts))
            .await
            .unwrap_or_default();
        let found = found.into_iter().map(|s| s.record).collect();
        self.stop_escapees(found).await;
    }

    /// Stops `found` (processes marked as this service, outside its group), except what
    /// the current process started: only what is older than it is left over.
    async fn stop_escapees(&mut self, mut found: Vec<ProcessRecord>) {
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
    async fn stop_marked(&mut self, found: Vec<ProcessRecord>, what: &str) {
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

    /// A process left by the previous Russell and still alive (recorded in the state file,
    /// or found by its marks when `unrecorded`): adopt it and let the probes decide
    /// (healthy → running; not within start_timeout → restarted).
    fn adopt_left_behind(&mut self, rec: ProcessRecord, unrecorded: bool) {
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
        if self.svc.health_check.probe == Probe::None {
            self.became_healthy();
        }
    }

    /// Port conflicts before a spawn (issue 3 item 6). `Ok(Some)` = a healthy holder to
    /// adopt; `Ok(None)` = ports free (a holder may have been stopped); `Err` = refuse.
    async fn check_ports(&mut self) -> Result<Option<Proc>, String> {
        let name = self.svc.short_name.clone();
        for port in self.svc.ports() {
            if port_is_free(port) {
                continue;
            }
            // The /proc scans are slow on a busy host (thousands of sockets): off the
            // runtime's threads.
            let dir = self.shared.state_dir.clone();
            let (listening, holders, holder_mark) = tokio::task::spawn_blocking(move || {
                let listening = crate::ports::is_listening(port);
                let holders = if listening {
                    crate::ports::listening_holders(port)
                } else {
                    Vec::new()
                };
                // Whose marks the holder carries (see process::strays).
                let mark = holders
                    .first()
                    .and_then(|h| process::strays::mark(h.pid, &dir));
                (listening, holders, mark)
            })
            .await
            .unwrap_or_default();
            if !listening {
                continue;
            }
            let Some(h) = holders.first() else {
                return Err(format!(
                    "port {port} of '{name}' is in use by a process Russell cannot see (another user?); free the port or change it in the config"
                ));
            };
            let cmd = h.command_line.join(" ");
            if h.pid == std::process::id() {
                return Err(format!(
                    "port {port} of '{name}' is in use by Russell itself (PID {}); change the port",
                    h.pid
                ));
            }
            match self.svc.on_port_conflict {
                PortConflictPolicy::Fail => {
                    return Err(format!(
                        "port {port} of '{name}' is in use by PID {} ({cmd}); on_port_conflict = \"fail\": stop that process or change the port",
                        h.pid
                    ));
                }
                PortConflictPolicy::Adopt => {
                    let probe = &self.svc.health_check.probe;
                    if *probe != Probe::None
                        && crate::health::probe(probe, self.svc.health_check.timeout)
                            .await
                            .is_ok()
                    {
                        return Ok(Some(Proc::adopt(h.pid, h.start_time)));
                    }
                    let ours = h.command_line == self.svc.command
                        || holder_mark.as_deref() == Some(self.svc.short_name.as_str())
                        || self
                            .known
                            .iter()
                            .any(|k| k.pid == h.pid && k.start_time == h.start_time);
                    if !ours {
                        return Err(format!(
                            "port {port} of '{name}' is in use by PID {} ({cmd}), which is neither this service nor healthy by its check; it was left alone: stop it, change the port, or set on_port_conflict = \"kill\"",
                            h.pid
                        ));
                    }
                    self.replace_holder(port, h.pid, h.start_time, &cmd).await?;
                }
                PortConflictPolicy::Kill => {
                    self.replace_holder(port, h.pid, h.start_time, &cmd).await?;
                }
            }
        }
        Ok(None)
    }

    /// Stops a port holder gracefully and waits for the port to be free.
    async fn replace_holder(
        &mut self,
        port: u16,
        pid: u32,
        start_time: u64,
        cmd: &str,
    ) -> Result<(), String> {
        self.emit(
            EventKind::PortConflict,
            format!("port {port} is held by PID {pid} ({cmd}); stopping it"),
        );
        let mut holder = Proc::adopt(pid, start_time);
        process::stop(
            &mut holder,
            process::stop_signal(&self.svc),
            self.svc.stop_timeout,
        )
        .await;
        let deadline = Instant::now() + Duration::from_secs(5);
        // The same /proc/net scan as in check_ports, polled: off the runtime's threads too,
        // or every other service, probe and status read would stall for up to 5 s.
        let listening = || async move {
            tokio::task::spawn_blocking(move || crate::ports::is_listening(port))
                .await
                .unwrap_or(true)
        };
        while listening().await {
            if Instant::now() >= deadline {
                return Err(format!(
                    "port {port} of '{}' is still in use 5 s after PID {pid} ({cmd}) was stopped; free the port or change it in the config",
                    self.svc.short_name
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    // ----- exits, probes, timeouts ----------------------------------------------------

    async fn on_exit(&mut self, info: ExitInfo) {
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
        match self.status.state {
            ServiceState::Starting => {
                self.attempt_failed(format!("{info} before it became healthy"))
                    .await;
            }
            ServiceState::Running | ServiceState::Unhealthy => {
                self.supervising = true;
                self.restart_later(info.to_string());
            }
            _ => {}
        }
    }

    fn launch_probe(&mut self) {
        let svc = self.svc.clone();
        let slots = self.shared.probes.clone();
        self.probe_fut = Some(Box::pin(async move {
            // The timeout starts once the probe runs, not while it waits for a slot.
            let _slot = slots.acquire_owned().await;
            let hc = &svc.health_check;
            crate::health::probe(&hc.probe, hc.timeout)
                .await
                .map_err(|e| e.to_string())
        }));
    }

    async fn on_probe(&mut self, result: Result<(), String>) {
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

    fn became_healthy(&mut self) {
        self.set_state(ServiceState::Running);
        self.status.healthy = true;
        self.status.last_error.clear();
        self.status.timing.healthy_at = Some(SystemTime::now());
        self.running_since = Instant::now();
        self.next_probe = self.running_since + self.svc.health_check.interval;
        self.failures = 0;
        self.successes = 0;
        let took = self
            .status
            .timing
            .spawned_at
            .and_then(|s| s.elapsed().ok())
            .map(|d| format!(" after {}", humantime::format_duration(round_ms(d))))
            .unwrap_or_default();
        self.emit(EventKind::Healthy, format!("healthy{took}"));
        let result = self.result(true, "");
        for r in std::mem::take(&mut self.pending) {
            self.reply(r, result.clone());
        }
        if (self.supervising || self.came_back) && self.svc.restart_dependents {
            let _ = self
                .shared
                .to_actor
                .send(ActorMsg::CameBack { idx: self.idx });
        }
        self.came_back = false;
        self.supervising = true;
    }

    async fn on_start_timeout(&mut self) {
        let why = format!(
            "not healthy within start_timeout {}: {}",
            humantime::format_duration(self.svc.health_check.start_timeout),
            non_empty(&self.status.last_probe_error, "no probe passed")
        );
        self.emit(EventKind::Unhealthy, why.clone());
        self.stop_process("start_timeout passed").await;
        self.sweep_escapees().await;
        self.attempt_failed(why).await;
    }

    async fn unhealthy_verdict(&mut self) {
        self.status.healthy = false;
        let why = format!(
            "unhealthy: {} consecutive failed probes, last: {}",
            self.failures, self.status.last_probe_error
        );
        self.emit(EventKind::Unhealthy, why.clone());
        self.stop_process("unhealthy").await;
        self.sweep_escapees().await;
        self.supervising = true;
        self.restart_later(why);
    }

    /// A spawn attempt did not lead to a healthy process.
    async fn attempt_failed(&mut self, why: String) {
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
    fn restart_later(&mut self, why: String) {
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

    fn backoff(&mut self, attempt: u32, delay: Duration, why: String) {
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
    fn give_up(&mut self, why: String) {
        self.set_state(ServiceState::Failed);
        self.status.healthy = false;
        self.status.last_error = why.clone();
        self.fail_pending(&why);
        self.emit(EventKind::Failed, why);
    }

    /// Graceful stop of the current process (stop_signal, stop_timeout, SIGKILL, until the
    /// group is empty). Publishes `stopping` first. Returns how the process ended, or
    /// `None` when there was none.
    async fn stop_process(&mut self, why: &str) -> Option<String> {
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

    // ----- helpers --------------------------------------------------------------------

    fn set_state(&mut self, to: ServiceState) {
        let from = self.status.state;
        if state::allowed(from, to) {
            self.status.state = to;
        } else {
            tracing::error!(service = %self.svc.short_name, from = from.as_str(), to = to.as_str(), "illegal transition refused");
        }
    }

    fn fail_pending(&mut self, why: &str) {
        let result = self.result(false, why);
        for r in std::mem::take(&mut self.pending) {
            self.reply(r, result.clone());
        }
    }

    fn result(&self, success: bool, error: &str) -> StartResult {
        StartResult {
            name: self.svc.name.clone(),
            success,
            error: error.to_string(),
            attempts: self.attempts,
        }
    }

    fn emit(&self, kind: EventKind, message: impl Into<String>) {
        self.shared.emit(event(
            kind,
            &self.svc.short_name,
            message,
            self.status.state,
            self.status.pid,
        ));
    }

    /// Publishes the status the event is about, then the event, for a handler that awaits
    /// something long after the event (an exit, then the stop of what is left of the
    /// group): until the handler's own publish, readers and waiting dependents would see
    /// the old state. Elsewhere the handler's publish follows the event at once; publishing
    /// before every event too cost 0.45 MiB of heap churn at a start of 200 (RSS 9.6 ->
    /// 10.1 MiB).
    fn send_event(&self, ev: crate::Event) {
        self.publish();
        self.shared.emit(ev);
    }

    /// Answers a command through the actor, after publishing the current status: the
    /// actor delivers it only once the snapshot shows this state, so a caller that reads
    /// the snapshot after the answer never sees an older one.
    fn reply<T: Send + 'static>(&self, tx: oneshot::Sender<T>, value: T) {
        self.publish();
        let _ = self
            .shared
            .to_actor
            .send(ActorMsg::Deliver(Box::new(move || {
                let _ = tx.send(value);
            })));
    }

    fn publish(&self) {
        let _ = self.shared.to_actor.send(ActorMsg::Service {
            idx: self.idx,
            epoch: self.epoch,
            status: Box::new(self.status.clone()),
            process: self.proc.as_ref().map(Proc::record),
        });
    }
}

/// How long after a process exited by itself its service looks for processes that left
/// its group (they may hold resources, and would pile up in a crash loop). Long enough
/// not to slow the restart, short enough that little piles up.
const SWEEP_AFTER_EXIT: Duration = Duration::from_secs(1);

/// Fast path of the port check: if we can bind the port on every address ourselves, nobody
/// listens on it (std sets SO_REUSEADDR, so TIME_WAIT leftovers do not count). The probe
/// listener is closed at once. Any failure means "look closer" (the /proc scan).
fn port_is_free(port: u16) -> bool {
    std::net::TcpListener::bind((std::net::Ipv4Addr::UNSPECIFIED, port)).is_ok()
}

/// The next change of the dependency view, watched only while `waiting` (boxed: a
/// short phase, and the future would otherwise weigh on every resting service).
async fn deps_changed(
    waiting: bool,
    rx: &mut watch::Receiver<Arc<DepView>>,
) -> Result<(), watch::error::RecvError> {
    if waiting {
        Box::pin(rx.changed()).await
    } else {
        std::future::pending().await
    }
}

/// Sleeps until `deadline`; forever when there is none.
async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(d) => sleep_until(d).await,
        None => std::future::pending().await,
    }
}

async fn wait_proc(proc: &mut Option<Proc>) -> ExitInfo {
    match proc {
        Some(p) => p.wait().await,
        None => std::future::pending().await,
    }
}

async fn poll_probe(fut: &mut Option<ProbeFuture>) -> Result<(), String> {
    match fut {
        Some(f) => f.await,
        None => std::future::pending().await,
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

fn reason_of(n: &super::DepNode) -> String {
    if !n.last_probe_error.is_empty() {
        n.last_probe_error.clone()
    } else if !n.last_error.is_empty() {
        n.last_error.clone()
    } else {
        format!("it is {}", n.state.as_str())
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
