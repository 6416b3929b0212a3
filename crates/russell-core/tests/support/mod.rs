//! Fixtures for the orchestrator tests: `Config` values built in Rust (the loader is not
//! under test here), a harness that records every event and cleans up every process group
//! it saw, and /proc checks for leftovers and zombies.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use russell_config::{
    Config, External, HealthCheck, LogSettings, PortConflictPolicy, Probe, RussellSettings,
    Service, StopSignal,
};
use russell_core::{Event, EventKind, Orchestrator, ServiceStatus, SpawnOptions};
use rustix::process::{Pid, Signal};

use crate::common::demo_bin;

/// A service with quick test timings and no health check.
pub fn service(short: &str, command: &[&str]) -> Service {
    Service {
        name: short.to_uppercase(),
        short_name: short.into(),
        description: format!("test service {short}"),
        grpc_port: None,
        http_port: None,
        command: command.iter().map(|s| s.to_string()).collect(),
        working_dir: std::env::temp_dir(),
        env: BTreeMap::new(),
        env_file: None,
        dependencies: Vec::new(),
        start_order: 0,
        max_retries: 3,
        stop_signal: StopSignal {
            number: 15,
            name: "SIGTERM",
        },
        stop_timeout: Duration::from_secs(3),
        on_port_conflict: PortConflictPolicy::Adopt,
        restart_backoff: Duration::from_millis(200),
        restart_backoff_max: Duration::from_secs(1),
        restart_reset_after: Duration::from_secs(60),
        restart_dependents: false,
        version: String::new(),
        enabled: true,
        kind: russell_config::ServiceKind::Service,
        restart: russell_config::RestartPolicy::Always,
        success_exit_codes: vec![0],
        health_check: HealthCheck {
            probe: Probe::None,
            interval: Duration::from_millis(200),
            timeout: Duration::from_millis(500),
            failure_threshold: 3,
            success_threshold: 1,
            start_timeout: Duration::from_secs(10),
        },
        watch: Vec::new(),
        watch_debounce: Duration::from_millis(500),
    }
}

/// The stand-in service on `port` with an HTTP health check, plus extra flags.
pub fn demo(short: &str, port: u16, extra: &[&str]) -> Service {
    let bin = demo_bin();
    let port_s = port.to_string();
    let mut cmd = vec![
        bin.to_str().unwrap(),
        "--name",
        short,
        "--http-port",
        &port_s,
    ];
    cmd.extend_from_slice(extra);
    let mut s = service(short, &cmd);
    s.http_port = Some(port);
    s.health_check.probe = Probe::Http {
        url: format!("http://127.0.0.1:{port}/health"),
        expect_body: None,
    };
    s
}

/// An external with a TCP check.
pub fn external(short: &str, addr: &str, optional: bool) -> External {
    External {
        name: short.to_uppercase(),
        short_name: short.into(),
        description: String::new(),
        optional,
        health_check: HealthCheck {
            probe: Probe::Tcp { addr: addr.into() },
            interval: Duration::from_millis(200),
            timeout: Duration::from_millis(300),
            failure_threshold: 3,
            success_threshold: 1,
            start_timeout: Duration::from_millis(800),
        },
    }
}

pub fn config(dir: &Path, services: Vec<Service>, externals: Vec<External>) -> Config {
    Config {
        source: dir.join("services.toml"),
        russell: RussellSettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            state_dir: dir.join("state"),
            token_file: None,
            autostart: true,
            watch_config: false,
            http_listen: None,
        },
        logs: LogSettings {
            dir: None,
            max_file_size: 1 << 20,
            max_files: 2,
            tail_lines: 1000,
        },
        services,
        externals,
        paths: Default::default(),
    }
}

/// One orchestrator under test: records every event; on drop SIGKILLs every process
/// group it ever saw and every process marked with its state directory (a safety net —
/// tests end with [`Harness::finish`]).
pub struct Harness {
    pub orch: Orchestrator,
    pub join: Option<tokio::task::JoinHandle<()>>,
    state_dir: std::path::PathBuf,
    /// Every event so far; filled from `rx` whenever a test looks (events are sent
    /// before a command's answer, so after an answer they are all there).
    events: Mutex<Vec<Event>>,
    rx: Mutex<tokio::sync::broadcast::Receiver<Event>>,
}

impl Harness {
    pub async fn new(config: Config, adopt: bool) -> Self {
        let state_dir = config.russell.state_dir.clone();
        let (orch, join) = Orchestrator::spawn(config, SpawnOptions { adopt })
            .await
            .expect("spawn orchestrator");
        let rx = Mutex::new(orch.events());
        Self {
            orch,
            join: Some(join),
            state_dir,
            events: Mutex::new(Vec::new()),
            rx,
        }
    }

