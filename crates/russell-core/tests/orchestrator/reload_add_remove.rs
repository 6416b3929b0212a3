//! Reloading a file that adds, removes or renames services and externals: an added one
//! starts (after what it needs), a removed one is stopped (dependents first, its whole
//! process group) and forgotten (snapshot, names, state file), a rename is both; every
//! other service keeps its process, its restart count and its silence.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use russell_config::{Action, Config, ServiceKind};
use russell_core::{EventKind, ExternalState, ServiceState};
use test_support::config::{config, external, service};
use test_support::harness::Harness;
use test_support::procs::group_alive;

const T: Duration = Duration::from_secs(15);

/// a ← b, c alone: three long sleepers.
fn base(dir: &std::path::Path) -> Config {
    let a = service("a", &["sleep", "1000"]);
    let mut b = service("b", &["sleep", "1001"]);
    b.dependencies = vec!["a".into()];
    let c = service("c", &["sleep", "1002"]);
    config(dir, vec![a, b, c], Vec::new())
}

/// short_name → (pid, restart count) of every service in the snapshot.
fn table(h: &Harness) -> BTreeMap<String, (Option<u32>, u32)> {
    (h.orch.snapshot().services.iter())
        .map(|s| (s.short_name.clone(), (s.pid, s.restart_count)))
        .collect()
}

fn shorts(h: &Harness) -> Vec<String> {
    (h.orch.snapshot().services.iter())
        .map(|s| s.short_name.clone())
        .collect()
}

/// The services the state file records (none while it is not written yet).
fn state_file_services(dir: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("state").join("state.json")).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    v["services"]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

