//! The validated configuration: what the rest of mdw accepts.
//!
//! These types are produced only by [`crate::load`] / [`crate::parse`] after every check
//! passed, so consumers never re-validate. Names in `dependencies` are already resolved to
//! the `short_name` of a service or an external.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::ser;

/// A whole, valid services file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    /// The file this was read from (absolute), for messages.
    #[serde(rename = "file", serialize_with = "ser::path")]
    pub source: PathBuf,
    /// The `[russell]` table.
    pub russell: RussellSettings,
    /// The `[logs]` table.
    pub logs: LogSettings,
    /// Managed services, in file order.
    pub services: Vec<Service>,
    /// Checked-only dependencies (Ollama, PostgreSQL, a toolchain, a model), in file order
    /// (in mDW's shape, the `[dependencies.<id>]` tables first).
    pub externals: Vec<External>,
    /// The file's shape and what its relative paths resolved against.
    pub paths: Paths,
}

/// Which of the two accepted file shapes a file has, and so where its relative paths
/// (commands, working_dir, env_file, log folder, binary_path, state_dir, token_file) point.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Paths {
    pub shape: FileShape,
    /// Absolute folder relative paths were resolved against: the file's folder (native),
    /// or the current directory Russell was started in (mDW's shape).
    #[serde(serialize_with = "ser::path")]
    pub base: PathBuf,
}

/// The two shapes of a services file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileShape {
    /// mdw's own keys (`[russell]`, `[defaults]`, `[[externals]]`, ...); relative paths
    /// resolve against the file's folder.
    #[default]
    Native,
    /// mDW's file (it has `[orchestrator]` or `[dependencies]`); relative paths resolve
    /// against the current directory, as mDW's Go Russell does.
    Mdw,
}

impl Config {
    /// The folder of the per-service log files: `[logs] dir`, else `<state_dir>/logs`.
    pub fn log_dir(&self) -> PathBuf {
        self.logs
            .dir
            .clone()
            .unwrap_or_else(|| self.russell.state_dir.join("logs"))
    }
}

/// Russell's own settings (`[russell]`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RussellSettings {
    /// gRPC listen address; default 127.0.0.1:9100.
    #[serde(serialize_with = "ser::display")]
    pub listen: SocketAddr,
    /// State directory (lock, PID file, state file, logs, FIFOs); absolute.
    /// Default: `.russell` next to the config file.
    #[serde(serialize_with = "ser::path")]
    pub state_dir: PathBuf,
    /// When set, every API call but health needs `authorization: Bearer <token>`.
    #[serde(serialize_with = "ser::opt_path")]
    pub token_file: Option<PathBuf>,
    /// On start, bring every service to its desired state (default true).
    pub autostart: bool,
    /// Reload the services file by itself when it changes (default false).
    pub watch_config: bool,
    /// HTTP listen address for `/metrics` and the JSON view; `None` (the default) = off.
    /// A bare port means 127.0.0.1:<port>.
    #[serde(serialize_with = "ser::opt_display")]
    pub http_listen: Option<SocketAddr>,
}

/// Log capture settings (`[logs]`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogSettings {
    /// Where the per-service log files go (absolute); `None` = `<state_dir>/logs`.
    #[serde(serialize_with = "ser::opt_path")]
    pub dir: Option<PathBuf>,
    /// Rotate a service's log file when it reaches this many bytes (default 10 MiB).
    pub max_file_size: u64,
    /// Rotated files kept per service besides the current one (default 5).
    pub max_files: u32,
    /// Lines kept in memory per service for tails and late subscribers (default 1000).
    pub tail_lines: usize,
}

/// One managed service (`[[services]]`), defaults already applied.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Service {
    /// Display name, e.g. "Kant".
    pub name: String,
    /// Identifier: `[a-z0-9_-]+`, unique; used in file names and on the command line.
    pub short_name: String,
    pub description: String,
    pub grpc_port: Option<u16>,
    pub http_port: Option<u16>,
    /// Program and arguments. The program is absolute when it was a relative path in the
    /// file (resolved against the file's folder), `{mdw}` is replaced by the running mdw
    /// executable, a bare name (`python3`) is left for PATH lookup.
    pub command: Vec<String>,
    /// Absolute working directory (default: the config file's folder).
    #[serde(serialize_with = "ser::path")]
    pub working_dir: PathBuf,
    /// Extra environment, applied after `env_file` (so `env` wins).
    pub env: BTreeMap<String, String>,
    /// `KEY=VALUE` file read at every spawn (absolute path).
    #[serde(serialize_with = "ser::opt_path")]
    pub env_file: Option<PathBuf>,
    /// short_names of services or externals this one needs healthy before it starts.
    pub dependencies: Vec<String>,
    /// Orders ties between services that may start together (lower first; default 0).
    pub start_order: i64,
    /// Start attempts, and automatic restarts before `failed` (default 3; 0 = no restart).
    pub max_retries: u32,
    /// Signal sent to the process group on stop (default SIGTERM).
    pub stop_signal: StopSignal,
    /// Grace period after `stop_signal` before SIGKILL (default 10s).
    #[serde(serialize_with = "ser::duration")]
    pub stop_timeout: Duration,
    pub on_port_conflict: PortConflictPolicy,
    /// First restart delay (default 1s; zero = at once); doubles per attempt.
    #[serde(serialize_with = "ser::duration")]
    pub restart_backoff: Duration,
    /// Cap on the restart delay (default 30s).
    #[serde(serialize_with = "ser::duration")]
    pub restart_backoff_max: Duration,
    /// Healthy this long and the restart counter resets (default 60s).
    #[serde(serialize_with = "ser::duration")]
    pub restart_reset_after: Duration,
    /// Restart this service's dependents after it comes back from a restart (default false).
    pub restart_dependents: bool,
    /// The service's version as the file states it (e.g. "0.1.0"; default ""), carried into
    /// status, the registry and both APIs.
    pub version: String,
    /// `enabled = false` keeps the service known and shown, but never started by StartAll
    /// or autostart (default true).
    pub enabled: bool,
    pub health_check: HealthCheck,
    /// A long-running service (default) or a one-shot task that runs to completion.
    pub kind: ServiceKind,
    /// When an exit is followed by a restart (default: always for a service, never for
    /// a task).
    pub restart: RestartPolicy,
    /// Exit codes that count as success (default [0]).
    pub success_exit_codes: Vec<i32>,
    /// Files whose change restarts the service: absolute paths or glob patterns (`*`,
    /// `?`, `[...]`, `**`), resolved like the other paths of the file (default none).
    #[serde(serialize_with = "ser::paths")]
    pub watch: Vec<PathBuf>,
    /// Quiet time after the last change of a watched file before the restart (default
    /// 500ms): a build that writes the file in pieces restarts the service once.
    #[serde(serialize_with = "ser::duration")]
    pub watch_debounce: Duration,
}

