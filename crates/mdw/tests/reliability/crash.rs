//! Reliability 2 — Russell crash loop: kill -9 Russell ten times, alternately in the middle
//! of a start-all and in steady state, and start it again each time. After each restart the
//! running set equals the config, each service runs exactly once (one process, one listener
//! per port) and `state.json` always parses.
//!
//! `cargo test -p mdw --test reliability -- crash:: --nocapture` (about a minute).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use russell_api::pb;
use rustix::process::Signal;
use test_support::prelude::*;

/// Asserts the state file, when present, is valid JSON with a `services` object.
fn assert_state_file_parses(env: &Env, when: &str) {
    let path = env.state_dir.join("state.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return;
    };
    let v: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{when}: {} is corrupt ({e}):\n{text}", path.display()));
    assert!(
        v.get("services").is_some_and(serde_json::Value::is_object),
        "{when}: state.json has no services object: {text}"
    );
}

/// Processes of this environment whose command line serves `port` (the service leaders).
fn leaders_on(env: &Env, port: u16) -> Vec<u32> {
    let needle = format!("--http-port {port}");
    env.marked()
        .into_iter()
        .filter(|p| {
            let c = cmdline(*p);
            c.contains(" demo ") && (c.ends_with(&needle) || c.contains(&format!("{needle} ")))
        })
        .collect()
}

