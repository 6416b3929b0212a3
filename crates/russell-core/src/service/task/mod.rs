//! The task that owns one service: its process, lifecycle state, probes and timers.
//!
//! One `select!` loop reacts to whatever happens first: a command, the child's exit, a
//! probe result, the probe tick, a dependency change, the dependency-wait deadline, the
//! start timeout, the end of a restart backoff. Commands are handled one at a time, so two
//! commands for one service can never produce two processes. A graceful stop runs inline
//! (commands for this service queue meanwhile); status reads never wait for it because
//! they read the actor's snapshot.
//!
//! Probing: right after a spawn, then after `outcome::start_probe_delay` (a 40th of the time since
//! the spawn, 5 ms to 500 ms, capped by `interval`) until the first success, so a start
//! takes about the service's real readiness time (within 2.5 % of it, or 5 ms) while a
//! service that needs a minute to load costs a few hundred probes, not thousands; then every
//! `interval`. Failures before the first success do not count (start grace, bounded by
//! `start_timeout`). Once running, `failure_threshold` consecutive failures are the
//! unhealthy verdict (stop, then restart by policy); below it the state is `unhealthy`
//! but the service still counts as healthy; `success_threshold` consecutive successes make
//! it `running` again.
//!
//! A one-shot task (`kind = "task"`) is `running` while its process runs, bounded by its
//! `start_timeout`, and `completed` after an exit with a success code (then it counts as
//! healthy for its dependents and for a start of all; a restart runs it again).
//!
//! What a spawn (first start, restart, manual restart) reads: `env_file` is read again at
//! every spawn (so editing it takes effect at the next restart), and the command's program
//! is looked up and executed anew (a rebuilt binary runs); command, working_dir, `env`
//! and every other setting come from the config Russell runs, which a reload replaces
//! (`reconfigure.rs`).
//!
//! Where things are: this file has the loop, its timers and the commands; `deps.rs` the
//! wait for dependencies; `spawn.rs` spawning and adopting a process; `ports.rs` the port
//! check before a spawn; `outcome.rs` what follows a spawn (exits, probes, timeouts,
//! restarts, giving up); `escaped.rs` processes that left the service's group.

mod deps;
mod escaped;
mod outcome;
mod ports;
mod reconfigure;
mod spawn;

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use russell_config::{Probe, Service, ServiceKind};
use tokio::sync::{oneshot, watch};
use tokio::time::{Instant, sleep_until};

use super::{
    ActorMsg, DepSpec, DepView, LeftBehind, ServiceCmd, Shared, TaskId, disabled_error, state,
};
use crate::events::event;
use crate::process::{ExitInfo, Proc};
use crate::state_file::ProcessRecord;
use crate::{EventKind, ServiceState, ServiceStatus, StartResult};
use deps::deps_changed;
use futures_channel::mpsc::UnboundedReceiver;
use futures_util::StreamExt as _;

/// Probe period of externals until their first healthy verdict.
pub(crate) const FAST_PROBE: Duration = Duration::from_millis(50);
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
    pub id: TaskId,
    pub svc: Arc<Service>,
    pub shared: Arc<Shared>,
    pub deps_rx: watch::Receiver<Arc<DepView>>,
    pub deps: Vec<DepSpec>,
    pub cmds: UnboundedReceiver<ServiceCmd>,
    pub status: ServiceStatus,
}

pub(crate) struct ServiceTask {
    id: TaskId,
    svc: Arc<Service>,
    shared: Arc<Shared>,
    deps_rx: watch::Receiver<Arc<DepView>>,
    deps: Vec<DepSpec>,
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
    warned_optional: HashSet<String>,
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
            id: init.id,
            svc: init.svc,
            shared: init.shared,
            deps_rx: init.deps_rx,
            deps: init.deps,
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
        match adopt {
            // The config says it must not run: what a previous Russell left of it goes.
            Some(rec) if !self.svc.enabled => {
                let what = "left running by a previous Russell; the service is now disabled";
                Box::pin(self.stop_marked(vec![rec], what)).await;
            }
            Some(rec) => self.adopt_left_behind(rec, left.unrecorded),
            None => {}
        }
        self.publish();
        // The handlers that can wait (stops, port conflicts, /proc scans) run boxed: their
        // state would otherwise be inlined into this future, which every service keeps for
        // its whole life while it mostly rests in `next_wake`.
        loop {
            match self.next_wake().await {
                Wake::Cmd(None) => break,
                Wake::Cmd(Some(ServiceCmd::Remove { reply })) => {
                    Box::pin(self.stop_for_good("removed from the services file")).await;
                    Box::pin(self.sweep_escapees()).await;
                    // Nothing reads them any more (a service added again later makes new
                    // ones): tmpfs entries would pile up until reboot.
                    let (out, err) =
                        crate::process::fifo::paths(&self.shared.run_dir, &self.svc.short_name);
                    let _ = std::fs::remove_file(out);
                    let _ = std::fs::remove_file(err);
                    self.reply(reply, ());
                    break;
                }
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
        let task = self.svc.kind == ServiceKind::Task;
        // A task's run is bounded by its start_timeout (it never becomes healthy by probe).
        let starting = (st == ServiceState::Starting || (task && st == ServiceState::Running))
            && self.proc.is_some();
        let resetting = st == ServiceState::Running && !task && self.status.restart_count > 0;
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
            ServiceCmd::Reconfigure { new, reply } => {
                let (svc, deps) = *new;
                self.reconfigure(svc, deps);
                self.reply(reply, ());
            }
            ServiceCmd::RestartFor { epoch, why, reply } => {
                self.emit(EventKind::Restarting, why);
                Box::pin(self.on_command(ServiceCmd::Restart { epoch, reply })).await;
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
            // Handled by the loop in `run`, which ends the task after it.
            ServiceCmd::Remove { reply } => self.reply(reply, ()),
        }
    }

    /// Starts unless a start is under way or it is healthy; manual starts get a fresh budget.
    /// A disabled service never starts: the reply says so.
    fn start(&mut self, reply: Option<oneshot::Sender<StartResult>>) {
        use ServiceState::*;
        if !self.svc.enabled {
            let why = disabled_error(&self.svc.short_name, &self.shared.config_file).to_string();
            if let Some(r) = reply {
                self.reply(r, self.result(false, &why));
            }
            return;
        }
        let task = self.svc.kind == ServiceKind::Task;
        match self.status.state {
            // A completed task stays completed for a start of all (`mdw run` restarts it).
            Running | Unhealthy if !task => {
                if let Some(r) = reply {
                    let mut result = self.result(true, "");
                    result.attempts = 0;
                    self.reply(r, result);
                }
            }
            Completed if task => {
                if let Some(r) = reply {
                    let mut result = self.result(true, "");
                    result.attempts = 0;
                    self.reply(r, result);
                }
            }
            Waiting | Starting | Stopping | Running | Unhealthy => self.pending.extend(reply),
            Restarting | Stopped | Failed | Completed => {
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
    /// the old state. Elsewhere the handler's publish follows the event at once, so
    /// publishing before every event too would only add heap churn.
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
            id: self.id,
            epoch: self.epoch,
            status: Box::new(self.status.clone()),
            process: self.proc.as_ref().map(Proc::record),
        });
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
