//! What Russell knows and tells: snapshots, events, start results, log lines.
//!
//! These are the types the API layer converts to the wire. They are plain data; the
//! orchestrator publishes snapshots on a `watch` channel and events on a `broadcast`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Lifecycle state of a managed service (transitions in `service/state.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceState {
    Stopped,
    /// Waiting for dependencies to become healthy.
    Waiting,
    /// Spawned (or adopted), not yet healthy.
    Starting,
    /// Healthy.
    Running,
    /// Running, but failure_threshold consecutive probes failed.
    Unhealthy,
    /// In restart backoff.
    Restarting,
    Stopping,
    /// Gave up; `last_error` says why.
    Failed,
    /// Exited with one of its `success_exit_codes` and not restarted (a task that ran to
    /// completion, or a service with `restart = "on-failure"`/`"never"`). A completed
    /// task counts as healthy for its dependents.
    Completed,
}

impl ServiceState {
    /// Lowercase name as the CLI and the JSON output spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stopped => "stopped",
            Self::Waiting => "waiting",
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Unhealthy => "unhealthy",
            Self::Restarting => "restarting",
            Self::Stopping => "stopping",
            Self::Failed => "failed",
            Self::Completed => "completed",
        }
    }
}

/// Russell's overall phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrchestratorPhase {
    Starting,
    Running,
    Stopping,
    Stopped,
}

impl OrchestratorPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
        }
    }
}

/// Health of an external dependency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExternalState {
    /// Not probed yet.
    Unknown,
    Healthy,
    Unhealthy,
}

/// One consistent picture of everything, published after every change.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub phase: OrchestratorPhase,
    /// When this Russell started.
    pub started_at: SystemTime,
    /// Services in config order (shared between snapshots: a service that did not change
    /// is the same allocation in the next one).
    pub services: Vec<Arc<ServiceStatus>>,
    pub externals: Vec<ExternalStatus>,
}

/// Status of one managed service.
#[derive(Debug, Clone)]
pub struct ServiceStatus {
    pub name: String,
    pub short_name: String,
    pub description: String,
    pub grpc_port: Option<u16>,
    pub http_port: Option<u16>,
    pub state: ServiceState,
    /// Last health verdict (after thresholds).
    pub healthy: bool,
    /// PID of the process (group leader) when one runs.
    pub pid: Option<u32>,
    /// Command line of the process when adopted (what /proc says), else the configured one.
    pub command: Vec<String>,
    /// When the current process was spawned or adopted.
    pub started_at: Option<SystemTime>,
    /// Automatic restarts since the counter last reset.
    pub restart_count: u32,
    /// Failed start attempts (and restarts in a row) allowed before `failed` (config).
    pub max_retries: u32,
    /// Why it is not running / last failure; empty when none.
    pub last_error: String,
    pub last_health_check: Option<SystemTime>,
    /// Last probe's error text, empty when it passed.
    pub last_probe_error: String,
    /// A process Russell did not spawn (port holder or left by a previous Russell).
    pub adopted: bool,
    /// short_names this service depends on.
    pub dependencies: Vec<String>,
    /// CPU use of the whole process group, percent of one core (sampled).
    pub cpu_percent: f32,
    /// Resident memory of the whole process group in bytes (sampled).
    pub rss_bytes: u64,
    /// CPU time the process group used in all, in seconds (sampled).
    pub cpu_seconds: f64,
    /// Timing of the last start, for the critical-chain view.
    pub timing: StartTiming,
    /// The user asked for this service to be stopped (kept across Russell restarts).
    pub stopped_by_user: bool,
    /// `kind` in the config: a long-running service or a one-shot task.
    pub kind: russell_config::ServiceKind,
    /// `enabled` in the config. A disabled service is known and shown but never started:
    /// start-all and autostart leave it out, an explicit start is refused, and a service
    /// that depends on it fails naming it.
    pub enabled: bool,
    /// `version` in the config (empty when not set).
    pub version: String,
    /// Exit code of the last process of this service that exited by itself (`None`: none
    /// exited yet, or it was killed by a signal).
    pub last_exit_code: Option<i32>,
    /// Durations and failures of its health probes since Russell started; shared by every
    /// snapshot (live counters, not a copy).
    pub probes: Arc<crate::probe_stats::ProbeStats>,
}

/// When the last start of a service happened.
#[derive(Debug, Clone, Copy, Default)]
pub struct StartTiming {
    /// Start requested (it began waiting for dependencies).
    pub requested_at: Option<SystemTime>,
    pub spawned_at: Option<SystemTime>,
    pub healthy_at: Option<SystemTime>,
}

/// Status of one external dependency.
#[derive(Debug, Clone)]
pub struct ExternalStatus {
    pub name: String,
    pub short_name: String,
    pub description: String,
    pub optional: bool,
    pub state: ExternalState,
    pub last_error: String,
    pub last_health_check: Option<SystemTime>,
    /// Models an `ollama` check found missing at its last probe (empty otherwise).
    pub missing_models: Vec<String>,
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    Starting,
    Started,
    Healthy,
    Unhealthy,
    HealthCheckFailed,
    Exited,
    Restarting,
    Failed,
    Stopping,
    Stopped,
    Adopted,
    PortConflict,
    Waiting,
    /// Exited with a success code and not restarted (see [`ServiceState::Completed`]).
    Completed,
    /// The services file was reloaded (service "russell"; the message has the counts).
    Reloaded,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Started => "started",
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
            Self::HealthCheckFailed => "health_check_failed",
            Self::Exited => "exited",
            Self::Restarting => "restarting",
            Self::Failed => "failed",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
            Self::Adopted => "adopted",
            Self::PortConflict => "port_conflict",
            Self::Completed => "completed",
            Self::Waiting => "waiting",
            Self::Reloaded => "reloaded",
        }
    }
}

/// One event on the broadcast channel.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: EventKind,
    /// short_name of the service or external.
    pub service: String,
    /// Human-readable detail (exit code, signal, attempt and delay, reason, PID, port).
    pub message: String,
    pub timestamp: SystemTime,
    /// The service's state after this event.
    pub state: ServiceState,
    pub pid: Option<u32>,
    /// For `Exited`: exit code if it exited.
    pub exit_code: Option<i32>,
    /// For `Exited`: signal number if killed by one.
    pub signal: Option<i32>,
    /// For `Restarting`: attempt number (1-based) and delay.
    pub attempt: Option<u32>,
    pub delay: Option<Duration>,
}

/// The plan's ServiceStartResult.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartResult {
    pub name: String,
    pub success: bool,
    pub error: String,
    pub attempts: u32,
}

/// Which stream a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// One captured line.
#[derive(Debug, Clone)]
pub struct LogLine {
    /// short_name of the service.
    pub service: String,
    pub stream: LogStream,
    pub timestamp: SystemTime,
    pub line: String,
}

/// Uptime helper for display layers.
pub fn uptime(started_at: Option<SystemTime>, now: SystemTime) -> Option<Duration> {
    started_at.and_then(|t| now.duration_since(t).ok())
}