/// Every configured service runs exactly once, and the status says so.
fn assert_exactly_once(env: &Env, services: &[Svc], st: &pb::OrchestratorStatus, when: &str) {
    let names: Vec<String> = st.services.iter().map(|s| s.short_name.clone()).collect();
    let want: Vec<String> = services.iter().map(|s| s.short.clone()).collect();
    assert_eq!(
        names.len(),
        want.len(),
        "{when}: services in status {names:?}"
    );
    let by = by_name(st);
    for s in services {
        let status = by
            .get(&s.short)
            .unwrap_or_else(|| panic!("{when}: {} missing", s.short));
        let leaders = leaders_on(env, s.http_port);
        assert_eq!(
            leaders,
            vec![status.pid],
            "{when}: {} should run exactly once as PID {} ({})",
            s.short,
            status.pid,
            summary(st)
        );
        assert_eq!(
            listeners_on_port(s.http_port),
            1,
            "{when}: {} port {} listeners",
            s.short,
            s.http_port
        );
    }
    assert_status_matches_reality(st);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn russell_crash_loop() {
    let mut rng = Rng::from_env();
    let mut env = Env::new();
    let mut services = Vec::new();
    for i in 0..5 {
        let mut s = Svc::quick(&format!("k{i}"));
        if i > 0 {
            // A chain, so that a start-all takes a while and can be cut in the middle.
            s.deps.push(format!("k{}", i - 1));
        }
        s.demo_args.extend(["--ready-after".into(), "200ms".into()]);
        services.push(s);
    }
    env.write_services(&services);

    let mut cut_starts = 0;
    for round in 0..10 {
        let during_start = round % 2 == 1;
        if during_start {
            // Let some services die while Russell is down, so the next one has to start
            // them again; kill that Russell in the middle of its start-all.
            // k0 and k1 always die (the start then takes at least 2 × 200 ms, so the kill
            // below lands inside it); the others by chance.
            for (i, s) in services.iter().enumerate() {
                for pid in leaders_on(&env, s.http_port) {
                    if i < 2 || rng.pick(2) == 0 {
                        kill9(pid);
                    }
                }
            }
            env.spawn_russell();
            let mut c = env.connect().await;
            let req = env.req(pb::StartAllRequest { force: false });
            let call = tokio::spawn(async move { c.start_all_services(req).await });
            let delay = Duration::from_millis(20 + rng.pick(150) as u64);
            tokio::time::sleep(delay).await;
            let in_flight = !call.is_finished();
            env.kill_russell();
            call.abort();
            cut_starts += usize::from(in_flight);
            eprintln!(
                "crash loop: round {round}: killed Russell {delay:?} into StartAll \
                 (call still running: {in_flight})"
            );
        } else {
            let mut c = env.start_russell().await;
            let _ = c
                .start_all_services(env.req(pb::StartAllRequest { force: false }))
                .await;
            let st = env.wait_all_running(&mut c, Duration::from_secs(40)).await;
            assert_exactly_once(&env, &services, &st, &format!("round {round}, steady"));
            assert_state_file_parses(&env, &format!("round {round}, steady"));
            env.kill_russell();
            eprintln!("crash loop: round {round}: killed Russell in steady state");
        }
        assert_state_file_parses(&env, &format!("after kill in round {round}"));
    }

    assert!(cut_starts > 0, "no kill landed during a running StartAll");

    // The last Russell brings up exactly the config, once each.
    let mut c = env.start_russell().await;
    let _ = c
        .start_all_services(env.req(pb::StartAllRequest { force: false }))
        .await;
    let st = env.wait_all_running(&mut c, Duration::from_secs(40)).await;
    // Settle a moment: a duplicate started late would show now.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let st2 = env.status(&mut c).await;
    assert_eq!(
        st.services.iter().map(|s| s.pid).collect::<Vec<_>>(),
        st2.services.iter().map(|s| s.pid).collect::<Vec<_>>(),
        "PIDs changed in steady state: {}",
        summary(&st2)
    );
    assert_exactly_once(&env, &services, &st2, "final");
    assert_state_file_parses(&env, "final");

    // SIGTERM: Russell stops every service and exits 0; nothing of ours is left.
    let russell = env.russell_pid().unwrap();
    signal(russell, Signal::TERM);
    let code = env.wait_russell_exit(Duration::from_secs(30));
    assert_eq!(
        code,
        Some(0),
        "Russell exit on SIGTERM\n{}",
        env.russell_log()
    );
    assert!(
        wait_for(Duration::from_secs(5), || env.marked().is_empty()),
        "left after SIGTERM: {:?}",
        env.marked()
            .iter()
            .map(|p| (*p, cmdline(*p)))
            .collect::<Vec<_>>()
    );
}

/// After a crash the next Russell adopts the running services; an adopted service is still
/// watched (a kill -9 is noticed and restarted once) and still stopped as a group (its
/// grandchild too), although it is no longer Russell's child.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopted_services_are_watched_and_stopped() {
    let mut env = Env::new();
    let mut a = Svc::quick("a");
    a.demo_args.push("--spawn-grandchild".into());
    let mut b = Svc::quick("b");
    b.demo_args.push("--spawn-grandchild".into());
    env.write_services(&[a, b]);
    let mut c = env.start_russell().await;
    let _ = c
        .start_all_services(env.req(pb::StartAllRequest { force: false }))
        .await;
    let before = env.wait_all_running(&mut c, Duration::from_secs(30)).await;
    env.kill_russell();
    let mut c = env.start_russell().await;
    let st = env.wait_all_running(&mut c, Duration::from_secs(30)).await;
    for s in &st.services {
        assert!(s.adopted, "{} not adopted: {}", s.short_name, summary(&st));
        assert_eq!(
            s.pid,
            by_name(&before)[&s.short_name].pid,
            "{} restarted instead of adopted",
            s.short_name
        );
    }
    let a_pid = by_name(&st)["a"].pid;
    let a_group = proc_stat(a_pid).unwrap().pgrp;
    kill9(a_pid);
    let (st, ok) = env
        .wait_status(&mut c, Duration::from_secs(20), |st| {
            let s = &by_name(st)["a"];
            s.pid != a_pid && s.state == "running" && s.healthy
        })
        .await;
    assert!(
        ok,
        "adopted service not restarted after kill -9: {}\n{}",
        summary(&st),
        env.russell_log()
    );
    assert_eq!(by_name(&st)["a"].restart_count, 1, "{}", summary(&st));
    assert!(
        wait_for(Duration::from_secs(5), || procs_in_group(a_group)
            .is_empty()),
        "grandchild of the adopted, killed service left: {:?}",
        procs_in_group(a_group)
    );
    let b_group = proc_stat(by_name(&st)["b"].pid).unwrap().pgrp;
    c.stop_service(env.req(pb::ServiceRequest { name: "b".into() }))
        .await
        .expect("StopService b");
    assert!(
        wait_for(Duration::from_secs(10), || procs_in_group(b_group)
            .is_empty()),
        "adopted b's group after stop: {:?}",
        procs_in_group(b_group)
    );
    let russell = env.russell_pid().unwrap();
    signal(russell, Signal::TERM);
    assert_eq!(env.wait_russell_exit(Duration::from_secs(30)), Some(0));
    assert!(
        wait_for(Duration::from_secs(5), || env.marked().is_empty()),
        "left after SIGTERM: {:?}",
        env.marked()
            .iter()
            .map(|p| (*p, cmdline(*p)))
            .collect::<Vec<_>>()
    );
}

