//! Shared fixtures for the daemon, API and CLI tests: free ports, a services file made of
//! stand-in services, a real `mdw serve russell` process, and cleanup of every process a
//! test started (by PID and process group, in Drop).
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::os::unix::process::CommandExt;

/// The mdw binary under test.
pub const MDW: &str = env!("CARGO_BIN_EXE_mdw");

mod free_port;
pub use free_port::free_port;

/// Polls `cond` every 50 ms until it holds or `timeout` passes.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether `pid` is a live process (zombies count as gone).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !matches!(
            stat.rsplit_once(')')
                .and_then(|(_, r)| r.trim_start().chars().next()),
            Some('Z' | 'X') | None
        ),
        Err(_) => false,
    }
}

/// Whether any process is left in process group `pgid`.
pub fn group_alive(pgid: u32) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    dir.flatten().any(|e| {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            return false;
        };
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| {
                let rest = stat
                    .rsplit_once(')')?
                    .1
                    .split_whitespace()
                    .collect::<Vec<_>>();
                // fields after comm: state ppid pgrp
                let state = rest.first()?.chars().next()?;
                let pgrp: u32 = rest.get(2)?.parse().ok()?;
                Some(pgrp == pgid && state != 'Z' && state != 'X')
            })
            .unwrap_or(false)
    })
}

/// Sends `sig` to one process.
pub fn signal(pid: u32, sig: rustix::process::Signal) {
    if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(p, sig);
    }
}

/// Sends SIGKILL to a whole process group.
pub fn kill_group(pgid: u32) {
    if let Some(p) = rustix::process::Pid::from_raw(pgid as i32) {
        let _ = rustix::process::kill_process_group(p, rustix::process::Signal::KILL);
    }
}

/// One stand-in service in a services file.
#[derive(Debug, Clone)]
pub struct Svc {
    pub short: String,
    pub port: u16,
    pub deps: Vec<String>,
    pub demo_args: Vec<String>,
    pub extra: String,
}

impl Svc {
    /// A stand-in with HTTP health on a free port.
    pub fn demo(short: &str) -> Self {
        Self {
            short: short.to_string(),
            port: free_port(),
            deps: Vec::new(),
            demo_args: Vec::new(),
            extra: String::new(),
        }
    }

    pub fn deps(mut self, deps: &[&str]) -> Self {
        self.deps = deps.iter().map(|d| d.to_string()).collect();
        self
    }

    pub fn args(mut self, args: &[&str]) -> Self {
        self.demo_args = args.iter().map(|a| a.to_string()).collect();
        self
    }

    /// Extra `key = value` lines for the `[[services]]` table.
    pub fn extra(mut self, lines: &str) -> Self {
        self.extra = lines.to_string();
        self
    }

    fn toml(&self) -> String {
        let mut cmd = vec![
            "{mdw}".to_string(),
            "demo".into(),
            "--name".into(),
            self.short.clone(),
            "--http-port".into(),
            self.port.to_string(),
        ];
        cmd.extend(self.demo_args.iter().cloned());
        let mut name = self.short.clone();
        name[..1].make_ascii_uppercase();
        format!(
            r#"
[[services]]
name = "{name}"
short_name = "{short}"
description = "stand-in {short}"
http_port = {port}
command = {cmd:?}
dependencies = {deps:?}
max_retries = 3
restart_backoff = "200ms"
stop_timeout = "3s"
{extra}

[services.health_check]
type = "http"
endpoint = "/health"
interval = "300ms"
timeout = "250ms"
failure_threshold = 2
start_timeout = "15s"
"#,
            short = self.short,
            port = self.port,
            deps = self.deps,
            extra = self.extra,
        )
    }
}

/// A temp dir with a services file, a state dir, and the address Russell will use.
/// Kills every process group it ever saw in Drop (after the daemons are gone).
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub addr: String,
    pub config: PathBuf,
    pub state_dir: PathBuf,
    /// Every service PID seen in a status: killed (by group) in Drop.
    pub seen: Arc<Mutex<HashSet<u32>>>,
}

