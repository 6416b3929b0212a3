//! One-shot tasks and the restart policy, with real processes: a task chain in order, a
//! failing task blocking its dependents, `restart` with `success_exit_codes`, and a
//! completed task run again.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use russell_config::{RestartPolicy, Service, ServiceKind};
use russell_core::{EventKind, ServiceState};
use test_support::config::{config, service};
use test_support::harness::Harness;

const LONG: Duration = Duration::from_secs(20);

fn task(short: &str, script: &str) -> Service {
    let mut t = service(short, &["sh", "-c", script]);
    t.kind = ServiceKind::Task;
    t.restart = RestartPolicy::Never;
    t
}

fn state(h: &Harness, s: &str) -> ServiceState {
    h.status(s).state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_chain_runs_in_order_task_then_service_then_dependent() {
    let dir = tempfile::tempdir().unwrap();
    let done = dir.path().join("prep.done");
    let prep = task("prep", &format!("sleep 0.3; touch '{}'", done.display()));
    // Started too early, it fails at once and for good.
    let mut svc = service(
        "svc",
        &[
            "sh",
            "-c",
            &format!("test -f '{}' || exit 7; exec sleep 60", done.display()),
        ],
    );
    svc.dependencies = vec!["prep".into()];
    svc.restart = RestartPolicy::Never;
    let mut dep = service("dep", &["sleep", "60"]);
    dep.dependencies = vec!["svc".into()];
    let h = Harness::new(config(dir.path(), vec![dep, svc, prep], vec![]), false).await;

    h.start_all_ok().await;
    assert_eq!(state(&h, "prep"), ServiceState::Completed);
    assert!(
        h.status("prep").healthy,
        "a completed task counts as healthy"
    );
    assert_eq!(h.status("prep").pid, None);
    assert_eq!(state(&h, "svc"), ServiceState::Running);
    assert_eq!(state(&h, "dep"), ServiceState::Running);

    let events = h.events();
    let at = |svc: &str, kind: EventKind| {
        events
            .iter()
            .position(|e| e.service == svc && e.kind == kind)
            .unwrap_or_else(|| panic!("no {kind:?} of {svc}: {events:#?}"))
    };
    assert!(at("prep", EventKind::Completed) < at("svc", EventKind::Started));
    assert!(at("svc", EventKind::Healthy) < at("dep", EventKind::Started));
    assert!(h.events_of("prep", EventKind::Restarting).is_empty());

    // A start of all leaves the completed task alone.
    let before = h.events_of("prep", EventKind::Started).len();
    h.start_all_ok().await;
    assert_eq!(h.events_of("prep", EventKind::Started).len(), before);

    // `mdw run`: a restart runs it again and answers when it completed.
    std::fs::remove_file(&done).unwrap();
    let r = h.orch.restart_service("prep").await.unwrap();
    assert!(r.success, "{r:?}");
    assert!(done.exists(), "the answer came before the task completed");
    assert_eq!(state(&h, "prep"), ServiceState::Completed);
    assert_eq!(h.events_of("prep", EventKind::Completed).len(), 2);
    // Its dependents were not touched.
    assert_eq!(h.events_of("svc", EventKind::Started).len(), 1);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_task_blocks_its_dependents_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let bad = task("migrate", "sleep 0.1; echo boom >&2; exit 3");
    let mut after = service("api", &["sleep", "60"]);
    after.dependencies = vec!["migrate".into()];
    let mut last = service("web", &["sleep", "60"]);
    last.dependencies = vec!["api".into()];
    let h = Harness::new(config(dir.path(), vec![bad, after, last], vec![]), false).await;

    let results = h.orch.start_all(false).await.unwrap();
    assert!(results.iter().all(|r| !r.success), "{results:?}");
    let m = h.status("migrate");
    assert_eq!(m.state, ServiceState::Failed);
    assert!(m.last_error.contains("exited with code 3"), "{m:?}");
    assert!(m.last_error.contains("restart = \"never\""), "{m:?}");
    let api = h.status("api");
    assert_eq!(api.state, ServiceState::Failed);
    assert!(
        api.last_error
            .contains("dependency 'migrate' failed: exited with code 3"),
        "{}",
        api.last_error
    );
    assert!(
        h.status("web")
            .last_error
            .contains("dependency 'api' failed because 'migrate' did"),
        "{}",
        h.status("web").last_error
    );
    assert!(h.events_of("api", EventKind::Started).is_empty());
    // Tried once only (never).
    assert_eq!(h.events_of("migrate", EventKind::Started).len(), 1);
    h.finish().await;
}

/// A service that runs 200 ms and exits with `code`.
fn exits(short: &str, code: i32, restart: RestartPolicy, success: &[i32]) -> Service {
    let mut s = service(short, &["sh", "-c", &format!("sleep 0.2; exit {code}")]);
    s.restart = restart;
    s.success_exit_codes = success.to_vec();
    s.max_retries = 2;
    s.restart_backoff = Duration::from_millis(50);
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_policies_with_success_exit_codes() {
    use RestartPolicy::*;
    let dir = tempfile::tempdir().unwrap();
    // (service, final state, spawns)
    let cases = [
        (exits("never0", 0, Never, &[0]), ServiceState::Completed, 1),
        (exits("never3", 3, Never, &[0]), ServiceState::Failed, 1),
        (
            exits("onfail0", 0, OnFailure, &[0]),
            ServiceState::Completed,
            1,
        ),
        (
            exits("onfail3", 3, OnFailure, &[0]),
            ServiceState::Failed,
            3,
        ),
        (
            exits("onfail3ok", 3, OnFailure, &[0, 3]),
            ServiceState::Completed,
            1,
        ),
        (exits("always0", 0, Always, &[0]), ServiceState::Failed, 3),
        (exits("always3", 3, Always, &[3]), ServiceState::Failed, 3),
    ];
    let services = cases.iter().map(|c| c.0.clone()).collect();
    let h = Harness::new(config(dir.path(), services, vec![]), false).await;
    h.start_all_ok().await;
    let settled = |h: &Harness| {
        cases
            .iter()
            .all(|(s, want, _)| h.status(&s.short_name).state == *want)
    };
    h.wait_until("every policy to settle", LONG, settled).await;
    // Settled for good: nothing restarts later.
    tokio::time::sleep(Duration::from_millis(400)).await;
    for (s, want, spawns) in &cases {
        let st = h.status(&s.short_name);
        assert_eq!(st.state, *want, "{}: {st:?}", s.short_name);
        let started = h.events_of(&s.short_name, EventKind::Started).len();
        assert_eq!(started, *spawns, "{} spawned {started} times", s.short_name);
    }
    assert!(
        !h.status("never0").healthy,
        "a completed service is not healthy"
    );
    let completed = h.events_of("onfail0", EventKind::Completed);
    assert!(
        completed[0]
            .message
            .contains("not restarted (restart = \"on-failure\")"),
        "{completed:?}"
    );
    h.finish().await;
}
