//! Reliability 1 — chaos: kill -9 random stand-ins under a real Russell and check that every
//! kill is followed by exactly one restart on the backoff schedule, that `max_retries` is
//! obeyed exactly, that the status matches `/proc` and the ports, and that no zombie or
//! orphan is left.
//!
//! Fast (default): 5 services, 5 kills. Long (ignored):
//! `cargo test -p mdw --test reliability -- chaos:: --ignored --nocapture` (20 services,
//! 100 kills over ≥ 30 s; bounded to a few minutes). `RELIABILITY_SEED=N` replays a run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use russell_api::pb;
use test_support::prelude::*;

/// Services with this many retries are killed one time more than that, to see `failed`.
const LIMITED_RETRIES: u32 = 2;

/// An event's timestamp as a duration since the epoch.
fn ts(e: &pb::Event) -> Duration {
    e.timestamp
        .map(|t| Duration::new(t.seconds as u64, t.nanos as u32))
        .unwrap_or_default()
}

/// `alone`: a long case, run with no other case of this binary beside it.
async fn chaos(n_services: usize, kills: usize, min_duration: Duration, alone: bool) {
    let mut rng = Rng::from_env();
    let mut env = if alone { Env::alone() } else { Env::new() };
    let mut services = Vec::new();
    for i in 0..n_services {
        let mut s = Svc::quick(&format!("c{i:02}"));
        s.max_retries = 1000;
        if i % 5 == 1 {
            // Some services fork a grandchild: a crash of the leader must not orphan it.
            s.demo_args.push("--spawn-grandchild".into());
        }
        if i % 5 == 2 {
            s.max_retries = LIMITED_RETRIES;
        }
        services.push(s);
    }
    env.write_services(&services);
    let mut c = env.start_russell().await;
    let _ = c
        .start_all_services(env.req(pb::StartAllRequest { force: false }))
        .await;
    let st = env.wait_all_running(&mut c, Duration::from_secs(60)).await;
    assert_status_matches_reality(&st);
    let russell = env.russell_pid().unwrap();
    let fds_before = fd_count(russell);

    // Collect every event while the chaos runs.
    let events: Arc<Mutex<Vec<pb::Event>>> = Arc::default();
    let mut stream = c
        .clone()
        .watch_events(env.req(pb::WatchEventsRequest { names: vec![] }))
        .await
        .expect("WatchEvents")
        .into_inner();
    let sink = events.clone();
    let watcher = tokio::spawn(async move {
        while let Ok(Some(ev)) = stream.message().await {
            sink.lock().unwrap().push(ev);
        }
    });

    let max_retries: BTreeMap<String, u32> = services
        .iter()
        .map(|s| (s.short.clone(), s.max_retries))
        .collect();
    let mut killed: BTreeMap<String, u32> = BTreeMap::new();
    // short_name → the PID we killed last, until the status shows another one.
    let mut pending: BTreeMap<String, u32> = BTreeMap::new();
    let mut groups_seen: BTreeSet<u32> = BTreeSet::new();
    let mut pids_seen: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
    let pace = min_duration / kills as u32;
    let started = Instant::now();
    let deadline = started + min_duration * 3 + Duration::from_secs(60);
    let mut done = 0;
    let mut lies: Vec<String> = Vec::new();
    while done < kills {
        assert!(
            Instant::now() < deadline,
            "chaos did not finish in time after {done} kills"
        );
        let st = env.status(&mut c).await;
        for s in &st.services {
            if s.pid != 0 {
                pids_seen
                    .entry(s.short_name.clone())
                    .or_default()
                    .insert(s.pid);
                if let Some(p) = proc_stat(s.pid) {
                    groups_seen.insert(p.pgrp);
                }
            }
            if pending.get(&s.short_name).is_some_and(|old| *old != s.pid) && s.state == "running" {
                pending.remove(&s.short_name);
            }
            // Status = reality all along: a running service we did not kill has a live PID
            // (only our kills end processes here).
            if s.state == "running" && !pending.contains_key(&s.short_name) && !alive(s.pid) {
                lies.push(format!(
                    "{} running with dead PID {} at {:?}",
                    s.short_name,
                    s.pid,
                    started.elapsed()
                ));
            }
        }
        let killable: Vec<&pb::ServiceStatus> = st
            .services
            .iter()
            .filter(|s| {
                s.state == "running"
                    && s.healthy
                    && alive(s.pid)
                    && !pending.contains_key(&s.short_name)
                    && killed.get(&s.short_name).copied().unwrap_or(0) <= max_retries[&s.short_name]
            })
            .collect();
        if killable.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        let victim = killable[rng.pick(killable.len())];
        kill9(victim.pid);
        *killed.entry(victim.short_name.clone()).or_default() += 1;
        pending.insert(victim.short_name.clone(), victim.pid);
        done += 1;
        eprintln!(
            "chaos: kill {done}/{kills} {} pid {} at {:?}",
            victim.short_name,
            victim.pid,
            started.elapsed()
        );
        tokio::time::sleep(pace).await;
    }
    let chaos_time = started.elapsed();
    assert!(
        lies.is_empty(),
        "status disagreed with /proc during chaos: {lies:?}"
    );

    // Everything under its limit comes back; the limited ones killed past it are failed.
    let exhausted = |name: &str, killed: &BTreeMap<String, u32>| {
        killed.get(name).copied().unwrap_or(0) > max_retries[name]
    };
    let (st, ok) = env
        .wait_status(&mut c, Duration::from_secs(60), |st| {
            st.services.iter().all(|s| {
                let k = killed.get(&s.short_name).copied().unwrap_or(0);
                if exhausted(&s.short_name, &killed) {
                    s.state == "failed"
                } else {
                    s.state == "running" && s.healthy && s.restart_count == k && alive(s.pid)
                }
            })
        })
        .await;
    assert!(
        ok,
        "after {done} kills the status did not settle: {}\nkilled: {killed:?}\n{}",
        summary(&st),
        env.russell_log()
    );
    for s in &st.services {
        let k = killed.get(&s.short_name).copied().unwrap_or(0);
        if exhausted(&s.short_name, &killed) {
            assert_eq!(
                s.restart_count, max_retries[&s.short_name],
                "{}: restarts of a service that gave up",
                s.short_name
            );
            assert!(
                !alive(s.pid),
                "{}: failed but PID {} alive",
                s.short_name,
                s.pid
            );
        } else {
            assert_eq!(s.restart_count, k, "{}: restarts vs kills", s.short_name);
            assert!(
                pending.get(&s.short_name).is_none_or(|old| *old != s.pid),
                "{}: still the killed PID",
                s.short_name
            );
        }
    }
    assert_status_matches_reality(&st);
    let zombies = zombie_children(russell);
    assert!(zombies.is_empty(), "zombies under Russell: {zombies:?}");
    // No descriptor leak per restart (FIFOs, pidfds, sockets): the event stream adds one
    // connection; allow a little slack for probe connections in flight.
    let fds_after = fd_count(russell);
    eprintln!("chaos: Russell fds {fds_before} before, {fds_after} after {done} restarts");
    assert!(
        fds_after <= fds_before + 8,
        "Russell's open fds grew from {fds_before} to {fds_after} over {done} kills"
    );

    // Every crashed leader's group is empty: its grandchild went with it.
    for s in &st.services {
        if let Some(p) = proc_stat(s.pid) {
            groups_seen.remove(&p.pgrp);
        }
    }
    let live_old: Vec<(u32, Vec<u32>)> = groups_seen
        .iter()
        .map(|g| (*g, procs_in_group(*g)))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    assert!(
        live_old.is_empty(),
        "orphans left in the groups of killed services: {live_old:?}"
    );

    // The backoff schedule: per service, `restarting` events count up 1, 2, 3 … with the
    // delay min(100ms · 2^(attempt-1), 400ms).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let evs = events.lock().unwrap().clone();
    for (name, k) in &killed {
        let restarting: Vec<&pb::Event> = evs
            .iter()
            .filter(|e| e.service.eq_ignore_ascii_case(name) && e.kind == "restarting")
            .collect();
        let expected = (*k).min(max_retries[name]);
        assert_eq!(
            restarting.len() as u32,
            expected,
            "{name}: restarting events vs kills"
        );
        for (i, e) in restarting.iter().enumerate() {
            let attempt = i as u32 + 1;
            assert_eq!(e.attempt, attempt, "{name}: attempt numbering");
            let want = Duration::from_millis((100u64 << (attempt - 1).min(10)).min(400));
            let got = e
                .delay
                .map(|d| Duration::new(d.seconds as u64, d.nanos as u32))
                .unwrap_or_default();
            assert_eq!(got, want, "{name}: backoff of attempt {attempt}");
            // The next spawn waits out the delay.
            let at = ts(e);
            let next = evs
                .iter()
                .filter(|n| n.service.eq_ignore_ascii_case(name) && n.kind == "starting")
                .map(ts)
                .find(|t| *t >= at);
            let next = next.unwrap_or_else(|| panic!("{name}: no start after attempt {attempt}"));
            assert!(
                next + Duration::from_millis(5) >= at + want,
                "{name}: attempt {attempt} started {:?} after `restarting`, before its {want:?} delay",
                next - at
            );
        }
        let failed = evs
            .iter()
            .filter(|e| e.service.eq_ignore_ascii_case(name) && e.kind == "failed")
            .count();
        assert_eq!(
            failed,
            usize::from(exhausted(name, &killed)),
            "{name}: failed events"
        );
    }
    watcher.abort();

    // Stop: nothing of any service survives, and Russell reaped everything.
    c.stop_all_services(env.req(pb::Empty {}))
        .await
        .expect("StopAllServices");
    for s in &st.services {
        if let Some(p) = proc_stat(s.pid) {
            groups_seen.insert(p.pgrp);
        }
    }
    let gone = wait_for(Duration::from_secs(15), || {
        groups_seen.iter().all(|g| procs_in_group(*g).is_empty()) && env.marked() == vec![russell]
    });
    assert!(
        gone,
        "processes left after StopAll: groups {:?}, marked {:?}",
        groups_seen
            .iter()
            .map(|g| (*g, procs_in_group(*g)))
            .filter(|(_, v)| !v.is_empty())
            .collect::<Vec<_>>(),
        env.marked()
    );
    assert!(
        wait_for(Duration::from_secs(5), || zombie_children(russell)
            .is_empty()),
        "zombies under Russell after stop: {:?}",
        zombie_children(russell)
    );
    let total_pids: usize = pids_seen.values().map(BTreeSet::len).sum();
    eprintln!(
        "chaos: {done} kills over {chaos_time:?}, {total_pids} service PIDs seen, killed per service {killed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_five_kills() {
    chaos(5, 5, Duration::from_secs(2), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: 20 services, 100 kills over >= 30 s; run with --ignored"]
async fn chaos_hundred_kills_twenty_services() {
    chaos(20, 100, Duration::from_secs(30), true).await;
}

/// max_retries exactly: a service with max_retries = 2 is restarted after the first two
/// kills and counts `failed` after the third, with restart_count 2 and no process left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_retries_obeyed_exactly() {
    let mut env = Env::new();
    let mut s = Svc::quick("limited");
    s.max_retries = LIMITED_RETRIES;
    s.demo_args.push("--spawn-grandchild".into());
    let steady = Svc::quick("steady");
    env.write_services(&[s, steady]);
    let mut c = env.start_russell().await;
    let _ = c
        .start_all_services(env.req(pb::StartAllRequest { force: false }))
        .await;
    env.wait_all_running(&mut c, Duration::from_secs(30)).await;
    let mut groups = BTreeSet::new();
    for kill in 1..=LIMITED_RETRIES + 1 {
        let st = env.status(&mut c).await;
        let svc = by_name(&st)["limited"].clone();
        assert_eq!(svc.restart_count, kill - 1);
        groups.insert(proc_stat(svc.pid).expect("limited alive").pgrp);
        kill9(svc.pid);
        let (st, ok) = env
            .wait_status(&mut c, Duration::from_secs(20), |st| {
                let s = &by_name(st)["limited"];
                if kill <= LIMITED_RETRIES {
                    s.state == "running" && s.pid != svc.pid && s.restart_count == kill
                } else {
                    s.state == "failed"
                }
            })
            .await;
        assert!(
            ok,
            "after kill {kill}: {}\n{}",
            summary(&st),
            env.russell_log()
        );
    }
    let st = env.status(&mut c).await;
    let limited = &by_name(&st)["limited"];
    assert_eq!(limited.restart_count, LIMITED_RETRIES, "{}", summary(&st));
    assert!(!alive(limited.pid), "failed service still has a live PID");
    assert!(!limited.last_error.is_empty(), "failed without last_error");
    // No further restart comes later.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let st = env.status(&mut c).await;
    assert_eq!(by_name(&st)["limited"].state, "failed", "{}", summary(&st));
    assert_eq!(by_name(&st)["steady"].restart_count, 0);
    // Grandchildren of the killed leaders are gone.
    assert!(
        wait_for(Duration::from_secs(5), || groups
            .iter()
            .all(|g| procs_in_group(*g).is_empty())),
        "orphans in the killed groups: {:?}",
        groups
            .iter()
            .map(|g| procs_in_group(*g))
            .collect::<Vec<_>>()
    );
}

/// A hung service (SIGSTOP: the process exists, the port accepts, nothing answers) is found
/// by its probe and replaced: SIGTERM cannot reach a stopped process, so the stop has to
/// escalate to SIGKILL; the old process must not be left behind, stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_service_is_replaced() {
    let mut env = Env::new();
    let mut hung = Svc::quick("hung");
    hung.stop_timeout = "1s";
    env.write_services(&[hung, Svc::quick("fine")]);
    let mut c = env.start_russell().await;
    let _ = c
        .start_all_services(env.req(pb::StartAllRequest { force: false }))
        .await;
    let st = env.wait_all_running(&mut c, Duration::from_secs(30)).await;
    let old = by_name(&st)["hung"].pid;
    signal(old, rustix::process::Signal::STOP);
    let (st, ok) = env
        .wait_status(&mut c, Duration::from_secs(20), |st| {
            let s = &by_name(st)["hung"];
            s.pid != old && s.state == "running" && s.healthy && s.restart_count == 1
        })
        .await;
    assert!(
        ok,
        "hung service not replaced: {}\n{}",
        summary(&st),
        env.russell_log()
    );
    assert!(
        wait_for(Duration::from_secs(5), || !alive(old)),
        "the hung process {old} is still there: {:?}",
        proc_stat(old)
    );
    assert_eq!(by_name(&st)["fine"].restart_count, 0);
    assert_status_matches_reality(&st);
}

/// A service that dies at once: a start makes exactly max_retries attempts, then the
/// service is `failed` with its last error; max_retries = 0 means a crash is not restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_attempts_and_no_restart_obey_max_retries() {
    let mut env = Env::new();
    let mut dud = Svc::quick("dud");
    dud.command = Some(vec![
        "sh".into(),
        "-c".into(),
        "echo dying >&2; exit 3".into(),
    ]);
    dud.max_retries = 3;
    let mut once = Svc::quick("once");
    once.max_retries = 0;
    let mut toml = env.header("autostart = false", "");
    toml.push_str(&dud.toml());
    toml.push_str(&once.toml());
    env.write_config(&toml);
    let mut c = env.start_russell().await;
    let mut stream = c
        .clone()
        .watch_events(env.req(pb::WatchEventsRequest {
            names: vec!["dud".into()],
        }))
        .await
        .expect("WatchEvents")
        .into_inner();
    let events: Arc<Mutex<Vec<pb::Event>>> = Arc::default();
    let sink = events.clone();
    let watcher = tokio::spawn(async move {
        while let Ok(Some(ev)) = stream.message().await {
            sink.lock().unwrap().push(ev);
        }
    });
    let res = c
        .start_service(env.req(pb::ServiceRequest { name: "dud".into() }))
        .await
        .expect("StartService dud")
        .into_inner();
    assert!(
        !res.success,
        "a service that exits at once started: {res:?}"
    );
    assert_eq!(res.attempts, 3, "start attempts: {res:?}");
    assert!(!res.error.is_empty(), "no error in {res:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let st = env.status(&mut c).await;
    let d = &by_name(&st)["dud"];
    assert_eq!(d.state, "failed", "{}", summary(&st));
    assert!(!d.last_error.is_empty(), "failed without last_error");
    let spawns = events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.kind == "started")
        .count();
    assert_eq!(spawns, 3, "spawns for max_retries 3");
    watcher.abort();

    // max_retries = 0: killed once, it stays down.
    c.start_service(env.req(pb::ServiceRequest {
        name: "once".into(),
    }))
    .await
    .expect("StartService once");
    let (st, ok) = env
        .wait_status(&mut c, Duration::from_secs(20), |st| {
            by_name(st)["once"].state == "running"
        })
        .await;
    assert!(ok, "{}", summary(&st));
    let pid = by_name(&st)["once"].pid;
    kill9(pid);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let st = env.status(&mut c).await;
    let o = &by_name(&st)["once"];
    assert_ne!(
        o.state,
        "running",
        "max_retries 0 was restarted: {}",
        summary(&st)
    );
    assert_eq!(o.restart_count, 0, "{}", summary(&st));
    assert!(!alive(o.pid), "{}", summary(&st));
    let leaders = env
        .marked()
        .into_iter()
        .filter(|p| cmdline(*p).contains("--name once"))
        .count();
    assert_eq!(leaders, 0, "a new `once` process runs");
}
