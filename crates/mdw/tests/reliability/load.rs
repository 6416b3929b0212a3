//! Reliability 4 — load: 100 concurrent clients polling GetOrchestratorStatus while 20 more
//! storm StartAll/StopAll/StartService/StopService/RestartService. Only documented status
//! codes come back, the final state is consistent (every service once, status = reality),
//! and Russell's RSS stays flat across rounds.
//!
//! Fast (default): 3 s. Long (ignored): 20 s —
//! `cargo test -p mdw --test reliability -- load:: --ignored --nocapture`
//! (`RELIABILITY_LOAD_SECS=120` for a longer soak).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use russell_api::pb;
use russell_api::pb::russell_service_client::RussellServiceClient;
use test_support::prelude::*;

/// Codes a storm may legitimately see: success, or "the state forbids it right now".
const ALLOWED: &[tonic::Code] = &[tonic::Code::Ok, tonic::Code::FailedPrecondition];

type Codes = Arc<Mutex<BTreeMap<String, u64>>>;

fn record(codes: &Codes, rpc: &str, code: tonic::Code) {
    *codes
        .lock()
        .unwrap()
        .entry(format!("{rpc}:{code:?}"))
        .or_default() += 1;
}

fn code_of<T>(r: &Result<tonic::Response<T>, tonic::Status>) -> tonic::Code {
    match r {
        Ok(_) => tonic::Code::Ok,
        Err(s) => s.code(),
    }
}

