//! Reliability 3 — flapping: a service toggled unhealthy/healthy (SIGUSR1 to the stand-in)
//! faster than failure_threshold × interval is never restarted; one that stays unhealthy is.
//!
//! `cargo test -p mdw --test reliability flapping::` (about 15 s).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use russell_api::pb;
use rustix::process::Signal;
use test_support::prelude::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flapping_is_not_restarted_but_staying_unhealthy_is() {
    let mut env = Env::new();
    // Probe every 200 ms, restart after 6 consecutive failures: a window of 1.2 s.
    let mut flap = Svc::quick("flap");
    flap.failure_threshold = 6;
    let mut sick = Svc::quick("sick");
    sick.failure_threshold = 6;
    env.write_services(&[flap.clone(), sick.clone()]);
    let mut c = env.start_russell().await;
    let _ = c
        .start_all_services(env.req(pb::StartAllRequest { force: false }))
        .await;
    let st = env.wait_all_running(&mut c, Duration::from_secs(30)).await;
    let flap_pid = by_name(&st)["flap"].pid;
    let sick_pid = by_name(&st)["sick"].pid;

    // The sick one turns unhealthy and stays so.
    signal(sick_pid, Signal::USR1);
    // The flapping one: unhealthy 250 ms, healthy 250 ms, for 6 s (24 toggles, ends healthy).
    let mut saw_503 = false;
    let start = Instant::now();
    for i in 0..24 {
        signal(flap_pid, Signal::USR1);
        if i % 2 == 0 && !saw_503 {
            // The stand-in handles the signal asynchronously: ask a few times within this
            // half-period rather than once right after the signal.
            let asked = Instant::now();
            while !saw_503 && asked.elapsed() < Duration::from_millis(150) {
                saw_503 = matches!(http_get(flap.http_port, "/health"), Some((503, _)));
                if !saw_503 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
        let next = start + Duration::from_millis(250 * (i + 1));
        tokio::time::sleep(next.saturating_duration_since(Instant::now())).await;
    }
    assert!(
        saw_503,
        "the stand-in never answered 503 after SIGUSR1: toggling does not work"
    );
    assert!(
        start.elapsed() < Duration::from_secs(9),
        "toggling lagged ({:?}); the machine is too loaded for this timing",
        start.elapsed()
    );

    // The sick one was restarted (new PID, one restart) and is healthy again.
    let (st, ok) = env
        .wait_status(&mut c, Duration::from_secs(15), |st| {
            let s = &by_name(st)["sick"];
            s.pid != sick_pid && s.restart_count == 1 && s.state == "running" && s.healthy
        })
        .await;
    assert!(
        ok,
        "sick not restarted: {}\n{}",
        summary(&st),
        env.russell_log()
    );
    assert!(
        !alive(sick_pid),
        "the unhealthy process {sick_pid} still runs"
    );

    // The flapping one was never restarted.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let st = env.status(&mut c).await;
    let f = &by_name(&st)["flap"];
    assert_eq!(
        f.pid,
        flap_pid,
        "flapping service was restarted: {}",
        summary(&st)
    );
    assert_eq!(f.restart_count, 0, "{}", summary(&st));
    assert!(alive(flap_pid));
    assert_eq!(f.state, "running", "{}", summary(&st));
    assert_status_matches_reality(&st);
}
