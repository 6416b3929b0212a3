//! What ControlCenter says about one service: why it is in its state, in words, and the
//! names and times read off its status.

use std::time::{Duration, SystemTime};

use russell_api::pb;
use russell_api::pb::ServiceState;

/// Why a service is in its state, in words (shown for the selected service).
pub fn reason(service: &pb::ServiceStatus, services: &[pb::ServiceStatus]) -> String {
    let probe = if service.last_probe_error.is_empty() {
        String::new()
    } else {
        format!(": {}", service.last_probe_error)
    };
    let error = if service.last_error.is_empty() {
        "no error recorded".to_string()
    } else {
        service.last_error.clone()
    };
    match service.service_state() {
        ServiceState::Stopped if service.disabled => {
            "disabled (enabled = false in the services file)".into()
        }
        ServiceState::Running if service.kind == "task" => {
            "running (a task: done when it exits)".into()
        }
        ServiceState::Running if service.adopted => {
            "healthy (adopted: Russell did not start it)".into()
        }
        ServiceState::Running => "healthy".into(),
        ServiceState::Stopped if service.stopped_by_user => "stopped by user".into(),
        ServiceState::Stopped if !service.last_error.is_empty() => {
            format!("stopped: {}", service.last_error)
        }
        ServiceState::Stopped => "not started".into(),
        ServiceState::Completed if service.kind == "task" => "completed (ran to the end)".into(),
        ServiceState::Completed => "completed: exited with a success code, not restarted".into(),
        ServiceState::Waiting => {
            let blocking: Vec<&str> = service
                .dependencies
                .iter()
                .filter(|d| {
                    services
                        .iter()
                        .find(|s| same_name(s, d))
                        .is_none_or(|s| !is_healthy(s))
                })
                .map(String::as_str)
                .collect();
            if blocking.is_empty() {
                "waiting for dependencies".into()
            } else {
                format!("waiting for {}", blocking.join(", "))
            }
        }
        ServiceState::Starting => format!("waiting for the health check{probe}"),
        ServiceState::Unhealthy => format!("health check failing{probe}"),
        ServiceState::Restarting => format!("restarting after: {error}"),
        ServiceState::Stopping => "stopping".into(),
        ServiceState::Failed => format!("gave up: {error}"),
        ServiceState::Unspecified => ServiceState::Unspecified.to_string(),
    }
}

/// Whether `service` is running and healthy by its check.
pub(super) fn is_healthy(service: &pb::ServiceStatus) -> bool {
    service.service_state() == ServiceState::Running && service.healthy
}

/// Whether `name` names `service` (short_name or name, any case).
pub fn same_name(service: &pb::ServiceStatus, name: &str) -> bool {
    service.short_name.eq_ignore_ascii_case(name) || service.name.eq_ignore_ascii_case(name)
}

/// The display name of the service called `name`, or `name` itself.
pub(super) fn display_name(services: &[pb::ServiceStatus], name: &str) -> String {
    services
        .iter()
        .find(|s| same_name(s, name))
        .map_or_else(|| name.to_string(), |s| s.name.clone())
}

/// The name to send to Russell for `service`.
pub fn api_name(service: &pb::ServiceStatus) -> String {
    if service.short_name.is_empty() {
        service.name.clone()
    } else {
        service.short_name.clone()
    }
}

/// A protobuf timestamp as a `SystemTime` (one that does not convert counts as 1970).
pub fn to_system_time(ts: &prost_types::Timestamp) -> SystemTime {
    SystemTime::try_from(*ts).unwrap_or(SystemTime::UNIX_EPOCH)
}

/// A protobuf duration as a std `Duration` (negative counts as zero).
pub fn to_duration(d: &prost_types::Duration) -> Duration {
    Duration::try_from(*d).unwrap_or_default()
}
