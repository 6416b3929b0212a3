//! One task per service (and per external): what it owns, and the messages between it and
//! the orchestrator actor.

pub(crate) mod external;
pub(crate) mod restart;
pub(crate) mod state;
pub(crate) mod task;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::logs::LogStore;
use crate::state_file::ProcessRecord;
use crate::{CoreError, Event, ExternalStatus, ServiceState, ServiceStatus, StartResult};

/// Commands from the actor to one service task. Each carries the actor's epoch for the
/// service, so that the actor can tell updates sent before the command from those after.
#[derive(Debug)]
pub(crate) enum ServiceCmd {
    /// Start (fresh budget unless a start is already under way); reply once healthy or
    /// failed. Already healthy: replies success with 0 attempts.
    Start {
        epoch: u64,
        reply: Option<oneshot::Sender<StartResult>>,
    },
    /// Stop; `by_user` records the desired state (stays stopped after a restart of Russell).
    /// `sweep`: then look for processes that left the group (a stop of all sweeps once
    /// for everybody at the end instead, see [`ServiceCmd::StopEscapees`]).
    Stop {
        epoch: u64,
        by_user: bool,
        sweep: bool,
        reply: oneshot::Sender<()>,
    },
    /// Stop these processes that left the service's group (found after a stop of all).
    StopEscapees {
        found: Vec<ProcessRecord>,
        reply: oneshot::Sender<()>,
    },
    /// Stop, then start with a fresh budget.
    Restart {
        epoch: u64,
        reply: oneshot::Sender<StartResult>,
    },
    /// Do not start: a dependency is stopped on purpose. Replies a failure naming it.
    Block {
        epoch: u64,
        reason: String,
        reply: oneshot::Sender<StartResult>,
    },
    /// Take a reloaded config and dependency specs; the process is not touched (the
    /// actor restarts it where the change needs that). Boxed: commands stay small.
    Reconfigure {
        new: Box<(Arc<russell_config::Service>, Vec<DepSpec>)>,
        reply: oneshot::Sender<()>,
    },
    /// Stop and start again because `why` (a watched file changed, say): like
    /// `Restart`, with the reason in the events.
    RestartFor {
        epoch: u64,
        why: Box<str>,
        reply: oneshot::Sender<StartResult>,
    },
    /// The service left the services file: stop it (and what left its group), reply,
    /// and end the task. Commands sent after this find no task.
    Remove { reply: oneshot::Sender<()> },
}

/// Names one service or external task for the life of Russell; never reused, so a
/// message from a task that a reload removed cannot land on a newer one's row.
pub(crate) type TaskId = u64;

/// Messages from the tasks to the actor (one unbounded channel; sends never wait).
pub(crate) enum ActorMsg {
    Service {
        id: TaskId,
        epoch: u64,
        status: Box<ServiceStatus>,
        process: Option<ProcessRecord>,
    },
    External {
        id: TaskId,
        status: ExternalStatus,
    },
    /// The service is healthy again after a restart and wants its dependents restarted.
    CameBack {
        id: TaskId,
    },
    /// Sampled CPU percent, RSS and CPU seconds per service short_name.
    Usage(Vec<(String, f32, u64, f64)>),
    /// A command's answer, delivered by the actor after its next snapshot.
    Deliver(Box<dyn FnOnce() + Send>),
    /// An event, broadcast by the actor after its next snapshot.
    Event(Event),
}

/// What a waiting service needs to know about each node (services, then externals),
/// found by short_name: a reload may add, remove and reorder nodes.
#[derive(Debug, Clone, Default)]
pub(crate) struct DepView {
    pub nodes: Vec<DepNode>,
    /// short_name → index into `nodes`; rebuilt by the actor when the table changes.
    pub index: Arc<std::collections::HashMap<String, usize>>,
}

