//! The orchestrator: a cloneable handle ([`Orchestrator`]) in front of one actor task.
//!
//! The actor owns the service table and the dependency order. Callers send commands over an
//! mpsc channel with a oneshot reply; snapshots go out on a `watch`, events on a
//! `broadcast`. Each service has its own task (`service/task/`) that owns its process,
//! state and timers; tasks report every change to the actor over one unbounded channel and
//! the actor folds them into the next snapshot, so a status read never waits for a probe
//! or a stop. Commands that take time (start, stop) run as batch futures beside the actor
//! loop, which stays free.
//!
//! Dependencies: a service starts as soon as all its dependencies (services and externals)
//! are healthy. The bound on that wait is the dependency's own start budget — for a
//! service every attempt's `start_timeout` plus the backoffs between them, plus its own
//! wait for its dependencies; for an external its `start_timeout` — after which the start
//! fails naming the dependency and its last probe error. An optional external is waited
//! for at most its `start_timeout`, then the dependent starts anyway (with an event).
//! A dependency that ends `failed` fails its dependents at once, transitively.
//!
//! A disabled service (`enabled = false`) has its task and its status like any other, but
//! never a process: start-all and the restore leave it out, the handle refuses an
//! explicit start or restart of it, and a dependent's wait fails at once naming it.
//!
//! Desired state and crash survival: `state_dir/state.json` (see [`crate::state_file`]).
//!
//! CPU and RSS of the services are sampled from /proc every few seconds, but only
//! while somebody reads snapshots: a round whose predecessor saw no read parks the sampler
//! until the next read, which wakes it at once ([`Orchestrator::fresh_snapshot`] then
//! waits for that sample, so a one-off `mdw status` shows current figures).
//!
//! Where things are: `spawn.rs` builds everything at start (state and run directories,
//! adoption of what a previous Russell left running, one task per service); `graph.rs` is
//! the dependency graph with the wait budgets; `actor.rs` is the loop that owns the table
//! and publishes snapshots, plus the state-file writer; `dispatch.rs` sends commands to
//! the service tasks in dependency order; `sampler.rs` samples CPU and RSS.

mod actor;
mod dispatch;
mod graph;
mod reload;
mod sampler;
mod spawn;
mod table;
mod watcher;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::events::LazyBroadcast;
use crate::log_search::LogFiles;
use crate::logs::LogStore;
use crate::service::disabled_error;
use crate::{CoreError, Event, LogLine, Snapshot, StartResult};
pub use reload::{ReloadError, ReloadReport};
use sampler::Demand;

/// How long [`Orchestrator::fresh_snapshot`] waits for a sample from a parked sampler.
const FRESH_WAIT: Duration = Duration::from_secs(1);

/// Options for [`Orchestrator::spawn`].
#[derive(Debug, Clone, Default)]
pub struct SpawnOptions {
    /// Read the state file in `config.russell.state_dir` and adopt the processes it records
    /// that are still alive (same PID and /proc start time) and healthy.
    pub adopt: bool,
}

/// A cheap, cloneable handle to the orchestrator actor.
#[derive(Clone)]
pub struct Orchestrator {
    inner: Arc<Inner>,
}

struct Inner {
    /// Handles send; the actor receives. When every handle is gone the actor detaches.
    cmd_tx: mpsc::UnboundedSender<Command>,
    /// The actor publishes after every change; handles read.
    snapshot_rx: watch::Receiver<Arc<Snapshot>>,
    /// The actor sends (after the snapshot that shows the event's state); handles subscribe.
    events: Arc<LazyBroadcast<Event>>,
    logs: Arc<LogStore>,
    /// Names and enabled flags; the actor writes them on a reload, handles read.
    lookup: Arc<RwLock<Lookup>>,
    /// Whether anybody wants CPU/RSS figures; shared with the sampler.
    demand: Arc<Demand>,
    /// The services file, named when a start of a disabled service is refused, and read
    /// again by a reload.
    config_file: std::path::PathBuf,
}

/// What handles resolve without asking the actor. Commands carry short_names, which the
/// actor looks up in its table when it handles them: a reload between the lookup here and
/// the command's arrival cannot make it land on another service.
#[derive(Debug, Default)]
pub(super) struct Lookup {
    /// Lowercase name or short_name → (short_name, whether it is a service, not an external).
    pub(super) names: HashMap<String, (String, bool)>,
    /// short_names of services with `enabled = false` (explicit starts are refused).
    pub(super) disabled: HashSet<String>,
}

