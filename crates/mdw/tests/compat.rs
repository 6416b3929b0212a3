//! mDW's `mdw.russell.RussellService` against a real `mdw serve russell` with stand-in
//! services on free ports, through a client generated from the project's `mdw.russell`
//! proto: every method on real state, compared with the v1 view of the same moment; bad
//! input on every method that takes any; the token rules of every method both ways.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Fixture, Svc, alive};
use russell_api::client::BearerAuth;
use russell_api::mdw::common as c;
use russell_api::mdw::russell as m;
use russell_api::mdw::russell::russell_service_client::RussellServiceClient;
use russell_api::pb;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

type Mdw = RussellServiceClient<InterceptedService<Channel, BearerAuth>>;

async fn mdw(f: &Fixture, token: Option<&str>) -> Mdw {
    let ch = russell_api::client::channel(&f.addr).await.unwrap();
    RussellServiceClient::with_interceptor(ch, BearerAuth::new(token).unwrap())
}

async fn v1(f: &Fixture, token: Option<&str>) -> russell_api::Client {
    let ch = russell_api::client::channel(&f.addr).await.unwrap();
    pb::russell_service_client::RussellServiceClient::with_interceptor(
        ch,
        BearerAuth::new(token).unwrap(),
    )
}

async fn v1_status(c: &mut russell_api::Client, f: &Fixture) -> pb::OrchestratorStatus {
    let s = c
        .get_orchestrator_status(pb::StatusRequest {})
        .await
        .unwrap()
        .into_inner();
    f.record(&serde_json::json!({"services": s.services.iter().map(|x| serde_json::json!({"pid": x.pid})).collect::<Vec<_>>()}));
    s
}

async fn mdw_status(c: &mut Mdw) -> m::OrchestratorStatusResponse {
    c.get_orchestrator_status(c::Empty {})
        .await
        .unwrap()
        .into_inner()
}

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
    common::signal(gamma_pid as u32, rustix::process::Signal::KILL);
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

