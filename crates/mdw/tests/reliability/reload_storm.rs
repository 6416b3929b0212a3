//! Reliability — reload storm: a reload every 50 ms (ReloadConfig, not awaited, so they
//! overlap) alternating between file variants that add, remove, change and re-add
//! services, while stand-ins are SIGKILLed and clients call both APIs. At the end exactly
//! the last file's services run, one process each (no duplicate), nothing is left that
//! no service owns (no orphan, no zombie), the state file names exactly them, and
//! Russell's RSS is flat.
//!
//! Fast (default): 3 s. Long (ignored): 20 s (`RELOAD_STORM_SECS=N` for another length),
//! `cargo test -p mdw --test reliability -- reload_storm:: --ignored --nocapture`.
//! `RELIABILITY_SEED=N` replays a run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use russell_api::pb;
use test_support::prelude::*;

const RELOAD_EVERY: Duration = Duration::from_millis(50);
const KILL_EVERY: Duration = Duration::from_millis(150);
const RSS_EVERY: Duration = Duration::from_millis(250);

/// The pool of stand-ins the variants draw from (each keeps its port across variants).
fn pool() -> Vec<Svc> {
    (0..6)
        .map(|i| {
            let mut s = Svc::quick(&format!("r{i}"));
            s.max_retries = 10_000;
            s.stop_timeout = "2s";
            s
        })
        .collect()
}

/// The file variants: which stand-ins (with what changes) each one runs.
fn variants(pool: &[Svc]) -> Vec<Vec<Svc>> {
    let p = |i: usize| pool[i].clone();
    vec![
        // r1 needs r0.
        vec![p(0), p(1).deps(&["r0"]), p(2), p(3)],
        // r3 goes, r4 comes, r2's environment changes (a restart).
        vec![
            p(0),
            p(1).deps(&["r0"]),
            p(2).extra("env = { STORM = \"1\" }"),
            p(4),
        ],
        // r1 and r4 go, r3 comes back, r5 comes and needs r0.
        vec![p(0), p(2), p(3), p(5).deps(&["r0"])],
        // r0's description changes (no restart), r2 and r3 go, r1 and r4 come back.
        vec![
            Svc {
                description: "reload storm".into(),
                ..p(0)
            },
            p(1).deps(&["r0"]),
            p(4),
            p(5).deps(&["r0"]),
        ],
    ]
}

/// Writes the file by rename, as an editor does: a reload never reads half a file.
fn write_variant(env: &Env, services: &[Svc]) {
    let mut text = env.header("", "");
    for s in services {
        text.push_str(&s.toml());
    }
    let tmp = env.config_path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &env.config_path).unwrap();
}

fn shorts(services: &[Svc]) -> BTreeSet<String> {
    services.iter().map(|s| s.short.clone()).collect()
}

#[derive(Debug, Default)]
struct Counts {
    reloads: AtomicU64,
    reload_errors: AtomicU64,
    /// Services added, removed or changed, over all answered reloads.
    changes: AtomicU64,
    kills: AtomicU64,
    api_calls: AtomicU64,
    api_errors: AtomicU64,
}

