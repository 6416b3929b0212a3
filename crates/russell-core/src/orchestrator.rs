//! The orchestrator handle: the only way in. CONTRACT — the API layer is written against
//! these signatures; the bodies are being built.

use std::sync::Arc;

use russell_config::Config;
use tokio::sync::{broadcast, watch};

use crate::{CoreError, Event, LogLine, Snapshot, StartResult};

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
    _private: Arc<()>,
}

impl std::fmt::Debug for Orchestrator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Orchestrator")
    }
}

impl Orchestrator {
    /// Starts the actor (and one task per service) for a validated config. Creates the
    /// state directory (0700). Returns the handle and the actor's join handle, which ends
    /// after [`Orchestrator::shutdown`].
    pub async fn spawn(
        _config: Config,
        _options: SpawnOptions,
    ) -> Result<(Self, tokio::task::JoinHandle<()>), CoreError> {
        todo!()
    }

    /// Brings every service to its desired state: all of them on a first start, what the
    /// state file records (stopped-by-user stays stopped) after a restart of Russell.
    pub async fn restore(&self) -> Result<Vec<StartResult>, CoreError> {
        todo!()
    }

    /// Starts every service in dependency order and waits until each is healthy or has
    /// failed. Without `force`, healthy services are left alone; with it, restarted.
    pub async fn start_all(&self, _force: bool) -> Result<Vec<StartResult>, CoreError> {
        todo!()
    }

    /// Stops every service, dependents first; returns short_names in stop order once no
    /// process of any group is left.
    pub async fn stop_all(&self) -> Result<Vec<String>, CoreError> {
        todo!()
    }

    /// Starts one service (name or short_name, any case) after its dependencies, and waits
    /// until it is healthy or failed. A failed service gets a fresh restart budget.
    pub async fn start_service(&self, _name: &str) -> Result<StartResult, CoreError> {
        todo!()
    }

    /// Stops one service; it stays stopped (stopped_by_user) until started again.
    pub async fn stop_service(&self, _name: &str) -> Result<(), CoreError> {
        todo!()
    }

    /// Stops and starts one service with a fresh restart budget.
    pub async fn restart_service(&self, _name: &str) -> Result<StartResult, CoreError> {
        todo!()
    }

    /// The short_name for a name or short_name (any case), services and externals.
    pub fn resolve(&self, _name: &str) -> Result<String, CoreError> {
        todo!()
    }

    /// The latest snapshot (cheap; never waits for a probe or a stop).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        todo!()
    }

    /// Snapshot updates, one per change.
    pub fn watch(&self) -> watch::Receiver<Arc<Snapshot>> {
        todo!()
    }

    /// Events from now on.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        todo!()
    }

    /// The last `n` captured lines of `service` (None = all services, merged by time).
    pub fn log_tail(&self, _service: Option<&str>, _n: usize) -> Vec<LogLine> {
        todo!()
    }

    /// Captured lines from now on, all services.
    pub fn log_subscribe(&self) -> broadcast::Receiver<LogLine> {
        todo!()
    }

    /// Stops every service (like stop_all), then ends the actor.
    pub async fn shutdown(&self) -> Result<(), CoreError> {
        todo!()
    }

    /// Ends the actor WITHOUT stopping services (their processes keep running and are
    /// recorded in the state file for the next Russell). Used by tests and `serve` on a
    /// crash-like exit.
    pub async fn detach(&self) -> Result<(), CoreError> {
        todo!()
    }
}
