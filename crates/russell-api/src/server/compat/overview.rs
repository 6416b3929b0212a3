//! mDW's health and admin views: GetSystemHealth, HealthCheck (Russell's own),
//! GetSystemOverview, GetMetrics (the API counters of `../gate.rs`) and GetErrors (a bounded
//! ring of recent failures, fed from the core's event broadcast as they happen).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use russell_core::{EventKind, ExternalState, ServiceState, ServiceStatus};
use tokio::sync::broadcast;
use tonic::Status;

use super::discovery::registrations;
use super::status::{count, health_message, port_of, rfc3339, unix};
use crate::mdw::{common as c, russell as m};
use crate::server::RussellApi;
use crate::server::gate::Metrics;

/// Failures kept for GetErrors; older ones fall out.
pub const ERRORS_KEPT: usize = 256;
/// Failures GetErrors returns when asked for `limit = 0`.
const ERRORS_DEFAULT: usize = 50;

/// The ring of recent failures.
#[derive(Debug, Default)]
pub struct Errors(Mutex<VecDeque<m::ErrorEntry>>);

impl Errors {
    fn push(&self, entry: m::ErrorEntry) {
        let mut ring = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if ring.len() == ERRORS_KEPT {
            ring.pop_front();
        }
        ring.push_back(entry);
    }

    /// The newest `n`, newest first.
    fn recent(&self, n: usize) -> Vec<m::ErrorEntry> {
        let ring = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        ring.iter().rev().take(n).cloned().collect()
    }

    /// Follows the core's events until the broadcast ends or Russell closes, keeping the
    /// failures: exits, failed starts, unhealthy turns, failed probes, port conflicts.
    pub fn feed(self: Arc<Self>, api: &RussellApi) {
        let mut events = api.orch.events();
        let mut closing = api.closing.clone();
        tokio::spawn(async move {
            loop {
                let e = tokio::select! {
                    _ = closing.wait_for(|c| *c) => break,
                    r = events.recv() => match r {
                        Ok(e) => e,
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            self.push(m::ErrorEntry {
                                timestamp: rfc3339(SystemTime::now()),
                                service: "russell".to_string(),
                                operation: "events".to_string(),
                                error_code: "LAGGED".to_string(),
                                message: format!("{n} events were not looked at; some failures may be missing"),
                                request_id: String::new(),
                            });
                            continue;
                        }
                        Err(broadcast::error::RecvError::Closed) => break,
                    },
                };
                if matches!(
                    e.kind,
                    EventKind::Exited
                        | EventKind::Failed
                        | EventKind::Unhealthy
                        | EventKind::HealthCheckFailed
                        | EventKind::PortConflict
                ) {
                    self.push(m::ErrorEntry {
                        timestamp: rfc3339(e.timestamp),
                        service: e.service,
                        operation: e.kind.as_str().to_string(),
                        error_code: e.kind.as_str().to_uppercase(),
                        message: e.message,
                        request_id: String::new(),
                    });
                }
            }
        });
    }
}

pub(super) fn errors(
    errors: &Errors,
    req: &m::GetErrorsRequest,
) -> Result<m::ErrorsResponse, Status> {
    let n = match usize::try_from(req.limit) {
        Err(_) => {
            return Err(Status::invalid_argument(format!(
                "limit = {} is negative; give 0 (the newest {ERRORS_DEFAULT}) up to {ERRORS_KEPT}",
                req.limit
            )));
        }
        Ok(0) => ERRORS_DEFAULT,
        Ok(n) => n.min(ERRORS_KEPT),
    };
    Ok(m::ErrorsResponse {
        errors: errors.recent(n),
    })
}

pub(super) fn metrics(metrics: &Metrics) -> m::MetricsResponse {
    let r = metrics.read();
    let i = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    m::MetricsResponse {
        total_requests: i(r.total),
        successful_requests: i(r.total - r.failed.min(r.total)),
        failed_requests: i(r.failed),
        average_response_time_ms: i64::try_from(r.average.as_millis()).unwrap_or(i64::MAX),
        requests_per_second: r.per_second,
        pipeline_executions: 0,
        active_connections: i32::try_from(
            r.in_flight + i64::from(count(crate::server::streams::open_streams())),
        )
        .unwrap_or(i32::MAX),
    }
}

/// A word for a service's health, as mDW's string statuses are ("disabled" for a stopped
/// service that the config disables).
fn word(s: &ServiceStatus) -> &'static str {
    if s.state == ServiceState::Stopped && !s.enabled {
        return "disabled";
    }
    match s.state {
        ServiceState::Running if s.healthy => "healthy",
        ServiceState::Running | ServiceState::Unhealthy => "unhealthy",
        other => other.as_str(),
    }
}

