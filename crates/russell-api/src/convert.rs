//! Core types → wire types. States travel as enums plus their readable names (`state.rs`);
//! event kinds and phases as the lowercase names docs/API.md lists.

use std::time::{Duration, SystemTime};

use russell_core as core;

use crate::pb;

/// A wall-clock time on the wire.
pub fn timestamp(t: SystemTime) -> prost_types::Timestamp {
    prost_types::Timestamp::from(t)
}

/// A duration on the wire (saturating at prost's range).
pub fn duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration::try_from(d).unwrap_or(prost_types::Duration {
        seconds: i64::MAX,
        nanos: 0,
    })
}

impl From<&core::ServiceStatus> for pb::ServiceStatus {
    fn from(s: &core::ServiceStatus) -> Self {
        let now = SystemTime::now();
        Self {
            name: s.name.clone(),
            short_name: s.short_name.clone(),
            description: s.description.clone(),
            grpc_port: s.grpc_port.map_or(0, u32::from),
            http_port: s.http_port.map_or(0, u32::from),
            state: pb::ServiceState::from(s.state).as_str().to_string(),
            service_state: pb::ServiceState::from(s.state).into(),
            healthy: s.healthy,
            pid: s.pid.unwrap_or(0),
            started_at: s.started_at.map(timestamp),
            uptime: core::uptime(s.pid.and(s.started_at), now).map(duration),
            restart_count: s.restart_count,
            last_error: s.last_error.clone(),
            last_health_check: s.last_health_check.map(timestamp),
            adopted: s.adopted,
            dependencies: s.dependencies.clone(),
            cpu_percent: s.cpu_percent,
            rss_bytes: s.rss_bytes,
            command: s.command.clone(),
            last_probe_error: s.last_probe_error.clone(),
            timing: Some(pb::StartTiming::from(&s.timing)),
            stopped_by_user: s.stopped_by_user,
            max_retries: s.max_retries,
            kind: s.kind.as_str().to_string(),
            version: s.version.clone(),
            disabled: !s.enabled,
        }
    }
}

impl From<&core::StartTiming> for pb::StartTiming {
    fn from(t: &core::StartTiming) -> Self {
        Self {
            requested_at: t.requested_at.map(timestamp),
            spawned_at: t.spawned_at.map(timestamp),
            healthy_at: t.healthy_at.map(timestamp),
        }
    }
}

impl From<&core::ExternalStatus> for pb::ExternalStatus {
    fn from(e: &core::ExternalStatus) -> Self {
        Self {
            name: e.name.clone(),
            short_name: e.short_name.clone(),
            description: e.description.clone(),
            optional: e.optional,
            state: pb::ExternalState::from(e.state).as_str().to_string(),
            last_error: e.last_error.clone(),
            last_health_check: e.last_health_check.map(timestamp),
            external_state: pb::ExternalState::from(e.state).into(),
            missing_models: e.missing_models.clone(),
        }
    }
}

impl From<core::ServiceState> for pb::ServiceState {
    fn from(s: core::ServiceState) -> Self {
        match s {
            core::ServiceState::Stopped => Self::Stopped,
            core::ServiceState::Waiting => Self::Waiting,
            core::ServiceState::Starting => Self::Starting,
            core::ServiceState::Running => Self::Running,
            core::ServiceState::Unhealthy => Self::Unhealthy,
            core::ServiceState::Restarting => Self::Restarting,
            core::ServiceState::Stopping => Self::Stopping,
            core::ServiceState::Failed => Self::Failed,
            core::ServiceState::Completed => Self::Completed,
        }
    }
}

impl From<core::ExternalState> for pb::ExternalState {
    fn from(s: core::ExternalState) -> Self {
        match s {
            core::ExternalState::Unknown => Self::Unknown,
            core::ExternalState::Healthy => Self::Healthy,
            core::ExternalState::Unhealthy => Self::Unhealthy,
        }
    }
}

