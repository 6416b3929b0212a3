//! mDW's `mdw.russell.RussellService` against a real `mdw serve russell` with stand-in
//! services on free ports, through a client generated from the project's `mdw.russell`
//! proto: every method on real state, compared with the v1 view of the same moment.
//! Bad input: `compat_input.rs`; the token rules: `compat_access.rs`.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use russell_api::mdw::common as c;
use russell_api::mdw::russell as m;
use russell_api::pb;
use test_support::compat::{Mdw, mdw, mdw_status, v1, v1_status};
use test_support::{Fixture, Svc, alive};
use tonic::Code;

/// The v1 state string that goes with an mDW status (the mapping of docs/API.md).
fn same_state(v1_state: &str, status: i32) -> bool {
    let s = m::ServiceStatus::try_from(status).unwrap();
    matches!(
        (v1_state, s),
        ("stopped", m::ServiceStatus::Stopped)
            | (
                "waiting" | "starting" | "restarting",
                m::ServiceStatus::Starting
            )
            | ("running", m::ServiceStatus::Healthy)
            | ("unhealthy", m::ServiceStatus::Unhealthy)
            | ("stopping", m::ServiceStatus::Stopping)
            | ("failed", m::ServiceStatus::Failed)
    )
}

/// Both views of the same moment agree on names, states, PIDs, ports and counts.
async fn assert_same_view(f: &Fixture, old: &mut russell_api::Client, new: &mut Mdw) {
    let a = v1_status(old, f).await;
    let b = mdw_status(new).await;
    let all = new
        .get_all_service_status(c::Empty {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(a.total_services, b.total_services);
    assert_eq!(a.running_services, b.running_services);
    assert_eq!(a.healthy_services, b.healthy_services);
    assert_eq!(a.failed_services, b.failed_services);
    assert_eq!(all.total, a.total_services);
    assert_eq!(all.running, a.running_services);
    for (x, y) in a.services.iter().zip(&b.services) {
        assert_eq!(x.short_name, y.short_name);
        assert_eq!(x.name, y.name);
        assert_eq!(x.pid as i32, y.pid, "{}", x.short_name);
        assert!(same_state(&x.state, y.status), "{x:?} vs {y:?}");
        assert_eq!(x.healthy, y.healthy);
        assert_eq!(x.restart_count as i32, y.restart_count);
        assert_eq!(x.dependencies, y.dependencies);
        assert_eq!(x.http_port as i32, y.port);
        let z = all
            .services
            .iter()
            .find(|z| z.name == x.short_name)
            .unwrap();
        assert_eq!(z.pid, y.pid);
        assert_eq!(z.status, y.status);
    }
}

async fn next_change(
    s: &mut tonic::Streaming<m::ServiceStatusEvent>,
    name: &str,
    to: m::ServiceStatus,
) -> m::ServiceStatusEvent {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let e = tokio::time::timeout(left, s.message())
            .await
            .unwrap_or_else(|_| panic!("no change of {name} to {to:?}"))
            .unwrap()
            .unwrap();
        if e.name == name && e.current_status == to as i32 {
            return e;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_on_real_state_matches_v1() {
    let f = Fixture::new(
        &[
            Svc::demo("alpha").extra("version = \"1.2.3\""),
            Svc::demo("beta").deps(&["alpha"]),
            Svc::demo("gamma").args(&["--ignore-sigterm"]),
        ],
        "autostart = false",
    );
    let _d = f.start();
    let mut old = v1(&f, None).await;
    let mut c = mdw(&f, None).await;

    let h = c
        .health_check(c::HealthCheckRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (h.status.as_str(), h.service.as_str()),
        ("healthy", "russell")
    );
    assert_eq!(h.details["services"], "3");
    let s = mdw_status(&mut c).await;
    assert_eq!(s.total_services, 3);
    assert!(
        s.services
            .iter()
            .all(|x| x.status == m::ServiceStatus::Stopped as i32 && x.pid == 0)
    );
    assert_same_view(&f, &mut old, &mut c).await;

    let mut changes = c
        .stream_service_status(c::Empty {})
        .await
        .unwrap()
        .into_inner();
    let all = c
        .start_all_services(m::StartAllRequest { force: false })
        .await
        .unwrap()
        .into_inner();
    assert!(all.success, "{all:?}");
    assert_eq!(all.results.len(), 3);
    assert_eq!(all.message, "3 of 3 services running");
    let e = next_change(&mut changes, "beta", m::ServiceStatus::Healthy).await;
    assert_eq!(e.previous_status, m::ServiceStatus::Starting as i32);
    assert!(e.timestamp > 0);
    assert_same_view(&f, &mut old, &mut c).await;
    let s = mdw_status(&mut c).await;
    assert_eq!(s.state, m::OrchestratorState::Running as i32);
    assert_eq!(s.healthy_services, 3);
    let alpha = &s.services[0];
    assert_eq!(alpha.version, "1.2.3");
    assert!(alpha.healthy && alpha.pid > 0 && alpha.last_error.is_empty());
    assert_eq!(s.services[1].dependencies, vec!["alpha".to_string()]);
    assert_eq!(s.services[1].version, "");

    let one = c
        .get_service_status(m::GetServiceStatusRequest {
            name: "Alpha".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (one.name.as_str(), one.pid, one.version.as_str()),
        ("alpha", alpha.pid, "1.2.3")
    );
    assert_eq!(one.status, m::ServiceStatus::Healthy as i32);
    assert!(one.started_at > 0);

    // Stop, start, restart one service; the stream pushes each change.
    let stop = c
        .stop_service(m::StopServiceRequest {
            name: "beta".into(),
            force: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(stop.success, "{stop:?}");
    next_change(&mut changes, "beta", m::ServiceStatus::Stopping).await;
    next_change(&mut changes, "beta", m::ServiceStatus::Stopped).await;
    assert_same_view(&f, &mut old, &mut c).await;
    let started = c
        .start_service(m::StartServiceRequest {
            name: "beta".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(started.success, "{started:?}");
    assert_eq!(started.service_id, "managed/beta");
    let v = v1_status(&mut old, &f).await;
    assert_eq!(started.pid, v.services[1].pid as i32);
    next_change(&mut changes, "beta", m::ServiceStatus::Healthy).await;
    let restarted = c
        .restart_service(m::RestartServiceRequest {
            name: "beta".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        restarted.success && restarted.pid != started.pid,
        "{restarted:?}"
    );
    assert_same_view(&f, &mut old, &mut c).await;

    // Registration: a name Russell does not manage, then a managed one (linked).
    let reg = c
        .register(m::RegisterRequest {
            name: "hypatia-ext".into(),
            address: "localhost".into(),
            port: 7000,
            tags: vec!["rag".into()],
            version: "9.9.0".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(reg.success && !reg.id.is_empty(), "{reg:?}");
    let hb = c
        .heartbeat(m::HeartbeatRequest { id: reg.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert!(hb.acknowledged && hb.next_heartbeat_ms > 0);
    let found = c
        .discover(m::DiscoverRequest {
            name: "Hypatia-Ext".into(),
            tags: vec![],
        })
        .await
        .unwrap()
        .into_inner()
        .services;
    assert_eq!(found.len(), 1);
    assert_eq!(
        (
            found[0].id.as_str(),
            found[0].port,
            found[0].version.as_str()
        ),
        (reg.id.as_str(), 7000, "9.9.0")
    );
    assert_eq!(found[0].status, m::ServiceStatus::Healthy as i32);
    let by_tag = c
        .discover(m::DiscoverRequest {
            name: String::new(),
            tags: vec!["rag".into()],
        })
        .await
        .unwrap()
        .into_inner()
        .services;
    assert_eq!(by_tag.len(), 1);
    let got = c
        .get_service(m::GetServiceRequest { id: reg.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.name, "hypatia-ext");
    let linked = c
        .register(m::RegisterRequest {
            name: "alpha".into(),
            address: "localhost".into(),
            port: 7001,
            version: "2.0.0".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(linked.success, "{linked:?}");
    assert!(linked.message.contains("linked"), "{linked:?}");
    let list = c.list_services(c::Empty {}).await.unwrap().into_inner();
    assert_eq!(list.total, 4, "three managed, one registered: {list:?}");
    let a = list.services.iter().find(|s| s.name == "alpha").unwrap();
    assert_eq!(a.id, linked.id);
    assert_eq!(a.status, m::ServiceStatus::Healthy as i32);
    assert_eq!(a.metadata["state"], "running");
    assert_eq!((a.port, a.version.as_str()), (7001, "2.0.0"));
    // The same registry behind v1.
    let v1_list = old
        .list_services(pb::Empty {})
        .await
        .unwrap()
        .into_inner()
        .services;
    assert!(
        v1_list
            .iter()
            .any(|e| e.name == "hypatia-ext" && e.source == "registered" && e.healthy)
    );
    c.deregister(m::DeregisterRequest { id: reg.id.clone() })
        .await
        .unwrap();
    let hb = c
        .heartbeat(m::HeartbeatRequest { id: reg.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert!(!hb.acknowledged, "a deregistered id is not acknowledged");
    let v1_list = old.list_services(pb::Empty {}).await.unwrap().into_inner();
    assert!(!v1_list.services.iter().any(|e| e.name == "hypatia-ext"));

    // Health and overview.
    let health = c.get_system_health(c::Empty {}).await.unwrap().into_inner();
    assert_eq!(health.overall_status, "healthy", "{health:?}");
    assert_eq!(health.services.len(), 3);
    let overview = c
        .get_system_overview(c::Empty {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!((overview.total_services, overview.healthy_services), (3, 3));
    assert_eq!(overview.services["alpha"].r#type, "managed");
    assert_eq!(overview.services["alpha"].version, "1.2.3");

    // Metrics count real calls, failures included.
    let before = c.get_metrics(c::Empty {}).await.unwrap().into_inner();
    let _ = c
        .get_service(m::GetServiceRequest { id: "nope".into() })
        .await
        .unwrap_err();
    let after = c.get_metrics(c::Empty {}).await.unwrap().into_inner();
    assert_eq!(after.total_requests, before.total_requests + 2);
    assert_eq!(after.failed_requests, before.failed_requests + 1);
    assert_eq!(
        after.successful_requests + after.failed_requests,
        after.total_requests
    );
    assert!(after.requests_per_second > 0.0 && after.active_connections >= 1);

    // A crash is in GetErrors with service, time and message.
    let gamma_pid = mdw_status(&mut c).await.services[2].pid;
    test_support::signal(gamma_pid as u32, rustix::process::Signal::KILL);
    let deadline = Instant::now() + Duration::from_secs(10);
    let errors = loop {
        let errors = c
            .get_errors(m::GetErrorsRequest { limit: 10 })
            .await
            .unwrap()
            .into_inner()
            .errors;
        if errors.iter().any(|e| e.service == "gamma") || Instant::now() > deadline {
            break errors;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let e = errors.iter().find(|e| e.service == "gamma").unwrap();
    assert_eq!(e.operation, "exited");
    assert!(e.message.contains(&gamma_pid.to_string()), "{e:?}");
    assert!(e.timestamp.ends_with('Z'), "{e:?}");
    next_change(&mut changes, "gamma", m::ServiceStatus::Healthy).await;

    // A forced stop does not wait out the grace period (gamma ignores SIGTERM; 3 s).
    let gamma_pid = mdw_status(&mut c).await.services[2].pid;
    let t = Instant::now();
    let stop = c
        .stop_service(m::StopServiceRequest {
            name: "gamma".into(),
            force: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(stop.success);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert!(!alive(gamma_pid as u32));

    // Pipelines live in memory; execution is refused with the reason.
    let step = |id: &str, deps: &[&str]| m::PipelineStep {
        id: id.into(),
        service_type: "turing".into(),
        operation: "chat".into(),
        depends_on: deps.iter().map(|d| d.to_string()).collect(),
        ..Default::default()
    };
    let p = c
        .create_pipeline(m::CreatePipelineRequest {
            id: "p1".into(),
            name: "rag".into(),
            description: String::new(),
            steps: vec![step("a", &[]), step("b", &["a"])],
        })
        .await
        .unwrap()
        .into_inner();
    assert!(p.created_at.ends_with('Z'));
    assert_eq!(
        c.get_pipeline(m::GetPipelineRequest { id: "p1".into() })
            .await
            .unwrap()
            .into_inner()
            .steps
            .len(),
        2
    );
    let listed = c.list_pipelines(c::Empty {}).await.unwrap().into_inner();
    assert_eq!(listed.pipelines.len(), 1);
    let exec = c
        .execute_pipeline(m::ExecutePipelineRequest {
            pipeline_id: "p1".into(),
            input: "{}".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(exec.code(), Code::Unimplemented);
    assert!(exec.message().contains("Russell"), "{exec:?}");
    c.delete_pipeline(m::DeletePipelineRequest { id: "p1".into() })
        .await
        .unwrap();
    assert!(
        c.list_pipelines(c::Empty {})
            .await
            .unwrap()
            .into_inner()
            .pipelines
            .is_empty()
    );

    // Stop everything, forced: nothing is left, both views agree.
    let pids: Vec<i32> = mdw_status(&mut c)
        .await
        .services
        .iter()
        .map(|s| s.pid)
        .collect();
    let all = c
        .stop_all_services(m::StopAllRequest { force: true })
        .await
        .unwrap()
        .into_inner();
    assert!(all.success, "{all:?}");
    assert_eq!(all.results.len(), 3);
    for pid in pids.into_iter().filter(|p| *p > 0) {
        assert!(!alive(pid as u32), "PID {pid} survived StopAllServices");
    }
    assert_same_view(&f, &mut old, &mut c).await;
    let health = c.get_system_health(c::Empty {}).await.unwrap().into_inner();
    assert_eq!(health.overall_status, "unhealthy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_service_is_shown_and_not_counted_against_health() {
    let f = Fixture::new(
        &[
            Svc::demo("alpha"),
            Svc::demo("off").extra("enabled = false"),
        ],
        "autostart = false",
    );
    let _d = f.start();
    let mut c = mdw(&f, None).await;
    let started = c
        .start_service(m::StartServiceRequest {
            name: "alpha".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(started.success, "{started:?}");
    let health = c.get_system_health(c::Empty {}).await.unwrap().into_inner();
    let off = health.services.iter().find(|s| s.name == "off").unwrap();
    assert_eq!(off.status, "disabled");
    assert_eq!(health.overall_status, "healthy", "{health:?}");
    let status = c
        .get_service_status(m::GetServiceStatusRequest { name: "off".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.metadata["enabled"], "false");
    assert_eq!(status.status, m::ServiceStatus::Stopped as i32);
    let overview = c
        .get_system_overview(c::Empty {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (overview.healthy_services, overview.unhealthy_services),
        (1, 0)
    );
    let mut old = v1(&f, None).await;
    v1_status(&mut old, &f).await;
}
