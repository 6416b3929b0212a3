//! The daemon in-process (feature `server`): server reflection answered for a reflection
//! client of its own (tonic-reflection's generated client), health open while the API
//! needs a token, and the Shutdown RPC ending `serve`.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use russell_api::pb;
use test_support::inproc::InProcess;
use tokio::net::TcpListener;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

/// A Russell in this process with an empty services file in a temp dir.
async fn start(russell_extra: &str) -> InProcess {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[russell]\nstate_dir = {:?}\n{russell_extra}\n",
        dir.path().join("state").display().to_string()
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut r = InProcess::serve(&text, &dir.path().join("services.toml"), listener).await;
    r.dir = Some(dir);
    r
}

async fn list_by_reflection(addr: &str, token: Option<&str>) -> Result<Vec<String>, tonic::Status> {
    let ch = russell_api::client::channel(addr).await.unwrap();
    let auth = russell_api::client::BearerAuth::new(token).unwrap();
    let mut client = ServerReflectionClient::with_interceptor(ch, auth);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut replies = client
        .server_reflection_info(tokio_stream::iter([req]))
        .await?
        .into_inner();
    let reply = replies.message().await?.unwrap();
    match reply.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            Ok(list.service.into_iter().map(|s| s.name).collect())
        }
        other => panic!("unexpected reflection reply {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_the_russell_service() {
    let r = start("").await;
    let names = list_by_reflection(&r.addr, None).await.unwrap();
    assert!(
        names.contains(&"mdw.russell.v1.RussellService".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"grpc.health.v1.Health".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"mdw.russell.RussellService".to_string()),
        "{names:?}"
    );
    let ch = russell_api::client::channel(&r.addr).await.unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(ch);
    for service in [
        "mdw.russell.v1.RussellService",
        "mdw.russell.RussellService",
    ] {
        let reply = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.to_string(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            reply.status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32,
            "{service}"
        );
    }
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_only_health_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "t0ken\n").unwrap();
    let r = start(&format!("token_file = {:?}", token.display().to_string())).await;
    assert!(russell_api::client::serving(&r.addr).await.unwrap());
    let e = list_by_reflection(&r.addr, None).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated);
    let names = list_by_reflection(&r.addr, Some("t0ken")).await.unwrap();
    assert!(names.contains(&"mdw.russell.v1.RussellService".to_string()));
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_rpc_ends_serve() {
    let mut r = start("").await;
    let ch = russell_api::client::channel(&r.addr).await.unwrap();
    let mut c = pb::russell_service_client::RussellServiceClient::new(ch);
    // An open event stream must not hold the server up.
    let mut events = c
        .watch_events(pb::WatchEventsRequest { names: vec![] })
        .await
        .unwrap()
        .into_inner();
    c.shutdown(pb::Empty {}).await.unwrap();
    let done = tokio::time::timeout(Duration::from_secs(20), &mut r.task).await;
    assert!(matches!(done, Ok(Ok(Ok(())))), "{done:?}");
    let end = tokio::time::timeout(Duration::from_secs(5), events.message()).await;
    assert!(matches!(end, Ok(Ok(None)) | Ok(Err(_))), "{end:?}");
    assert!(russell_api::client::serving(&r.addr).await.is_err());
}

/// A measurement, not a check: `cargo test -p russell-api --features server --release
/// --test server -- --ignored --nocapture status_throughput`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run by hand"]
async fn status_throughput() {
    let r = start("").await;
    let ch = russell_api::client::channel(&r.addr).await.unwrap();
    let c = pb::russell_service_client::RussellServiceClient::new(ch);
    let n = 2000;
    let t = std::time::Instant::now();
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let mut c = c.clone();
            tokio::spawn(async move {
                for _ in 0..n / 10 {
                    c.get_orchestrator_status(pb::StatusRequest {})
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{n} GetOrchestratorStatus calls over 10 streams in {secs:.2}s = {:.0}/s",
        f64::from(n) / secs
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_replies_from_the_cache_keep_uptime_current_and_need_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "t0ken\n").unwrap();
    let extra = format!(
        "token_file = {:?}\n\n[[services]]\nname = \"Sleeper\"\nshort_name = \"sleeper\"\ncommand = [\"sleep\", \"1000\"]\n",
        token.display().to_string()
    );
    let r = start(&extra).await;
    let ch = russell_api::client::channel(&r.addr).await.unwrap();
    let mut bare = pb::russell_service_client::RussellServiceClient::new(ch.clone());
    let e = bare
        .get_orchestrator_status(pb::StatusRequest {})
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated);

    let auth = russell_api::client::BearerAuth::new(Some("t0ken")).unwrap();
    let mut c = pb::russell_service_client::RussellServiceClient::with_interceptor(ch, auth);
    c.start_all_services(pb::StartAllRequest { force: false })
        .await
        .unwrap();
    let uptime = |s: &pb::OrchestratorStatus| {
        let u = s.services[0].uptime.unwrap();
        Duration::new(u.seconds as u64, u.nanos as u32)
    };
    let first = c
        .get_orchestrator_status(pb::StatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.services[0].state, "running", "{first:?}");
    assert_eq!(first.pid, std::process::id());
    // Nothing changes meanwhile, so only the cache's refresh can move the uptime on.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let second = c
        .get_orchestrator_status(pb::StatusRequest {})
        .await
        .unwrap()
        .into_inner();
    let moved = uptime(&second) - uptime(&first);
    assert!(
        moved >= Duration::from_millis(400),
        "uptime moved {moved:?} in 700 ms"
    );
    r.stop().await;
}
