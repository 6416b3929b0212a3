//! A crash of Russell costs the running services nothing: the orchestrator runs in a child
//! process (this test binary re-executed as `host`), gets kill -9, and the services —
//! including a shell loop that would die of SIGPIPE on a plain pipe — keep running; a new
//! orchestrator adopts the same PIDs and keeps reading their output from the FIFOs.
//!
//! This binary makes itself a child subreaper, so the orphaned services are reparented to
//! it (not to a PID 1 that may never reap) and it reaps them at the end.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use russell_config::Config;
use russell_core::{EventKind, Orchestrator, ServiceState, SpawnOptions};
use rustix::process::{Pid, Signal, WaitOptions};
use test_support::config::{config, demo, service};
use test_support::harness::{Harness, assert_gone};
use test_support::{alive, signal};

const HOST_ENV: &str = "RUSSELL_CORE_CRASH_HOST";

fn the_config(dir: &Path, port: u16) -> Config {
    let ticker = service(
        "ticker",
        &[
            "sh",
            "-c",
            "i=0; while true; do i=$((i+1)); echo \"tick $i\"; sleep 0.02; done",
        ],
    );
    let web = demo("web", port, &[]);
    config(dir, vec![ticker, web], vec![])
}

/// The orchestrator host: runs only when re-executed by the test below.
#[test]
fn host() {
    let Ok(spec) = std::env::var(HOST_ENV) else {
        return;
    };
    let (dir, port) = spec.split_once('|').unwrap();
    let cfg = the_config(Path::new(dir), port.parse().unwrap());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (orch, _join) = Orchestrator::spawn(cfg, SpawnOptions { adopt: true })
            .await
            .unwrap();
        let results = orch.restore().await.unwrap();
        assert!(results.iter().all(|r| r.success), "{results:?}");
        println!("HOST-UP");
        std::future::pending::<()>().await;
    });
}

/// The host, and the groups of the services it started: killed on every way out of the
/// test (on success they are gone by then).
struct Killed(std::process::Child, std::path::PathBuf);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        test_support::kill_marked(&self.1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_russell_costs_the_services_nothing() {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = test_support::free_port();
    test_support::demo_bin(); // built before the host needs it

    let mut host = Killed(
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "host", "--nocapture", "--test-threads", "1"])
            .env(HOST_ENV, format!("{}|{port}", dir.path().display()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
        dir.path().join("state"),
    );
    let mut lines = BufReader::new(host.0.stdout.take().unwrap()).lines();
    assert!(
        lines.any(|l| l.is_ok_and(|l| l.contains("HOST-UP"))),
        "the host did not come up"
    );
    // The state file is written right after each change, by its own task.
    let pid_of = |s: &str| test_support::harness::recorded_pid(&dir.path().join("state"), s);
    test_support::wait_until("both PIDs in the state file", test_support::WAIT, || {
        pid_of("ticker").is_some() && pid_of("web").is_some()
    });
    let (ticker, web) = (pid_of("ticker").unwrap(), pid_of("web").unwrap());

    signal(host.0.id(), Signal::KILL);
    host.0.wait().unwrap();
    // Long enough for the ticker to write ~50 lines with nobody reading.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(alive(ticker), "the ticker died with Russell");
    assert!(alive(web), "the web service died with Russell");

    let h = Harness::new(the_config(dir.path(), port), true).await;
    let results = h.orch.restore().await.unwrap();
    assert!(results.iter().all(|r| r.success), "{results:?}");
    for (s, pid) in [("ticker", ticker), ("web", web)] {
        let st = h.status(s);
        assert_eq!(st.pid, Some(pid), "{s} was not adopted");
        assert!(st.adopted);
        assert_eq!(st.state, ServiceState::Running);
        assert!(
            h.events_of(s, EventKind::Started).is_empty(),
            "{s} duplicated"
        );
    }
    // The lines written while no Russell ran were kept in the FIFO and arrive now, in
    // order, and new ones follow.
    h.wait_until(
        "ticks through the reopened FIFO",
        Duration::from_secs(10),
        |h| h.orch.log_tail(Some("ticker"), 1000).len() >= 60,
    )
    .await;
    let ticks: Vec<u64> = h
        .orch
        .log_tail(Some("ticker"), 1000)
        .iter()
        .filter_map(|l| l.line.strip_prefix("tick ")?.parse().ok())
        .collect();
    assert!(
        ticks.windows(2).all(|w| w[0] + 1 == w[1]),
        "lines lost or reordered: {ticks:?}"
    );

    let pids = h.seen_pids();
    let mut h = h;
    h.orch.shutdown().await.unwrap();
    h.join.take().unwrap().await.unwrap();
    // They are our children now (subreaper): reap them.
    for pid in &pids {
        if let Some(p) = Pid::from_raw(*pid as i32) {
            let _ = rustix::process::waitpid(Some(p), WaitOptions::NOHANG);
        }
    }
    assert_gone(&pids).await;
    assert_gone(&BTreeSet::from([ticker, web])).await;
}