impl From<&core::Snapshot> for pb::OrchestratorStatus {
    fn from(s: &core::Snapshot) -> Self {
        let count = |f: &dyn Fn(&core::ServiceStatus) -> bool| -> i32 {
            i32::try_from(s.services.iter().filter(|x| f(x)).count()).unwrap_or(i32::MAX)
        };
        Self {
            status: s.phase.as_str().to_string(),
            total_services: count(&|_| true),
            running_services: count(&|x| {
                matches!(
                    x.state,
                    core::ServiceState::Running | core::ServiceState::Unhealthy
                )
            }),
            healthy_services: count(&|x| x.state == core::ServiceState::Running && x.healthy),
            failed_services: count(&|x| x.state == core::ServiceState::Failed),
            services: s
                .services
                .iter()
                .map(|x| pb::ServiceStatus::from(&**x))
                .collect(),
            started_at: Some(timestamp(s.started_at)),
            externals: s.externals.iter().map(pb::ExternalStatus::from).collect(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            pid: std::process::id(),
        }
    }
}

impl From<&core::Event> for pb::Event {
    fn from(e: &core::Event) -> Self {
        Self {
            kind: e.kind.as_str().to_string(),
            service: e.service.clone(),
            message: e.message.clone(),
            timestamp: Some(timestamp(e.timestamp)),
            state: pb::ServiceState::from(e.state).as_str().to_string(),
            pid: e.pid.unwrap_or(0),
            exit_code: e.exit_code,
            signal: e.signal,
            attempt: e.attempt.unwrap_or(0),
            delay: e.delay.map(duration),
            service_state: pb::ServiceState::from(e.state).into(),
        }
    }
}

impl From<&core::LogLine> for pb::LogLine {
    fn from(l: &core::LogLine) -> Self {
        Self {
            service: l.service.clone(),
            timestamp: Some(timestamp(l.timestamp)),
            stream: match l.stream {
                core::LogStream::Stdout => "stdout",
                core::LogStream::Stderr => "stderr",
            }
            .to_string(),
            line: l.line.clone(),
        }
    }
}

impl From<core::StartResult> for pb::ServiceStartResult {
    fn from(r: core::StartResult) -> Self {
        Self {
            name: r.name,
            success: r.success,
            error: r.error,
            attempts: i32::try_from(r.attempts).unwrap_or(i32::MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The core and the wire spell every state the same (the core's names go into the state
    /// file and logs, the wire's into `mdw status` and ControlCenter).
    #[test]
    fn wire_names_match_the_core_names() {
        use russell_core::ServiceState::*;
        for s in [
            Stopped, Waiting, Starting, Running, Unhealthy, Restarting, Stopping, Failed,
        ] {
            assert_eq!(pb::ServiceState::from(s).as_str(), s.as_str());
        }
    }

    fn service(state: core::ServiceState, healthy: bool, pid: Option<u32>) -> core::ServiceStatus {
        core::ServiceStatus {
            name: "Kant".into(),
            short_name: "kant".into(),
            description: "API Gateway".into(),
            grpc_port: None,
            http_port: Some(8080),
            state,
            healthy,
            pid,
            command: vec!["x".into()],
            started_at: Some(SystemTime::now() - Duration::from_secs(5)),
            restart_count: 2,
            max_retries: 3,
            last_error: String::new(),
            last_health_check: None,
            last_probe_error: String::new(),
            adopted: false,
            dependencies: vec!["turing".into()],
            cpu_percent: 0.0,
            rss_bytes: 0,
            cpu_seconds: 0.0,
            last_exit_code: None,
            probes: Default::default(),
            timing: core::StartTiming::default(),
            stopped_by_user: false,
            kind: russell_config::ServiceKind::Service,
            enabled: true,
            version: String::new(),
        }
    }

    #[test]
    fn snapshot_counts_and_lowercase_states() {
        let snap = core::Snapshot {
            phase: core::OrchestratorPhase::Running,
            started_at: SystemTime::now(),
            services: vec![
                service(core::ServiceState::Running, true, Some(10)).into(),
                service(core::ServiceState::Failed, false, None).into(),
                service(core::ServiceState::Unhealthy, false, Some(11)).into(),
                // Its process runs, but it is not up yet: neither running nor healthy.
                service(core::ServiceState::Starting, false, Some(12)).into(),
            ],
            externals: vec![],
        };
        let pb = pb::OrchestratorStatus::from(&snap);
        assert_eq!(pb.status, "running");
        assert_eq!(pb.total_services, 4);
        assert_eq!(pb.running_services, 2);
        assert_eq!(pb.healthy_services, 1);
        assert_eq!(pb.failed_services, 1);
        assert_eq!(pb.services[1].state, "failed");
        assert_eq!(pb.services[1].service_state(), pb::ServiceState::Failed);
        assert_eq!(pb.services[2].state, "unhealthy");
        assert_eq!(pb.services[2].service_state(), pb::ServiceState::Unhealthy);
        assert_eq!(pb.services[0].http_port, 8080);
        assert_eq!(pb.services[0].grpc_port, 0);
        assert!(pb.services[0].uptime.as_ref().unwrap().seconds >= 5);
        assert!(pb.services[1].uptime.is_none(), "no process, no uptime");
    }
}
