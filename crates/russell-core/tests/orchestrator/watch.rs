//! Watched files restart their service: a rewrite in place and a rename over the file (as
//! editors and `go build` do) each restart only the service that watches it, and the event
//! names the file. A file nobody watches restarts nothing.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use russell_core::EventKind;
use test_support::config::{config, service};
use test_support::harness::Harness;

const T: Duration = Duration::from_secs(15);

fn pids(h: &Harness) -> Vec<Option<u32>> {
    h.orch.snapshot().services.iter().map(|s| s.pid).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewrite_and_a_rename_over_restart_only_the_watching_service() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    let conf = dir.path().join("conf");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(bin.join("tool"), "v1").unwrap();
    let mut a = service("a", &["sleep", "1000"]);
    a.watch = vec![bin.join("tool")];
    a.watch_debounce = Duration::from_millis(100);
    let b = service("b", &["sleep", "1001"]);
    let mut c = service("c", &["sleep", "1002"]);
    c.watch = vec![conf.join("*.toml")];
    c.watch_debounce = Duration::from_millis(100);
    let h = Harness::new(config(dir.path(), vec![a, b, c], Vec::new()), false).await;
    h.start_all_ok().await;
    let first = pids(&h);

    // In place.
    std::fs::write(bin.join("tool"), "v2").unwrap();
    h.wait_until("a restarted after the rewrite", T, |h| {
        let p = pids(h);
        p[0].is_some() && p[0] != first[0]
    })
    .await;
    let second = pids(&h);
    assert_eq!(second[1..], first[1..], "b and c untouched");
    let why = h.events_of("a", EventKind::Restarting);
    assert!(
        why.iter()
            .any(|e| e.message.contains(&*bin.join("tool").to_string_lossy())),
        "{why:?}"
    );

    // Renamed over, as a build does.
    std::fs::write(bin.join(".tool.tmp"), "v3").unwrap();
    std::fs::rename(bin.join(".tool.tmp"), bin.join("tool")).unwrap();
    h.wait_until("a restarted after the rename", T, |h| {
        let p = pids(h);
        p[0].is_some() && p[0] != second[0]
    })
    .await;
    let third = pids(&h);
    assert_eq!(third[1..], first[1..], "b and c untouched");

    // A glob, and a file nobody watches.
    std::fs::write(bin.join("other"), "x").unwrap();
    std::fs::write(conf.join("app.toml"), "x = 1").unwrap();
    h.wait_until("c restarted", T, |h| {
        let p = pids(h);
        p[2].is_some() && p[2] != first[2]
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let last = pids(&h);
    assert_eq!(last[0], third[0], "bin/other is not watched");
    assert_eq!(last[1], first[1], "b watches nothing");
    assert_eq!(h.status("b").restart_count, 0);
    h.finish().await;
}
