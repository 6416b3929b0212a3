//! The binaries under test (`mdw`, `mdw-demo`) and the stand-in service run as a real
//! process in its own process group, SIGKILLed as a group when its guard drops.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex, Once, OnceLock};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process, kill_process_group};

use crate::wait::{WAIT, wait_until};

/// target/<profile>/, the folder of the running test binary's `deps/`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .to_path_buf()
}

/// The `mdw` binary under test (target/<profile>/mdw), the one `cargo test -p mdw` builds
/// before it runs mdw's test binaries (the path `CARGO_BIN_EXE_mdw` names there).
pub fn mdw_bin() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| {
        let path = profile_dir().join("mdw");
        assert!(
            path.is_file(),
            "{} is missing: run these tests with `cargo test -p mdw`, which builds it",
            path.display()
        );
        path.display().to_string()
    })
}

/// `mdw` with `XDG_RUNTIME_DIR` in `runtime_dir`, no token from the caller's environment
/// and stdin closed: how every black-box test runs the CLI.
pub fn mdw_command(runtime_dir: &Path) -> Command {
    let mut cmd = Command::new(mdw_bin());
    cmd.env("XDG_RUNTIME_DIR", runtime_dir)
        .env_remove("MDW_RUSSELL_TOKEN")
        .env_remove("MDW_RUSSELL_TOKEN_FILE")
        .stdin(Stdio::null());
    cmd
}

/// The JSON that a successful `mdw status --json` printed.
pub fn status_json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "mdw status failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("mdw status --json prints JSON")
}

/// Path of the `mdw-demo` binary (target/<profile>/mdw-demo). `cargo test -p <crate>` does
/// not build other packages' binaries, so the first call runs
/// `cargo build -p mdw-demo --bin mdw-demo` (a no-op when it is up to date).
pub fn demo_bin() -> PathBuf {
    let profile_dir = profile_dir();
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

/// A path as a string for command lines.
pub fn s(p: &Path) -> String {
    p.display().to_string()
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
    /// Starts `mdw-demo args…` ([`demo_bin`]) with stdout/stderr captured line by line.
    pub fn start(args: &[&str]) -> Demo {
        Demo::start_bin(&demo_bin(), args)
    }

    /// Starts the stand-in binary `bin` (`mdw-demo`, or `mdw demo` with "demo" first in
    /// `args`) with stdout/stderr captured line by line.
    pub fn start_bin(bin: &Path, args: &[&str]) -> Demo {
        let mut child = Command::new(bin)
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
        wait_until(&format!("mdw-demo to print {line:?}"), WAIT, || {
            self.stdout().iter().any(|l| l == line)
        });
    }

    /// The PID printed by `--spawn-grandchild` (`grandchild <pid>`).
    pub fn grandchild(&self) -> u32 {
        let mut pid = None;
        wait_until("the grandchild line", WAIT, || {
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

/// A process started by the test with stdout and stderr in a log file, in its own process
/// group; the group is SIGKILLed and the process reaped in Drop.
pub struct Logged {
    pub child: Child,
    pub log: PathBuf,
}

impl Logged {
    /// Spawns `cmd` (stdin null, output to `log`) in a new process group.
    pub fn spawn(cmd: &mut Command, log: PathBuf) -> Logged {
        let out =
            std::fs::File::create(&log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("clone the log file"))
            .stderr(out)
            .process_group(0)
            .spawn()
            .expect("spawn a logged process");
        Logged { child, log }
    }

    /// What the process wrote so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (up to 10 s, without blocking the runtime) until the log holds `text` at
    /// least `count` times.
    pub async fn wait_log(&self, count: usize, text: &str) {
        let deadline = Instant::now() + WAIT;
        while self.log().matches(text).count() < count {
            assert!(
                Instant::now() < deadline,
                "no {count}× {text:?} in:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        if let Some(pgid) = Pid::from_raw(self.child.id() as i32) {
            let _ = kill_process_group(pgid, Signal::KILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