impl Lookup {
    pub(super) fn new(config: &russell_config::Config) -> Self {
        let mut names = HashMap::new();
        for s in &config.services {
            names.insert(s.name.to_lowercase(), (s.short_name.clone(), true));
            names.insert(s.short_name.to_lowercase(), (s.short_name.clone(), true));
        }
        for e in &config.externals {
            names.insert(e.name.to_lowercase(), (e.short_name.clone(), false));
            names.insert(e.short_name.to_lowercase(), (e.short_name.clone(), false));
        }
        let disabled = (config.services.iter())
            .filter(|s| !s.enabled)
            .map(|s| s.short_name.clone())
            .collect();
        Self { names, disabled }
    }
}

impl std::fmt::Debug for Orchestrator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Orchestrator")
    }
}

enum Command {
    StartAll {
        force: bool,
        reply: oneshot::Sender<Vec<StartResult>>,
    },
    Restore {
        reply: oneshot::Sender<Vec<StartResult>>,
    },
    StopAll {
        reply: oneshot::Sender<Vec<String>>,
    },
    Start {
        short: String,
        reply: oneshot::Sender<StartResult>,
    },
    Stop {
        short: String,
        reply: oneshot::Sender<()>,
    },
    Restart {
        short: String,
        reply: oneshot::Sender<StartResult>,
    },
    End {
        stop: bool,
        reply: oneshot::Sender<()>,
    },
    Reload {
        config: Box<russell_config::Config>,
        dry_run: bool,
        reply: oneshot::Sender<Result<reload::ReloadReport, reload::ReloadError>>,
    },
    RestartFor {
        short: String,
        why: String,
        reply: oneshot::Sender<StartResult>,
    },
    /// A file that service `short` watches changed: restart it if it runs.
    Watched {
        short: String,
        why: String,
    },
}

impl Orchestrator {
    /// Brings every service to its desired state: all of them on a first start, what the
    /// state file records (stopped-by-user stays stopped) after a restart of Russell.
    /// Services stopped by the user are left out of the results; their dependents fail
    /// naming them.
    pub async fn restore(&self) -> Result<Vec<StartResult>, CoreError> {
        self.ask(|reply| Command::Restore { reply }).await
    }

    /// Starts every service in dependency order and waits until each is healthy or has
    /// failed; results in config order. Without `force`, healthy services are left alone
    /// (0 attempts); with it, everything is stopped (dependents first) and started again.
    pub async fn start_all(&self, force: bool) -> Result<Vec<StartResult>, CoreError> {
        self.ask(|reply| Command::StartAll { force, reply }).await
    }

    /// Stops every service, dependents first; returns short_names in stop order once no
    /// process of any group is left. Each stays stopped (stopped_by_user) until started.
    pub async fn stop_all(&self) -> Result<Vec<String>, CoreError> {
        self.ask(|reply| Command::StopAll { reply }).await
    }

    /// Starts one service (name or short_name, any case) after its dependencies (stopped or
    /// failed dependencies are started too), and waits until it is healthy or failed.
    /// A failed service gets a fresh restart budget.
    /// A disabled service (`enabled = false`) is refused with a message that says so.
    pub async fn start_service(&self, name: &str) -> Result<StartResult, CoreError> {
        let short = self.enabled_service(name, "start")?;
        self.ask(|reply| Command::Start { short, reply }).await
    }

    /// Stops one service; it stays stopped (stopped_by_user) until started again.
    pub async fn stop_service(&self, name: &str) -> Result<(), CoreError> {
        let short = self.lookup_service(name, "stop")?;
        self.ask(|reply| Command::Stop { short, reply }).await
    }

    /// Stops and starts one service with a fresh restart budget.
    /// A disabled service is refused, as by [`Self::start_service`].
    pub async fn restart_service(&self, name: &str) -> Result<StartResult, CoreError> {
        let short = self.enabled_service(name, "restart")?;
        self.ask(|reply| Command::Restart { short, reply }).await
    }

    /// The short_name for a name or short_name (any case), services and externals.
    pub fn resolve(&self, name: &str) -> Result<String, CoreError> {
        self.lookup()
            .names
            .get(&name.to_lowercase())
            .map(|(s, _)| s.clone())
            .ok_or_else(|| CoreError::NotFound(name.to_string()))
    }

