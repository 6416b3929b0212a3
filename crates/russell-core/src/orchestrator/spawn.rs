//! Building the orchestrator: the state and run directories, what a previous Russell left
//! running (adopted by PID and start time, or found by its marks), one task per service
//! and per external, the state-file writer, the sampler and the actor.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::SystemTime;

use russell_config::{Config, Service};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinSet;

use super::actor::{Actor, dep_view, write_state_file};
use super::dispatch::Dispatch;
use super::graph::Graph;
use super::sampler::{Demand, sample_resources};
use super::{Inner, Orchestrator, SpawnOptions};
use crate::events::LazyBroadcast;
use crate::logs::LogStore;
use crate::service::task::{ServiceTask, TaskInit};
use crate::service::{LeftBehind, Shared, TaskId};
use crate::state_file::{ProcessRecord, ServiceRecord, StateFile};
use crate::{
    CoreError, ExternalStatus, OrchestratorPhase, ServiceState, ServiceStatus, Snapshot,
    StartTiming,
};

/// Capacity of the event broadcast (slow receivers lag and skip).
const EVENT_CAPACITY: usize = 1024;

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
        let shared = Shared::new(
            run_dir.clone(),
            marked_dir.clone(),
            config.source.clone(),
            logs.clone(),
            to_actor,
        );

        let graph = Graph::new(&config);
        let statuses: Vec<Arc<ServiceStatus>> = config
            .services
            .iter()
            .map(|s| Arc::new(initial_status(s, previous.as_ref())))
            .collect();
        let externals: Vec<ExternalStatus> = config
            .externals
            .iter()
            .map(super::table::unprobed)
            .collect();
        let started_at = SystemTime::now();
        let snapshot = Arc::new(Snapshot {
            phase: OrchestratorPhase::Stopped,
            started_at,
            services: statuses.clone(),
            externals: externals.clone(),
        });
        let (snapshot_tx, snapshot_rx) = watch::channel(snapshot);
        let epochs: Arc<Vec<Arc<AtomicU64>>> = Arc::new(
            (config.services.iter())
                .map(|_| Arc::new(AtomicU64::new(0)))
                .collect(),
        );
        // Task ids: services 0..n, externals n..n+m; later tasks count on from there.
        let n = config.services.len();
        let service_ids: Vec<TaskId> = (0..n as TaskId).collect();
        let external_ids: Vec<TaskId> =
            (n as TaskId..(n + config.externals.len()) as TaskId).collect();
        let rows = super::table::Rows::new(&config, service_ids.clone(), external_ids.clone());
        let (dep_tx, dep_rx) = watch::channel(Arc::new(dep_view(
            &statuses,
            &externals,
            &[],
            &epochs,
            &rows.nodes,
        )));

        let (known, adopt, mut left, orphans) =
            left_behind(&config, previous.as_ref(), &options, marked_dir).await;
        if !orphans.is_empty() {
            tokio::spawn(stop_orphans(orphans));
        }

        let mut task_txs = Vec::new();
        let mut tasks = JoinSet::new();
        for (idx, svc) in config.services.iter().enumerate() {
            let (tx, rx) = futures_channel::mpsc::unbounded();
            task_txs.push(tx);
            let task = ServiceTask::new(TaskInit {
                id: service_ids[idx],
                svc: Arc::new(svc.clone()),
                shared: shared.clone(),
                deps_rx: dep_rx.clone(),
                deps: graph.dep_specs(idx),
                cmds: rx,
                status: ServiceStatus::clone(&statuses[idx]),
            });
            tasks.spawn(task.run(adopt[idx], known[idx], std::mem::take(&mut left[idx])));
        }
        let external_tasks = config
            .externals
            .iter()
            .enumerate()
            .map(|(idx, ext)| {
                tasks.spawn(crate::service::external::run(
                    external_ids[idx],
                    Arc::new(ext.clone()),
                    shared.clone(),
                ))
            })
            .collect();

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
            state_rx,
            shared.to_actor.clone(),
            demand.clone(),
        ));

        let lookup = Arc::new(std::sync::RwLock::new(super::Lookup::new(&config)));

        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (watch_tx, watch_rx) =
            watch::channel(Arc::new(super::watcher::WatchSpec::new(&config)));
        tasks.spawn(super::watcher::run(watch_rx, cmd_tx.downgrade()));
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
            lookup: lookup.clone(),
            shared: shared.clone(),
            external_tasks,
            rows,
            reload_turn: Arc::default(),
            next_id: (n + config.externals.len()) as TaskId,
            config: config.clone(),
            watch_tx,
        };
        let join = tokio::spawn(actor.run());
        let handle = Self {
            inner: Arc::new(Inner {
                cmd_tx,
                snapshot_rx,
                events,
                logs,
                lookup,
                demand,
                config_file: config.source.clone(),
            }),
        };
        Ok((handle, join))
    }
}