impl Service {
    /// The configured ports, gRPC first.
    pub fn ports(&self) -> Vec<u16> {
        self.grpc_port.into_iter().chain(self.http_port).collect()
    }
}

/// A checked-only dependency (`[[externals]]`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct External {
    pub name: String,
    pub short_name: String,
    pub description: String,
    /// Soft dependency: dependents wait for it at most `health_check.start_timeout`, then
    /// start anyway with a warning (default false).
    pub optional: bool,
    pub health_check: HealthCheck,
}

/// How and how often health is probed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthCheck {
    #[serde(flatten)]
    pub probe: Probe,
    /// Time between probes (default 10s).
    #[serde(serialize_with = "ser::duration")]
    pub interval: Duration,
    /// Per-probe timeout, below `interval` (default 3s).
    #[serde(serialize_with = "ser::duration")]
    pub timeout: Duration,
    /// Consecutive failures before a running service counts unhealthy (default 3).
    pub failure_threshold: u32,
    /// Consecutive successes before an unhealthy service counts healthy again (default 1).
    pub success_threshold: u32,
    /// Bound on the wait for the first healthy probe after a spawn (default 30s).
    #[serde(serialize_with = "ser::duration")]
    pub start_timeout: Duration,
}

/// What one probe does. Targets are fully resolved: services probe 127.0.0.1 on their
/// configured port; externals probe the address given in the file.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Probe {
    /// No check configured: healthy as soon as the process runs.
    None,
    /// `grpc.health.v1.Health/Check` at `addr` ("host:port"); `service` "" = whole server.
    Grpc {
        #[serde(rename = "address")]
        addr: String,
        service: String,
    },
    /// HTTP GET `url`; 2xx is healthy, and the body must contain `expect_body` when set.
    Http {
        url: String,
        expect_body: Option<String>,
    },
    /// TCP connect to `addr` ("host:port").
    Tcp {
        #[serde(rename = "address")]
        addr: String,
    },
    /// Run `command`; exit status 0 is healthy.
    Exec { command: Vec<String> },
    /// HTTP GET Ollama's model list at `url` (`…/api/tags`); healthy when every name in
    /// `models` is listed. A name with a tag (`mistral:7b`) must match exactly; one
    /// without (`nomic-embed-text`) matches any tag of that model (`:latest`, `:v1.5`).
    Ollama { url: String, models: Vec<String> },
}

/// A stop signal, by number and name (serialized by name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopSignal {
    /// e.g. 15
    pub number: i32,
    /// e.g. "SIGTERM"
    pub name: &'static str,
}

/// What to do when a configured port is already taken before a spawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PortConflictPolicy {
    /// Adopt a healthy holder; replace a holder that is recognisably this service;
    /// otherwise refuse and touch nothing.
    #[default]
    Adopt,
    /// Stop the holder gracefully, then start (the user's plan's behaviour; opt-in).
    Kill,
    /// Refuse.
    Fail,
}

/// The dependency levels of a config: each level may start in parallel once every earlier
/// level it depends on is healthy. Within a level, services are ordered by start_order,
/// then file order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StartPlan {
    /// short_names of services (not externals) per level; level 0 depends on nothing
    /// but externals.
    pub levels: Vec<Vec<String>>,
}

impl Serialize for StopSignal {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name)
    }
}

/// `kind`: what a `[[services]]` entry runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceKind {
    /// Runs until stopped; healthy by its check.
    #[default]
    Service,
    /// Runs once to completion (a migration, `make build`, `ollama pull`): an exit with a
    /// success code is `completed`, and only then do its dependents start.
    Task,
}

impl ServiceKind {
    /// The name as the file spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Service => "service",
            Self::Task => "task",
        }
    }
}

/// `restart`: what follows an exit (or an unhealthy verdict), within `max_retries`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Restart after any exit, also with a success code (a service's default).
    Always,
    /// Restart after an exit with a code outside `success_exit_codes`, a signal, or an
    /// unhealthy verdict; an exit with a success code is final (`completed`).
    OnFailure,
    /// Never restart: a success code is `completed`, anything else `failed` (a task's
    /// default).
    Never,
}

impl RestartPolicy {
    /// The name as the file spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "always",
            Self::OnFailure => "on-failure",
            Self::Never => "never",
        }
    }
}