    /// The latest snapshot (cheap; never waits for a probe or a stop). Its CPU and RSS
    /// figures may be from before the last idle spell; see [`Self::fresh_snapshot`].
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.demand.mark();
        self.inner.snapshot_rx.borrow().clone()
    }

    /// The latest snapshot, with CPU and RSS from a current sample: when nobody read a
    /// snapshot for a while (the sampler is parked), waits up to 1 s for a fresh
    /// sample. Otherwise as cheap as [`Self::snapshot`].
    pub async fn fresh_snapshot(&self) -> Arc<Snapshot> {
        let mut sampled = self.inner.demand.sampled.subscribe();
        if self.inner.demand.mark() {
            let _ = tokio::time::timeout(FRESH_WAIT, sampled.changed()).await;
        }
        self.inner.snapshot_rx.borrow().clone()
    }

    /// Snapshot updates, one per change.
    pub fn watch(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.inner.demand.mark();
        self.inner.snapshot_rx.clone()
    }

    /// Events from now on.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// The last `n` captured lines of `service` (None = all services, merged by time).
    /// `service` may be a name or short_name in any case.
    pub fn log_tail(&self, service: Option<&str>, n: usize) -> Vec<LogLine> {
        match service {
            Some(name) => match self.resolve(name) {
                Ok(short) => self.inner.logs.tail(Some(&short), n),
                Err(_) => Vec::new(),
            },
            None => self.inner.logs.tail(None, n),
        }
    }

    /// The log files of `service` (name or short_name, any case; None = all services), to
    /// search on a blocking thread (see log_search.rs); `None` for an unknown service.
    pub fn log_files(&self, service: Option<&str>) -> Option<LogFiles> {
        match service {
            Some(name) => {
                let short = self.resolve(name).ok()?;
                self.inner.logs.files(Some(&short))
            }
            None => self.inner.logs.files(None),
        }
    }

    /// Captured lines from now on, all services.
    pub fn log_subscribe(&self) -> broadcast::Receiver<LogLine> {
        self.inner.logs.subscribe()
    }

    /// Stops every service (like stop_all, but the desired state stays "running" for the
    /// next Russell), then ends the actor.
    pub async fn shutdown(&self) -> Result<(), CoreError> {
        self.ask(|reply| Command::End { stop: true, reply }).await
    }

    /// Ends the actor WITHOUT stopping services (their processes keep running and are
    /// recorded in the state file for the next Russell). Used by tests and `serve` on a
    /// crash-like exit.
    pub async fn detach(&self) -> Result<(), CoreError> {
        self.ask(|reply| Command::End { stop: false, reply }).await
    }

    /// Like [`Self::resolve`], for a managed service: an external is refused, saying that
    /// Russell does not `what` externals (e.g. "start", "capture the output of").
    pub fn resolve_service(&self, name: &str, what: &str) -> Result<String, CoreError> {
        self.lookup_service(name, what)
    }

    /// The short_name of the service `name` (name or short_name, any case); an external is
    /// refused with what Russell does not do to it.
    fn lookup_service(&self, name: &str, what: &str) -> Result<String, CoreError> {
        match self.lookup().names.get(&name.to_lowercase()) {
            Some((short, true)) => Ok(short.clone()),
            Some((short, false)) => Err(CoreError::InvalidState {
                service: short.clone(),
                state: "external",
                what: format!("externals are only checked, Russell does not {what} them"),
            }),
            None => Err(CoreError::NotFound(name.to_string())),
        }
    }

    /// Like [`Self::lookup_service`], refusing a disabled service.
    fn enabled_service(&self, name: &str, what: &str) -> Result<String, CoreError> {
        let short = self.lookup_service(name, what)?;
        if self.lookup().disabled.contains(&short) {
            return Err(disabled_error(&short, &self.inner.config_file));
        }
        Ok(short)
    }

    /// The names and flags (a poisoned lock still holds the last complete write).
    fn lookup(&self) -> std::sync::RwLockReadGuard<'_, Lookup> {
        self.inner
            .lookup
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, CoreError> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .cmd_tx
            .send(make(tx))
            .map_err(|_| CoreError::ShuttingDown)?;
        rx.await.map_err(|_| CoreError::ShuttingDown)
    }
}
