//! The harness against the real daemon: small line-ups through every part, and nothing left
//! running afterwards. Needs `mdw` and `mdw-demo` built in the same target dir (as
//! `cargo test --workspace` does); without them the tests say so and pass.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use mdw_bench::lineup::Spec;
use mdw_bench::procs::ProcId;
use mdw_bench::scenario::{Budget, Env, api, crash, stop};

/// `target/<profile>/`, from `target/<profile>/deps/harness-…`.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(|d| d.parent()).unwrap().to_path_buf()
}

fn env() -> Option<Env> {
    let dir = bin_dir();
    let (mdw, demo) = (dir.join("mdw"), dir.join("mdw-demo"));
    if !mdw.is_file() || !demo.is_file() {
        eprintln!(
            "skipped: {} or {} not built (cargo build -p mdw -p mdw-demo)",
            mdw.display(),
            demo.display()
        );
        return None;
    }
    Some(Env {
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
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_line_up_comes_up_and_leaves_nothing_behind() {
    let Some(env) = env() else { return };
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
    let Some(env) = env() else { return };
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
async fn a_russell_that_exits_at_once_is_reported_without_waiting_out_the_bound() {
    let Some(mut env) = env() else { return };
    env.mdw = PathBuf::from("/bin/false");
    let mut d = env.deploy(&Spec::flat(3)).unwrap();
    let t = Instant::now();
    let e = d.until_ports().await.unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert!(format!("{e:#}").contains("Russell exited"), "{e:#}");
    d.finish().await;
}
