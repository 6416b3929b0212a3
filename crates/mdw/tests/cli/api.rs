//! The gRPC API against a real `mdw serve russell` with stand-in services on free ports:
//! every RPC's happy path and error codes, event order, log tail and follow, token auth,
//! and the registry.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use russell_api::pb;
use test_support::{Fixture, Svc, alive, wait_for};
use tonic::Code;

fn req(name: &str) -> pb::ServiceRequest {
    pb::ServiceRequest {
        name: name.to_string(),
    }
}

async fn client(f: &Fixture) -> russell_api::Client {
    // Token-free client regardless of the environment of the test runner.
    let ch = russell_api::client::channel(&f.addr).await.unwrap();
    pb::russell_service_client::RussellServiceClient::with_interceptor(
        ch,
        russell_api::client::BearerAuth::default(),
    )
}

async fn status(c: &mut russell_api::Client) -> pb::OrchestratorStatus {
    c.get_orchestrator_status(pb::StatusRequest {})
        .await
        .unwrap()
        .into_inner()
}

fn svc<'a>(s: &'a pb::OrchestratorStatus, short: &str) -> &'a pb::ServiceStatus {
    s.services.iter().find(|x| x.short_name == short).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orchestrator_rpcs_and_error_codes() {
    let closed = test_support::free_port();
    let f = Fixture::new(
        &[Svc::demo("alpha"), Svc::demo("beta").deps(&["alpha"])],
        &format!(
            "autostart = false\n\n[[externals]]\nname = \"Ollama\"\nshort_name = \"ollama\"\n\
             optional = true\n[externals.health_check]\ntype = \"tcp\"\n\
             address = \"127.0.0.1:{closed}\"\ninterval = \"300ms\"\ntimeout = \"200ms\"\n"
        ),
    );
    let _d = f.start();
    let mut c = client(&f).await;

    let s = status(&mut c).await;
    assert_eq!(s.total_services, 2);
    assert!(
        s.services
            .iter()
            .all(|x| x.state == "stopped" && x.pid == 0)
    );

    let all = c
        .start_all_services(pb::StartAllRequest { force: false })
        .await
        .unwrap()
        .into_inner();
    assert!(all.success, "{all:?}");
    assert_eq!(all.results.len(), 2);
    let s = status(&mut c).await;
    f.record(&serde_json::json!({"services": s.services.iter().map(|x| serde_json::json!({"pid": x.pid})).collect::<Vec<_>>()}));
    assert_eq!(s.status, "running");
    assert_eq!(s.healthy_services, 2);
    for x in &s.services {
        assert_eq!(x.state, "running");
        assert!(x.pid != 0 && alive(x.pid));
        assert!(x.http_port != 0);
    }
    assert_eq!(svc(&s, "beta").dependencies, vec!["alpha".to_string()]);

    // Stop by name in another case, start by display name.
    c.stop_service(req("BETA")).await.unwrap();
    let s = status(&mut c).await;
    assert_eq!(svc(&s, "beta").state, "stopped");
    assert!(svc(&s, "beta").stopped_by_user);
    let r = c.start_service(req("Beta")).await.unwrap().into_inner();
    assert!(r.success, "{r:?}");

    // Restart gives a new process.
    let old = svc(&status(&mut c).await, "alpha").pid;
    let r = c.restart_service(req("alpha")).await.unwrap().into_inner();
    assert!(r.success, "{r:?}");
    let s = status(&mut c).await;
    let new = svc(&s, "alpha").pid;
    f.record(&serde_json::json!({"services": [{"pid": new}, {"pid": svc(&s, "beta").pid}]}));
    assert!(new != 0 && new != old, "restart kept PID {old}");
    assert!(!alive(old));

    // Error codes.
    let huge = "x".repeat(100_000);
    for (name, code) in [
        ("nope", Code::NotFound),
        ("", Code::InvalidArgument),
        ("a\u{0}b", Code::InvalidArgument),
        ("tab\there", Code::InvalidArgument),
        (huge.as_str(), Code::InvalidArgument),
        ("ünïcödé", Code::NotFound),
    ] {
        let short: String = name.chars().take(20).collect();
        assert_eq!(
            c.start_service(req(name)).await.unwrap_err().code(),
            code,
            "start {short:?}"
        );
        assert_eq!(
            c.stop_service(req(name)).await.unwrap_err().code(),
            code,
            "stop {short:?}"
        );
        assert_eq!(
            c.restart_service(req(name)).await.unwrap_err().code(),
            code,
            "restart {short:?}"
        );
    }
    let e = c
        .stream_logs(pb::StreamLogsRequest {
            name: String::new(),
            tail: u32::MAX,
            follow: false,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = c
        .stream_logs(pb::StreamLogsRequest {
            name: "nope".into(),
            tail: 1,
            follow: false,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    // An external has no captured output: refused, not a follow that never ends.
    let e = c
        .stream_logs(pb::StreamLogsRequest {
            name: "Ollama".into(),
            tail: 1,
            follow: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("capture the output of"), "{e:?}");
    let e = c
        .watch_events(pb::WatchEventsRequest {
            names: vec!["nope".into()],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    let stopped = c
        .stop_all_services(pb::Empty {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        stopped.stopped,
        vec!["beta".to_string(), "alpha".to_string()],
        "dependents first"
    );
    let s = status(&mut c).await;
    assert!(
        s.services
            .iter()
            .all(|x| x.state == "stopped" && x.pid == 0)
    );
    assert!(!alive(new));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_events_crash_then_restart_in_order() {
    let f = Fixture::new(&[Svc::demo("crashy")], "");
    let _d = f.start();
    let st = f.wait_all_healthy(Duration::from_secs(20));
    let pid = Fixture::service(&st, "crashy")["pid"].as_u64().unwrap() as u32;
    let mut c = client(&f).await;
    let mut events = c
        .watch_events(pb::WatchEventsRequest {
            names: vec!["CRASHY".into()],
        })
        .await
        .unwrap()
        .into_inner();
    test_support::signal(pid, rustix::process::Signal::KILL);

    let want = ["exited", "restarting", "started", "healthy"];
    let mut seen = Vec::new();
    let got = tokio::time::timeout(Duration::from_secs(20), async {
        let mut next = 0;
        while let Some(e) = events.message().await.unwrap() {
            assert_eq!(e.service, "crashy");
            seen.push(e.kind.clone());
            if e.kind == want[next] {
                next += 1;
                if next == want.len() {
                    return;
                }
            }
        }
    })
    .await;
    assert!(got.is_ok(), "events seen: {seen:?}");
    let i = |k: &str| seen.iter().position(|x| x == k).unwrap();
    assert!(
        i("exited") < i("restarting")
            && i("restarting") < i("started")
            && i("started") < i("healthy"),
        "{seen:?}"
    );
    let st = f.status();
    let s = Fixture::service(&st, "crashy");
    assert_ne!(s["pid"].as_u64().unwrap() as u32, pid);
    assert_eq!(s["restart_count"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_logs_tail_then_follow() {
    let f = Fixture::new(&[Svc::demo("chatty").args(&["--log-rate", "20"])], "");
    let _d = f.start();
    f.wait_all_healthy(Duration::from_secs(20));
    let mut c = client(&f).await;
    assert!(wait_for(Duration::from_secs(10), || {
        f.mdw(&["logs", "chatty", "-n", "30"])
            .stdout
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            >= 30
    }));

    let tail: Vec<pb::LogLine> = {
        let mut s = c
            .stream_logs(pb::StreamLogsRequest {
                name: "chatty".into(),
                tail: 5,
                follow: false,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let mut v = Vec::new();
        while let Some(l) = s.message().await.unwrap() {
            v.push(l);
        }
        v
    };
    assert_eq!(tail.len(), 5, "{tail:?}");
    assert!(
        tail.iter()
            .all(|l| l.service == "chatty" && (l.stream == "stdout" || l.stream == "stderr"))
    );
    assert!(
        tail.iter().any(|l| l.stream == "stderr"),
        "the stand-in alternates streams"
    );

    let mut s = c
        .stream_logs(pb::StreamLogsRequest {
            name: "chatty".into(),
            tail: 3,
            follow: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut lines = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while lines.len() < 13 {
            lines.push(s.message().await.unwrap().unwrap());
        }
    })
    .await
    .unwrap();
    let stamps: Vec<_> = lines
        .iter()
        .map(|l| {
            let t = l.timestamp.unwrap();
            (t.seconds, t.nanos)
        })
        .collect();
    assert!(
        stamps.windows(2).all(|w| w[0] <= w[1]),
        "lines out of order"
    );
    let texts: std::collections::HashSet<_> = lines.iter().map(|l| l.line.clone()).collect();
    assert_eq!(texts.len(), lines.len(), "a line came twice: {lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_auth_on() {
    let token_dir = tempfile::tempdir().unwrap();
    let token_file = token_dir.path().join("token");
    std::fs::write(&token_file, "correct-horse\n").unwrap();
    let f = Fixture::new(
        &[],
        &format!("token_file = {:?}", token_file.display().to_string()),
    );
    let _d = f.start();

    // Health stays open.
    assert!(russell_api::client::serving(&f.addr).await.unwrap());

    let ch = russell_api::client::channel(&f.addr).await.unwrap();
    for (token, ok) in [
        (None, false),
        (Some("wrong"), false),
        (Some("correct-horse"), true),
    ] {
        let mut c = pb::russell_service_client::RussellServiceClient::with_interceptor(
            ch.clone(),
            russell_api::client::BearerAuth::new(token).unwrap(),
        );
        let r = c.get_orchestrator_status(pb::StatusRequest {}).await;
        assert_eq!(r.is_ok(), ok, "token {token:?}: {r:?}");
        if !ok {
            assert_eq!(r.unwrap_err().code(), Code::Unauthenticated);
            let r = c.stop_all_services(pb::Empty {}).await;
            assert_eq!(r.unwrap_err().code(), Code::Unauthenticated);
        }
    }

    // The CLI: refused without a token, naming what to set; fine with it.
    let out = f.mdw(&["status"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("MDW_RUSSELL_TOKEN"), "{err}");
    let out = std::process::Command::new(test_support::mdw_bin())
        .args(["--russell", &f.addr, "status", "--json"])
        .env("MDW_RUSSELL_TOKEN_FILE", &token_file)
        .env_remove("MDW_RUSSELL_TOKEN")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_auth_off() {
    let f = Fixture::new(&[], "");
    let _d = f.start();
    let mut c = client(&f).await;
    assert_eq!(status(&mut c).await.total_services, 0);
    // A token the server does not ask for is ignored.
    let ch = russell_api::client::channel(&f.addr).await.unwrap();
    let mut c = pb::russell_service_client::RussellServiceClient::with_interceptor(
        ch,
        russell_api::client::BearerAuth::new(Some("whatever")).unwrap(),
    );
    assert!(
        c.get_orchestrator_status(pb::StatusRequest {})
            .await
            .is_ok()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_ttl_and_managed_entries() {
    let f = Fixture::new(&[Svc::demo("kant")], "");
    let _d = f.start();
    let st = f.wait_all_healthy(Duration::from_secs(20));
    let kant_pid = Fixture::service(&st, "kant")["pid"].as_u64().unwrap() as u32;
    let mut c = client(&f).await;

    // A real process stands behind the registered entry: nothing may touch it.
    let mut stranger = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let reg = pb::RegisterRequest {
        name: "Leibniz".into(),
        address: "127.0.0.1".into(),
        ports: [("grpc".to_string(), 9140u32)].into(),
        metadata: [("pid".to_string(), stranger.id().to_string())].into(),
        ttl: Some(prost_types_duration(1)),
    };
    let id = c.register(reg.clone()).await.unwrap().into_inner().id;
    assert!(!id.is_empty());

    let list = c
        .list_services(pb::Empty {})
        .await
        .unwrap()
        .into_inner()
        .services;
    let managed = list.iter().find(|e| e.name == "kant").unwrap();
    assert_eq!(managed.source, "managed");
    assert!(managed.healthy);
    assert_eq!(
        managed.ports.get("http").copied(),
        Some(u32::from(f_port(&st)))
    );
    let registered = list.iter().find(|e| e.name == "Leibniz").unwrap();
    assert_eq!(registered.source, "registered");
    assert!(registered.healthy);

    let found = c
        .discover(pb::DiscoverRequest {
            name: "leibniz".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.endpoints.len(), 1);
    assert_eq!(found.endpoints[0].ports["grpc"], 9140);
    let found = c
        .discover(pb::DiscoverRequest {
            name: "Kant".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.endpoints[0].source, "managed");

    // Registry entries are never started, stopped or killed.
    for code in [
        c.restart_service(req("leibniz")).await.unwrap_err().code(),
        c.stop_service(req("leibniz")).await.unwrap_err().code(),
        c.start_service(req("leibniz")).await.unwrap_err().code(),
    ] {
        assert!(
            matches!(code, Code::NotFound | Code::FailedPrecondition),
            "{code:?}"
        );
    }
    assert!(
        stranger.try_wait().unwrap().is_none(),
        "a registry entry's process was touched"
    );

    // Error codes.
    assert_eq!(
        c.register(pb::RegisterRequest {
            name: "kant".into(),
            ..reg.clone()
        })
        .await
        .unwrap_err()
        .code(),
        Code::AlreadyExists
    );
    assert_eq!(
        c.register(pb::RegisterRequest {
            name: String::new(),
            ..reg.clone()
        })
        .await
        .unwrap_err()
        .code(),
        Code::InvalidArgument
    );
    assert_eq!(
        c.register(pb::RegisterRequest {
            address: String::new(),
            ..reg.clone()
        })
        .await
        .unwrap_err()
        .code(),
        Code::InvalidArgument
    );
    assert_eq!(
        c.register(pb::RegisterRequest {
            ports: [("x".to_string(), 70000u32)].into(),
            ..reg.clone()
        })
        .await
        .unwrap_err()
        .code(),
        Code::InvalidArgument
    );
    assert_eq!(
        c.register(pb::RegisterRequest {
            ttl: Some(prost_types_duration(-5)),
            ..reg.clone()
        })
        .await
        .unwrap_err()
        .code(),
        Code::InvalidArgument
    );
    assert_eq!(
        c.heartbeat(pb::HeartbeatRequest {
            name: "ghost".into()
        })
        .await
        .unwrap_err()
        .code(),
        Code::NotFound
    );
    assert_eq!(
        c.deregister(req("ghost")).await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(
        c.deregister(req("kant")).await.unwrap_err().code(),
        Code::FailedPrecondition
    );
    assert_eq!(
        c.discover(pb::DiscoverRequest {
            name: "ghost".into()
        })
        .await
        .unwrap_err()
        .code(),
        Code::NotFound
    );
    assert_eq!(
        c.discover(pb::DiscoverRequest {
            name: "\u{1b}[2J".into()
        })
        .await
        .unwrap_err()
        .code(),
        Code::InvalidArgument
    );

    // Heartbeats keep it; past the TTL it turns unhealthy, past twice the TTL it is gone.
    c.heartbeat(pb::HeartbeatRequest {
        name: "LEIBNIZ".into(),
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let e = c
        .discover(pb::DiscoverRequest {
            name: "leibniz".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!e.endpoints[0].healthy, "past its TTL");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        c.discover(pb::DiscoverRequest {
            name: "leibniz".into()
        })
        .await
        .unwrap_err()
        .code(),
        Code::NotFound
    );
    let list = c
        .list_services(pb::Empty {})
        .await
        .unwrap()
        .into_inner()
        .services;
    assert!(list.iter().all(|e| e.name != "Leibniz"));

    // Register again, then deregister.
    c.register(pb::RegisterRequest { ttl: None, ..reg })
        .await
        .unwrap();
    c.deregister(req("leibniz")).await.unwrap();
    assert_eq!(
        c.heartbeat(pb::HeartbeatRequest {
            name: "leibniz".into()
        })
        .await
        .unwrap_err()
        .code(),
        Code::NotFound
    );

    assert!(alive(kant_pid), "the managed service was touched");
    assert!(stranger.try_wait().unwrap().is_none());
    let _ = stranger.kill();
    let _ = stranger.wait();
}

fn prost_types_duration(seconds: i64) -> russell_api::prost_types::Duration {
    russell_api::prost_types::Duration { seconds, nanos: 0 }
}

fn f_port(st: &serde_json::Value) -> u16 {
    Fixture::service(st, "kant")["http_port"].as_u64().unwrap() as u16
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_rpc_stops_services_and_russell() {
    let f = Fixture::new(&[Svc::demo("one"), Svc::demo("two").deps(&["one"])], "");
    let mut d = f.start();
    let st = f.wait_all_healthy(Duration::from_secs(20));
    let pids: Vec<u32> = st["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["pid"].as_u64().unwrap() as u32)
        .collect();
    let mut c = client(&f).await;
    c.shutdown(pb::Empty {}).await.unwrap();
    for pid in &pids {
        assert!(!alive(*pid), "service {pid} survived Shutdown");
    }
    let exit = d
        .wait_exit(Duration::from_secs(15))
        .expect("Russell did not exit");
    assert!(exit.success(), "{exit:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_log_reader_gets_a_notice_not_a_crash() {
    let f = Fixture::new(&[Svc::demo("flood").args(&["--log-rate", "5000"])], "");
    let _d = f.start();
    f.wait_all_healthy(Duration::from_secs(20));
    // A small receive window, so the lines pile up in Russell rather than in this client.
    let ch = russell_api::client::endpoint(&f.addr)
        .unwrap()
        .initial_stream_window_size(Some(65_535))
        .initial_connection_window_size(Some(65_535))
        .connect()
        .await
        .unwrap();
    let mut c = pb::russell_service_client::RussellServiceClient::with_interceptor(
        ch,
        russell_api::client::BearerAuth::default(),
    );
    let mut s = c
        .stream_logs(pb::StreamLogsRequest {
            name: String::new(),
            tail: 0,
            follow: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    // Do not read for a while: the broadcast overtakes this reader.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let notice = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(l) = s.message().await.unwrap() {
            if l.service == "russell" {
                return Some(l.line);
            }
        }
        None
    })
    .await
    .unwrap();
    let notice = notice.expect("the stream ended without a notice");
    assert!(notice.contains("skipped"), "{notice}");
    // The stream goes on, and Russell still answers.
    assert!(s.message().await.unwrap().is_some());
    assert_eq!(status(&mut c).await.total_services, 1);
}
