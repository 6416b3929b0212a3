//! The harness against the real daemon: small line-ups through every part, and nothing left
//! running afterwards. Uses `mdw` and `mdw-demo` from the same target dir; the first test
//! builds them (`cargo test -p mdw-bench` alone does not build other packages' binaries;
//! under `cargo test --workspace` the build is a no-op).
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Once;
use std::time::{Duration, Instant};

use mdw_bench::lineup::Spec;
use mdw_bench::procs::ProcId;
use mdw_bench::scenario::{Budget, Env, api, cc, crash, http, reload, stop, watch};

/// `target/<profile>/`, from `target/<profile>/deps/harness-…`.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(|d| d.parent()).unwrap().to_path_buf()
}

/// Builds `mdw` and `mdw-demo` for this profile once per test binary.
fn build_binaries(dir: &std::path::Path) {
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        let mut cargo = std::process::Command::new(env!("CARGO"));
        cargo.args(["build", "-q", "-p", "mdw", "-p", "mdw-demo"]);
        if dir.file_name().is_some_and(|name| name == "release") {
            cargo.arg("--release");
        }
        let status = cargo
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
            .status()
            .expect("run cargo build for mdw and mdw-demo");
        assert!(status.success(), "cargo build -p mdw -p mdw-demo failed");
    });
}

fn env() -> Env {
    let dir = bin_dir();
    build_binaries(&dir);
    let (mdw, demo) = (dir.join("mdw"), dir.join("mdw-demo"));
    assert!(
        mdw.is_file() && demo.is_file(),
        "{} or {} missing after the build",
        mdw.display(),
        demo.display()
    );
    Env {
        mdw,
        standin: vec![demo.display().to_string()],
        budget: Budget {
            api_window: Duration::from_secs(1),
            watch_reps: 3,
            ..Budget::quick()
        },
        seed: 1,
        api_tasks: 4,
        api_channels: 2,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_line_up_comes_up_and_leaves_nothing_behind() {
    let env = env();
    let mut d = env.deploy(&Spec::flat(5)).unwrap();
    let took = d.until_ports().await.unwrap();
    assert!(took > Duration::ZERO);
    let mut client = d.russell.client(Duration::from_secs(10)).await.unwrap();
    let st = d.until_running(&mut client, false).await.unwrap();
    let ids: Vec<ProcId> = st
        .services
        .iter()
        .filter_map(|s| ProcId::of(s.pid as i32))
        .collect();
    assert_eq!(ids.len(), 5, "{st:?}");
    let russell = d.russell.id;
    drop(client);
    d.finish().await;
    assert!(russell.is_gone());
    for id in ids {
        assert!(id.is_gone(), "service PID {} survived the teardown", id.pid);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_stop_and_api_parts_measure_the_real_daemon() {
    let env = env();
    let c = crash::run(&env, true, 3).await.unwrap();
    assert_eq!(c.to_port.n, 3);
    assert!(c.to_process.is_some_and(|s| s.n + c.missed_events == 3));
    let s = stop::run(&env, 5, 1).await.unwrap();
    assert_eq!(s.all_gone.n, 1);
    let a = api::run(&env, 5).await.unwrap();
    assert!(a.decoding.requests_per_sec > 0.0);
    assert!(a.raw.requests_per_sec > 0.0);
    assert_eq!(a.raw.errors, 0);
    assert_eq!(a.watch.n, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_watch_http_and_controlcenter_parts_measure_the_real_daemon() {
    let mut env = env();
    env.budget.footprint_window = Duration::from_secs(1);
    env.budget.api_window = Duration::from_secs(1);

    let r = reload::run(&env, 5, 2, 3).await.unwrap();
    assert_eq!((r.to_healthy.n, r.dry_run.n, r.own_work.n), (2, 3, 3));
    assert_eq!(r.cli_dry_run.n, 2);
    assert_eq!(r.others_kept, 4);

    let w = watch::run(&env, 5, 2, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(w.to_gone.n, 2);
    // the default debounce is 500 ms: nothing is signalled before it
    assert!(w.to_signal.min >= 450.0, "{:?}", w.to_signal);
    assert!(w.to_gone.min >= w.to_signal.min, "{w:?}");

    let h = http::run(&env, 5, 20).await.unwrap();
    assert_eq!(h.scrape.n, 20);
    assert!(h.scrape_bytes > 1000 && h.cpu_per_scrape > 0.0, "{h:?}");
    assert!(h.status.requests_per_sec > 0.0);
    assert_eq!(h.status.errors, 0);

    let c = cc::run(&env, 5, Duration::from_secs(1)).await.unwrap();
    assert!(c.cc.rss_mib.p50 > 1.0, "{c:?}");
    assert!(c.cc.cpu_percent >= 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_russell_that_exits_at_once_is_reported_without_waiting_out_the_bound() {
    let mut env = env();
    env.mdw = PathBuf::from("/bin/false");
    let mut d = env.deploy(&Spec::flat(3)).unwrap();
    let t = Instant::now();
    let e = d.until_ports().await.unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert!(format!("{e:#}").contains("Russell exited"), "{e:#}");
    d.finish().await;
}