/// Every method that takes input, with bad input: the code, a message, and no change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_code_and_a_message_and_changes_nothing() {
    let f = Fixture::new(&[Svc::demo("alpha")], "");
    let _d = f.start();
    f.wait_all_healthy(Duration::from_secs(20));
    let mut old = v1(&f, None).await;
    let mut c = mdw(&f, None).await;
    let before = v1_status(&mut old, &f).await;
    let reg = c
        .register(m::RegisterRequest {
            name: "ext".into(),
            address: "localhost".into(),
            port: 7000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();

    let code = |r: Result<(), tonic::Status>| match r {
        Ok(()) => None,
        Err(s) => {
            assert!(!s.message().is_empty(), "{s:?}");
            Some(s.code())
        }
    };
    let register = |name: &str, address: &str, port: i32, tags: Vec<String>| m::RegisterRequest {
        name: name.into(),
        address: address.into(),
        port,
        tags,
        ..Default::default()
    };
    let step = |id: &str, deps: &[&str]| m::PipelineStep {
        id: id.into(),
        depends_on: deps.iter().map(|d| d.to_string()).collect(),
        ..Default::default()
    };
    let pipeline = |steps: Vec<m::PipelineStep>| m::CreatePipelineRequest {
        id: "p".into(),
        steps,
        ..Default::default()
    };
    let ia = Some(Code::InvalidArgument);
    let nf = Some(Code::NotFound);
    let cases: Vec<(&str, Option<Code>, Option<Code>)> = vec![
        (
            "Register empty name",
            code(
                c.register(register("", "localhost", 1, vec![]))
                    .await
                    .map(|_| ()),
            ),
            ia,
        ),
        (
            "Register control chars",
            code(
                c.register(register("a\nb", "localhost", 1, vec![]))
                    .await
                    .map(|_| ()),
            ),
            ia,
        ),
        (
            "Register empty address",
            code(c.register(register("x", " ", 1, vec![])).await.map(|_| ())),
            ia,
        ),
        (
            "Register port -1",
            code(
                c.register(register("x", "localhost", -1, vec![]))
                    .await
                    .map(|_| ()),
            ),
            ia,
        ),
        (
            "Register port 70000",
            code(
                c.register(register("x", "localhost", 70_000, vec![]))
                    .await
                    .map(|_| ()),
            ),
            ia,
        ),
        (
            "Register 65 tags",
            code(
                c.register(register("x", "localhost", 1, vec!["t".into(); 65]))
                    .await
                    .map(|_| ()),
            ),
            ia,
        ),
        (
            "Deregister empty",
            code(
                c.deregister(m::DeregisterRequest { id: String::new() })
                    .await
                    .map(|_| ()),
            ),
            ia,
        ),
        (
            "Deregister unknown",
            code(
                c.deregister(m::DeregisterRequest {
                    id: "ghost-1".into(),
                })
                .await
                .map(|_| ()),
            ),
            nf,
        ),
        (
            "Deregister managed",
            code(
                c.deregister(m::DeregisterRequest {
                    id: "managed/alpha".into(),
                })
                .await
                .map(|_| ()),
            ),
            Some(Code::FailedPrecondition),
        ),
        (
            "Heartbeat empty",
            code(
                c.heartbeat(m::HeartbeatRequest { id: String::new() })
                    .await
                    .map(|_| ()),
            ),
            ia,
        ),
        (
            "Discover nothing",
            code(c.discover(m::DiscoverRequest::default()).await.map(|_| ())),
            ia,
        ),
        (
            "Discover control chars",
            code(
                c.discover(m::DiscoverRequest {
                    name: "\u{7f}".into(),
                    tags: vec![],
                })
                .await
                .map(|_| ()),
            ),
            ia,
        ),
        (
            "GetService empty",
            code(
                c.get_service(m::GetServiceRequest { id: String::new() })
                    .await
                    .map(|_| ()),
            ),
            ia,
        ),
        (
            "GetService unknown",
            code(
                c.get_service(m::GetServiceRequest { id: "ghost".into() })
                    .await
                    .map(|_| ()),
            ),
            nf,
        ),
        (
            "StartService empty",
            code(
                c.start_service(m::StartServiceRequest {
                    name: String::new(),
                })
                .await
                .map(|_| ()),
            ),
            ia,
        ),
        (
            "StartService unknown",
            code(
                c.start_service(m::StartServiceRequest {
                    name: "ghost".into(),
                })
                .await
                .map(|_| ()),
            ),
            nf,
        ),
        (
            "StopService empty",
            code(
                c.stop_service(m::StopServiceRequest {
                    name: String::new(),
                    force: true,
                })
                .await
                .map(|_| ()),
            ),
            ia,
        ),
        (
            "StopService unknown",
            code(
                c.stop_service(m::StopServiceRequest {
                    name: "ghost".into(),
                    force: true,
                })
                .await
                .map(|_| ()),
            ),
            nf,
        ),
        (
            "RestartService empty",
            code(
                c.restart_service(m::RestartServiceRequest {
                    name: String::new(),
                })
                .await
                .map(|_| ()),
            ),
            ia,
        ),
        (
            "RestartService unknown",
            code(
                c.restart_service(m::RestartServiceRequest {
                    name: "ghost".into(),
                })
                .await
                .map(|_| ()),
            ),
            nf,
        ),
        (
            "GetServiceStatus empty",
            code(
                c.get_service_status(m::GetServiceStatusRequest {
                    name: String::new(),
                })
                .await
                .map(|_| ()),
            ),
            ia,
        ),
        (
            "GetServiceStatus unknown",
            code(
                c.get_service_status(m::GetServiceStatusRequest {
                    name: "ghost".into(),
                })
                .await
                .map(|_| ()),
            ),
            nf,
        ),
        (
            "GetErrors limit -1",
            code(
                c.get_errors(m::GetErrorsRequest { limit: -1 })
                    .await
                    .map(|_| ()),
            ),
            ia,
        ),
        (
            "CreatePipeline empty step id",
            code(
                c.create_pipeline(pipeline(vec![step("", &[])]))
                    .await
                    .map(|_| ()),
            ),
            ia,
        ),
        (
            "CreatePipeline twice the same step",
            code(
                c.create_pipeline(pipeline(vec![step("a", &[]), step("a", &[])]))
                    .await
                    .map(|_| ()),
            ),
            ia,
        ),
        (
            "CreatePipeline unknown depends_on",
            code(
                c.create_pipeline(pipeline(vec![step("a", &["zz"])]))
                    .await
                    .map(|_| ()),
            ),
            ia,
        ),
        (
            "CreatePipeline cycle",
            code(
                c.create_pipeline(pipeline(vec![step("a", &["b"]), step("b", &["a"])]))
                    .await
                    .map(|_| ()),
            ),
            ia,
        ),
        (
            "GetPipeline empty",
            code(
                c.get_pipeline(m::GetPipelineRequest { id: String::new() })
                    .await
                    .map(|_| ()),
            ),
            ia,
        ),
        (
            "GetPipeline unknown",
            code(
                c.get_pipeline(m::GetPipelineRequest { id: "p".into() })
                    .await
                    .map(|_| ()),
            ),
            nf,
        ),
        (
            "DeletePipeline unknown",
            code(
                c.delete_pipeline(m::DeletePipelineRequest { id: "p".into() })
                    .await
                    .map(|_| ()),
            ),
            nf,
        ),
        (
            "ExecutePipeline unknown",
            code(
                c.execute_pipeline(m::ExecutePipelineRequest {
                    pipeline_id: "p".into(),
                    input: String::new(),
                })
                .await
                .map(|_| ()),
            ),
            nf,
        ),
    ];
    for (what, got, want) in &cases {
        assert_eq!(got, want, "{what}");
    }
    // An unknown id is no error for a heartbeat: mDW's services re-register on this answer.
    let hb = c
        .heartbeat(m::HeartbeatRequest {
            id: "ghost-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!hb.acknowledged);

    // Nothing changed: same PIDs and states, the one registration, no pipeline.
    let after = v1_status(&mut old, &f).await;
    for (x, y) in before.services.iter().zip(&after.services) {
        assert_eq!((x.pid, &x.state), (y.pid, &y.state));
    }
    let list = c.list_services(c::Empty {}).await.unwrap().into_inner();
    assert_eq!(list.total, 2, "{list:?}");
    assert!(list.services.iter().any(|s| s.id == reg.id));
    let pipelines = c.list_pipelines(c::Empty {}).await.unwrap().into_inner();
    assert!(pipelines.pipelines.is_empty());
}

/// Calls every method once; the code of each (None = OK).
async fn call_every_method(c: &mut Mdw) -> Vec<(&'static str, Option<Code>)> {
    fn code<T>(r: Result<T, tonic::Status>) -> Option<Code> {
        r.err().map(|s| s.code())
    }
    let reg = c
        .register(m::RegisterRequest {
            name: "ext".into(),
            address: "localhost".into(),
            port: 7000,
            ..Default::default()
        })
        .await;
    let id = reg
        .as_ref()
        .map(|r| r.get_ref().id.clone())
        .unwrap_or_default();
    vec![
        ("Register", code(reg)),
        (
            "Heartbeat",
            code(c.heartbeat(m::HeartbeatRequest { id: id.clone() }).await),
        ),
        (
            "Discover",
            code(
                c.discover(m::DiscoverRequest {
                    name: "alpha".into(),
                    tags: vec![],
                })
                .await,
            ),
        ),
        (
            "GetService",
            code(c.get_service(m::GetServiceRequest { id: id.clone() }).await),
        ),
        ("ListServices", code(c.list_services(c::Empty {}).await)),
        (
            "Deregister",
            code(c.deregister(m::DeregisterRequest { id }).await),
        ),
        (
            "GetServiceStatus",
            code(
                c.get_service_status(m::GetServiceStatusRequest {
                    name: "alpha".into(),
                })
                .await,
            ),
        ),
        (
            "GetAllServiceStatus",
            code(c.get_all_service_status(c::Empty {}).await),
        ),
        (
            "StreamServiceStatus",
            code(c.stream_service_status(c::Empty {}).await),
        ),
        (
            "GetSystemHealth",
            code(c.get_system_health(c::Empty {}).await),
        ),
        (
            "HealthCheck",
            code(c.health_check(c::HealthCheckRequest {}).await),
        ),
        (
            "GetSystemOverview",
            code(c.get_system_overview(c::Empty {}).await),
        ),
        ("GetMetrics", code(c.get_metrics(c::Empty {}).await)),
        (
            "GetErrors",
            code(c.get_errors(m::GetErrorsRequest { limit: 5 }).await),
        ),
        (
            "GetOrchestratorStatus",
            code(c.get_orchestrator_status(c::Empty {}).await),
        ),
        ("ListPipelines", code(c.list_pipelines(c::Empty {}).await)),
        (
            "GetPipeline",
            code(
                c.get_pipeline(m::GetPipelineRequest { id: "nope".into() })
                    .await,
            ),
        ),
        (
            "StopService",
            code(
                c.stop_service(m::StopServiceRequest {
                    name: "alpha".into(),
                    force: false,
                })
                .await,
            ),
        ),
        (
            "StartService",
            code(
                c.start_service(m::StartServiceRequest {
                    name: "alpha".into(),
                })
                .await,
            ),
        ),
        (
            "RestartService",
            code(
                c.restart_service(m::RestartServiceRequest {
                    name: "alpha".into(),
                })
                .await,
            ),
        ),
        (
            "StopAllServices",
            code(
                c.stop_all_services(m::StopAllRequest { force: false })
                    .await,
            ),
        ),
        (
            "StartAllServices",
            code(
                c.start_all_services(m::StartAllRequest { force: false })
                    .await,
            ),
        ),
        (
            "CreatePipeline",
            code(
                c.create_pipeline(m::CreatePipelineRequest {
                    id: "p".into(),
                    ..Default::default()
                })
                .await,
            ),
        ),
        (
            "ExecutePipeline",
            code(
                c.execute_pipeline(m::ExecutePipelineRequest {
                    pipeline_id: "p".into(),
                    input: String::new(),
                })
                .await,
            ),
        ),
        (
            "DeletePipeline",
            code(
                c.delete_pipeline(m::DeletePipelineRequest { id: "p".into() })
                    .await,
            ),
        ),
    ]
}

const CONTROL: &[&str] = &[
    "StopService",
    "StartService",
    "RestartService",
    "StopAllServices",
    "StartAllServices",
    "CreatePipeline",
    "ExecutePipeline",
    "DeletePipeline",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_control_needs_it_and_loopback_reads_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "t0ken\n").unwrap();
    let f = Fixture::new(
        &[Svc::demo("alpha")],
        &format!("token_file = {:?}", token.display().to_string()),
    );
    let _d = f.start();
    let mut bare = mdw(&f, None).await;
    let calls = call_every_method(&mut bare).await;
    assert_eq!(calls.len(), 25, "every method of the contract");
    for (method, code) in &calls {
        if CONTROL.contains(method) {
            assert_eq!(
                *code,
                Some(Code::Unauthenticated),
                "{method} without the token"
            );
        } else {
            assert_ne!(*code, Some(Code::Unauthenticated), "{method} from loopback");
        }
    }
    // Nothing was stopped by the refused calls.
    let mut c = mdw(&f, Some("t0ken")).await;
    let s = mdw_status(&mut c).await;
    assert_eq!(s.healthy_services, 1, "{s:?}");
    // v1 keeps needing the token for everything.
    let e = v1(&f, None)
        .await
        .list_services(pb::Empty {})
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);

    let calls = call_every_method(&mut c).await;
    for (method, code) in &calls {
        assert_ne!(
            *code,
            Some(Code::Unauthenticated),
            "{method} with the token"
        );
        let expected = match *method {
            "GetPipeline" => Some(Code::NotFound),
            "ExecutePipeline" => Some(Code::Unimplemented),
            _ => None,
        };
        assert_eq!(*code, expected, "{method} with the token");
    }
    let s = mdw_status(&mut c).await;
    f.record(&serde_json::json!({"services": s.services.iter().map(|x| serde_json::json!({"pid": x.pid})).collect::<Vec<_>>()}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_every_method_is_open() {
    let f = Fixture::new(&[Svc::demo("alpha")], "");
    let _d = f.start();
    let mut c = mdw(&f, None).await;
    for (method, code) in call_every_method(&mut c).await {
        let expected = match method {
            "GetPipeline" => Some(Code::NotFound),
            "ExecutePipeline" => Some(Code::Unimplemented),
            _ => None,
        };
        assert_eq!(code, expected, "{method}");
    }
    let s = mdw_status(&mut c).await;
    f.record(&serde_json::json!({"services": s.services.iter().map(|x| serde_json::json!({"pid": x.pid})).collect::<Vec<_>>()}));
}
