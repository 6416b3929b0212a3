//! The JSON shape of Russell's status: what `mdw status --json` prints and what the HTTP
//! view (`GET /v1/status`, `server` feature) answers — one copy for both. It mirrors
//! OrchestratorStatus with snake_case keys, RFC 3339 times, and `null` for an absent PID
//! or port.

use std::time::SystemTime;

use serde::Serialize;

use crate::{pb, prost_types};

/// The JSON form of OrchestratorStatus.
#[derive(Debug, Serialize)]
pub struct StatusJson {
    pub status: String,
    pub version: String,
    pub pid: u32,
    pub total_services: i32,
    pub running_services: i32,
    pub healthy_services: i32,
    pub failed_services: i32,
    /// RFC 3339.
    pub started_at: Option<String>,
    pub services: Vec<ServiceJson>,
    pub externals: Vec<ExternalJson>,
}

/// The JSON form of one service's status.
#[derive(Debug, Serialize)]
pub struct ServiceJson {
    pub name: String,
    pub short_name: String,
    pub description: String,
    pub state: String,
    pub healthy: bool,
    pub pid: Option<u32>,
    pub restart_count: u32,
    pub max_retries: u32,
    pub last_error: String,
    pub last_probe_error: String,
    pub grpc_port: Option<u32>,
    pub http_port: Option<u32>,
    pub adopted: bool,
    pub stopped_by_user: bool,
    pub uptime_seconds: Option<u64>,
    pub started_at: Option<String>,
    pub last_health_check: Option<String>,
    pub dependencies: Vec<String>,
    /// "service" or "task".
    pub kind: String,
    /// `version` in the services file (empty when not set).
    pub version: String,
    /// `enabled` in the services file.
    pub enabled: bool,
    pub cpu_percent: f32,
    pub rss_bytes: u64,
}

/// The JSON form of one external's status.
#[derive(Debug, Serialize)]
pub struct ExternalJson {
    pub name: String,
    pub short_name: String,
    pub description: String,
    pub optional: bool,
    pub state: String,
    pub last_error: String,
    pub last_health_check: Option<String>,
    /// Models an `ollama` check found missing (empty otherwise).
    pub missing_models: Vec<String>,
}

fn rfc3339(t: Option<&prost_types::Timestamp>) -> Option<String> {
    to_system_time(t).map(|t| humantime::format_rfc3339_seconds(t).to_string())
}

/// A wire timestamp as a SystemTime.
pub fn to_system_time(t: Option<&prost_types::Timestamp>) -> Option<SystemTime> {
    t.and_then(|t| SystemTime::try_from(*t).ok())
}

fn nonzero(n: u32) -> Option<u32> {
    (n != 0).then_some(n)
}

impl From<&pb::OrchestratorStatus> for StatusJson {
    fn from(s: &pb::OrchestratorStatus) -> Self {
        Self {
            status: s.status.clone(),
            version: s.version.clone(),
            pid: s.pid,
            total_services: s.total_services,
            running_services: s.running_services,
            healthy_services: s.healthy_services,
            failed_services: s.failed_services,
            started_at: rfc3339(s.started_at.as_ref()),
            services: s.services.iter().map(ServiceJson::from).collect(),
            externals: s
                .externals
                .iter()
                .map(|e| ExternalJson {
                    name: e.name.clone(),
                    short_name: e.short_name.clone(),
                    description: e.description.clone(),
                    optional: e.optional,
                    state: e.external_state().as_str().to_string(),
                    last_error: e.last_error.clone(),
                    last_health_check: rfc3339(e.last_health_check.as_ref()),
                    missing_models: e.missing_models.clone(),
                })
                .collect(),
        }
    }
}

impl From<&pb::ServiceStatus> for ServiceJson {
    fn from(x: &pb::ServiceStatus) -> Self {
        Self {
            name: x.name.clone(),
            short_name: x.short_name.clone(),
            description: x.description.clone(),
            state: x.service_state().as_str().to_string(),
            healthy: x.healthy,
            pid: nonzero(x.pid),
            restart_count: x.restart_count,
            max_retries: x.max_retries,
            last_error: x.last_error.clone(),
            last_probe_error: x.last_probe_error.clone(),
            grpc_port: nonzero(x.grpc_port),
            http_port: nonzero(x.http_port),
            adopted: x.adopted,
            stopped_by_user: x.stopped_by_user,
            uptime_seconds: x
                .uptime
                .as_ref()
                .map(|d| u64::try_from(d.seconds).unwrap_or(0)),
            started_at: rfc3339(x.started_at.as_ref()),
            last_health_check: rfc3339(x.last_health_check.as_ref()),
            dependencies: x.dependencies.clone(),
            kind: x.kind.clone(),
            version: x.version.clone(),
            enabled: !x.disabled,
            cpu_percent: x.cpu_percent,
            rss_bytes: x.rss_bytes,
        }
    }
}

/// An error of the HTTP view: what went wrong for people, and a code for programs.
#[derive(Debug, Serialize)]
pub struct ErrorJson {
    pub error: String,
    /// The gRPC code in snake_case: `not_found`, `invalid_argument`, `unauthenticated`,
    /// `failed_precondition`, `unavailable`, `internal`.
    pub code: String,
}

/// One event as the HTTP view streams it (`GET /v1/events`).
#[derive(Debug, Serialize)]
pub struct EventJson {
    /// `started`, `exited`, `healthy`, … (see `EventType` in the proto, lowercased).
    pub kind: String,
    pub service: String,
    pub message: String,
    /// RFC 3339 with milliseconds.
    pub timestamp: Option<String>,
    /// The service's state after the event.
    pub state: String,
    pub pid: Option<u32>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
}
