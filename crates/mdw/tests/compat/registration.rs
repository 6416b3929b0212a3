//! Stand-ins that behave like mDW's services (`mdw demo --register`): they Register with
//! version, Heartbeat, register again on `acknowledged = false` after Russell was killed
//! and restarted (registrations are not persisted), and Deregister on SIGTERM; a managed
//! one is linked to its managed entry and keeps its PID across the restart.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use russell_api::mdw::russell as m;
use russell_api::mdw::russell::russell_service_client::RussellServiceClient;
use test_support::compat::list_services;
use test_support::{Fixture, Logged, Svc, alive, free_port, mdw_bin};

/// Lists until `cond` holds (20 s at most).
async fn wait_list(
    addr: &str,
    what: &str,
    cond: impl Fn(&[m::ServiceInfo]) -> bool,
) -> Vec<m::ServiceInfo> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let l = list_services(addr).await;
        if cond(&l) {
            return l;
        }
        assert!(Instant::now() < deadline, "{what}: {l:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn find<'a>(l: &'a [m::ServiceInfo], name: &str) -> Option<&'a m::ServiceInfo> {
    l.iter().find(|s| s.name == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stand_ins_register_heartbeat_reregister_after_a_russell_crash_and_deregister() {
    let every = ["--heartbeat-every", "200ms"];
    let f = Fixture::new(
        &[Svc::demo("alpha").args(&[
            "--register",
            "@RUSSELL@",
            "--version",
            "1.0.0",
            every[0],
            every[1],
        ])],
        "",
    );
    let text = std::fs::read_to_string(&f.config).unwrap();
    std::fs::write(&f.config, text.replace("@RUSSELL@", &f.addr)).unwrap();
    let mut d = f.start();
    let st = f.wait_all_healthy(Duration::from_secs(20));
    let alpha_pid = Fixture::service(&st, "alpha")["pid"].as_u64().unwrap() as i32;

    let port = free_port();
    let log = f.path("ext.log");
    let mut ext = Logged::spawn(
        Command::new(mdw_bin())
            .args(["demo", "--name", "ext", "--http-port", &port.to_string()])
            .args(["--register", &f.addr, "--version", "2.0.0"])
            .args(every),
        log,
    );

    let registered = |l: &[m::ServiceInfo]| {
        find(l, "ext").is_some_and(|e| e.status == m::ServiceStatus::Healthy as i32)
            && find(l, "alpha").is_some_and(|a| !a.id.starts_with("managed/"))
    };
    let l = wait_list(&f.addr, "both registered", registered).await;
    let (ext_id, alpha_id) = (
        find(&l, "ext").unwrap().id.clone(),
        find(&l, "alpha").unwrap().id.clone(),
    );
    let e = find(&l, "ext").unwrap();
    assert_eq!(
        (e.version.as_str(), e.port, e.address.as_str()),
        ("2.0.0", i32::from(port), "localhost")
    );
    let a = find(&l, "alpha").unwrap();
    assert_eq!(a.version, "1.0.0");
    assert_eq!(
        a.metadata["state"], "running",
        "linked to the managed entry: {a:?}"
    );
    assert_eq!(l.len(), 2, "one entry per service: {l:#?}");

    // Heartbeats keep the same ids.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let l = list_services(&f.addr).await;
    assert_eq!(find(&l, "ext").unwrap().id, ext_id);
    assert_eq!(find(&l, "alpha").unwrap().id, alpha_id);

    // Russell dies; the next one adopts alpha and knows no registration.
    d.kill9();
    let _d2 = f.start();
    let ch = russell_api::client::channel(&f.addr).await.unwrap();
    let mut client = RussellServiceClient::new(ch);
    let hb = client
        .heartbeat(m::HeartbeatRequest { id: ext_id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert!(!hb.acknowledged, "an id from the previous Russell");
    let l = wait_list(&f.addr, "registered again", |l| {
        registered(l)
            && find(l, "ext").is_some_and(|e| e.id != ext_id)
            && find(l, "alpha").is_some_and(|a| a.id != alpha_id)
    })
    .await;
    assert_eq!(l.len(), 2);
    assert!(
        ext.log().contains("not acknowledged; registering again"),
        "{}",
        ext.log()
    );
    let st = f.status();
    assert_eq!(
        Fixture::service(&st, "alpha")["pid"].as_u64().unwrap() as i32,
        alpha_pid,
        "adopted, not restarted"
    );

    // SIGTERM: the stand-in deregisters before it exits; no TTL to wait out.
    test_support::signal(ext.child.id(), rustix::process::Signal::TERM);
    let t = Instant::now();
    while ext.child.try_wait().unwrap().is_none() {
        assert!(t.elapsed() < Duration::from_secs(10), "ext did not exit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ext.log().contains("ext: deregistered"), "{}", ext.log());
    let l = list_services(&f.addr).await;
    assert!(find(&l, "ext").is_none(), "{l:#?}");

    // Russell stops alpha: it deregisters too, and alpha is managed-only again.
    client
        .stop_service(m::StopServiceRequest {
            name: "alpha".into(),
            force: false,
        })
        .await
        .unwrap();
    assert!(!alive(alpha_pid as u32));
    let l = list_services(&f.addr).await;
    assert_eq!(find(&l, "alpha").unwrap().id, "managed/alpha", "{l:#?}");
    assert_eq!(
        find(&l, "alpha").unwrap().status,
        m::ServiceStatus::Stopped as i32
    );
}