pub(super) fn system_health(api: &RussellApi) -> m::SystemHealthResponse {
    let snap = api.orch.snapshot();
    let mut services: Vec<m::ServiceHealth> = snap
        .services
        .iter()
        .map(|s| m::ServiceHealth {
            name: s.short_name.clone(),
            status: word(s).to_string(),
            message: health_message(s),
            latency_ms: 0,
        })
        .collect();
    services.extend(snap.externals.iter().map(|e| m::ServiceHealth {
        name: e.short_name.clone(),
        status: crate::pb::ExternalState::from(e.state).as_str().to_string(),
        message: if e.last_error.is_empty() {
            format!("external{}", if e.optional { ", optional" } else { "" })
        } else {
            e.last_error.clone()
        },
        latency_ms: 0,
    }));
    // A disabled service that is not running counts for nothing.
    let counted: Vec<_> = snap
        .services
        .iter()
        .filter(|s| s.enabled || s.state != ServiceState::Stopped)
        .collect();
    let healthy = counted
        .iter()
        .filter(|s| s.state == ServiceState::Running && s.healthy)
        .count();
    let required_down = snap
        .externals
        .iter()
        .any(|e| !e.optional && e.state == ExternalState::Unhealthy);
    let overall = if healthy == counted.len() && !required_down {
        "healthy"
    } else if healthy == 0 && !counted.is_empty() {
        "unhealthy"
    } else {
        "degraded"
    };
    m::SystemHealthResponse {
        overall_status: overall.to_string(),
        services,
        timestamp: unix(SystemTime::now()),
    }
}

pub(super) fn health_check(api: &RussellApi) -> c::HealthCheckResponse {
    let snap = api.orch.snapshot();
    let running = snap
        .services
        .iter()
        .filter(|s| matches!(s.state, ServiceState::Running | ServiceState::Unhealthy))
        .count();
    let healthy = snap
        .services
        .iter()
        .filter(|s| s.state == ServiceState::Running && s.healthy)
        .count();
    c::HealthCheckResponse {
        // Russell answers, so Russell is healthy; the services' health is GetSystemHealth's.
        status: "healthy".to_string(),
        service: "russell".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        uptime_seconds: SystemTime::now()
            .duration_since(snap.started_at)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
        details: HashMap::from([
            ("pid".to_string(), std::process::id().to_string()),
            ("phase".to_string(), snap.phase.as_str().to_string()),
            ("services".to_string(), snap.services.len().to_string()),
            ("running".to_string(), running.to_string()),
            ("healthy".to_string(), healthy.to_string()),
        ]),
    }
}

pub(super) fn overview(
    api: &RussellApi,
    metrics_: &Metrics,
    errors: &Errors,
) -> m::SystemOverviewResponse {
    let snap = api.orch.snapshot();
    let now = SystemTime::now();
    let mut services = HashMap::new();
    let (mut healthy, mut degraded, mut unhealthy) = (0, 0, 0);
    for s in &snap.services {
        match s.state {
            ServiceState::Running | ServiceState::Completed if s.healthy => healthy += 1,
            ServiceState::Stopped if !s.enabled => {}
            ServiceState::Failed | ServiceState::Stopped | ServiceState::Completed => {
                unhealthy += 1
            }
            _ => degraded += 1,
        }
        let reg = api.registry.get(&s.short_name);
        let port = port_of(s);
        services.insert(
            s.short_name.clone(),
            m::AdminServiceStatus {
                name: s.name.clone(),
                r#type: "managed".to_string(),
                status: word(s).to_string(),
                address: if port == 0 {
                    "localhost".to_string()
                } else {
                    format!("localhost:{port}")
                },
                version: s.version.as_str().to_string(),
                last_seen: reg
                    .map(|r| r.last_heartbeat)
                    .or(s.last_health_check)
                    .map(rfc3339)
                    .unwrap_or_default(),
            },
        );
    }
    let mut total = snap.services.len();
    for (key, r) in registrations(api) {
        if services.contains_key(&key) {
            continue;
        }
        total += 1;
        if r.healthy {
            healthy += 1;
        } else {
            unhealthy += 1;
        }
        let address = match r.ports.get("port") {
            Some(p) => format!("{}:{p}", r.address),
            None => r.address.clone(),
        };
        services.insert(
            key,
            m::AdminServiceStatus {
                name: r.name,
                r#type: "registered".to_string(),
                status: if r.healthy { "healthy" } else { "unhealthy" }.to_string(),
                address,
                version: r.version,
                last_seen: rfc3339(r.last_heartbeat),
            },
        );
    }
    m::SystemOverviewResponse {
        timestamp: rfc3339(now),
        total_services: count(total),
        healthy_services: healthy,
        degraded_services: degraded,
        unhealthy_services: unhealthy,
        services,
        metrics: Some(metrics(metrics_)),
        recent_errors: errors.recent(ERRORS_DEFAULT),
    }
}