    /// Starts every service and asserts that each start succeeded.
    pub async fn start_all_ok(&self) {
        let results = self.orch.start_all(false).await.expect("start_all");
        assert!(results.iter().all(|r| r.success), "{results:?}");
    }

    /// All events so far, in order.
    pub fn events(&self) -> Vec<Event> {
        let mut events = self.events.lock().unwrap();
        let mut rx = self.rx.lock().unwrap();
        loop {
            match rx.try_recv() {
                Ok(e) => events.push(e),
                Err(tokio::sync::broadcast::error::TryRecvError::Lagged(n)) => {
                    panic!("the test fell {n} events behind")
                }
                Err(_) => break,
            }
        }
        events.clone()
    }

    pub fn status(&self, short: &str) -> ServiceStatus {
        self.orch
            .snapshot()
            .services
            .iter()
            .find(|s| s.short_name == short)
            .map(|s| ServiceStatus::clone(s))
            .unwrap_or_else(|| panic!("no service {short}"))
    }

    pub fn events_of(&self, short: &str, kind: EventKind) -> Vec<Event> {
        self.events()
            .into_iter()
            .filter(|e| e.service == short && e.kind == kind)
            .collect()
    }

    /// Every PID seen in an event or a snapshot so far.
    pub fn seen_pids(&self) -> BTreeSet<u32> {
        let mut all: BTreeSet<u32> = self.events().iter().filter_map(|e| e.pid).collect();
        all.extend(self.orch.snapshot().services.iter().filter_map(|s| s.pid));
        all
    }

    pub async fn wait_until(&self, what: &str, timeout: Duration, cond: impl Fn(&Self) -> bool) {
        let deadline = tokio::time::Instant::now() + timeout;
        while !cond(self) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}; snapshot: {:#?}",
                self.orch.snapshot().services
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Shuts the orchestrator down (every service stopped) and checks that no process it
    /// ever ran is left, zombie or not.
    pub async fn finish(mut self) {
        let pids = self.seen_pids();
        self.orch.shutdown().await.expect("shutdown");
        if let Some(j) = self.join.take() {
            j.await.expect("actor join");
        }
        assert_gone(&pids).await;
    }
}

impl Drop for Harness {
    /// Runs while a failed test unwinds, too: no panic here (a poisoned lock or a lagging
    /// receiver would abort the whole test binary), only what can still be collected.
    fn drop(&mut self) {
        let mut pids: BTreeSet<u32> = self
            .orch
            .snapshot()
            .services
            .iter()
            .filter_map(|s| s.pid)
            .collect();
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        let mut rx = self.rx.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match rx.try_recv() {
                Ok(e) => events.push(e),
                Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {}
                Err(_) => break,
            }
        }
        pids.extend(events.iter().filter_map(|e| e.pid));
        for pid in pids {
            if let Some(p) = Pid::from_raw(pid as i32) {
                let _ = rustix::process::kill_process_group(p, Signal::KILL);
            }
        }
        // What no snapshot or event named: processes that left their group, services a
        // test left behind on purpose.
        kill_marked(&self.state_dir);
    }
}

/// The PID the state file in `state_dir` records for service `short`, if any.
pub fn recorded_pid(state_dir: &Path, short: &str) -> Option<u32> {
    let text = std::fs::read_to_string(state_dir.join("state.json")).ok()?;
    let state: serde_json::Value = serde_json::from_str(&text).ok()?;
    u32::try_from(state["services"][short]["process"]["pid"].as_u64()?).ok()
}

/// SIGKILLs every process (and the group of every group leader) marked as a service of
/// the Russell with this state directory (`RUSSELL_STATE_DIR`, which every descendant of
/// a service inherits).
pub fn kill_marked(state_dir: &Path) {
    let Ok(dir) = std::fs::canonicalize(state_dir) else {
        return;
    };
    let Ok(all) = procfs::process::all_processes() else {
        return;
    };
    for process in all.flatten() {
        let marked = process.environ().is_ok_and(|env| {
            env.get(std::ffi::OsStr::new("RUSSELL_STATE_DIR"))
                .is_some_and(|v| v.as_os_str() == dir.as_os_str())
        });
        if let (true, Some(p)) = (marked, Pid::from_raw(process.pid())) {
            let _ = rustix::process::kill_process_group(p, Signal::KILL);
            let _ = rustix::process::kill_process(p, Signal::KILL);
        }
    }
}

/// Waits (bounded) until none of `pids` has a /proc entry: not running, not a zombie.
pub async fn assert_gone(pids: &BTreeSet<u32>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let left: Vec<(u32, String)> = pids
            .iter()
            .filter_map(|p| {
                let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
                Some((*p, stat))
            })
            .collect();
        if left.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "processes left behind (pid, /proc stat): {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

pub fn signal(pid: u32, sig: Signal) {
    rustix::process::kill_process(Pid::from_raw(pid as i32).unwrap(), sig).unwrap();
}
