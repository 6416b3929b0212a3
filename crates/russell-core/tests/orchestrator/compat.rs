//! What mDW's services file needs of the core: `enabled = false` (known and shown, never
//! started, refused by name, its dependents fail naming it), `version` in the status, and a
//! required external that is down blocking its dependents by name.

use russell_core::{EventKind, ExternalState, ServiceState};

use test_support::config::{config, external, service};
use test_support::free_port;
use test_support::harness::Harness;

/// a; off (disabled); needs-off → off; top → needs-off.
fn line_up(dir: &std::path::Path) -> russell_config::Config {
    let a = service("a", &["sleep", "1000"]);
    let mut off = service("off", &["sleep", "1000"]);
    off.enabled = false;
    off.version = "1.4.2".into();
    let mut needs_off = service("needs-off", &["sleep", "1000"]);
    needs_off.dependencies = vec!["off".into()];
    let mut top = service("top", &["sleep", "1000"]);
    top.dependencies = vec!["needs-off".into()];
    config(dir, vec![a, off, needs_off, top], vec![])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_service_is_shown_but_never_started_by_start_all() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("services.toml");
    let h = Harness::new(line_up(dir.path()), false).await;
    let off = h.status("off");
    assert!(!off.enabled && h.status("a").enabled);
    assert_eq!(off.version, "1.4.2", "version is carried into the status");

    let results = h.orch.start_all(false).await.unwrap();
    let names: Vec<&str> = results.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["A", "NEEDS-OFF", "TOP"], "{results:?}");
    assert!(results[0].success, "{results:?}");
    assert_eq!(h.status("off").state, ServiceState::Stopped);
    assert_eq!(h.status("off").pid, None);

    // The dependent fails at once, naming the disabled service and the file.
    let reason = format!(
        "dependency 'off' is disabled (enabled = false in {}; set enabled = true to run it)",
        file.display()
    );
    assert!(!results[1].success);
    assert_eq!(results[1].error, reason);
    assert_eq!(h.status("needs-off").state, ServiceState::Failed);
    assert_eq!(h.status("needs-off").last_error, reason);
    assert!(
        h.events_of("needs-off", EventKind::Failed)
            .iter()
            .any(|e| e.message == reason),
        "{:?}",
        h.events()
    );
    // Further up, the chain still names it.
    assert!(!results[2].success);
    assert!(
        results[2].error.contains("'needs-off'") && results[2].error.contains("'off'"),
        "{}",
        results[2].error
    );
    // An explicit start of a dependent fails the same way and starts nothing.
    let again = h.orch.start_service("top").await.unwrap();
    assert!(!again.success && again.error.contains("'off'"), "{again:?}");
    assert_eq!(h.status("off").state, ServiceState::Stopped);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_explicit_start_of_a_disabled_service_is_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("services.toml");
    let h = Harness::new(line_up(dir.path()), false).await;
    let expected = format!(
        "service 'off' is disabled: enabled = false in {}; set enabled = true to run it",
        file.display()
    );
    for name in ["off", "OFF"] {
        let err = h.orch.start_service(name).await.unwrap_err();
        assert!(
            matches!(err, russell_core::CoreError::InvalidState { .. }),
            "{err:?}"
        );
        assert_eq!(err.to_string(), expected);
        let err = h.orch.restart_service(name).await.unwrap_err();
        assert_eq!(err.to_string(), expected);
    }
    assert_eq!(h.status("off").state, ServiceState::Stopped);
    assert!(h.seen_pids().is_empty(), "nothing was spawned");
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autostart_leaves_a_disabled_service_out_also_after_a_restart_of_russell() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = line_up(dir.path());
    let first = Harness::new(cfg.clone(), false).await;
    let results = first.orch.restore().await.unwrap();
    assert!(results.iter().all(|r| r.name != "OFF"), "{results:?}");
    assert_eq!(first.status("a").state, ServiceState::Running);
    assert_eq!(first.status("off").state, ServiceState::Stopped);
    first.orch.detach().await.unwrap();

    let second = Harness::new(cfg, true).await;
    let results = second.orch.restore().await.unwrap();
    assert!(results.iter().all(|r| r.name != "OFF"), "{results:?}");
    assert!(
        second.status("a").adopted,
        "a was adopted, not started again"
    );
    assert_eq!(second.status("off").state, ServiceState::Stopped);
    assert_eq!(second.status("off").pid, None);
    second.finish().await;
    drop(first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_required_external_that_is_down_blocks_its_dependents_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let down = format!("127.0.0.1:{}", free_port());
    let mut api = service("api", &["sleep", "1000"]);
    api.dependencies = vec!["db".into()];
    let h = Harness::new(
        config(dir.path(), vec![api], vec![external("db", &down, false)]),
        false,
    )
    .await;
    let results = h.orch.start_all(false).await.unwrap();
    assert!(!results[0].success, "{results:?}");
    assert!(
        results[0]
            .error
            .starts_with("dependency 'db' not healthy after"),
        "{}",
        results[0].error
    );
    let status = h.status("api");
    assert_eq!(status.state, ServiceState::Failed);
    assert_eq!(status.pid, None, "never spawned");
    assert_eq!(status.last_error, results[0].error);
    assert!(
        h.events_of("api", EventKind::Waiting)
            .iter()
            .any(|e| e.message == "waiting for db")
    );
    assert!(
        h.events_of("api", EventKind::Failed)
            .iter()
            .any(|e| e.message == results[0].error)
    );
    let snap = h.orch.snapshot();
    assert_eq!(snap.externals[0].state, ExternalState::Unhealthy);
    assert!(!snap.externals[0].last_error.is_empty());
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_left_running_for_a_service_disabled_since_is_stopped_not_adopted() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), vec![service("off", &["sleep", "1000"])], vec![]);
    let first = Harness::new(cfg.clone(), false).await;
    first.start_all_ok().await;
    let pid = first.status("off").pid.unwrap();
    first.orch.detach().await.unwrap();

    cfg.services[0].enabled = false;
    let second = Harness::new(cfg, true).await;
    second
        .wait_until(
            "the old process is gone",
            std::time::Duration::from_secs(10),
            |_| !test_support::alive(pid),
        )
        .await;
    assert_eq!(second.status("off").pid, None);
    assert!(!second.status("off").adopted);
    // (Its stop event may go out before the harness subscribes: not checked here.)
    second.finish().await;
    drop(first);
}
