//! The orchestrator: a cloneable handle ([`Orchestrator`]) in front of one actor task.
//!
//! The actor owns the service table and the dependency order. Callers send commands over an
//! mpsc channel with a oneshot reply; snapshots go out on a `watch`, events on a
//! `broadcast`. Each service has its own task (`service::task`) that owns its process,
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
//! Desired state and crash survival: `state_dir/state.json` (see [`crate::state_file`]).
//!
//! CPU and RSS of the services are sampled from /proc every [`SAMPLE_EVERY`], but only
//! while somebody reads snapshots: a round whose predecessor saw no read parks the sampler
//! until the next read, which wakes it at once ([`Orchestrator::fresh_snapshot`] then
//! waits for that sample, so a one-off `mdw status` shows current figures).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use russell_config::{Config, Service};
use tokio::sync::{Notify, broadcast, mpsc, oneshot, watch};
use tokio::task::JoinSet;

use crate::events::LazyBroadcast;
use crate::logs::LogStore;
use crate::service::restart::start_budget;
use crate::service::task::{ServiceTask, TaskInit};
use crate::service::{ActorMsg, DepNode, DepSpec, DepView, LeftBehind, ServiceCmd, Shared};
use crate::state_file::{ProcessRecord, ServiceRecord, StateFile};
use crate::{
    CoreError, Event, ExternalState, ExternalStatus, LogLine, OrchestratorPhase, ServiceState,
    ServiceStatus, Snapshot, StartResult, StartTiming,
};
use futures_channel::mpsc::UnboundedSender;

/// Capacity of the event broadcast (slow receivers lag and skip).
const EVENT_CAPACITY: usize = 1024;
/// How often CPU and memory of the services are sampled.
const SAMPLE_EVERY: Duration = Duration::from_secs(3);
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
    /// Lowercase name or short_name → (short_name, service index; `None` for an external).
    names: HashMap<String, (String, Option<usize>)>,
    /// Whether anybody wants CPU/RSS figures; shared with the sampler.
    demand: Arc<Demand>,
}

/// Read demand for resource samples, between snapshot readers and the sampler.
#[derive(Debug)]
struct Demand {
    /// Set by every snapshot read; the sampler clears it at each round.
    wanted: AtomicBool,
    /// Raised by the sampler at the top of each round, before it looks at `wanted`, and
    /// kept up while it sleeps until the next read.
    parked: AtomicBool,
    /// Wakes a parked sampler.
    wake: Notify,
    /// Counts sample rounds, bumped once the snapshot carrying the round is published.
    sampled: watch::Sender<u64>,
}

impl Demand {
    /// Records a read; wakes the sampler if it was idle. Returns whether it was parked.
    fn mark(&self) -> bool {
        // Looked at before the wake: once woken, the sampler lowers `parked` at once.
        let parked = self.parked.load(Ordering::SeqCst);
        if !self.wanted.load(Ordering::SeqCst) && !self.wanted.swap(true, Ordering::SeqCst) {
            self.wake.notify_one();
        }
        parked
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
        idx: usize,
        reply: oneshot::Sender<StartResult>,
    },
    Stop {
        idx: usize,
        reply: oneshot::Sender<()>,
    },
    Restart {
        idx: usize,
        reply: oneshot::Sender<StartResult>,
    },
    End {
        stop: bool,
        reply: oneshot::Sender<()>,
    },
}