impl Fixture {
    /// A services file with these services; `russell_extra` adds lines to `[russell]`.
    pub fn new(services: &[Svc], russell_extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let state_dir = dir.path().join("state");
        let config = dir.path().join("services.toml");
        let mut text = format!(
            "[russell]\nlisten = \"127.0.0.1:{port}\"\nstate_dir = {:?}\n{russell_extra}\n",
            state_dir.display().to_string()
        );
        for s in services {
            text.push_str(&s.toml());
        }
        std::fs::write(&config, text).unwrap();
        Self {
            dir,
            port,
            addr: format!("127.0.0.1:{port}"),
            config,
            state_dir,
            seen: Arc::default(),
        }
    }

    /// Starts `mdw serve russell` on this fixture and waits until its health answers.
    pub fn start(&self) -> Daemon {
        let d = self.spawn(&[]);
        assert!(
            wait_for(Duration::from_secs(20), || self.serving()),
            "Russell did not answer at {}; its log:\n{}",
            self.addr,
            d.log()
        );
        d
    }

    /// Spawns `mdw serve russell` with extra args, without waiting.
    pub fn spawn(&self, extra: &[&str]) -> Daemon {
        let log = self.dir.path().join(format!("russell-{}.log", free_port()));
        let f = std::fs::File::create(&log).unwrap();
        let child = Command::new(MDW)
            .args(["serve", "russell", "--config"])
            .arg(&self.config)
            .args(extra)
            // FIFOs in this test's own folder, so a Russell killed with -9 leaves nothing in
            // /dev/shm.
            .env("XDG_RUNTIME_DIR", self.dir.path())
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .process_group(0)
            .spawn()
            .unwrap();
        Daemon {
            child,
            log,
            seen: self.seen.clone(),
        }
    }

    /// Whether Russell's health check says SERVING.
    pub fn serving(&self) -> bool {
        let addr = self.addr.clone();
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(russell_api::client::serving(&addr))
                .unwrap_or(false)
        })
        .join()
        .unwrap_or(false)
    }

    /// Runs the CLI against this Russell.
    pub fn mdw(&self, args: &[&str]) -> Output {
        Command::new(MDW)
            .arg("--russell")
            .arg(&self.addr)
            .args(args)
            .env("XDG_RUNTIME_DIR", self.dir.path())
            .env_remove("MDW_RUSSELL_TOKEN")
            .env_remove("MDW_RUSSELL_TOKEN_FILE")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// `mdw status --json`, parsed; records the PIDs for cleanup.
    pub fn status(&self) -> serde_json::Value {
        let out = self.mdw(&["status", "--json"]);
        assert!(
            out.status.success(),
            "mdw status failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        self.record(&v);
        v
    }

    /// Remembers the PIDs in a status for cleanup.
    pub fn record(&self, status: &serde_json::Value) {
        let mut seen = self.seen.lock().unwrap();
        for s in status["services"].as_array().into_iter().flatten() {
            if let Some(pid) = s["pid"].as_u64() {
                seen.insert(pid as u32);
            }
        }
    }

    /// The service entry `short` of a status.
    pub fn service<'a>(status: &'a serde_json::Value, short: &str) -> &'a serde_json::Value {
        status["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["short_name"] == short)
            .unwrap()
    }

    /// Waits until every service in the status is healthy.
    pub fn wait_all_healthy(&self, timeout: Duration) -> serde_json::Value {
        let mut last = serde_json::Value::Null;
        let ok = wait_for(timeout, || {
            last = self.status();
            last["services"]
                .as_array()
                .is_some_and(|s| s.iter().all(|x| x["healthy"] == true))
        });
        assert!(ok, "not all healthy: {last:#}");
        last
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for pid in self.seen.lock().map(|s| s.clone()).unwrap_or_default() {
            kill_group(pid);
            signal(pid, rustix::process::Signal::KILL);
        }
    }
}

/// A running `mdw serve russell` process; stopped in Drop (SIGTERM, then SIGKILL to its
/// group) after its services' PIDs were recorded.
pub struct Daemon {
    pub child: Child,
    pub log: PathBuf,
    seen: Arc<Mutex<HashSet<u32>>>,
}

impl Daemon {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for the process to exit; its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let mut status = None;
        wait_for(timeout, || {
            status = self.child.try_wait().ok().flatten();
            status.is_some()
        });
        status
    }

    /// kill -9, and reap.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            signal(self.child.id(), rustix::process::Signal::TERM);
            if self.wait_exit(Duration::from_secs(20)).is_none() {
                kill_group(self.child.id());
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
        let _ = &self.seen;
    }
}

/// A path as a string for command lines.
pub fn s(p: &Path) -> String {
    p.display().to_string()
}