/// kill -9 of Russell while 20 clients storm it with StartAll/StopAll/Restart: three times.
/// Each next Russell ends with every service exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn russell_killed_under_a_storm() {
    let mut rng = Rng::from_env();
    let mut env = Env::new();
    let services: Vec<Svc> = (0..4).map(|i| Svc::quick(&format!("m{i}"))).collect();
    env.write_services(&services);
    for round in 0..3 {
        let c = env.start_russell().await;
        let mut storm = Vec::new();
        for i in 0..20u64 {
            let mut c = c.clone();
            let token = env.token.clone();
            storm.push(tokio::spawn(async move {
                for k in 0u64.. {
                    let name = format!("m{}", (i + k) % 4);
                    let t = token.as_deref();
                    let _ = match (i + k) % 4 {
                        0 => c
                            .start_all_services(authed(pb::StartAllRequest { force: true }, t))
                            .await
                            .map(|_| ()),
                        1 => c
                            .stop_all_services(authed(pb::Empty {}, t))
                            .await
                            .map(|_| ()),
                        2 => c
                            .restart_service(authed(pb::ServiceRequest { name }, t))
                            .await
                            .map(|_| ()),
                        _ => c
                            .start_service(authed(pb::ServiceRequest { name }, t))
                            .await
                            .map(|_| ()),
                    };
                }
            }));
        }
        let delay = Duration::from_millis(300 + rng.pick(1200) as u64);
        tokio::time::sleep(delay).await;
        env.kill_russell();
        for t in storm {
            t.abort();
        }
        assert_state_file_parses(&env, &format!("storm round {round}"));
        eprintln!("storm: round {round}: killed Russell after {delay:?} of storm");
    }
    let mut c = env.start_russell().await;
    let _ = c
        .start_all_services(env.req(pb::StartAllRequest { force: false }))
        .await;
    let st = env.wait_all_running(&mut c, Duration::from_secs(40)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let st2 = env.status(&mut c).await;
    assert_eq!(
        st.services.iter().map(|s| s.pid).collect::<Vec<_>>(),
        st2.services.iter().map(|s| s.pid).collect::<Vec<_>>(),
        "PIDs changed in steady state: {}",
        summary(&st2)
    );
    assert_exactly_once(&env, &services, &st2, "after the storms");
}

/// Russell's own stdout and stderr go away (`mdw serve russell 2>&1 | head`, a closed
/// terminal): writing a log line then fails with EPIPE, which must not take Russell down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn russell_survives_a_closed_terminal() {
    let env = Env::new();
    env.write_services(&[Svc::quick("t0"), Svc::quick("t1")]);
    let mut child = env
        .russell_command()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Close the read ends at once: every later write by Russell gets EPIPE.
    drop(child.stdout.take());
    drop(child.stderr.take());
    let pid = child.id();
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            kill9(self.0.id());
            let _ = self.0.wait();
        }
    }
    let mut child = Reap(child);
    let url = format!("http://{}", env.addr());
    let mut c = None;
    for _ in 0..200 {
        if !matches!(child.0.try_wait(), Ok(None)) {
            break;
        }
        if let Ok(ch) = tonic::transport::Endpoint::from_shared(url.clone())
            .unwrap()
            .connect()
            .await
        {
            c = Some(russell_api::pb::russell_service_client::RussellServiceClient::new(ch));
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let Some(mut c) = c else {
        panic!(
            "Russell never listened; it exited with {:?} (101 = panic)",
            child.0.try_wait()
        );
    };
    // Make it log: starts, a crash, a restart, a stop.
    let _ = c
        .start_all_services(env.req(pb::StartAllRequest { force: false }))
        .await;
    let st = env.wait_all_running(&mut c, Duration::from_secs(30)).await;
    kill9(by_name(&st)["t0"].pid);
    let (st, ok) = env
        .wait_status(&mut c, Duration::from_secs(20), |st| {
            by_name(st)["t0"].restart_count == 1 && by_name(st)["t0"].state == "running"
        })
        .await;
    assert!(ok, "{}", summary(&st));
    c.stop_service(env.req(pb::ServiceRequest { name: "t1".into() }))
        .await
        .expect("StopService");
    assert!(
        matches!(child.0.try_wait(), Ok(None)),
        "Russell died writing to a closed terminal: {:?}",
        child.0.try_wait()
    );
    assert!(alive(pid));
    let st = env.status(&mut c).await;
    assert_eq!(by_name(&st)["t1"].state, "stopped", "{}", summary(&st));
}
