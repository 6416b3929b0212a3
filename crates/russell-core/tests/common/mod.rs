//! Shared test fixtures: free ports, `wait_for`, and the stand-in service (`mdw-demo`) run as
//! a real process in its own process group, SIGKILLed as a group when its guard drops.
//!
//! Use with `mod common;` from any test file of this crate.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process, kill_process_group};

/// Generous bound for things that should happen "soon" (startup, exit, signal delivery).
pub const WAIT: Duration = Duration::from_secs(10);

/// A loopback port that was free a moment ago (bind port 0, read it, drop the listener).
pub fn free_port() -> u16 {
    static TAKEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("bind 127.0.0.1:0")
            .local_addr()
            .expect("local addr")
            .port();
        // Never hand out the same port twice in one test binary.
        if TAKEN.lock().expect("port set").insert(port) {
            return port;
        }
    }
}

/// Polls `cond` every 20 ms until it holds; panics naming `what` after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Async [`wait_for`]: polls `cond` every 20 ms without blocking the runtime.
pub async fn wait_for_async(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Path of the `mdw-demo` binary next to this test's target dir (target/debug/mdw-demo).
/// `cargo test -p russell-core` does not build other packages' binaries, so the first call
/// runs `cargo build -p mdw-demo --bin mdw-demo` (a no-op when it is up to date).
pub fn demo_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test> -> target/<profile>/mdw-demo
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .to_path_buf();
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        let workspace = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
        let mut cargo = Command::new(env!("CARGO"));
        cargo.args(["build", "-q", "-p", "mdw-demo", "--bin", "mdw-demo"]);
        if profile_dir
            .file_name()
            .is_some_and(|name| name == "release")
        {
            cargo.arg("--release");
        }
        let status = cargo
            .current_dir(workspace)
            .status()
            .expect("run cargo build for mdw-demo");
        assert!(status.success(), "cargo build -p mdw-demo failed");
    });
    profile_dir.join("mdw-demo")
}

/// A running stand-in in its own process group; the group is SIGKILLed on drop.
pub struct Demo {
    pub child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

fn collect(stream: impl Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            sink.lock().expect("lines lock").push(line);
        }
    });
    lines
}

impl Demo {
    /// Starts `mdw-demo args…` with stdout/stderr captured line by line.
    pub fn start(args: &[&str]) -> Demo {
        let mut child = Command::new(demo_bin())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("spawn mdw-demo");
        let stdout = collect(child.stdout.take().expect("stdout"));
        let stderr = collect(child.stderr.take().expect("stderr"));
        Demo {
            child,
            stdout,
            stderr,
        }
    }

    /// [`Demo::start`], then waits for its "ready" line (ports bound).
    pub fn start_ready(args: &[&str]) -> Demo {
        let demo = Demo::start(args);
        demo.wait_line("ready");
        demo
    }

    /// PID of the stand-in; also its process group ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `sig` to the stand-in process only.
    pub fn signal(&self, sig: Signal) {
        let pid = Pid::from_raw(self.pid() as i32).expect("pid > 0");
        kill_process(pid, sig).expect("signal mdw-demo");
    }

    /// Lines printed on stdout so far.
    pub fn stdout(&self) -> Vec<String> {
        self.stdout.lock().expect("lines lock").clone()
    }

    /// Lines printed on stderr so far.
    pub fn stderr(&self) -> Vec<String> {
        self.stderr.lock().expect("lines lock").clone()
    }

    /// Waits until stdout has exactly `line`.
    pub fn wait_line(&self, line: &str) {
        wait_for(&format!("mdw-demo to print {line:?}"), WAIT, || {
            self.stdout().iter().any(|l| l == line)
        });
    }

    /// The PID printed by `--spawn-grandchild` (`grandchild <pid>`).
    pub fn grandchild(&self) -> u32 {
        let mut pid = None;
        wait_for("the grandchild line", WAIT, || {
            pid = self
                .stdout()
                .iter()
                .find_map(|l| l.strip_prefix("grandchild ")?.parse().ok());
            pid.is_some()
        });
        pid.expect("grandchild pid")
    }

    /// Waits for the stand-in to exit (bounded by [`WAIT`]).
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "mdw-demo did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if let Some(pgid) = Pid::from_raw(self.child.id() as i32) {
            let _ = kill_process_group(pgid, Signal::KILL);
        }
        let _ = self.child.wait();
    }
}