impl DepView {
    pub(crate) fn node(&self, short: &str) -> Option<&DepNode> {
        self.nodes.get(*self.index.get(short)?)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct DepNode {
    pub short: String,
    pub external: bool,
    pub state: ServiceState,
    pub healthy: bool,
    /// `enabled = false` in the config: it never starts, so a dependent fails at once.
    pub disabled: bool,
    pub last_error: String,
    pub last_probe_error: String,
    /// The last command epoch the service acknowledged (services only).
    pub epoch: u64,
    /// The epoch of the last command sent to it (services only; bumped by the actor's
    /// dispatch): above `epoch`, its state in the view is stale.
    pub sent: Option<Arc<std::sync::atomic::AtomicU64>>,
}

/// One dependency of a service, as its task sees it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DepSpec {
    /// Its short_name (see [`DepView::node`]).
    pub short: String,
    /// How long to wait for it (its own start budget, including its dependencies').
    pub budget: Duration,
    /// For an optional external: start anyway after this long.
    pub optional_after: Option<Duration>,
}

/// What every task shares.
pub(crate) struct Shared {
    /// `state_dir/run`: the FIFOs.
    pub run_dir: PathBuf,
    /// Russell's state directory, marked on every spawned service.
    pub state_dir: PathBuf,
    /// The services file, named in messages about a disabled service.
    pub config_file: PathBuf,
    pub logs: Arc<LogStore>,
    /// Tasks send; the actor receives; closed when the actor ends.
    pub to_actor: mpsc::UnboundedSender<ActorMsg>,
    /// Probes in flight at once, all services together (see [`MAX_PROBES_IN_FLIGHT`]).
    pub probes: Arc<tokio::sync::Semaphore>,
}

/// What a service finds of itself at a Russell's start besides its state-file record:
/// processes marked as it that no record names ([`crate::proc::strays`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct LeftBehind {
    /// The process to adopt came from the marks, not from the state file.
    pub unrecorded: bool,
    /// Second copies, to stop before the service goes on.
    pub strays: Vec<ProcessRecord>,
}

/// Services that got healthy together probe together, every interval: 200 HTTP probes in
/// one millisecond, each with its socket and buffers. Running at most this many at a time
/// keeps the memory of such a burst small (glibc keeps the peak of a burst mapped for good)
/// while the burst still runs in one wake-up of Russell (spreading the probes over the
/// interval instead would cost one wake-up each).
pub(crate) const MAX_PROBES_IN_FLIGHT: usize = 16;

impl Shared {
    /// What every task shares, with room for [`MAX_PROBES_IN_FLIGHT`] probes at a time.
    pub(crate) fn new(
        run_dir: PathBuf,
        state_dir: PathBuf,
        config_file: PathBuf,
        logs: Arc<LogStore>,
        to_actor: mpsc::UnboundedSender<ActorMsg>,
    ) -> Arc<Self> {
        Arc::new(Self {
            run_dir,
            state_dir,
            config_file,
            logs,
            to_actor,
            probes: Arc::new(tokio::sync::Semaphore::new(MAX_PROBES_IN_FLIGHT)),
        })
    }

    /// Hands an event to the actor, which broadcasts it after its next snapshot: a
    /// client that reads the status after an event sees at least that event's state.
    /// Send the status the event is about first.
    pub(crate) fn emit(&self, event: Event) {
        tracing::debug!(service = %event.service, kind = event.kind.as_str(), "{}", event.message);
        let _ = self.to_actor.send(ActorMsg::Event(event));
    }
}

/// Why a disabled service does not start (`file` is the services file).
pub(crate) fn disabled_reason(file: &Path) -> String {
    format!(
        "enabled = false in {}; set enabled = true to run it",
        file.display()
    )
}

/// The refusal of an explicit start of the disabled service `short`.
pub(crate) fn disabled_error(short: &str, file: &Path) -> CoreError {
    CoreError::InvalidState {
        service: short.to_string(),
        state: "disabled",
        what: disabled_reason(file),
    }
}
