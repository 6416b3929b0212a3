//! Core state → mDW's messages: the status enum, a service's status, the orchestrator's
//! status. The mapping of states is documented in docs/API.md ("Status mapping").

use std::time::SystemTime;

use russell_core::{OrchestratorPhase, ServiceState, ServiceStatus, Snapshot};

use crate::mdw::russell as m;
use crate::server::Registration;

/// mDW's status of a core state.
pub fn status_of(state: ServiceState) -> m::ServiceStatus {
    match state {
        ServiceState::Stopped => m::ServiceStatus::Stopped,
        ServiceState::Waiting | ServiceState::Starting | ServiceState::Restarting => {
            m::ServiceStatus::Starting
        }
        ServiceState::Running => m::ServiceStatus::Healthy,
        ServiceState::Unhealthy => m::ServiceStatus::Unhealthy,
        ServiceState::Stopping => m::ServiceStatus::Stopping,
        ServiceState::Failed => m::ServiceStatus::Failed,
        // mDW has no "completed": a task that ran to completion is not running and not
        // failed (docs/API.md, "Status mapping").
        ServiceState::Completed => m::ServiceStatus::Stopped,
    }
}

/// mDW's orchestrator state of Russell's phase.
pub fn phase_of(phase: OrchestratorPhase) -> m::OrchestratorState {
    match phase {
        OrchestratorPhase::Starting => m::OrchestratorState::Starting,
        OrchestratorPhase::Running => m::OrchestratorState::Running,
        OrchestratorPhase::Stopping => m::OrchestratorState::Stopping,
        OrchestratorPhase::Stopped => m::OrchestratorState::Stopped,
    }
}

/// Seconds since the Unix epoch (0 for times before it).
pub fn unix(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// RFC 3339 in UTC with milliseconds, as mDW's string timestamps are.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// A count as mDW's int32.
pub fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// The port mDW shows for a service: its gRPC port, else its HTTP port, else 0.
pub fn port_of(s: &ServiceStatus) -> i32 {
    s.grpc_port.or(s.http_port).map_or(0, i32::from)
}

/// Seconds the current process runs (0 without one).
pub fn uptime_secs(s: &ServiceStatus, now: SystemTime) -> i64 {
    russell_core::uptime(s.pid.and(s.started_at), now)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// One line on a service's health: the last error, the last probe error, or its state.
pub fn health_message(s: &ServiceStatus) -> String {
    if s.state == ServiceState::Completed {
        // Shown as STOPPED: the message tells a finished task from a stopped service.
        "completed".to_string()
    } else if !s.last_error.is_empty() {
        s.last_error.clone()
    } else if !s.last_probe_error.is_empty() {
        s.last_probe_error.clone()
    } else if s.healthy {
        "healthy".to_string()
    } else {
        s.state.as_str().to_string()
    }
}

/// The id of a managed service that has no registration of its own.
pub fn managed_id(short_name: &str) -> String {
    format!("managed/{short_name}")
}

/// A managed service as mDW's ServiceStatusResponse (`name` is the short_name).
pub fn service_status(
    s: &ServiceStatus,
    reg: Option<&Registration>,
    now: SystemTime,
) -> m::ServiceStatusResponse {
    let mut metadata = std::collections::HashMap::from([
        ("display_name".to_string(), s.name.clone()),
        ("state".to_string(), s.state.as_str().to_string()),
        ("adopted".to_string(), s.adopted.to_string()),
        ("enabled".to_string(), s.enabled.to_string()),
    ]);
    if let Some(r) = reg {
        metadata.insert("registration_id".to_string(), r.id.clone());
    }
    m::ServiceStatusResponse {
        name: s.short_name.clone(),
        status: status_of(s.state) as i32,
        pid: s.pid.map_or(0, |p| i32::try_from(p).unwrap_or(0)),
        port: port_of(s),
        address: reg.map_or_else(|| "localhost".to_string(), |r| r.address.clone()),
        uptime_seconds: uptime_secs(s, now),
        started_at: s.pid.and(s.started_at).map_or(0, unix),
        last_heartbeat: reg
            .map(|r| r.last_heartbeat)
            .or(s.last_health_check)
            .map_or(0, unix),
        health_message: health_message(s),
        restart_count: i32::try_from(s.restart_count).unwrap_or(i32::MAX),
        metadata,
        version: s.version.as_str().to_string(),
    }
}

/// Russell's whole picture as mDW's OrchestratorStatusResponse.
pub fn orchestrator_status(snap: &Snapshot, now: SystemTime) -> m::OrchestratorStatusResponse {
    let n =
        |f: &dyn Fn(&ServiceStatus) -> bool| count(snap.services.iter().filter(|s| f(s)).count());
    m::OrchestratorStatusResponse {
        state: phase_of(snap.phase) as i32,
        total_services: count(snap.services.len()),
        running_services: n(&|s| {
            matches!(s.state, ServiceState::Running | ServiceState::Unhealthy)
        }),
        healthy_services: n(&|s| s.state == ServiceState::Running && s.healthy),
        failed_services: n(&|s| s.state == ServiceState::Failed),
        services: snap
            .services
            .iter()
            .map(|s| m::OrchestratorServiceStatus {
                name: s.name.clone(),
                short_name: s.short_name.clone(),
                status: status_of(s.state) as i32,
                healthy: s.healthy,
                pid: s.pid.map_or(0, |p| i32::try_from(p).unwrap_or(0)),
                port: port_of(s),
                uptime_seconds: uptime_secs(s, now),
                restart_count: i32::try_from(s.restart_count).unwrap_or(i32::MAX),
                last_error: s.last_error.clone(),
                dependencies: s.dependencies.clone(),
                version: s.version.as_str().to_string(),
            })
            .collect(),
        started_at: unix(snap.started_at),
        uptime_seconds: now
            .duration_since(snap.started_at)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_core_state_has_a_status() {
        use m::ServiceStatus as S;
        let table = [
            (ServiceState::Stopped, S::Stopped),
            (ServiceState::Waiting, S::Starting),
            (ServiceState::Starting, S::Starting),
            (ServiceState::Running, S::Healthy),
            (ServiceState::Unhealthy, S::Unhealthy),
            (ServiceState::Restarting, S::Starting),
            (ServiceState::Stopping, S::Stopping),
            (ServiceState::Failed, S::Failed),
            (ServiceState::Completed, S::Stopped),
        ];
        for (state, status) in table {
            assert_eq!(status_of(state), status, "{state:?}");
        }
    }

    #[test]
    fn times_on_mdw_wire() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_500);
        assert_eq!(unix(t), 1);
        assert_eq!(rfc3339(t), "1970-01-01T00:00:01.500Z");
    }
}