async fn storm(duration: Duration, alone: bool) {
    let mut rng = Rng::from_env();
    let mut env = if alone { Env::alone() } else { Env::new() };
    let pool = pool();
    let variants = variants(&pool);
    write_variant(&env, &variants[0]);
    let mut c = env.start_russell().await;
    let _ = c
        .start_all_services(env.req(pb::StartAllRequest { force: false }))
        .await;
    env.wait_all_running(&mut c, Duration::from_secs(60)).await;
    let russell = env.russell_pid().unwrap();

    let counts = Arc::new(Counts::default());
    let stop = Arc::new(AtomicBool::new(false));
    // Clients: v1's status and mDW's ListServices, back to back.
    let mut clients = Vec::new();
    for _ in 0..2 {
        let (mut v1, addr) = (c.clone(), env.addr());
        let (counts, stop) = (counts.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let ch = russell_api::client::channel(&addr).await.unwrap();
            let mut mdw =
                russell_api::mdw::russell::russell_service_client::RussellServiceClient::new(ch);
            while !stop.load(Ordering::Relaxed) {
                let a = v1.get_orchestrator_status(pb::StatusRequest {}).await;
                let b = mdw.list_services(russell_api::mdw::common::Empty {}).await;
                counts.api_calls.fetch_add(2, Ordering::Relaxed);
                if a.is_err() || b.is_err() {
                    counts.api_errors.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }
    // The killer: SIGKILL a random running stand-in's group every KILL_EVERY.
    let killer = {
        let (mut c, counts, stop) = (c.clone(), counts.clone(), stop.clone());
        let seed = rng.next();
        tokio::spawn(async move {
            let mut rng = Rng(seed | 1);
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(KILL_EVERY).await;
                let Ok(st) = c.get_orchestrator_status(pb::StatusRequest {}).await else {
                    continue;
                };
                let running: Vec<u32> = (st.into_inner().services.iter())
                    .filter(|s| s.pid != 0)
                    .map(|s| s.pid)
                    .collect();
                if !running.is_empty() {
                    kill_group(running[rng.pick(running.len())]);
                    counts.kills.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    // Russell's RSS, sampled from /proc/<pid>/status (VmRSS) while the storm runs.
    let sampler = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                samples.push((Instant::now(), rss_bytes(russell).unwrap_or(0)));
                tokio::time::sleep(RSS_EVERY).await;
            }
            samples
        })
    };

    // The storm: a reload every RELOAD_EVERY, each on its own (they overlap).
    let started = Instant::now();
    let mut reloads = Vec::new();
    let mut last = 0;
    let mut tick = tokio::time::interval(RELOAD_EVERY);
    while started.elapsed() < duration {
        tick.tick().await;
        last = rng.pick(variants.len());
        write_variant(&env, &variants[last]);
        let (mut c, counts) = (c.clone(), counts.clone());
        reloads.push(tokio::spawn(async move {
            let r = c
                .reload_config(pb::ReloadConfigRequest { dry_run: false })
                .await;
            counts.reloads.fetch_add(1, Ordering::Relaxed);
            match r {
                Ok(r) => {
                    let n = r.into_inner().services.len() as u64;
                    counts.changes.fetch_add(n, Ordering::Relaxed);
                }
                Err(e) => {
                    counts.reload_errors.fetch_add(1, Ordering::Relaxed);
                    eprintln!("reload failed: {e}");
                }
            }
        }));
    }
    stop.store(true, Ordering::Relaxed);
    killer.await.unwrap();
    for client in clients {
        client.await.unwrap();
    }
    let samples = sampler.await.unwrap();
    let sent = reloads.len();
    let drained = Instant::now();
    for r in reloads {
        tokio::time::timeout(Duration::from_secs(120), r)
            .await
            .expect("a reload did not answer within 120 s")
            .unwrap();
    }
    let drain = drained.elapsed();

    // The last file, once more, and wait: exactly its services, all running.
    let want = shorts(&variants[last]);
    c.reload_config(pb::ReloadConfigRequest { dry_run: false })
        .await
        .expect("the final reload");
    let st = env.wait_all_running(&mut c, Duration::from_secs(60)).await;
    let have: BTreeSet<String> = st.services.iter().map(|s| s.short_name.clone()).collect();
    assert_eq!(
        have,
        want,
        "exactly the last file's services: {}",
        summary(&st)
    );
    assert_status_matches_reality(&st);

    // /proc: every marked process is Russell or in the group of a service in the status,
    // one process per service; no zombie under Russell.
    let groups: BTreeSet<u32> = st.services.iter().map(|s| s.pid).collect();
    let ok = wait_for(Duration::from_secs(10), || {
        let procs: Vec<u32> = env.marked().into_iter().filter(|&p| p != russell).collect();
        procs.len() == groups.len()
            && procs
                .iter()
                .all(|&p| proc_stat(p).is_some_and(|s| groups.contains(&s.pgrp)))
    });
    let orphans: Vec<(u32, String)> = (env.marked().into_iter())
        .filter(|&p| p != russell)
        .filter(|&p| proc_stat(p).is_none_or(|s| !groups.contains(&s.pgrp)))
        .map(|p| (p, cmdline(p)))
        .collect();
    assert!(
        ok,
        "processes outside the services' groups or more than one per service: orphans {orphans:?}, \
         status {}",
        summary(&st)
    );
    assert!(zombie_children(russell).is_empty(), "zombies under Russell");
    let state = std::fs::read_to_string(env.state_dir.join("state.json")).unwrap();
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    let recorded: BTreeSet<String> = state["services"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(recorded, want, "the state file names exactly them");
    // The FIFOs (in the run dir under this environment's XDG_RUNTIME_DIR) are those of
    // the services that are left.
    let fifos: BTreeSet<String> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("mdw-"))
        .flat_map(|run| std::fs::read_dir(run.path()).unwrap().flatten())
        .filter_map(|f| Some(f.file_name().to_str()?.split('.').next()?.to_string()))
        .collect();
    assert_eq!(fifos, want, "FIFOs of removed services are gone");

    // RSS: after the first quarter (warm-up: connections, buffers, the first tasks), the
    // rest of the run may not climb.
    let rss_at = |from: f64| -> u64 {
        let cut = started + duration.mul_f64(from);
        (samples.iter())
            .filter(|(t, _)| *t >= cut)
            .map(|(_, r)| *r)
            .next()
            .unwrap_or(0)
    };
    let warm = rss_at(0.25);
    let end = samples.last().map_or(0, |s| s.1);
    let peak = samples.iter().map(|s| s.1).max().unwrap_or(0);
    let end_of_run = rss_bytes(russell).unwrap_or(0);
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    eprintln!(
        "reload storm {duration:?}: {sent} reloads sent ({} answered, {} errors, {} service \
         changes applied; the last answered {drain:.1?} after the storm), {} kills, {} API calls ({} errors); \
         Russell RSS at 25% {:.1} MiB, 50% {:.1} MiB, 75% {:.1} MiB, at the end of the storm \
         {:.1} MiB, peak {:.1} MiB, after the final reload {:.1} MiB",
        counts.reloads.load(Ordering::Relaxed),
        counts.reload_errors.load(Ordering::Relaxed),
        counts.changes.load(Ordering::Relaxed),
        counts.kills.load(Ordering::Relaxed),
        counts.api_calls.load(Ordering::Relaxed),
        counts.api_errors.load(Ordering::Relaxed),
        mib(warm),
        mib(rss_at(0.5)),
        mib(rss_at(0.75)),
        mib(end),
        mib(peak),
        mib(end_of_run),
    );
    let log = env.russell_log();
    for bad in ["illegal transition", "panicked"] {
        assert!(!log.contains(bad), "Russell's log says {bad:?}:\n{log}");
    }
    assert_eq!(counts.reload_errors.load(Ordering::Relaxed), 0);
    assert_eq!(counts.api_errors.load(Ordering::Relaxed), 0);
    let allowed = warm + (warm / 4).max(4 << 20);
    assert!(
        end <= allowed,
        "Russell's RSS climbed from {:.1} MiB to {:.1} MiB",
        mib(warm),
        mib(end)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_short_reload_storm_ends_with_exactly_the_last_files_services() {
    storm(Duration::from_secs(3), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "20 s of reloads; run with --ignored (docs/RELIABILITY.md)"]
async fn a_twenty_second_reload_storm_ends_with_exactly_the_last_files_services() {
    let secs = std::env::var("RELOAD_STORM_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    storm(Duration::from_secs(secs), true).await;
}
