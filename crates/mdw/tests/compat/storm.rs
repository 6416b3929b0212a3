//! A registration storm through mDW's contract: registrants that heartbeat every 10 ms and
//! register again every 20th beat, half of them under managed names. Russell's RSS stays
//! flat, no live registration is lost (every heartbeat acknowledged), no managed PID
//! changes. The short run is part of the suite; the long one (docs/RELIABILITY.md) is
//! `cargo test --release -p mdw --test compat -- storm:: --ignored --nocapture`.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use russell_api::mdw::common as c;
use russell_api::mdw::russell as m;
use russell_api::mdw::russell::russell_service_client::RussellServiceClient;
use test_support::{Fixture, Svc};

const MANAGED: [&str; 4] = ["alpha", "beta", "gamma", "delta"];

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[derive(Default)]
struct Counts {
    calls: AtomicU64,
    unacknowledged: AtomicU64,
    errors: AtomicU64,
}

async fn registrant(addr: String, name: String, until: Instant, counts: Arc<Counts>) {
    let ch = russell_api::client::channel(&addr).await.unwrap();
    let mut c = RussellServiceClient::new(ch);
    let req = m::RegisterRequest {
        name,
        address: "localhost".into(),
        port: 7000,
        version: "1.0.0".into(),
        ..Default::default()
    };
    let mut id = c.register(req.clone()).await.unwrap().into_inner().id;
    let mut beat = 0u64;
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(10)).await;
        beat += 1;
        counts.calls.fetch_add(1, Ordering::Relaxed);
        if beat.is_multiple_of(20) {
            match c.register(req.clone()).await {
                Ok(r) => id = r.into_inner().id,
                Err(_) => {
                    counts.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            continue;
        }
        match c.heartbeat(m::HeartbeatRequest { id: id.clone() }).await {
            Ok(r) if r.get_ref().acknowledged => {}
            Ok(_) => {
                counts.unacknowledged.fetch_add(1, Ordering::Relaxed);
                if let Ok(r) = c.register(req.clone()).await {
                    id = r.into_inner().id;
                }
            }
            Err(_) => {
                counts.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

async fn storm(registrants: usize, length: Duration) {
    let f = Fixture::new(
        &MANAGED.iter().map(|n| Svc::demo(n)).collect::<Vec<_>>(),
        "",
    );
    let d = f.start();
    let before = f.wait_all_healthy(Duration::from_secs(30));
    let pids = |st: &serde_json::Value| {
        MANAGED
            .iter()
            .map(|n| Fixture::service(st, n)["pid"].as_u64().unwrap())
            .collect::<Vec<_>>()
    };
    let russell = d.pid();
    let idle = rss_kib(russell);
    let counts = Arc::new(Counts::default());
    let start = Instant::now();
    let until = start + length;
    let tasks: Vec<_> = (0..registrants)
        .map(|i| {
            let name = if i % 2 == 0 {
                MANAGED[(i / 2) % MANAGED.len()].to_string()
            } else {
                format!("ext-{i}")
            };
            tokio::spawn(registrant(f.addr.clone(), name, until, counts.clone()))
        })
        .collect();
    // RSS once the storm is on (connections and buffers in place), then at its end.
    tokio::time::sleep(length / 4).await;
    let warm = rss_kib(russell);
    let mut peak = warm;
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(250)).await;
        peak = peak.max(rss_kib(russell));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let end = rss_kib(russell);
    let secs = start.elapsed().as_secs_f64();
    let calls = counts.calls.load(Ordering::Relaxed);
    println!(
        "storm: {registrants} registrants for {length:?}: {calls} calls ({:.0}/s), \
         {} unacknowledged, {} errors; Russell RSS idle {idle} KiB, warm {warm} KiB, \
         peak {peak} KiB, end {end} KiB",
        calls as f64 / secs,
        counts.unacknowledged.load(Ordering::Relaxed),
        counts.errors.load(Ordering::Relaxed),
    );
    assert_eq!(
        counts.unacknowledged.load(Ordering::Relaxed),
        0,
        "a live registration was lost"
    );
    assert_eq!(counts.errors.load(Ordering::Relaxed), 0);
    assert!(
        end <= warm + 4 * 1024,
        "RSS grew during the storm: {warm} KiB → {end} KiB"
    );
    let after = f.status();
    assert_eq!(pids(&before), pids(&after), "a managed PID changed");
    let ch = russell_api::client::channel(&f.addr).await.unwrap();
    let list = RussellServiceClient::new(ch)
        .list_services(c::Empty {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        list.total as usize,
        MANAGED.len() + registrants / 2,
        "{list:?}"
    );
    for s in &list.services {
        assert_eq!(s.status, m::ServiceStatus::Healthy as i32, "{s:?}");
        assert!(
            !s.id.starts_with("managed/"),
            "every managed one is linked: {s:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_storm_short() {
    storm(20, Duration::from_secs(3)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "20 s of load; run by hand (docs/RELIABILITY.md)"]
async fn registration_storm_long() {
    storm(100, Duration::from_secs(20)).await;
}
