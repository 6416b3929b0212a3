//! Reloading a changed config into a running orchestrator: only what changed restarts,
//! the rest keeps its process, restart count and silence; timing-only changes apply
//! without a restart; enabled flips start and stop. Adds, removes and renames (of services
//! and externals) live in `reload_add_remove.rs`.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use russell_config::{Action, Config};
use russell_core::{EventKind, ServiceState};
use test_support::config::{config, service};
use test_support::harness::Harness;

const T: Duration = Duration::from_secs(15);

fn base(dir: &std::path::Path) -> Config {
    let a = service("a", &["sleep", "1000"]);
    let mut b = service("b", &["sleep", "1001"]);
    b.dependencies = vec!["a".into()];
    let c = service("c", &["sleep", "1002"]);
    config(dir, vec![a, b, c], Vec::new())
}

fn pids(h: &Harness) -> Vec<Option<u32>> {
    h.orch.snapshot().services.iter().map(|s| s.pid).collect()
}

fn svc<'a>(c: &'a mut Config, short: &str) -> &'a mut russell_config::Service {
    c.services
        .iter_mut()
        .find(|s| s.short_name == short)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_changed_service_of_three_restarts_alone() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::new(base(dir.path()), false).await;
    h.start_all_ok().await;
    let before = pids(&h);
    let events_before = h.events().len();

    let mut new = base(dir.path());
    svc(&mut new, "c").command = vec!["sleep".into(), "1003".into()];
    let report = h.orch.reload(new, false).await.unwrap();
    assert!(report.applied);
    assert_eq!(report.diff.services.len(), 1, "{:?}", report.diff);
    assert_eq!(report.diff.services[0].action, Action::Restart);
    assert!(
        report.results.iter().all(|r| r.success),
        "{:?}",
        report.results
    );

    let after = pids(&h);
    assert_eq!(after[0], before[0], "a kept its process");
    assert_eq!(after[1], before[1], "b kept its process");
    assert_ne!(after[2], before[2], "c runs a new process");
    assert_eq!(h.status("c").command, ["sleep", "1003"]);
    assert_eq!(h.status("a").restart_count, 0);
    let later: Vec<_> = h.events().into_iter().skip(events_before).collect();
    assert!(
        later.iter().all(|e| e.service != "a" && e.service != "b"),
        "no event for unchanged services: {later:?}"
    );
    let reloaded: Vec<_> = later
        .iter()
        .filter(|e| e.kind == EventKind::Reloaded)
        .collect();
    assert_eq!(reloaded.len(), 1, "{later:?}");
    assert!(
        reloaded[0]
            .message
            .contains("1 changed (0 added, 0 removed, 1 restarting"),
        "{}",
        reloaded[0].message
    );
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timing_description_and_version_apply_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::new(base(dir.path()), false).await;
    h.start_all_ok().await;
    let before = pids(&h);
    let mut new = base(dir.path());
    let a = svc(&mut new, "a");
    a.description = "new words".into();
    a.version = "2.0.0".into();
    a.health_check.interval = Duration::from_secs(1);
    a.max_retries = 9;
    let report = h.orch.reload(new, false).await.unwrap();
    assert_eq!(
        report.diff.service("a").map(|c| c.action),
        Some(Action::Apply)
    );
    assert!(report.results.is_empty());
    assert_eq!(pids(&h), before);
    let a = h.status("a");
    assert_eq!(
        (a.description.as_str(), a.version.as_str(), a.max_retries),
        ("new words", "2.0.0", 9)
    );
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_dependents_restarts_the_dependents_of_a_changed_service() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = base(dir.path());
    svc(&mut first, "a").restart_dependents = true;
    let h = Harness::new(first.clone(), false).await;
    h.start_all_ok().await;
    let before = pids(&h);
    let mut new = first;
    svc(&mut new, "a").command = vec!["sleep".into(), "1004".into()];
    h.orch.reload(new, false).await.unwrap();
    h.wait_until("b restarted after a", T, |h| {
        let p = pids(h);
        p[1].is_some() && p[1] != before[1] && h.status("b").state == ServiceState::Running
    })
    .await;
    let after = pids(&h);
    assert_ne!(after[0], before[0]);
    assert_eq!(after[2], before[2], "c does not depend on a");
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enabled_flips_stop_and_start() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::new(base(dir.path()), false).await;
    h.start_all_ok().await;
    let mut off = base(dir.path());
    svc(&mut off, "c").enabled = false;
    let report = h.orch.reload(off, false).await.unwrap();
    assert_eq!(
        report.diff.service("c").map(|c| c.action),
        Some(Action::Disable)
    );
    assert_eq!(h.status("c").state, ServiceState::Stopped);
    assert!(h.orch.start_service("c").await.is_err(), "disabled now");
    let report = h.orch.reload(base(dir.path()), false).await.unwrap();
    assert_eq!(
        report.diff.service("c").map(|c| c.action),
        Some(Action::Enable)
    );
    assert_eq!(h.status("c").state, ServiceState::Running);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_for_a_reason_names_it_in_the_events() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::new(base(dir.path()), false).await;
    h.start_all_ok().await;
    let before = pids(&h);
    let r = h
        .orch
        .restart_for("c", "watched file /x/bin/c changed".into())
        .await
        .unwrap();
    assert!(r.success, "{r:?}");
    assert_ne!(pids(&h)[2], before[2]);
    let why = h.events_of("c", EventKind::Restarting);
    assert!(
        why.iter().any(|e| e.message.contains("/x/bin/c")),
        "{why:?}"
    );
    h.finish().await;
}