/// `alone`: a long case, run with no other case of this binary beside it.
async fn load(total: Duration, rounds: u32, alone: bool) {
    let mut env = if alone { Env::alone() } else { Env::new() };
    let services: Vec<Svc> = (0..4).map(|i| Svc::quick(&format!("l{i}"))).collect();
    env.write_services(&services);
    let mut c = env.start_russell().await;
    let _ = c
        .start_all_services(env.req(pb::StartAllRequest { force: false }))
        .await;
    env.wait_all_running(&mut c, Duration::from_secs(30)).await;
    let russell = env.russell_pid().unwrap();
    let fds_before = fd_count(russell);

    // 120 separate connections.
    let url = format!("http://{}", env.addr());
    let mut clients = Vec::new();
    for _ in 0..120 {
        let ch = tonic::transport::Endpoint::from_shared(url.clone())
            .unwrap()
            .timeout(Duration::from_secs(60))
            .connect()
            .await
            .expect("connect");
        clients.push(RussellServiceClient::new(ch));
    }
    let codes: Codes = Arc::default();
    let names: Vec<String> = services.iter().map(|s| s.short.clone()).collect();
    let mut rss = Vec::new();
    let mut status_calls = 0u64;
    let round_len = total / rounds;
    let started = Instant::now();
    for round in 0..rounds {
        let end = Instant::now() + round_len;
        let mut tasks = Vec::new();
        for (i, client) in clients.iter().enumerate() {
            let mut client = client.clone();
            let codes = codes.clone();
            let names = names.clone();
            let token = env.token.clone();
            tasks.push(tokio::spawn(async move {
                let mut n = 0u64;
                let mut k = i as u64 * 7 + u64::from(round);
                while Instant::now() < end {
                    n += 1;
                    if i < 100 {
                        let r = client
                            .get_orchestrator_status(authed(pb::StatusRequest {}, token.as_deref()))
                            .await;
                        if let Ok(st) = &r {
                            let st = st.get_ref();
                            assert_eq!(st.total_services, 4, "status total");
                            assert!(
                                ["starting", "running", "stopping", "stopped"]
                                    .contains(&st.status.as_str()),
                                "undocumented orchestrator status {:?}",
                                st.status
                            );
                        }
                        record(&codes, "status", code_of(&r));
                        continue;
                    }
                    k = k
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let name = names[(k >> 33) as usize % names.len()].clone();
                    match (k >> 40) % 5 {
                        0 => {
                            let r = client
                                .start_all_services(authed(
                                    pb::StartAllRequest {
                                        force: k.is_multiple_of(2),
                                    },
                                    token.as_deref(),
                                ))
                                .await;
                            record(&codes, "start_all", code_of(&r));
                        }
                        1 => {
                            let r = client
                                .stop_all_services(authed(pb::Empty {}, token.as_deref()))
                                .await;
                            record(&codes, "stop_all", code_of(&r));
                        }
                        2 => {
                            let r = client
                                .restart_service(authed(
                                    pb::ServiceRequest { name },
                                    token.as_deref(),
                                ))
                                .await;
                            record(&codes, "restart", code_of(&r));
                        }
                        3 => {
                            let r = client
                                .start_service(authed(
                                    pb::ServiceRequest { name },
                                    token.as_deref(),
                                ))
                                .await;
                            record(&codes, "start", code_of(&r));
                        }
                        _ => {
                            let r = client
                                .stop_service(authed(pb::ServiceRequest { name }, token.as_deref()))
                                .await;
                            record(&codes, "stop", code_of(&r));
                        }
                    }
                }
                if i < 100 { n } else { 0 }
            }));
        }
        for t in tasks {
            status_calls += t.await.expect("client task panicked");
        }
        let r = rss_bytes(russell).expect("Russell died under load");
        eprintln!(
            "load: round {round} done at {:?}, Russell RSS {} KiB",
            started.elapsed(),
            r / 1024
        );
        rss.push(r);
    }
    let codes = codes.lock().unwrap().clone();
    eprintln!("load: {status_calls} status calls; codes {codes:?}; RSS per round {rss:?}");
    let bad: Vec<&String> = codes
        .keys()
        .filter(|k| !ALLOWED.iter().any(|c| k.ends_with(&format!(":{c:?}"))))
        .collect();
    assert!(
        bad.is_empty(),
        "undocumented codes under load: {bad:?} (all: {codes:?})"
    );
    assert!(
        status_calls > 100,
        "status calls barely ran: {status_calls}"
    );

    // Memory flat: the last round is within 50 % or 20 MiB of the first (warm) round.
    let first = rss[0];
    let last = *rss.last().unwrap();
    assert!(
        last <= (first + first / 2).max(first + (20 << 20)),
        "Russell's RSS grew across rounds: {rss:?}"
    );

    // Consistent final state: start all, every service exactly once, status = reality.
    assert!(
        env.russell_running(),
        "Russell died:\n{}",
        env.russell_log()
    );
    let _ = c
        .start_all_services(env.req(pb::StartAllRequest { force: false }))
        .await;
    let st = env.wait_all_running(&mut c, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let st2 = env.status(&mut c).await;
    assert_eq!(
        st.services.iter().map(|s| s.pid).collect::<Vec<_>>(),
        st2.services.iter().map(|s| s.pid).collect::<Vec<_>>(),
        "PIDs still changing after the storm: {}",
        summary(&st2)
    );
    assert_eq!(st2.status, "running", "{}", summary(&st2));
    assert_status_matches_reality(&st2);
    let leaders: Vec<u32> = env
        .marked()
        .into_iter()
        .filter(|p| cmdline(*p).contains(" demo "))
        .collect();
    assert_eq!(
        leaders.len(),
        services.len(),
        "stand-ins alive after the storm: {:?}",
        leaders
            .iter()
            .map(|p| (*p, cmdline(*p)))
            .collect::<Vec<_>>()
    );
    assert!(zombie_children(russell).is_empty(), "zombies under Russell");
    // Connections closed, restarts done: Russell's descriptors are back near where they were.
    drop(clients);
    let settled = wait_for(Duration::from_secs(10), || {
        fd_count(russell) <= fds_before + 8
    });
    eprintln!(
        "load: Russell fds {fds_before} before, {} after",
        fd_count(russell)
    );
    assert!(
        settled,
        "Russell's open fds grew from {fds_before} to {} after the load",
        fd_count(russell)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_three_seconds() {
    load(Duration::from_secs(3), 3, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: 20 s of load; run with --ignored"]
async fn load_twenty_seconds() {
    // RELIABILITY_LOAD_SECS=N runs longer (rounds of 2 s).
    let secs: u64 = std::env::var("RELIABILITY_LOAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
        .max(4);
    load(Duration::from_secs(secs), (secs / 2) as u32, true).await;
}
