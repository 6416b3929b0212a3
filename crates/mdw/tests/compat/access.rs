//! The token rules of mDW's `mdw.russell.RussellService`, every method both ways: with a
//! token configured, control methods need it; other methods need it only from another
//! host; without a token everything is open.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use russell_api::client::BearerAuth;
use russell_api::mdw::common as c;
use russell_api::mdw::russell as m;
use russell_api::mdw::russell::russell_service_client::RussellServiceClient;
use russell_api::pb;
use test_support::compat::{Mdw, mdw, mdw_status, v1};
use test_support::{Fixture, Svc};
use tonic::Code;

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

/// This machine's own non-loopback IPv4 address, if it has one (the source address of a
/// route out; no packet is sent).
fn own_address() -> Option<std::net::IpAddr> {
    let sock = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    sock.connect("192.0.2.1:9").ok()?;
    let ip = sock.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_reads_from_another_host_need_it() {
    let Some(ip) = own_address() else {
        eprintln!("skipped: this machine has no non-loopback IPv4 address to call from");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "t0ken\n").unwrap();
    let f = Fixture::new(
        &[Svc::demo("alpha")],
        &format!(
            "token_file = {:?}\nautostart = false",
            token.display().to_string()
        ),
    );
    let listen = format!("0.0.0.0:{}", f.port);
    let d = f.spawn(&["--listen", &listen, "--allow-remote"]);
    assert!(
        test_support::wait_for(Duration::from_secs(20), || f.serving()),
        "{}",
        d.log()
    );
    let remote = format!("{ip}:{}", f.port);
    let connect = |token: Option<&'static str>| {
        let remote = remote.clone();
        async move {
            let ch = russell_api::client::channel(&remote).await.unwrap();
            RussellServiceClient::with_interceptor(ch, BearerAuth::new(token).unwrap())
        }
    };
    let mut bare = connect(None).await;
    let e = bare.list_services(c::Empty {}).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "read from {ip}");
    let e = bare
        .register(m::RegisterRequest {
            name: "ext".into(),
            address: "localhost".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "register from {ip}");
    let mut with = connect(Some("t0ken")).await;
    let l = with.list_services(c::Empty {}).await.unwrap().into_inner();
    assert_eq!(l.total, 1);
    // From loopback, the same read needs no token.
    let mut local = mdw(&f, None).await;
    assert_eq!(
        local
            .list_services(c::Empty {})
            .await
            .unwrap()
            .into_inner()
            .total,
        1
    );
}