/// Asserts that `kept` have the same pid and restart count as in `before` and that no
/// event since `from` names them.
fn untouched(
    h: &Harness,
    before: &BTreeMap<String, (Option<u32>, u32)>,
    kept: &[&str],
    from: usize,
) {
    let now = table(h);
    for k in kept {
        assert_eq!(
            now[*k], before[*k],
            "{k} kept its process and restart count"
        );
        assert!(now[*k].0.is_some(), "{k} runs");
    }
    let later: Vec<_> = h.events().into_iter().skip(from).collect();
    assert!(
        later.iter().all(|e| !kept.contains(&e.service.as_str())),
        "no event for {kept:?}: {later:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_added_service_starts_and_the_others_are_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::new(base(dir.path()), false).await;
    h.start_all_ok().await;
    let before = table(&h);
    let from = h.events().len();
    let mut new = base(dir.path());
    new.services.push(service("d", &["sleep", "1003"]));

    let dry = h.orch.reload(new.clone(), true).await.unwrap();
    assert!(!dry.applied);
    assert_eq!(dry.diff.service("d").map(|c| c.action), Some(Action::Add));
    assert_eq!(shorts(&h), ["a", "b", "c"], "a dry run applies nothing");

    let report = h.orch.reload(new, false).await.unwrap();
    assert!(report.applied);
    assert_eq!(report.diff.services.len(), 1, "{:?}", report.diff);
    assert_eq!(report.results.len(), 1, "{:?}", report.results);
    assert!(report.results[0].success, "{:?}", report.results);
    assert_eq!(shorts(&h), ["a", "b", "c", "d"]);
    let d = h.status("d");
    assert_eq!(d.state, ServiceState::Running);
    assert!(test_support::procs::alive(d.pid.unwrap()));
    assert_eq!(h.orch.resolve("D").unwrap(), "d", "its name resolves");
    untouched(&h, &before, &["a", "b", "c"], from);
    let reloaded = h.events_of("russell", EventKind::Reloaded);
    assert!(
        reloaded
            .last()
            .unwrap()
            .message
            .contains("1 added, 0 removed"),
        "{reloaded:?}"
    );
    h.wait_until("d in the state file", T, |_| {
        state_file_services(dir.path()).contains(&"d".to_string())
    })
    .await;
    // Its output is kept like any other service's.
    let mut echo = base(dir.path());
    echo.services.push(service("d", &["sleep", "1003"]));
    echo.services.push(service(
        "e",
        &["sh", "-c", "echo hello from e; exec sleep 1004"],
    ));
    h.orch.reload(echo, false).await.unwrap();
    h.wait_until("e's line in its tail", T, |h| {
        h.orch
            .log_tail(Some("e"), 10)
            .iter()
            .any(|l| l.line.contains("hello from e"))
    })
    .await;
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_added_task_runs_before_the_added_service_that_needs_it() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::new(base(dir.path()), false).await;
    h.start_all_ok().await;
    let before = table(&h);
    let from = h.events().len();
    let mark = dir.path().join("task-ran");
    let mut new = base(dir.path());
    let mut t = service(
        "t",
        &["sh", "-c", &format!("sleep 0.3; touch {}", mark.display())],
    );
    t.kind = ServiceKind::Task;
    let mut e = service(
        "e",
        &[
            "sh",
            "-c",
            &format!("test -e {} && exec sleep 1005", mark.display()),
        ],
    );
    e.dependencies = vec!["t".into(), "a".into()];
    e.max_retries = 0;
    new.services.push(t);
    new.services.push(e);
    let report = h.orch.reload(new, false).await.unwrap();
    assert!(
        report.results.iter().all(|r| r.success),
        "{:?}",
        report.results
    );
    assert_eq!(h.status("t").state, ServiceState::Completed);
    assert_eq!(h.status("e").state, ServiceState::Running);
    assert_eq!(
        h.status("e").restart_count,
        0,
        "e saw the task's file at once"
    );
    untouched(&h, &before, &["a", "b", "c"], from);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_service_is_stopped_with_its_group_and_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = base(dir.path());
    // c leaves a child in its group: the removal must take the whole group.
    first.services[2].command = vec![
        "sh".into(),
        "-c".into(),
        "sleep 1002 & exec sleep 1003".into(),
    ];
    let h = Harness::new(first, false).await;
    h.start_all_ok().await;
    let before = table(&h);
    let from = h.events().len();
    let c = h.status("c").pid.unwrap();
    let mut new = base(dir.path());
    new.services.retain(|s| s.short_name != "c");
    let report = h.orch.reload(new, false).await.unwrap();
    assert_eq!(
        report.diff.service("c").map(|c| c.action),
        Some(Action::Remove)
    );
    assert!(!group_alive(c), "c's process group is gone");
    assert_eq!(shorts(&h), ["a", "b"]);
    assert!(h.orch.resolve("c").is_err(), "c's name is forgotten");
    assert!(h.orch.start_service("c").await.is_err());
    h.wait_until("c out of the state file", T, |_| {
        state_file_services(dir.path()) == ["a", "b"]
    })
    .await;
    untouched(&h, &before, &["a", "b"], from);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_dependents_stop_before_what_they_depend_on() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::new(base(dir.path()), false).await;
    h.start_all_ok().await;
    let before = table(&h);
    let from = h.events().len();
    let mut new = base(dir.path());
    new.services.retain(|s| s.short_name == "c");
    h.orch.reload(new, false).await.unwrap();
    assert_eq!(shorts(&h), ["c"]);
    let stops: Vec<String> = (h.events().into_iter().skip(from))
        .filter(|e| e.kind == EventKind::Stopped)
        .map(|e| e.service)
        .collect();
    assert_eq!(stops, ["b", "a"], "b depends on a");
    untouched(&h, &before, &["c"], from);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_service_is_removed_and_added() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::new(base(dir.path()), false).await;
    h.start_all_ok().await;
    let before = table(&h);
    let from = h.events().len();
    let old = h.status("c").pid.unwrap();
    let mut new = base(dir.path());
    new.services[2].short_name = "c2".into();
    let report = h.orch.reload(new, false).await.unwrap();
    let actions: Vec<_> = (report.diff.services.iter())
        .map(|c| (c.short_name.as_str(), c.action))
        .collect();
    assert_eq!(actions, [("c2", Action::Add), ("c", Action::Remove)]);
    assert!(!group_alive(old));
    assert_eq!(shorts(&h), ["a", "b", "c2"]);
    let c2 = h.status("c2");
    assert_eq!(c2.state, ServiceState::Running);
    assert_ne!(c2.pid, Some(old));
    untouched(&h, &before, &["a", "b"], from);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_comes_with_its_dependent_and_goes_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::new(base(dir.path()), false).await;
    h.start_all_ok().await;
    let before = table(&h);
    let from = h.events().len();
    let db = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = db.local_addr().unwrap().to_string();
    let mut new = base(dir.path());
    new.externals.push(external("db", &addr, false));
    let mut f = service("f", &["sleep", "1006"]);
    f.dependencies = vec!["db".into()];
    new.services.push(f);
    let report = h.orch.reload(new, false).await.unwrap();
    assert!(
        report.results.iter().all(|r| r.success),
        "{:?}",
        report.results
    );
    let snap = h.orch.snapshot();
    assert_eq!(snap.externals.len(), 1);
    assert_eq!(snap.externals[0].state, ExternalState::Healthy);
    assert_eq!(h.status("f").state, ServiceState::Running);
    untouched(&h, &before, &["a", "b", "c"], from);

    // The external changes: its prober starts over, its dependent is not touched.
    let f_pid = h.status("f").pid;
    let mut new = base(dir.path());
    let mut x = external("db", &addr, false);
    x.description = "the database".into();
    new.externals.push(x);
    let mut f = service("f", &["sleep", "1006"]);
    f.dependencies = vec!["db".into()];
    new.services.push(f);
    let healthy = h.events_of("db", EventKind::Healthy).len();
    h.orch.reload(new, false).await.unwrap();
    assert_eq!(h.orch.snapshot().externals[0].description, "the database");
    assert_eq!(h.status("f").pid, f_pid);
    h.wait_until("the new prober's first verdict", T, |h| {
        h.events_of("db", EventKind::Healthy).len() > healthy
    })
    .await;

    // Both go: the external leaves the snapshot and its name is forgotten.
    let from = h.events().len();
    h.orch.reload(base(dir.path()), false).await.unwrap();
    assert!(h.orch.snapshot().externals.is_empty());
    assert!(h.orch.resolve("db").is_err());
    assert_eq!(shorts(&h), ["a", "b", "c"]);
    untouched(&h, &before, &["a", "b", "c"], from);
    // No prober is left: closing the port gives no event about db.
    drop(db);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let later: Vec<_> = h.events().into_iter().skip(from).collect();
    assert!(later.iter().all(|e| e.service != "db"), "{later:#?}");
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dependency_added_or_removed_restarts_only_that_service() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::new(base(dir.path()), false).await;
    h.start_all_ok().await;
    let before = table(&h);
    let from = h.events().len();
    let mut new = base(dir.path());
    new.services[2].dependencies = vec!["a".into()];
    let report = h.orch.reload(new, false).await.unwrap();
    assert_eq!(
        report.diff.service("c").map(|c| c.action),
        Some(Action::Restart)
    );
    assert_ne!(h.status("c").pid, before["c"].0, "c restarted");
    assert_eq!(h.status("c").dependencies, ["a"]);
    untouched(&h, &before, &["a", "b"], from);

    let before = table(&h);
    let from = h.events().len();
    h.orch.reload(base(dir.path()), false).await.unwrap();
    assert_ne!(h.status("c").pid, before["c"].0, "c restarted again");
    assert!(h.status("c").dependencies.is_empty());
    untouched(&h, &before, &["a", "b"], from);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_added_service_that_needs_a_user_stopped_one_waits_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::new(base(dir.path()), false).await;
    h.start_all_ok().await;
    h.orch.stop_service("c").await.unwrap();
    let mut new = base(dir.path());
    let mut g = service("g", &["sleep", "1007"]);
    g.dependencies = vec!["c".into()];
    new.services.push(g);
    let report = h.orch.reload(new, false).await.unwrap();
    assert!(!report.results[0].success, "{:?}", report.results);
    assert!(
        report.results[0]
            .error
            .contains("'c' was stopped by the user"),
        "{:?}",
        report.results
    );
    assert_eq!(
        h.status("c").state,
        ServiceState::Stopped,
        "c stays stopped"
    );
    assert!(h.status("g").pid.is_none());
    h.finish().await;
}