/// How long a process of a service that is no longer in the file gets after SIGTERM.
const ORPHAN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// A marked process group of a service that is no longer in the file, and its command.
type Orphan = (crate::proc::strays::Stray, Vec<String>);

/// What a previous Russell left running, per service: what its state file recorded
/// (`known`), what to adopt (a recorded process still alive with the same start time, or
/// with `adopt`, the newest process found by its marks), and the second copies to stop;
/// and the marked groups of services the file no longer has (removed by a reload or an
/// edit while a Russell that would have stopped them crashed), which nothing will adopt.
async fn left_behind(
    config: &Config,
    previous: Option<&StateFile>,
    options: &SpawnOptions,
    marked_dir: PathBuf,
) -> (
    Vec<Option<ProcessRecord>>,
    Vec<Option<ProcessRecord>>,
    Vec<LeftBehind>,
    Vec<Orphan>,
) {
    // What to adopt: records whose PID still runs with the same start time.
    let known: Vec<Option<ProcessRecord>> = config
        .services
        .iter()
        .map(|s| previous?.services.get(&s.short_name)?.process)
        .collect();
    let mut adopt: Vec<Option<ProcessRecord>> = known
        .iter()
        .map(|rec| rec.filter(|r| options.adopt && crate::proc::alive(r.pid, r.start_time)))
        .collect();
    let mut left = vec![LeftBehind::default(); config.services.len()];
    let mut orphans = Vec::new();
    if options.adopt {
        let recorded: Vec<u32> = known.iter().flatten().map(|r| r.pid).collect();
        let strays = tokio::task::spawn_blocking(move || {
            let found = crate::proc::strays::find(&marked_dir, &recorded);
            found
                .into_iter()
                .map(|s| {
                    let command = crate::proc::command_line(s.record.pid);
                    (s, command.unwrap_or_default())
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        let mut by_service = vec![Vec::new(); config.services.len()];
        for (stray, command) in strays {
            if let Some(idx) = config
                .services
                .iter()
                .position(|s| s.short_name == stray.short)
            {
                let copy = command == config.services[idx].command;
                by_service[idx].push((stray.record, copy));
            } else {
                orphans.push((stray, command));
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
    (known, adopt, left, orphans)
}

/// Stops the marked groups of services that are no longer in the file: SIGTERM, then
/// SIGKILL after [`ORPHAN_GRACE`]. Their names are unknown to this Russell, so they show
/// only in its log.
async fn stop_orphans(orphans: Vec<Orphan>) {
    futures_util::future::join_all(orphans.into_iter().map(|(stray, command)| async move {
        tracing::warn!(
            service = %stray.short,
            pid = stray.record.pid,
            "stopping PID {} ({}): left running for service '{}', which is no longer in \
             the services file",
            stray.record.pid,
            command.join(" "),
            stray.short
        );
        let mut proc = crate::process::Proc::adopt(stray.record.pid, stray.record.start_time);
        crate::process::stop(&mut proc, rustix::process::Signal::TERM, ORPHAN_GRACE).await;
    }))
    .await;
}

/// Where the FIFOs go: the directory the state file names if it is still usable, else a
/// private directory on tmpfs (`$XDG_RUNTIME_DIR`, else `/dev/shm`) named after the state
/// directory, else `state_dir/run` (creating FIFOs on tmpfs is cheaper than on a disk file
/// system; see docs/BENCHMARKS.md).
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

pub(super) fn initial_status(s: &Service, previous: Option<&StateFile>) -> ServiceStatus {
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
        cpu_seconds: 0.0,
        timing: StartTiming::default(),
        stopped_by_user,
        kind: s.kind,
        enabled: s.enabled,
        version: s.version.clone(),
        last_exit_code: None,
        probes: Arc::default(),
    }
}

#[cfg(test)]
mod tests {
    use russell_config::LogSettings;

    use super::*;
    use crate::orchestrator::graph::tests::svc;
    use crate::service::{DepView, ServiceCmd};

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
        let shared = Shared::new(
            dir.path().into(),
            dir.path().into(),
            dir.path().join("services.toml"),
            logs.clone(),
            to_actor,
        );
        let (_deps_tx, deps_rx) = watch::channel(Arc::new(DepView::default()));
        let (_cmd_tx, cmds) = futures_channel::mpsc::unbounded();
        let svc = svc("a", &[], 0);
        let task = ServiceTask::new(TaskInit {
            id: 0,
            status: initial_status(&svc, None),
            svc: Arc::new(svc),
            shared,
            deps_rx,
            deps: Vec::new(),
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
        assert!(task <= 640, "service task future {task} B");
        assert!(pump <= 640, "pump future {pump} B");
        assert!(cmd <= 40, "ServiceCmd {cmd} B");
    }
}