impl Orchestrator {
    /// Starts the actor (and one task per service) for a validated config. Creates the
    /// state directory (0700). Returns the handle and the actor's join handle, which ends
    /// after [`Orchestrator::shutdown`].
    pub async fn spawn(
        config: Config,
        options: SpawnOptions,
    ) -> Result<(Self, tokio::task::JoinHandle<()>), CoreError> {
        let state_dir = config.russell.state_dir.clone();
        make_dir(&state_dir)?;
        let log_dir = config.log_dir();
        make_dir(&log_dir)?;
        let previous = StateFile::read(&state_dir)?;
        let run_dir = choose_run_dir(&state_dir, previous.as_ref())?;

        let shorts: Vec<String> = config
            .services
            .iter()
            .map(|s| s.short_name.clone())
            .collect();
        let logs = Arc::new(LogStore::new(&log_dir, &config.logs, &shorts));
        let events = Arc::new(LazyBroadcast::new(EVENT_CAPACITY));
        let (to_actor, msg_rx) = mpsc::unbounded_channel();
        // The mark on spawned services: one spelling of the directory, however the config named it.
        let marked_dir = std::fs::canonicalize(&state_dir).unwrap_or_else(|_| state_dir.clone());
        let shared = Shared::new(run_dir.clone(), marked_dir.clone(), logs.clone(), to_actor);

        let graph = Graph::new(&config);
        let statuses: Vec<Arc<ServiceStatus>> = config
            .services
            .iter()
            .map(|s| Arc::new(initial_status(s, previous.as_ref())))
            .collect();
        let externals: Vec<ExternalStatus> = config
            .externals
            .iter()
            .map(|e| ExternalStatus {
                name: e.name.clone(),
                short_name: e.short_name.clone(),
                description: e.description.clone(),
                optional: e.optional,
                state: ExternalState::Unknown,
                last_error: String::new(),
                last_health_check: None,
            })
            .collect();
        let started_at = SystemTime::now();
        let snapshot = Arc::new(Snapshot {
            phase: OrchestratorPhase::Stopped,
            started_at,
            services: statuses.clone(),
            externals: externals.clone(),
        });
        let (snapshot_tx, snapshot_rx) = watch::channel(snapshot);
        let epochs: Arc<Vec<AtomicU64>> =
            Arc::new(config.services.iter().map(|_| AtomicU64::new(0)).collect());
        let (dep_tx, dep_rx) = watch::channel(Arc::new(dep_view(&statuses, &externals, &[])));

        // What to adopt: records whose PID still runs with the same start time.
        let known: Vec<Option<ProcessRecord>> = config
            .services
            .iter()
            .map(|s| previous.as_ref()?.services.get(&s.short_name)?.process)
            .collect();
        let mut adopt: Vec<Option<ProcessRecord>> = known
            .iter()
            .map(|rec| rec.filter(|r| options.adopt && crate::process::alive(r.pid, r.start_time)))
            .collect();
        let mut left = vec![LeftBehind::default(); shorts.len()];
        if options.adopt {
            let recorded: Vec<u32> = known.iter().flatten().map(|r| r.pid).collect();
            let strays = tokio::task::spawn_blocking(move || {
                let found = crate::process::strays::find(&marked_dir, &recorded);
                found
                    .into_iter()
                    .map(|s| {
                        let command = crate::ports::command_line(s.record.pid);
                        (s, command.unwrap_or_default())
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default();
            let mut by_service = vec![Vec::new(); shorts.len()];
            for (stray, command) in strays {
                if let Some(idx) = shorts.iter().position(|s| *s == stray.short) {
                    let copy = command == config.services[idx].command;
                    by_service[idx].push((stray.record, copy));
                }
            }
            // A service with no recorded process left adopts its newest stray (an exact
            // copy of its command first). Other exact copies are second copies, stopped
            // before the service goes on; anything else marked is left alone (a helper
            // the service started in a group of its own, say).
            for (idx, mut found) in by_service.into_iter().enumerate() {
                found.sort_by_key(|(r, copy)| (*copy, r.start_time));
                if adopt[idx].is_none()
                    && let Some((rec, _)) = found.pop()
                {
                    adopt[idx] = Some(rec);
                    left[idx].unrecorded = true;
                }
                left[idx].strays = found
                    .into_iter()
                    .filter_map(|(r, copy)| copy.then_some(r))
                    .collect();
            }
        }

        let mut task_txs = Vec::new();
        let mut tasks = JoinSet::new();
        for (idx, svc) in config.services.iter().enumerate() {
            let (tx, rx) = futures_channel::mpsc::unbounded();
            task_txs.push(tx);
            let task = ServiceTask::new(TaskInit {
                idx,
                svc: Arc::new(svc.clone()),
                shared: shared.clone(),
                deps_rx: dep_rx.clone(),
                deps: graph.dep_specs(idx),
                epochs: epochs.clone(),
                cmds: rx,
                status: ServiceStatus::clone(&statuses[idx]),
            });
            tasks.spawn(task.run(adopt[idx], known[idx], std::mem::take(&mut left[idx])));
        }
        for (idx, ext) in config.externals.iter().enumerate() {
            tasks.spawn(crate::service::external::run(
                idx,
                Arc::new(ext.clone()),
                shared.clone(),
            ));
        }

        let runtime_dir = (run_dir != state_dir.join("run")).then(|| run_dir.clone());
        let initial_state = StateFile {
            version: 1,
            run_dir: runtime_dir.clone(),
            services: config
                .services
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let rec = ServiceRecord {
                        process: adopt[i],
                        stopped_by_user: statuses[i].stopped_by_user,
                    };
                    (s.short_name.clone(), rec)
                })
                .collect(),
        };
        let (state_tx, state_rx) = watch::channel(initial_state);
        let writer = tokio::spawn(write_state_file(state_dir.clone(), state_rx.clone()));
        let demand = Arc::new(Demand {
            wanted: AtomicBool::new(false),
            // Up from the start: a read before the sampler's first look waits for its
            // first round, as after any idle spell.
            parked: AtomicBool::new(true),
            wake: Notify::new(),
            sampled: watch::Sender::new(0),
        });
        tasks.spawn(sample_resources(
            shorts.clone(),
            state_rx,
            shared.to_actor.clone(),
            demand.clone(),
        ));

        let mut names = HashMap::new();
        for (i, s) in config.services.iter().enumerate() {
            names.insert(s.name.to_lowercase(), (s.short_name.clone(), Some(i)));
            names.insert(s.short_name.to_lowercase(), (s.short_name.clone(), Some(i)));
        }
        for e in &config.externals {
            names.insert(e.name.to_lowercase(), (e.short_name.clone(), None));
            names.insert(e.short_name.to_lowercase(), (e.short_name.clone(), None));
        }

        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let actor = Actor {
            dispatch: Dispatch {
                txs: Arc::new(task_txs),
                epochs,
                graph: Arc::new(graph),
                names: config.services.iter().map(|s| s.name.clone()).collect(),
                shorts: shorts.iter().cloned().collect(),
                state_dir: shared.state_dir.clone(),
            },
            first_start: previous.is_none(),
            cmd_rx,
            msg_rx,
            tasks,
            batches: JoinSet::new(),
            ending: false,
            statuses,
            externals,
            records: adopt,
            deps_changed: false,
            records_changed: true,
            seen: vec![0; config.services.len()],
            snapshot_tx,
            dep_tx,
            state_tx,
            writer,
            runtime_dir,
            started_at,
            deliveries: Vec::new(),
            events: events.clone(),
        };
        let join = tokio::spawn(actor.run());
        let handle = Self {
            inner: Arc::new(Inner {
                cmd_tx,
                snapshot_rx,
                events,
                logs,
                names,
                demand,
            }),
        };
        Ok((handle, join))
    }

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
    pub async fn start_service(&self, name: &str) -> Result<StartResult, CoreError> {
        let (_, idx) = self.lookup_service(name, "start")?;
        self.ask(|reply| Command::Start { idx, reply }).await
    }

    /// Stops one service; it stays stopped (stopped_by_user) until started again.
    pub async fn stop_service(&self, name: &str) -> Result<(), CoreError> {
        let (_, idx) = self.lookup_service(name, "stop")?;
        self.ask(|reply| Command::Stop { idx, reply }).await
    }

    /// Stops and starts one service with a fresh restart budget.
    pub async fn restart_service(&self, name: &str) -> Result<StartResult, CoreError> {
        let (_, idx) = self.lookup_service(name, "restart")?;
        self.ask(|reply| Command::Restart { idx, reply }).await
    }

    /// The short_name for a name or short_name (any case), services and externals.
    pub fn resolve(&self, name: &str) -> Result<String, CoreError> {
        self.inner
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
            .map(|(short, _)| short.to_string())
    }

    /// The short_name and index of the service `name` (name or short_name, any case); an
    /// external is refused with what Russell does not do to it.
    fn lookup_service(&self, name: &str, what: &str) -> Result<(&str, usize), CoreError> {
        match self.inner.names.get(&name.to_lowercase()) {
            Some((short, Some(idx))) => Ok((short, *idx)),
            Some((short, None)) => Err(CoreError::InvalidState {
                service: short.clone(),
                state: "external",
                what: format!("externals are only checked, Russell does not {what} them"),
            }),
            None => Err(CoreError::NotFound(name.to_string())),
        }
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

/// Where the FIFOs go: the directory the state file names if it is still usable, else a
/// private directory on tmpfs (`$XDG_RUNTIME_DIR`, else `/dev/shm`) named after the state
/// directory, else `state_dir/run`. On ext4 creating two FIFOs per service in the state
/// directory made a first start of 200 services up to twice as slow.
fn choose_run_dir(state_dir: &Path, previous: Option<&StateFile>) -> Result<PathBuf, CoreError> {
    if let Some(p) = previous {
        match &p.run_dir {
            Some(dir) if private_dir(dir) => return Ok(dir.clone()),
            // Processes adopted from a Russell that kept its FIFOs in the state directory.
            None if p.services.values().any(|r| r.process.is_some()) => {
                let dir = state_dir.join("run");
                make_dir(&dir)?;
                return Ok(dir);
            }
            _ => {}
        }
    }
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|d| d.is_absolute() && d.is_dir())
        .or_else(|| Some(PathBuf::from("/dev/shm")).filter(|d| d.is_dir()));
    if let Some(base) = base {
        use std::hash::{Hash, Hasher};
        use std::os::unix::fs::DirBuilderExt;
        // SipHash with fixed keys: the same state directory gives the same name.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        let key = std::fs::canonicalize(state_dir).unwrap_or_else(|_| state_dir.to_path_buf());
        key.hash(&mut h);
        let uid = rustix::process::getuid().as_raw();
        let dir = base.join(format!("mdw-{uid}-{:016x}", h.finish()));
        let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
        if private_dir(&dir) {
            return Ok(dir);
        }
    }
    let dir = state_dir.join("run");
    make_dir(&dir)?;
    Ok(dir)
}

/// A real directory (not a symlink), owned by this user, closed to group and others.
fn private_dir(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(dir).is_ok_and(|m| {
        m.is_dir() && m.uid() == rustix::process::getuid().as_raw() && m.mode() & 0o077 == 0
    })
}

fn make_dir(path: &Path) -> Result<(), CoreError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let err = |what: &str, source| CoreError::StateDir {
        path: path.to_path_buf(),
        what: what.to_string(),
        source,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| err("cannot create it", e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| err("cannot make it private (0700)", e))
}

fn initial_status(s: &Service, previous: Option<&StateFile>) -> ServiceStatus {
    let stopped_by_user = previous
        .and_then(|p| p.services.get(&s.short_name))
        .is_some_and(|r| r.stopped_by_user);
    ServiceStatus {
        name: s.name.clone(),
        short_name: s.short_name.clone(),
        description: s.description.clone(),
        grpc_port: s.grpc_port,
        http_port: s.http_port,
        state: ServiceState::Stopped,
        healthy: false,
        pid: None,
        command: s.command.clone(),
        started_at: None,
        restart_count: 0,
        max_retries: s.max_retries,
        last_error: String::new(),
        last_health_check: None,
        last_probe_error: String::new(),
        adopted: false,
        dependencies: s.dependencies.clone(),
        cpu_percent: 0.0,
        rss_bytes: 0,
        timing: StartTiming::default(),
        stopped_by_user,
    }
}

/// What dependents see; `epochs` marks services with a command not yet acknowledged as
/// "waiting" so that a stale `failed` is never taken for the answer to a new start.
fn dep_view(
    statuses: &[Arc<ServiceStatus>],
    externals: &[ExternalStatus],
    seen: &[u64],
) -> DepView {
    let services = statuses.iter().enumerate().map(|(i, s)| DepNode {
        short: s.short_name.clone(),
        external: false,
        state: s.state,
        healthy: s.healthy,
        last_error: s.last_error.clone(),
        last_probe_error: s.last_probe_error.clone(),
        epoch: seen.get(i).copied().unwrap_or_default(),
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
        last_error: e.last_error.clone(),
        last_probe_error: e.last_error.clone(),
        epoch: 0,
    });
    DepView {
        nodes: services.chain(externals).collect(),
    }
}

/// The dependency graph: nodes are services (0..n) then externals (n..n+m).
struct Graph {
    n: usize,
    /// Per service: node indices it depends on.
    deps: Vec<Vec<usize>>,
    /// Per service: services that depend on it directly.
    dependents: Vec<Vec<usize>>,
    /// Per service: longest chain of service dependencies below it.
    level: Vec<usize>,
    /// Services in start order: level, then start_order, then file order.
    order: Vec<usize>,
    /// Per node: how long a dependent waits for it.
    budget: Vec<Duration>,
    /// Per node: Some(start_timeout) for an optional external.
    optional: Vec<Option<Duration>>,
}

impl Graph {
    fn new(config: &Config) -> Self {
        let n = config.services.len();
        let mut index = HashMap::new();
        for (i, s) in config.services.iter().enumerate() {
            index.insert(s.short_name.as_str(), i);
        }
        for (i, e) in config.externals.iter().enumerate() {
            index.insert(e.short_name.as_str(), n + i);
        }
        let deps: Vec<Vec<usize>> = config
            .services
            .iter()
            .map(|s| {
                s.dependencies
                    .iter()
                    .filter_map(|d| index.get(d.as_str()).copied())
                    .collect()
            })
            .collect();
        let mut dependents = vec![Vec::new(); n];
        for (i, ds) in deps.iter().enumerate() {
            for &d in ds {
                if d < n {
                    dependents[d].push(i);
                }
            }
        }
        // Levels and budgets by memoized depth-first walk (the config is validated
        // acyclic; a cycle would only be cut here, never loop).
        let mut level = vec![None; n];
        let mut budget: Vec<Option<Duration>> = vec![None; n];
        fn walk(
            i: usize,
            config: &Config,
            deps: &[Vec<usize>],
            level: &mut Vec<Option<usize>>,
            budget: &mut Vec<Option<Duration>>,
            on_path: &mut HashSet<usize>,
        ) {
            if level[i].is_some() || !on_path.insert(i) {
                return;
            }
            let n = config.services.len();
            let (mut lv, mut wait) = (0, Duration::ZERO);
            for &d in &deps[i] {
                let b = if d < n {
                    walk(d, config, deps, level, budget, on_path);
                    lv = lv.max(level[d].unwrap_or(0) + 1);
                    budget[d].unwrap_or_default()
                } else {
                    config.externals[d - n].health_check.start_timeout
                };
                wait = wait.max(b);
            }
            let s = &config.services[i];
            level[i] = Some(lv);
            budget[i] = Some(
                wait + start_budget(
                    s.health_check.start_timeout,
                    s.max_retries,
                    s.restart_backoff,
                    s.restart_backoff_max,
                ) + s.stop_timeout,
            );
            on_path.remove(&i);
        }
        for i in 0..n {
            walk(
                i,
                config,
                &deps,
                &mut level,
                &mut budget,
                &mut HashSet::new(),
            );
        }
        let level: Vec<usize> = level.into_iter().map(Option::unwrap_or_default).collect();
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| (level[i], config.services[i].start_order, i));
        let budget = budget
            .into_iter()
            .map(Option::unwrap_or_default)
            .chain(
                config
                    .externals
                    .iter()
                    .map(|e| e.health_check.start_timeout),
            )
            .collect();
        let optional = (0..n)
            .map(|_| None)
            .chain(
                config
                    .externals
                    .iter()
                    .map(|e| e.optional.then_some(e.health_check.start_timeout)),
            )
            .collect();
        Self {
            n,
            deps,
            dependents,
            level,
            order,
            budget,
            optional,
        }
    }

    fn dep_specs(&self, i: usize) -> Vec<DepSpec> {
        self.deps[i]
            .iter()
            .map(|&node| DepSpec {
                node,
                budget: self.budget[node],
                optional_after: self.optional[node],
            })
            .collect()
    }

    /// Service dependencies of `i`, transitively.
    fn service_deps(&self, i: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut stack = vec![i];
        let mut seen = HashSet::new();
        while let Some(j) = stack.pop() {
            for &d in &self.deps[j] {
                if d < self.n && seen.insert(d) {
                    out.push(d);
                    stack.push(d);
                }
            }
        }
        out
    }

    /// Stop rounds: highest level first (dependents before what they depend on).
    fn stop_rounds(&self) -> Vec<Vec<usize>> {
        let max = self.level.iter().copied().max().unwrap_or(0);
        (0..=max)
            .rev()
            .map(|lv| (0..self.n).filter(|&i| self.level[i] == lv).collect())
            .filter(|r: &Vec<usize>| !r.is_empty())
            .collect()
    }
}

/// Sends commands to service tasks; cloneable into batch futures. Every command bumps the
/// service's epoch first (see [`dep_view`]).
#[derive(Clone)]
struct Dispatch {
    /// Per service: its task's command queue. The actor sends, the task receives; when
    /// the last `Dispatch` goes, each task sees the end of its queue and returns.
    txs: Arc<Vec<UnboundedSender<ServiceCmd>>>,
    epochs: Arc<Vec<AtomicU64>>,
    graph: Arc<Graph>,
    /// Per service: its name (for the answer when its task is gone).
    names: Arc<[String]>,
    /// Per service: its short_name, as marked on its processes.
    shorts: Arc<[String]>,
    /// The state directory as marked on the services' processes.
    state_dir: PathBuf,
}

impl Dispatch {
    fn bump(&self, i: usize) -> u64 {
        self.epochs[i].fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Starts `targets` in start order; `blocked` are told why they may not start. The
    /// results come back in config order.
    async fn start(
        &self,
        targets: Vec<usize>,
        blocked: Vec<(usize, String)>,
    ) -> Vec<(usize, StartResult)> {
        let set: HashSet<usize> = targets.iter().copied().collect();
        let ordered: Vec<usize> = self
            .graph
            .order
            .iter()
            .copied()
            .filter(|i| set.contains(i))
            .collect();
        // Bump every epoch before the first command goes out: no target may see another
        // target's stale state.
        let epochs: Vec<u64> = ordered.iter().map(|&i| self.bump(i)).collect();
        let mut waits = Vec::new();
        for (&i, epoch) in ordered.iter().zip(epochs) {
            let (reply, rx) = oneshot::channel();
            let _ = self.txs[i].unbounded_send(ServiceCmd::Start {
                epoch,
                reply: Some(reply),
            });
            waits.push((i, rx));
        }
        for (i, reason) in blocked {
            let (reply, rx) = oneshot::channel();
            let epoch = self.bump(i);
            let _ = self.txs[i].unbounded_send(ServiceCmd::Block {
                epoch,
                reason,
                reply,
            });
            waits.push((i, rx));
        }
        let mut results = futures_util::future::join_all(
            waits
                .into_iter()
                .map(|(i, rx)| async move { (i, rx.await.unwrap_or_else(|_| self.gone(i))) }),
        )
        .await;
        results.sort_by_key(|(i, _)| *i);
        results
    }

    /// Stops service `i`; `sweep`: and what left its group (see [`ServiceCmd::Stop`]).
    async fn stop(&self, i: usize, by_user: bool, sweep: bool) {
        let (reply, rx) = oneshot::channel();
        let epoch = self.bump(i);
        if self.txs[i]
            .unbounded_send(ServiceCmd::Stop {
                epoch,
                by_user,
                sweep,
                reply,
            })
            .is_ok()
        {
            let _ = rx.await;
        }
    }

    /// Stops everything, dependents first, independent ones in parallel; then, with one
    /// /proc scan for all, what left the services' groups. Returns indices in stop order.
    async fn stop_all(&self, by_user: bool) -> Vec<usize> {
        let mut order = Vec::new();
        for round in self.graph.stop_rounds() {
            futures_util::future::join_all(round.iter().map(|&i| self.stop(i, by_user, false)))
                .await;
            order.extend(round);
        }
        let (dir, shorts) = (self.state_dir.clone(), self.shorts.clone());
        let found =
            tokio::task::spawn_blocking(move || crate::process::strays::escapees(&dir, &shorts))
                .await
                .unwrap_or_default();
        let mut by_service: HashMap<usize, Vec<ProcessRecord>> = HashMap::new();
        for stray in found {
            if let Some(i) = self.shorts.iter().position(|s| *s == stray.short) {
                by_service.entry(i).or_default().push(stray.record);
            }
        }
        futures_util::future::join_all(by_service.into_iter().map(|(i, found)| async move {
            let (reply, rx) = oneshot::channel();
            if self.txs[i]
                .unbounded_send(ServiceCmd::StopEscapees { found, reply })
                .is_ok()
            {
                let _ = rx.await;
            }
        }))
        .await;
        order
    }

    async fn restart(&self, i: usize) -> StartResult {
        let (reply, rx) = oneshot::channel();
        let epoch = self.bump(i);
        let _ = self.txs[i].unbounded_send(ServiceCmd::Restart { epoch, reply });
        rx.await.unwrap_or_else(|_| self.gone(i))
    }

    /// The answer for service `i` when its task ended before it answered.
    fn gone(&self, i: usize) -> StartResult {
        StartResult {
            name: self.names[i].clone(),
            success: false,
            error: "russell is shutting down".into(),
            attempts: 0,
        }
    }
}

fn only_results(results: Vec<(usize, StartResult)>) -> Vec<StartResult> {
    results.into_iter().map(|(_, r)| r).collect()
}

struct Actor {
    dispatch: Dispatch,
    /// No state file existed: `restore` starts everything.
    first_start: bool,
    /// Handles send commands; `None` once every handle is gone (→ detach).
    cmd_rx: mpsc::UnboundedReceiver<Command>,
    /// Tasks report changes.
    msg_rx: mpsc::UnboundedReceiver<ActorMsg>,
    /// Service tasks, external probers and the sampler; aborted when the actor ends.
    tasks: JoinSet<()>,
    /// Start/stop batches in flight.
    batches: JoinSet<()>,
    /// The final stop-all of a shutdown runs (the phase shows it like a batch).
    ending: bool,
    /// Shared with the published snapshots: a publish copies 200 pointers, not 200
    /// statuses (during a start every probe result is a publish).
    statuses: Vec<Arc<ServiceStatus>>,
    externals: Vec<ExternalStatus>,
    records: Vec<Option<ProcessRecord>>,
    /// Something a waiting dependent reads changed since the last publish.
    deps_changed: bool,
    /// Something the state file records changed since the last publish.
    records_changed: bool,
    /// Last epoch acknowledged by each service task.
    seen: Vec<u64>,
    /// The actor publishes; handles read.
    snapshot_tx: watch::Sender<Arc<Snapshot>>,
    /// The actor publishes; service tasks read while waiting for dependencies.
    dep_tx: watch::Sender<Arc<DepView>>,
    /// The actor publishes; the state-file writer and the sampler read.
    state_tx: watch::Sender<StateFile>,
    writer: tokio::task::JoinHandle<()>,
    /// The FIFOs' directory on tmpfs, if they are not in `state_dir/run`.
    runtime_dir: Option<PathBuf>,
    started_at: SystemTime,
    /// Answers and events from tasks, delivered after the next publish in arrival order
    /// (so whoever gets one and then reads the snapshot sees at least that state).
    deliveries: Vec<Box<dyn FnOnce() + Send>>,
    /// The actor broadcasts the tasks' events; `Orchestrator::events` hands out receivers.
    events: Arc<LazyBroadcast<Event>>,
}

impl Actor {
    async fn run(mut self) {
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

    fn on_msg(&mut self, msg: ActorMsg) {
        match msg {
            ActorMsg::Service {
                idx,
                epoch,
                status,
                process,
            } => {
                let mut status = *status;
                let old = &self.statuses[idx];
                if process.is_some() {
                    status.cpu_percent = old.cpu_percent;
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
            ActorMsg::External { idx, status } => {
                // What the dependency view reads of an external (see dep_view).
                let old = &self.externals[idx];
                self.deps_changed |=
                    status.state != old.state || status.last_error != old.last_error;
                self.externals[idx] = status;
            }
            ActorMsg::CameBack { idx } => {
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
                for (idx, cpu, rss) in usage {
                    if let Some(s) = self.statuses.get_mut(idx) {
                        let s = Arc::make_mut(s);
                        s.cpu_percent = cpu;
                        s.rss_bytes = rss;
                    }
                }
            }
        }
    }

    fn on_command(&mut self, cmd: Command) {
        let dispatch = self.dispatch.clone();
        match cmd {
            Command::StartAll { force, reply } => {
                let all: Vec<usize> = (0..self.statuses.len()).collect();
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
            Command::Start { idx: i, reply } => {
                let mut targets: Vec<usize> = dispatch
                    .graph
                    .service_deps(i)
                    .into_iter()
                    .filter(|&d| {
                        matches!(
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
            Command::Stop { idx: i, reply } => {
                self.batches.spawn(async move {
                    dispatch.stop(i, true, true).await;
                    let _ = reply.send(());
                });
            }
            Command::Restart { idx: i, reply } => {
                self.batches.spawn(async move {
                    let _ = reply.send(dispatch.restart(i).await);
                });
            }
            Command::End { .. } => {}
        }
    }

    /// On a first start: everything. Later: everything not stopped by the user; services
    /// that need a user-stopped one are blocked with its name.
    fn restore_plan(&self) -> (Vec<usize>, Vec<(usize, String)>) {
        let n = self.statuses.len();
        if self.first_start {
            return ((0..n).collect(), Vec::new());
        }
        let stopped: HashSet<usize> = (0..n)
            .filter(|&i| self.statuses[i].stopped_by_user)
            .collect();
        let (mut targets, mut blocked) = (Vec::new(), Vec::new());
        for i in (0..n).filter(|i| !stopped.contains(i)) {
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

    fn phase(&self) -> OrchestratorPhase {
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
    fn publish(&mut self) {
        self.publish_state();
        for deliver in self.deliveries.drain(..) {
            deliver();
        }
    }

    fn publish_state(&mut self) {
        let snapshot = Snapshot {
            phase: self.phase(),
            started_at: self.started_at,
            services: self.statuses.clone(),
            externals: self.externals.clone(),
        };
        self.snapshot_tx.send_replace(Arc::new(snapshot));
        // Waiting tasks wake on every new view: only when something they read changed.
        if std::mem::take(&mut self.deps_changed) {
            let view = dep_view(&self.statuses, &self.externals, &self.seen);
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
async fn write_state_file(dir: std::path::PathBuf, mut rx: watch::Receiver<StateFile>) {
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
async fn write_logged(state: StateFile, dir: std::path::PathBuf) {
    match tokio::task::spawn_blocking(move || state.write(&dir)).await {
        Ok(Err(e)) => tracing::warn!(error = %crate::error::chain(&e), "state file not written"),
        Err(e) => tracing::warn!(error = %e, "state file writer failed"),
        Ok(Ok(())) => {}
    }
}

/// One background task samples CPU and RSS of every service's process group, every
/// [`SAMPLE_EVERY`] while snapshots are read; after a round with no read it sleeps until
/// the next read and samples at once.
async fn sample_resources(
    shorts: Vec<String>,
    rx: watch::Receiver<StateFile>,
    to_actor: mpsc::UnboundedSender<ActorMsg>,
    demand: Arc<Demand>,
) {
    let mut sampler = crate::resources::GroupSampler::new();
    // An ended (aborted) sampler must not leave readers waiting for a round.
    let _unpark = Unpark(&demand);
    loop {
        // `parked` goes up before `wanted` is looked at: a reader that marks after this
        // look then sees `parked` and waits for the round its mark wakes.
        demand.parked.store(true, Ordering::SeqCst);
        if !demand.wanted.swap(false, Ordering::SeqCst) {
            demand.wake.notified().await;
            demand.wanted.store(false, Ordering::SeqCst);
        }
        demand.parked.store(false, Ordering::SeqCst);
        let groups: Vec<(usize, u32)> = {
            let state = rx.borrow();
            shorts
                .iter()
                .enumerate()
                .filter_map(|(i, s)| {
                    let p = state.services.get(s)?.process?;
                    Some((i, p.pgid?))
                })
                .collect()
        };
        let out = if groups.is_empty() {
            Vec::new()
        } else {
            let Some((back, out)) = sample_round(sampler, groups).await else {
                return;
            };
            sampler = back;
            out
        };
        // After the snapshot with these figures is out, tell readers waiting for it.
        let d = demand.clone();
        let done = Box::new(move || d.sampled.send_modify(|n| *n += 1));
        if to_actor.send(ActorMsg::Usage(out)).is_err()
            || to_actor.send(ActorMsg::Deliver(done)).is_err()
        {
            return;
        }
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
}

/// Clears `parked` when the sampler ends.
struct Unpark<'a>(&'a Demand);

impl Drop for Unpark<'_> {
    fn drop(&mut self) {
        self.0.parked.store(false, Ordering::SeqCst);
    }
}

/// One /proc scan for `groups` (service index, pgid) → (index, CPU %, RSS) per service.
async fn sample_round(
    mut sampler: crate::resources::GroupSampler,
    groups: Vec<(usize, u32)>,
) -> Option<(crate::resources::GroupSampler, Vec<(usize, f32, u64)>)> {
    let pgids: Vec<u32> = groups.iter().map(|(_, g)| *g).collect();
    // One /proc scan: blocking work, off the runtime's worker threads.
    let (back, usage) = tokio::task::spawn_blocking(move || {
        let usage = sampler.sample(&pgids);
        (sampler, usage)
    })
    .await
    .ok()?;
    let out = groups
        .into_iter()
        .map(|(i, g)| {
            let u = usage.get(&g);
            (
                i,
                u.map_or(0.0, |u| u.cpu_percent as f32),
                u.map_or(0, |u| u.rss_bytes),
            )
        })
        .collect();
    Some((back, out))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use russell_config::{
        External, HealthCheck, LogSettings, PortConflictPolicy, Probe, RussellSettings, StopSignal,
    };

    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn fifos_go_to_a_private_run_dir_that_a_later_russell_finds_again() {
        let state = tempfile::tempdir().expect("tempdir");
        let first = choose_run_dir(state.path(), None).expect("run dir");
        assert!(private_dir(&first), "{}", first.display());
        assert_eq!(choose_run_dir(state.path(), None).expect("again"), first);
        // The state file's entry wins, as long as it is private.
        let other = tempfile::tempdir().expect("tempdir");
        let named = other.path().join("fifos");
        std::fs::create_dir(&named).expect("mkdir");
        std::fs::set_permissions(&named, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .expect("chmod");
        let mut prev = StateFile {
            version: 1,
            run_dir: Some(named.clone()),
            ..Default::default()
        };
        assert_eq!(
            choose_run_dir(state.path(), Some(&prev)).expect("named"),
            named
        );
        std::fs::set_permissions(&named, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        assert_ne!(
            choose_run_dir(state.path(), Some(&prev)).expect("lax"),
            named
        );
        // Processes of a Russell that kept its FIFOs in the state dir are read from there.
        prev.run_dir = None;
        prev.services.insert(
            "kant".into(),
            ServiceRecord {
                process: Some(ProcessRecord {
                    pid: 1,
                    pgid: None,
                    start_time: 0,
                }),
                stopped_by_user: false,
            },
        );
        let old = choose_run_dir(state.path(), Some(&prev)).expect("old layout");
        assert_eq!(old, state.path().join("run"));
        if first != state.path().join("run") {
            std::fs::remove_dir(&first).expect("rmdir");
        }
    }

    fn hc(start_timeout: Duration) -> HealthCheck {
        HealthCheck {
            probe: Probe::None,
            interval: S,
            timeout: S,
            failure_threshold: 3,
            success_threshold: 1,
            start_timeout,
        }
    }

    fn svc(short: &str, deps: &[&str], start_order: i64) -> Service {
        Service {
            name: short.into(),
            short_name: short.into(),
            description: String::new(),
            grpc_port: None,
            http_port: None,
            command: vec!["true".into()],
            working_dir: "/".into(),
            env: BTreeMap::new(),
            env_file: None,
            dependencies: deps.iter().map(|d| d.to_string()).collect(),
            start_order,
            max_retries: 2,
            stop_signal: StopSignal {
                number: 15,
                name: "SIGTERM",
            },
            stop_timeout: S,
            on_port_conflict: PortConflictPolicy::Adopt,
            restart_backoff: S,
            restart_backoff_max: 10 * S,
            restart_reset_after: 60 * S,
            restart_dependents: false,
            version: String::new(),
            enabled: true,
            health_check: hc(10 * S),
        }
    }

    fn cfg(services: Vec<Service>, externals: Vec<External>) -> Config {
        Config {
            source: "/x/services.toml".into(),
            russell: RussellSettings {
                listen: ([127, 0, 0, 1], 9100).into(),
                state_dir: "/x/.russell".into(),
                token_file: None,
                autostart: true,
            },
            logs: LogSettings {
                dir: None,
                max_file_size: 1,
                max_files: 1,
                tail_lines: 1,
            },
            services,
            externals,
            paths: Default::default(),
        }
    }

    /// a ← b ← c, d alone (start_order -1 puts it first among level 0), e needs db.
    fn graph() -> Graph {
        let db = External {
            name: "db".into(),
            short_name: "db".into(),
            description: String::new(),
            optional: true,
            health_check: hc(5 * S),
        };
        Graph::new(&cfg(
            vec![
                svc("c", &["b"], 0),
                svc("b", &["a"], 0),
                svc("a", &[], 0),
                svc("d", &[], -1),
                svc("e", &["db"], 0),
            ],
            vec![db],
        ))
    }

    /// What each service costs at rest: its task's future, its pump's future and one
    /// queued command. Prints the sizes (`--nocapture`) and keeps them under a bound, so
    /// that a rarely used branch inlined into the resting state shows up here.
    #[tokio::test]
    async fn per_service_state_stays_small() {
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = LogSettings {
            dir: None,
            max_file_size: 1 << 20,
            max_files: 1,
            tail_lines: 1,
        };
        let logs = Arc::new(LogStore::new(dir.path(), &settings, &["a".into()]));
        let (to_actor, _msgs) = mpsc::unbounded_channel();
        let shared = Shared::new(dir.path().into(), dir.path().into(), logs.clone(), to_actor);
        let (_deps_tx, deps_rx) = watch::channel(Arc::new(DepView::default()));
        let (_cmd_tx, cmds) = futures_channel::mpsc::unbounded();
        let svc = svc("a", &[], 0);
        let task = ServiceTask::new(TaskInit {
            idx: 0,
            status: initial_status(&svc, None),
            svc: Arc::new(svc),
            shared,
            deps_rx,
            deps: Vec::new(),
            epochs: Arc::new(vec![AtomicU64::new(0)]),
            cmds,
        });
        let run = task.run(None, None, LeftBehind::default());
        let (_out_w, out) = tokio::net::unix::pipe::pipe().expect("pipe");
        let (_err_w, err) = tokio::net::unix::pipe::pipe().expect("pipe");
        let pump = crate::logs::pump(logs, "a".into(), out, err);
        let (task, pump, cmd) = (
            std::mem::size_of_val(&run),
            std::mem::size_of_val(&pump),
            std::mem::size_of::<ServiceCmd>(),
        );
        eprintln!("service task future {task} B, pump future {pump} B, ServiceCmd {cmd} B");
        // At 8df5f75: 4872, 752 and a tokio channel of 32 slots of 40 B per service.
        assert!(task <= 640, "service task future {task} B");
        assert!(pump <= 640, "pump future {pump} B");
        assert!(cmd <= 40, "ServiceCmd {cmd} B");
    }

    #[test]
    fn levels_and_start_order() {
        let g = graph();
        assert_eq!(g.level, [2, 1, 0, 0, 0]);
        // level 0: d (start_order -1), a, e (file order); then b, then c
        assert_eq!(g.order, [3, 2, 4, 1, 0]);
    }

    #[test]
    fn stop_rounds_put_dependents_first() {
        assert_eq!(graph().stop_rounds(), [vec![0], vec![1], vec![2, 3, 4]]);
    }

    #[test]
    fn transitive_service_dependencies_skip_externals() {
        let g = graph();
        let mut deps = g.service_deps(0);
        deps.sort_unstable();
        assert_eq!(deps, [1, 2]);
        assert!(g.service_deps(4).is_empty());
    }

    #[test]
    fn budgets_add_up_along_the_chain() {
        let g = graph();
        // own: 2 attempts × 10 s + 1 s backoff + 1 s stop_timeout = 22 s
        assert_eq!(g.budget[2], 22 * S);
        assert_eq!(g.budget[1], 44 * S);
        assert_eq!(g.budget[0], 66 * S);
        // e waits for db (5 s) before its own 22 s
        assert_eq!(g.budget[4], 27 * S);
        // the external itself: its start_timeout, and it is optional
        assert_eq!(g.budget[5], 5 * S);
        assert_eq!(g.optional[5], Some(5 * S));
        let specs = g.dep_specs(4);
        assert_eq!(specs.len(), 1);
        assert_eq!(specs[0].node, 5);
        assert_eq!(specs[0].optional_after, Some(5 * S));
    }
}
