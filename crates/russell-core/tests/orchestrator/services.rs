//! The orchestrator with real processes (the stand-in `mdw-demo`, `sh`, `sleep`) on real
//! loopback ports picked free at run time. Every test ends with `Harness::finish`, which
//! stops everything and checks /proc that no process (and no zombie) is left.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime};

use russell_config::{PortConflictPolicy, Probe};
use russell_core::{EventKind, LogStream, ServiceState};
use rustix::process::Signal;
use test_support::config::{config, demo, external, service};
use test_support::harness::{Harness, assert_gone};
use test_support::{Demo, free_port};
use test_support::{alive, signal};

const LONG: Duration = Duration::from_secs(20);

fn running(h: &Harness, s: &str) -> bool {
    h.status(s).state == ServiceState::Running
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_starts_in_order_and_independent_services_overlap() {
    let dir = tempfile::tempdir().unwrap();
    let slow = ["--ready-after", "400ms"];
    let mut a = demo("a", free_port(), &slow);
    let mut b = demo("b", free_port(), &slow);
    let mut c = demo("c", free_port(), &slow);
    b.dependencies = vec!["a".into()];
    c.dependencies = vec!["b".into()];
    a.start_order = 1; // ties only; the DAG wins
    let x = demo("x", free_port(), &slow);
    let y = demo("y", free_port(), &slow);
    let h = Harness::new(config(dir.path(), vec![c, b, a, x, y], vec![]), false).await;

    let results = h.orch.start_all(false).await.unwrap();
    assert!(results.iter().all(|r| r.success), "{results:?}");
    assert!(results.iter().all(|r| r.attempts == 1), "{results:?}");

    let t = |s: &str| h.status(s).timing;
    for (dep, svc) in [("a", "b"), ("b", "c")] {
        let healthy = t(dep).healthy_at.unwrap();
        let spawned = t(svc).spawned_at.unwrap();
        assert!(spawned >= healthy, "{svc} spawned before {dep} was healthy");
    }
    let (x, y) = (t("x"), t("y"));
    assert!(
        x.spawned_at.unwrap() < y.healthy_at.unwrap()
            && y.spawned_at.unwrap() < x.healthy_at.unwrap(),
        "independent x and y did not start concurrently: {x:?} {y:?}"
    );
    // Probing fast after spawn: readiness ~400 ms, not a whole interval more.
    let took = x
        .healthy_at
        .unwrap()
        .duration_since(x.spawned_at.unwrap())
        .unwrap();
    assert!(
        took < Duration::from_secs(2),
        "x took {took:?} to be healthy"
    );

    // Without force, healthy services are left alone.
    let pid = h.status("a").pid;
    let again = h.orch.start_all(false).await.unwrap();
    assert!(
        again.iter().all(|r| r.success && r.attempts == 0),
        "{again:?}"
    );
    assert_eq!(h.status("a").pid, pid);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_is_seen_at_once_and_restarted_after_backoff() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = demo("k", free_port(), &[]);
    s.restart_backoff = Duration::from_millis(300);
    let h = Harness::new(config(dir.path(), vec![s], vec![]), false).await;
    assert!(h.orch.start_service("K").await.unwrap().success);
    let old = h.status("k").pid.unwrap();

    let killed_at = SystemTime::now();
    signal(old, Signal::KILL);
    // Events go out right after the snapshot that shows their state: wait for the event
    // itself, not just for the new PID in the snapshot.
    h.wait_until("the new process's Started event", LONG, |h| {
        h.events_of("k", EventKind::Started)
            .iter()
            .any(|e| e.pid.is_some_and(|p| p != old))
    })
    .await;
    let started = h
        .events_of("k", EventKind::Started)
        .into_iter()
        .find(|e| e.pid != Some(old))
        .unwrap();
    let took = started.timestamp.duration_since(killed_at).unwrap();
    assert!(
        took < Duration::from_millis(300 + 500),
        "respawned {took:?} after kill -9 (backoff 300 ms)"
    );
    assert!(took >= Duration::from_millis(300), "no backoff: {took:?}");
    let exited = h.events_of("k", EventKind::Exited);
    assert_eq!(exited.len(), 1);
    assert_eq!(exited[0].signal, Some(9));
    let restarting = h.events_of("k", EventKind::Restarting);
    assert_eq!(restarting[0].attempt, Some(1));
    h.wait_until("healthy again", LONG, |h| running(h, "k"))
        .await;
    assert_eq!(h.status("k").restart_count, 1);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exiting_at_once_fails_after_max_retries_and_blocks_dependents() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = service("boom", &["sh", "-c", "echo going down >&2; exit 3"]);
    s.max_retries = 3;
    s.restart_backoff = Duration::from_millis(50);
    s.health_check.probe = Probe::Tcp {
        addr: format!("127.0.0.1:{}", free_port()),
    };
    let mut d = service("dep", &["sleep", "1000"]);
    d.dependencies = vec!["boom".into()];
    let mut dd = service("depdep", &["sleep", "1000"]);
    dd.dependencies = vec!["dep".into()];
    let h = Harness::new(config(dir.path(), vec![s, d, dd], vec![]), false).await;

    let results = h.orch.start_all(false).await.unwrap();
    let boom = &results[0];
    assert_eq!(boom.name, "BOOM");
    assert!(!boom.success);
    assert_eq!(boom.attempts, 3, "{boom:?}");
    assert!(boom.error.contains("exited with code 3"), "{}", boom.error);
    assert_eq!(h.events_of("boom", EventKind::Started).len(), 3);
    let st = h.status("boom");
    assert_eq!(st.state, ServiceState::Failed);
    assert!(
        st.last_error.contains("exited with code 3"),
        "{}",
        st.last_error
    );

    for (svc, why) in [
        ("dep", "dependency 'boom' failed"),
        ("depdep", "dependency 'dep' failed because 'boom' did: "),
    ] {
        let r = results
            .iter()
            .find(|r| r.name == svc.to_uppercase())
            .unwrap();
        assert!(!r.success && r.error.contains(why), "{r:?}");
        assert_eq!(h.status(svc).state, ServiceState::Failed);
        assert!(h.status(svc).last_error.contains(why));
        assert!(
            h.events_of(svc, EventKind::Started).is_empty(),
            "{svc} was started"
        );
    }
    // The stderr line was captured.
    let tail = h.orch.log_tail(Some("boom"), 10);
    assert!(
        tail.iter()
            .any(|l| l.line == "going down" && l.stream == LogStream::Stderr)
    );
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flapping_below_threshold_is_kept_and_staying_unhealthy_is_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = demo("f", free_port(), &[]);
    s.health_check.interval = Duration::from_millis(250);
    s.health_check.failure_threshold = 3;
    s.restart_backoff = Duration::ZERO;
    let h = Harness::new(config(dir.path(), vec![s], vec![]), false).await;
    assert!(h.orch.start_service("f").await.unwrap().success);
    let pid = h.status("f").pid.unwrap();

    for round in 1..=3 {
        signal(pid, Signal::USR1); // unhealthy
        h.wait_until("a failed probe", LONG, |h| {
            h.events_of("f", EventKind::HealthCheckFailed).len() >= round
        })
        .await;
        assert_eq!(h.status("f").state, ServiceState::Unhealthy);
        assert!(h.status("f").healthy, "one failure is not a verdict");
        signal(pid, Signal::USR1); // healthy again
        h.wait_until("healthy again", LONG, |h| running(h, "f"))
            .await;
    }
    assert!(h.events_of("f", EventKind::Restarting).is_empty());
    assert_eq!(h.status("f").pid, Some(pid));

    signal(pid, Signal::USR1); // and stays unhealthy
    h.wait_until("a restart", LONG, |h| {
        h.status("f").pid.is_some_and(|p| p != pid) && running(h, "f")
    })
    .await;
    assert_eq!(h.events_of("f", EventKind::Unhealthy).len(), 1);
    assert_eq!(h.status("f").restart_count, 1);
    assert!(!alive(pid));
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ignored_means_sigkill_after_stop_timeout_and_grandchildren_go_too() {
    let dir = tempfile::tempdir().unwrap();
    let mut stubborn = demo("stubborn", free_port(), &["--ignore-sigterm"]);
    stubborn.stop_timeout = Duration::from_millis(700);
    let parent = demo("parent", free_port(), &["--spawn-grandchild"]);
    let h = Harness::new(config(dir.path(), vec![stubborn, parent], vec![]), false).await;
    h.start_all_ok().await;

    let pid = h.status("stubborn").pid.unwrap();
    let t = Instant::now();
    h.orch.stop_service("stubborn").await.unwrap();
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_secs(5),
        "stop took {took:?}"
    );
    assert!(!alive(pid));
    let st = h.status("stubborn");
    assert_eq!(st.state, ServiceState::Stopped);
    assert!(st.stopped_by_user);
    assert!(
        h.events_of("stubborn", EventKind::Stopping)
            .iter()
            .any(|e| e.message.contains("killed its group")),
    );

    let grandchild = printed_pids(&h, "parent", "grandchild ")[0];
    assert!(alive(grandchild));
    let leader = h.status("parent").pid.unwrap();
    h.orch.stop_service("parent").await.unwrap();
    // `stopped` is reported only once the whole group is gone.
    assert!(!alive(grandchild), "grandchild survived the stop");
    assert!(!alive(leader));
    assert_gone(&BTreeSet::from([grandchild, leader])).await;
    h.finish().await;
}

/// The PIDs the stand-in `short` printed after `prefix` ("grandchild ", "escapee "), in
/// the order it printed them.
fn printed_pids(h: &Harness, short: &str, prefix: &str) -> Vec<u32> {
    h.orch
        .log_tail(Some(short), 100)
        .iter()
        .filter_map(|l| l.line.strip_prefix(prefix)?.parse().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_also_stops_what_left_the_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let s = demo("leaky", free_port(), &["--spawn-escapee"]);
    let h = Harness::new(config(dir.path(), vec![s], vec![]), false).await;
    assert!(h.orch.start_service("leaky").await.unwrap().success);
    h.wait_until("the escapee line", LONG, |h| {
        !printed_pids(h, "leaky", "escapee ").is_empty()
    })
    .await;
    let escaped = printed_pids(&h, "leaky", "escapee ")[0];
    assert!(alive(escaped));
    h.orch.stop_service("leaky").await.unwrap();
    assert_gone(&BTreeSet::from([escaped])).await;
    let stops = h.events_of("leaky", EventKind::Stopping);
    assert!(
        stops
            .iter()
            .any(|e| e.pid == Some(escaped)
                && e.message.contains("left the service's process group")),
        "{stops:?}"
    );
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_left_the_group_of_a_crashed_process_goes_soon_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = demo("leaky", free_port(), &["--spawn-escapee"]);
    s.restart_backoff = Duration::from_millis(50);
    let h = Harness::new(config(dir.path(), vec![s], vec![]), false).await;
    assert!(h.orch.start_service("leaky").await.unwrap().success);
    let escapees = |h: &Harness| printed_pids(h, "leaky", "escapee ");
    h.wait_until("the escapee line", LONG, |h| !escapees(h).is_empty())
        .await;
    let old = escapees(&h)[0];
    let first = h.status("leaky").pid.unwrap();
    signal(first, Signal::KILL);
    h.wait_until("a restart with its own escapee", LONG, |h| {
        h.status("leaky").state == ServiceState::Running && escapees(h).len() == 2
    })
    .await;
    let new = escapees(&h)[1];
    // The old one is stopped a moment after the exit; the new one is the running
    // process's own and stays.
    assert_gone(&BTreeSet::from([old])).await;
    assert!(alive(new), "the running process's escapee was stopped");
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_of_all_also_stops_what_left_the_groups() {
    let dir = tempfile::tempdir().unwrap();
    let a = demo("a", free_port(), &["--spawn-escapee"]);
    let mut b = demo("b", free_port(), &["--spawn-escapee"]);
    b.dependencies = vec!["a".into()];
    let h = Harness::new(config(dir.path(), vec![a, b], vec![]), false).await;
    h.start_all_ok().await;
    h.wait_until("both escapee lines", LONG, |h| {
        ["a", "b"]
            .iter()
            .all(|s| !printed_pids(h, s, "escapee ").is_empty())
    })
    .await;
    let escaped: BTreeSet<u32> = ["a", "b"]
        .iter()
        .map(|s| printed_pids(&h, s, "escapee ")[0])
        .collect();
    h.orch.stop_all().await.unwrap();
    assert_gone(&escaped).await;
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_on_the_port_is_never_killed_under_the_default_policy() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // Holds the port but fails our health check (404 on /health).
    let stranger =
        Demo::start_ready(&["--http-port", &port.to_string(), "--health-path", "/other"]);
    let s = demo("svc", port, &[]);
    let h = Harness::new(config(dir.path(), vec![s], vec![]), false).await;
    let r = h.orch.start_service("svc").await.unwrap();
    assert!(!r.success);
    let pid = stranger.pid().to_string();
    assert!(r.error.contains(&port.to_string()), "{}", r.error);
    assert!(r.error.contains(&pid), "{}", r.error);
    assert!(r.error.contains("mdw-demo"), "{}", r.error);
    assert!(alive(stranger.pid()), "the stranger was touched");
    assert_eq!(h.events_of("svc", EventKind::PortConflict).len(), 1);
    assert!(h.events_of("svc", EventKind::Started).is_empty());
    h.finish().await;
    assert!(alive(stranger.pid()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_instance_on_the_port_is_adopted_not_duplicated() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let holder = Demo::start_ready(&["--http-port", &port.to_string()]);
    let s = demo("svc", port, &[]);
    let h = Harness::new(config(dir.path(), vec![s], vec![]), false).await;
    let r = h.orch.start_service("svc").await.unwrap();
    assert!(r.success, "{r:?}");
    let st = h.status("svc");
    assert!(st.adopted);
    assert_eq!(st.pid, Some(holder.pid()));
    assert!(
        st.command.iter().any(|a| a.contains("mdw-demo")),
        "{:?}",
        st.command
    );
    assert!(
        h.events_of("svc", EventKind::Started).is_empty(),
        "spawned a duplicate"
    );
    assert_eq!(h.events_of("svc", EventKind::Adopted).len(), 1);
    // An adopted process can be stopped.
    h.orch.stop_service("svc").await.unwrap();
    assert!(!alive(holder.pid()));
    drop(holder); // reaps it: it is this test's child
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_policy_replaces_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let stranger =
        Demo::start_ready(&["--http-port", &port.to_string(), "--health-path", "/other"]);
    let mut s = demo("svc", port, &[]);
    s.on_port_conflict = PortConflictPolicy::Kill;
    let h = Harness::new(config(dir.path(), vec![s], vec![]), false).await;
    let r = h.orch.start_service("svc").await.unwrap();
    assert!(r.success, "{r:?}");
    assert!(!alive(stranger.pid()), "the holder was not stopped");
    let st = h.status("svc");
    assert!(!st.adopted);
    assert_ne!(st.pid, Some(stranger.pid()));
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_all_stops_dependents_first() {
    let dir = tempfile::tempdir().unwrap();
    let a = service("a", &["sleep", "1000"]);
    let mut b = service("b", &["sleep", "1000"]);
    b.dependencies = vec!["a".into()];
    let mut c = service("c", &["sleep", "1000"]);
    c.dependencies = vec!["b".into()];
    let solo = service("solo", &["sleep", "1000"]);
    let h = Harness::new(config(dir.path(), vec![a, b, c, solo], vec![]), false).await;
    h.start_all_ok().await;
    let pids = h.seen_pids();
    let order = h.orch.stop_all().await.unwrap();
    let pos = |s: &str| order.iter().position(|o| o == s).unwrap();
    assert!(pos("c") < pos("b") && pos("b") < pos("a"), "{order:?}");
    assert_eq!(order.len(), 4);
    // Each stopped only after its dependents were gone.
    let stopped_at = |s: &str| h.events_of(s, EventKind::Stopped)[0].timestamp;
    let stopping_at = |s: &str| h.events_of(s, EventKind::Stopping)[0].timestamp;
    assert!(stopped_at("c") <= stopping_at("b"));
    assert!(stopped_at("b") <= stopping_at("a"));
    assert!(
        h.orch
            .snapshot()
            .services
            .iter()
            .all(|s| s.state == ServiceState::Stopped)
    );
    assert_gone(&pids).await;
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_keep_order_across_streams_and_rotate_at_size() {
    let dir = tempfile::tempdir().unwrap();
    let s = demo("chatty", free_port(), &["--log-rate", "40"]);
    let mut cfg = config(dir.path(), vec![s], vec![]);
    cfg.logs.max_file_size = 2000;
    cfg.logs.max_files = 2;
    let logs = cfg.russell.state_dir.join("logs");
    let h = Harness::new(cfg, false).await;
    let mut follow = h.orch.log_subscribe();
    assert!(h.orch.start_service("chatty").await.unwrap().success);
    h.wait_until("60 numbered lines", LONG, |h| {
        h.orch
            .log_tail(Some("chatty"), 1000)
            .iter()
            .filter(|l| l.line.contains(" line "))
            .count()
            >= 60
    })
    .await;
    let numbered: Vec<(u64, LogStream)> = h
        .orch
        .log_tail(Some("chatty"), 1000)
        .iter()
        .filter_map(|l| {
            let n = l
                .line
                .split(" line ")
                .nth(1)?
                .split(' ')
                .next()?
                .parse()
                .ok()?;
            Some((n, l.stream))
        })
        .collect();
    // Within a stream the order is exact. Across the two streams (two pipes) it is the
    // order in which Russell read them: lines written within the same instant may swap,
    // nothing more.
    for stream in [LogStream::Stdout, LogStream::Stderr] {
        let ns: Vec<u64> = numbered
            .iter()
            .filter(|l| l.1 == stream)
            .map(|l| l.0)
            .collect();
        assert!(
            ns.windows(2).all(|w| w[0] < w[1]),
            "{stream:?} out of order: {ns:?}"
        );
    }
    let first_n = numbered[0].0;
    for (pos, (n, _)) in numbered.iter().enumerate() {
        assert!(
            (*n as i64 - first_n as i64 - pos as i64).abs() <= 1,
            "line {n} far out of place: {numbered:?}"
        );
    }
    for (n, stream) in &numbered {
        let want = if n % 2 == 1 {
            LogStream::Stdout
        } else {
            LogStream::Stderr
        };
        assert_eq!(*stream, want, "line {n}");
    }
    // Followers get the same lines.
    let first = follow.recv().await.unwrap();
    assert_eq!(first.service, "chatty");

    // Files: rotated at 2000 bytes, at most 2 old files, all 0600.
    h.wait_until("a rotation", LONG, |_| logs.join("chatty.log.2").exists())
        .await;
    assert!(!logs.join("chatty.log.3").exists());
    for f in ["chatty.log", "chatty.log.1", "chatty.log.2"] {
        let Ok(meta) = std::fs::metadata(logs.join(f)) else {
            continue;
        };
        assert!(meta.len() <= 2000, "{f} is {} bytes", meta.len());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{f}");
    }
    let text = std::fs::read_to_string(logs.join("chatty.log.1")).unwrap();
    let stamps: Vec<&str> = text.lines().map(|l| l.split(' ').nth(1).unwrap()).collect();
    assert!(stamps.contains(&"out") && stamps.contains(&"err"), "{text}");
    use std::os::unix::fs::PermissionsExt;
    let state_mode = std::fs::metadata(dir.path().join("state"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(state_mode & 0o777, 0o700);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detach_then_a_new_orchestrator_adopts_the_same_processes() {
    let dir = tempfile::tempdir().unwrap();
    let a = demo("a", free_port(), &["--log-rate", "20"]);
    let mut b = service("b", &["sleep", "1000"]);
    b.dependencies = vec!["a".into()];
    let c = service("c", &["sleep", "1000"]);
    let cfg = config(dir.path(), vec![a, b, c], vec![]);

    let first = Harness::new(cfg.clone(), false).await;
    assert!(
        first
            .orch
            .restore()
            .await
            .unwrap()
            .iter()
            .all(|r| r.success)
    );
    first.orch.stop_service("c").await.unwrap();
    let pids: Vec<Option<u32>> = ["a", "b"].iter().map(|s| first.status(s).pid).collect();
    first.orch.detach().await.unwrap();
    assert_eq!(
        test_support::harness::recorded_pid(&dir.path().join("state"), "a"),
        pids[0]
    );
    let mut first = first;
    first.join.take().unwrap().await.unwrap();
    assert!(
        pids.iter().all(|p| alive(p.unwrap())),
        "detach stopped a service"
    );
    std::mem::forget(first); // its guard would kill the groups the second one adopts

    let second = Harness::new(cfg, true).await;
    let results = second.orch.restore().await.unwrap();
    assert!(results.iter().all(|r| r.success), "{results:?}");
    assert_eq!(results.len(), 2, "c stays stopped: {results:?}");
    for (s, pid) in ["a", "b"].iter().zip(&pids) {
        let st = second.status(s);
        assert_eq!(st.pid, *pid, "{s} not adopted");
        assert!(st.adopted);
        assert_eq!(st.state, ServiceState::Running);
        assert!(
            second.events_of(s, EventKind::Started).is_empty(),
            "{s} duplicated"
        );
    }
    let c = second.status("c");
    assert_eq!(c.state, ServiceState::Stopped);
    assert!(c.stopped_by_user);
    // The adopted service's output still reaches the new Russell through its FIFO, and
    // only the new one reads it: no line is missing.
    second
        .wait_until("lines via the reopened FIFO", LONG, |h| {
            h.orch.log_tail(Some("a"), 100).len() >= 10
        })
        .await;
    let numbers: Vec<u64> = second
        .orch
        .log_tail(Some("a"), 100)
        .iter()
        .filter_map(|l| {
            l.line
                .split(" line ")
                .nth(1)?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .collect();
    let mut sorted = numbers.clone();
    sorted.sort_unstable();
    for w in sorted.windows(2) {
        assert_eq!(w[0] + 1, w[1], "a line is missing: {numbers:?}");
    }
    second.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn externals_gate_dependents_and_optional_ones_only_delay_them() {
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let up = listener.local_addr().unwrap().to_string();
    let down = format!("127.0.0.1:{}", free_port());
    let mut needs_up = service("needs-up", &["sleep", "1000"]);
    needs_up.dependencies = vec!["db".into()];
    let mut needs_opt = service("needs-opt", &["sleep", "1000"]);
    needs_opt.dependencies = vec!["ollama".into()];
    let mut needs_down = service("needs-down", &["sleep", "1000"]);
    needs_down.dependencies = vec!["gone".into()];
    let h = Harness::new(
        config(
            dir.path(),
            vec![needs_up, needs_opt, needs_down],
            vec![
                external("db", &up, false),
                external("ollama", &down, true),
                external("gone", &down, false),
            ],
        ),
        false,
    )
    .await;
    let results = h.orch.start_all(false).await.unwrap();
    assert!(results[0].success && results[1].success, "{results:?}");
    assert!(!results[2].success);
    assert!(
        results[2].error.contains("dependency 'gone' not healthy"),
        "{}",
        results[2].error
    );
    assert!(
        h.events_of("needs-opt", EventKind::Waiting)
            .iter()
            .any(|e| e.message.contains("starting without it"))
    );
    let snap = h.orch.snapshot();
    assert_eq!(snap.externals.len(), 3);
    assert_eq!(
        snap.externals[0].state,
        russell_core::ExternalState::Healthy
    );
    assert_eq!(
        snap.externals[2].state,
        russell_core::ExternalState::Unhealthy
    );
    assert!(
        h.orch.start_service("db").await.is_err(),
        "externals are never started"
    );
    assert!(h.orch.start_service("nope").await.is_err());
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commands_never_make_two_processes() {
    let dir = tempfile::tempdir().unwrap();
    let s = demo("one", free_port(), &["--ready-after", "200ms"]);
    let h = Harness::new(config(dir.path(), vec![s], vec![]), false).await;
    let (a, b, c, d) = tokio::join!(
        h.orch.start_service("one"),
        h.orch.start_service("ONE"),
        h.orch.start_all(false),
        h.orch.start_service("One"),
    );
    assert!(a.unwrap().success && b.unwrap().success && d.unwrap().success);
    assert!(c.unwrap()[0].success);
    assert_eq!(h.events_of("one", EventKind::Started).len(), 1);
    let (r1, r2) = tokio::join!(h.orch.restart_service("one"), h.orch.restart_service("one"));
    assert!(r1.unwrap().success && r2.unwrap().success);
    // The second restart joined the first one's fresh process.
    assert_eq!(h.events_of("one", EventKind::Started).len(), 2);
    let alive_now = h.seen_pids().into_iter().filter(|p| alive(*p)).count();
    assert_eq!(alive_now, 1, "more than one process alive");
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_file_then_env_and_working_dir() {
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("svc.env");
    std::fs::write(&env_file, "# comment\nFROM_FILE=file\nBOTH=file\n").unwrap();
    let mut s = service(
        "envy",
        &[
            "sh",
            "-c",
            "echo \"$FROM_FILE $BOTH $(pwd)\"; exec sleep 1000",
        ],
    );
    s.env_file = Some(env_file);
    s.env.insert("BOTH".into(), "env".into());
    s.working_dir = dir.path().to_path_buf();
    let h = Harness::new(config(dir.path(), vec![s], vec![]), false).await;
    assert!(h.orch.start_service("envy").await.unwrap().success);
    let want = format!("file env {}", dir.path().display());
    h.wait_until("the env line", LONG, |h| {
        h.orch
            .log_tail(Some("envy"), 10)
            .iter()
            .any(|l| l.line == want)
    })
    .await;
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_dependents_and_the_restart_counter_reset() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = demo("a", free_port(), &[]);
    a.restart_dependents = true;
    a.restart_backoff = Duration::from_millis(50);
    a.restart_reset_after = Duration::from_millis(600);
    let mut b = service("b", &["sleep", "1000"]);
    b.dependencies = vec!["a".into()];
    let h = Harness::new(config(dir.path(), vec![a, b], vec![]), false).await;
    h.start_all_ok().await;
    let (a_pid, b_pid) = (h.status("a").pid.unwrap(), h.status("b").pid.unwrap());
    signal(a_pid, Signal::KILL);
    h.wait_until("b restarted after a came back", LONG, |h| {
        h.status("b").pid.is_some_and(|p| p != b_pid) && running(h, "b")
    })
    .await;
    let a_healthy = h
        .events_of("a", EventKind::Healthy)
        .last()
        .unwrap()
        .timestamp;
    let b_stopping = h.events_of("b", EventKind::Stopping)[0].timestamp;
    assert!(b_stopping >= a_healthy, "b restarted before a was back");
    assert_eq!(h.status("a").restart_count, 1);
    h.wait_until("the restart counter reset", LONG, |h| {
        h.status("a").restart_count == 0
    })
    .await;
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unhealthy_copy_of_the_service_on_its_port_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let s = demo("svc", port, &[]);
    // The same command line as the service, started by hand, and then unhealthy.
    let args: Vec<&str> = s.command[1..].iter().map(String::as_str).collect();
    let copy = Demo::start_ready(&args);
    signal(copy.pid(), Signal::USR1);
    let h = Harness::new(config(dir.path(), vec![s], vec![]), false).await;
    let r = h.orch.start_service("svc").await.unwrap();
    assert!(r.success, "{r:?}");
    assert!(!alive(copy.pid()), "the unhealthy copy was left running");
    let st = h.status("svc");
    assert!(!st.adopted);
    assert_ne!(st.pid, Some(copy.pid()));
    drop(copy);
    h.finish().await;
}

/// A service as a Russell that died right after spawning it leaves it: in a group of
/// its own, marked with the state directory, named in no state file. A thread reaps it
/// as init would; its group is killed on drop.
struct Unrecorded {
    pid: u32,
    reaper: Option<std::thread::JoinHandle<()>>,
}

impl Unrecorded {
    fn spawn(svc: &russell_config::Service, state_dir: &std::path::Path) -> Self {
        use std::os::unix::process::CommandExt;
        let marked = std::fs::canonicalize(state_dir.parent().unwrap())
            .unwrap()
            .join(state_dir.file_name().unwrap());
        let mut child = std::process::Command::new(&svc.command[0])
            .args(&svc.command[1..])
            .env("RUSSELL_SERVICE", &svc.short_name)
            .env("RUSSELL_STATE_DIR", marked)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = child.id();
        // spawn returns once the exec began; the new program's arguments and environment
        // show in /proc a moment later.
        let environ = format!("/proc/{pid}/environ");
        test_support::wait_until("the marks in /proc", LONG, || {
            std::fs::read(&environ).is_ok_and(|e| {
                e.starts_with(b"RUSSELL_") || e.windows(9).any(|w| w == b"\0RUSSELL_")
            })
        });
        Self {
            pid,
            reaper: Some(std::thread::spawn(move || {
                let _ = child.wait();
            })),
        }
    }
}

impl Drop for Unrecorded {
    fn drop(&mut self) {
        let pid = rustix::process::Pid::from_raw(self.pid as i32).unwrap();
        let _ = rustix::process::kill_process_group(pid, Signal::KILL);
        if let Some(reaper) = self.reaper.take() {
            let _ = reaper.join();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_spawned_but_never_recorded_is_adopted_not_started_twice() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut a = demo("a", port, &[]);
    // Only the marks may adopt it: the port check would adopt a healthy holder too.
    a.on_port_conflict = PortConflictPolicy::Fail;
    let mut b = service("b", &["sleep", "1000"]);
    b.dependencies = vec!["a".into()];
    let cfg = config(dir.path(), vec![a.clone(), b], vec![]);
    std::fs::create_dir_all(&cfg.russell.state_dir).unwrap();
    let stray = Unrecorded::spawn(&a, &cfg.russell.state_dir);
    // It answers on its port before the new Russell looks.
    test_support::wait_until("the stray on its port", LONG, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });

    let h = Harness::new(cfg, true).await;
    let results = h.orch.restore().await.unwrap();
    assert!(results.iter().all(|r| r.success), "{results:?}");
    let st = h.status("a");
    assert_eq!(st.pid, Some(stray.pid), "not adopted: {st:?}");
    assert!(st.adopted);
    assert_eq!(st.state, ServiceState::Running);
    assert!(
        h.events_of("a", EventKind::Started).is_empty(),
        "a started twice"
    );
    // Its dependent starts only once it is healthy, as after any adoption.
    assert_eq!(h.status("b").state, ServiceState::Running);
    // The next Russell finds it in the state file (written by its own task, soon).
    let state_dir = dir.path().join("state");
    h.wait_until("the state file naming the stray", LONG, |_| {
        test_support::harness::recorded_pid(&state_dir, "a") == Some(stray.pid)
    })
    .await;
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_copy_nobody_recorded_is_stopped_and_the_recorded_one_adopted() {
    let dir = tempfile::tempdir().unwrap();
    let s = service("s", &["sleep", "1000"]);
    let cfg = config(dir.path(), vec![s.clone()], vec![]);
    let first = Harness::new(cfg.clone(), false).await;
    assert!(first.orch.start_service("s").await.unwrap().success);
    let recorded = first.status("s").pid.unwrap();
    first.orch.detach().await.unwrap();
    let mut first = first;
    first.join.take().unwrap().await.unwrap();
    std::mem::forget(first); // its guard would kill the group the second one adopts

    let copy = Unrecorded::spawn(&s, &cfg.russell.state_dir);
    // Marked too, but not the service's command: a helper it keeps in a group of its
    // own. Left alone.
    let mut helper_svc = s.clone();
    helper_svc.command = vec!["sleep".into(), "999".into()];
    let helper = Unrecorded::spawn(&helper_svc, &cfg.russell.state_dir);
    let h = Harness::new(cfg, true).await;
    let results = h.orch.restore().await.unwrap();
    assert!(results.iter().all(|r| r.success), "{results:?}");
    assert_eq!(h.status("s").pid, Some(recorded));
    assert!(alive(helper.pid), "the helper was stopped");
    // (Its Stopping event went out before anybody could subscribe.)
    assert_gone(&BTreeSet::from([copy.pid])).await;
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_healthy_fails_after_start_timeout_per_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = service("mute", &["sleep", "1000"]);
    s.max_retries = 2;
    s.restart_backoff = Duration::from_millis(50);
    s.health_check.start_timeout = Duration::from_millis(400);
    s.health_check.probe = Probe::Tcp {
        addr: format!("127.0.0.1:{}", free_port()),
    };
    let h = Harness::new(config(dir.path(), vec![s], vec![]), false).await;
    let r = h.orch.start_service("mute").await.unwrap();
    assert!(!r.success);
    assert_eq!(r.attempts, 2);
    assert!(
        r.error.contains("not healthy within start_timeout"),
        "{}",
        r.error
    );
    assert!(
        r.error.contains("127.0.0.1"),
        "names the probe target: {}",
        r.error
    );
    assert_gone(&h.seen_pids()).await;
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_and_memory_are_sampled_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let s = demo("hungry", free_port(), &[]);
    let h = Harness::new(config(dir.path(), vec![s], vec![]), false).await;
    assert!(h.orch.start_service("hungry").await.unwrap().success);
    h.wait_until("an RSS sample", LONG, |h| h.status("hungry").rss_bytes > 0)
        .await;
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_read_after_an_idle_spell_gets_a_current_sample() {
    // Nobody has read a snapshot yet, so the sampler is parked: the first fresh read must
    // wake it and wait for its sample rather than show no memory at all.
    let dir = tempfile::tempdir().unwrap();
    let s = demo("hungry", free_port(), &[]);
    let h = Harness::new(config(dir.path(), vec![s], vec![]), false).await;
    assert!(h.orch.start_service("hungry").await.unwrap().success);
    // Nothing has read a snapshot since the orchestrator started: the sampler is parked
    // (or about to park) and has never sampled.
    let asked = std::time::Instant::now();
    let snap = h.orch.fresh_snapshot().await;
    let waited = asked.elapsed();
    let hungry = snap.services.iter().find(|s| s.short_name == "hungry");
    assert!(
        hungry.unwrap().rss_bytes > 0,
        "after waiting {waited:?}: {hungry:?}"
    );
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_keeps_user_stopped_services_stopped_and_blocks_their_dependents() {
    let dir = tempfile::tempdir().unwrap();
    let a = service("a", &["sleep", "1000"]);
    let mut b = service("b", &["sleep", "1000"]);
    b.dependencies = vec!["a".into()];
    let cfg = config(dir.path(), vec![a, b], vec![]);
    let first = Harness::new(cfg.clone(), false).await;
    assert!(
        first
            .orch
            .restore()
            .await
            .unwrap()
            .iter()
            .all(|r| r.success)
    );
    first.orch.stop_service("a").await.unwrap();
    first.finish().await; // stops b too, but not "by the user"

    let second = Harness::new(cfg, true).await;
    let results = second.orch.restore().await.unwrap();
    assert_eq!(results.len(), 1, "{results:?}");
    assert!(
        results[0]
            .error
            .contains("dependency 'a' was stopped by the user")
    );
    assert_eq!(second.status("a").state, ServiceState::Stopped);
    assert_eq!(second.status("b").state, ServiceState::Stopped);
    // Starting b by hand starts a too.
    assert!(second.orch.start_service("b").await.unwrap().success);
    assert_eq!(second.status("a").state, ServiceState::Running);
    second.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawn_failures_name_the_working_dir_program_or_env_file_at_fault() {
    let dir = tempfile::tempdir().unwrap();
    let mut wd = service("wd", &["sleep", "1000"]);
    wd.working_dir = dir.path().join("no-such-dir");
    let prog = service("prog", &["/no/such/program"]);
    let mut envf = service("envf", &["sleep", "1000"]);
    envf.env_file = Some(dir.path().join("missing.env"));
    let mut services = vec![wd, prog, envf];
    for s in &mut services {
        s.max_retries = 0;
    }
    let h = Harness::new(config(dir.path(), services, vec![]), false).await;

    let results = h.orch.start_all(false).await.unwrap();
    assert!(results.iter().all(|r| !r.success), "{results:?}");
    for (svc, says) in [
        ("wd", "working_dir "),
        ("wd", "no-such-dir is not a directory"),
        ("prog", "cannot run '/no/such/program'"),
        ("envf", "cannot read env_file "),
        ("envf", "missing.env: No such file or directory"),
    ] {
        let st = h.status(svc);
        assert_eq!(st.state, ServiceState::Failed, "{svc}");
        assert!(st.last_error.contains(says), "{svc}: {}", st.last_error);
    }
    assert!(
        !h.status("prog").last_error.contains("is not a directory"),
        "{}",
        h.status("prog").last_error
    );
    h.finish().await;
}

/// A marked process of a service the file no longer has (removed while a Russell that
/// would have stopped it crashed) is stopped by the next Russell, not left running: no
/// service will ever adopt it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_marked_process_of_a_service_no_longer_in_the_file_is_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let kept = service("kept", &["sleep", "1000"]);
    let gone = service("gone", &["sleep", "1000"]);
    let cfg = config(dir.path(), vec![kept], vec![]);
    std::fs::create_dir_all(&cfg.russell.state_dir).unwrap();
    let stray = Unrecorded::spawn(&gone, &cfg.russell.state_dir);
    assert!(alive(stray.pid));
    let h = Harness::new(cfg, true).await;
    test_support::wait_until_async("the orphan stopped", LONG, || !alive(stray.pid)).await;
    h.start_all_ok().await;
    h.finish().await;
}
