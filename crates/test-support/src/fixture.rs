//! A real `mdw serve russell` on a free loopback port in a temp dir, driven through the
//! CLI: [`Fixture`] writes the services file and kills every process group it saw in
//! Drop; [`Daemon`] is one Russell process, stopped in Drop (SIGTERM, then SIGKILL to its
//! group).

use std::collections::HashSet;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::bins::{mdw_bin, mdw_command, status_json};
use crate::kill::{kill_group, signal};
use crate::ports::free_port;
use crate::svc::Svc;
use crate::wait::wait_for;

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
        let child = Command::new(mdw_bin())
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
        mdw_command(self.dir.path())
            .arg("--russell")
            .arg(&self.addr)
            .args(args)
            .output()
            .unwrap()
    }

    /// `mdw status --json`, parsed; records the PIDs for cleanup.
    pub fn status(&self) -> serde_json::Value {
        let v = status_json(&self.mdw(&["status", "--json"]));
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
