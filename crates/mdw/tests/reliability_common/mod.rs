//! Shared fixture of the reliability suite (`tests/reliability_*.rs`).
//!
//! Everything here is black-box: Russell is the real `mdw serve russell` binary on a free
//! loopback port, its services are real `mdw demo` processes, state is read from `/proc`.
//!
//! Cleanup does not depend on Russell: every process the suite starts carries a unique
//! marker in its environment (`MDW_RELIABILITY_MARKER`, set on Russell and so inherited by
//! every service and grandchild). [`Env`]'s `Drop` kills Russell by PID, then every process
//! that carries the marker, by process group and by PID — never by name.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use russell_api::pb;
use russell_api::pb::russell_service_client::RussellServiceClient;
use rustix::process::{Pid, Signal, kill_process, kill_process_group};
use tempfile::TempDir;
use tonic::transport::Channel;

/// The mdw binary under test.
pub const MDW: &str = env!("CARGO_BIN_EXE_mdw");

/// Environment variable whose value marks every process of one [`Env`].
pub const MARKER_VAR: &str = "MDW_RELIABILITY_MARKER";

/// A generated gRPC client of Russell.
pub type Client = RussellServiceClient<Channel>;

// ---------------------------------------------------------------- time and randomness

/// Polls `cond` every 20 ms until it is true or `timeout` passed; returns whether it held.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A small xorshift generator: reproducible with `RELIABILITY_SEED`, else seeded by time.
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    /// Seeds from `RELIABILITY_SEED` or the clock, and prints the seed for reruns.
    pub fn from_env() -> Self {
        let seed = std::env::var("RELIABILITY_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            })
            | 1;
        eprintln!("reliability: RELIABILITY_SEED={seed}");
        Self(seed)
    }

    /// Next pseudo-random number.
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

// ---------------------------------------------------------------- ports

#[path = "../common/free_port.rs"]
mod free_port;
pub use free_port::free_port;

/// `GET path` on 127.0.0.1:port over plain HTTP/1.1; `(status, body)` or None if nothing
/// answered within a second.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((status, body))
}

// ---------------------------------------------------------------- /proc

/// What `/proc/<pid>/stat` says about a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: u32,
    /// R, S, D, Z, T, X, ...
    pub state: char,
    pub ppid: u32,
    pub pgrp: u32,
}

/// Reads `/proc/<pid>/stat`; None when the process is gone.
pub fn proc_stat(pid: u32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    let pgrp = f.next()?.parse().ok()?;
    Some(ProcStat {
        pid,
        state,
        ppid,
        pgrp,
    })
}

/// Every process visible in `/proc`.
pub fn all_procs() -> Vec<ProcStat> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(proc_stat)
        .collect()
}

/// True when `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    pid != 0 && proc_stat(pid).is_some_and(|s| s.state != 'Z' && s.state != 'X')
}

/// Live (non-zombie) processes whose process group is `pgid`.
pub fn procs_in_group(pgid: u32) -> Vec<u32> {
    all_procs()
        .into_iter()
        .filter(|p| p.pgrp == pgid && p.state != 'Z' && p.state != 'X')
        .map(|p| p.pid)
        .collect()
}

/// Zombie children of `ppid` (children it has not reaped).
pub fn zombie_children(ppid: u32) -> Vec<u32> {
    all_procs()
        .into_iter()
        .filter(|p| p.ppid == ppid && p.state == 'Z')
        .map(|p| p.pid)
        .collect()
}

/// Resident set size of `pid` in bytes (VmRSS), None when gone.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Bytes `pid` has written so far (`wchar` of `/proc/<pid>/io`), None when gone.
pub fn wchar(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let line = text.lines().find(|l| l.starts_with("wchar:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Number of open file descriptors of `pid` (entries of `/proc/<pid>/fd`).
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

/// The command line of `pid`, arguments joined by spaces.
pub fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .split('\0')
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// Live processes whose environment holds `MDW_RELIABILITY_MARKER=<marker>`.
pub fn marked_procs(marker: &str) -> Vec<u32> {
    let needle = format!("{MARKER_VAR}={marker}");
    all_procs()
        .into_iter()
        .filter(|p| p.state != 'Z' && p.state != 'X')
        .filter(|p| {
            std::fs::read(format!("/proc/{}/environ", p.pid))
                .map(|env| env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()))
                .unwrap_or(false)
        })
        .map(|p| p.pid)
        .collect()
}

/// A LISTEN row of `/proc/net/tcp{,6}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Local address as hex from the kernel (e.g. `0100007F` = 127.0.0.1).
    pub addr_hex: String,
    pub port: u16,
    pub inode: u64,
    pub v6: bool,
}

impl Listener {
    /// True for 127.0.0.0/8 and ::1 (and ::ffff:127.x).
    pub fn is_loopback(&self) -> bool {
        if self.v6 {
            self.addr_hex == "00000000000000000000000001000000"
                || (self.addr_hex.starts_with("0000000000000000FFFF0000")
                    && self.addr_hex.ends_with("7F"))
        } else {
            self.addr_hex.ends_with("7F")
        }
    }
}

/// Every TCP socket in LISTEN state (IPv4 and IPv6) in this network namespace.
pub fn tcp_listeners() -> Vec<Listener> {
    let mut out = Vec::new();
    for (file, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || f[3] != "0A" {
                continue;
            }
            let Some((addr, port)) = f[1].split_once(':') else {
                continue;
            };
            out.push(Listener {
                addr_hex: addr.to_owned(),
                port: u16::from_str_radix(port, 16).unwrap_or(0),
                inode: f[9].parse().unwrap_or(0),
                v6,
            });
        }
    }
    out
}

/// Number of LISTEN sockets on `port` (any address, v4 and v6).
pub fn listeners_on_port(port: u16) -> usize {
    tcp_listeners().iter().filter(|l| l.port == port).count()
}

/// Socket inodes held open by `pid`.
pub fn socket_inodes(pid: u32) -> BTreeSet<u64> {
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return BTreeSet::new();
    };
    rd.filter_map(|e| {
        let link = std::fs::read_link(e.ok()?.path()).ok()?;
        let s = link.to_str()?;
        s.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
    })
    .collect()
}

/// LISTEN sockets owned by `pid`.
pub fn listeners_of(pid: u32) -> Vec<Listener> {
    let inodes = socket_inodes(pid);
    tcp_listeners()
        .into_iter()
        .filter(|l| inodes.contains(&l.inode))
        .collect()
}

/// Kills a process by PID with SIGKILL, ignoring "no such process".
pub fn kill9(pid: u32) {
    if let Some(p) = Pid::from_raw(pid as i32) {
        let _ = kill_process(p, Signal::KILL);
    }
}

/// Sends `sig` to one process.
pub fn signal(pid: u32, sig: Signal) {
    if let Some(p) = Pid::from_raw(pid as i32) {
        let _ = kill_process(p, sig);
    }
}

/// Kills a whole process group with SIGKILL, ignoring errors.
pub fn kill9_group(pgid: u32) {
    if let Some(p) = Pid::from_raw(pgid as i32) {
        let _ = kill_process_group(p, Signal::KILL);
    }
}

// ---------------------------------------------------------------- config

/// Quotes a string as a TOML basic string.
pub fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// One `mdw demo` service for a generated config.
#[derive(Debug, Clone)]
pub struct Svc {
    pub short: String,
    pub http_port: u16,
    /// Extra `mdw demo` flags.
    pub demo_args: Vec<String>,
    /// Replaces the whole command when set.
    pub command: Option<Vec<String>>,
    pub deps: Vec<String>,
    pub max_retries: u32,
    pub interval: &'static str,
    pub timeout: &'static str,
    pub failure_threshold: u32,
    pub restart_backoff: &'static str,
    pub restart_backoff_max: &'static str,
    pub restart_reset_after: &'static str,
    pub stop_timeout: &'static str,
    pub start_timeout: &'static str,
}

impl Svc {
    /// A healthy stand-in with an HTTP check every 200 ms and fast restarts.
    pub fn demo(short: &str) -> Self {
        Self {
            short: short.to_owned(),
            http_port: free_port(),
            demo_args: Vec::new(),
            command: None,
            deps: Vec::new(),
            max_retries: 3,
            interval: "200ms",
            timeout: "150ms",
            failure_threshold: 3,
            restart_backoff: "100ms",
            restart_backoff_max: "400ms",
            restart_reset_after: "1h",
            stop_timeout: "3s",
            start_timeout: "15s",
        }
    }

    /// The command line Russell runs.
    pub fn argv(&self) -> Vec<String> {
        if let Some(c) = &self.command {
            return c.clone();
        }
        let mut v: Vec<String> = [
            MDW,
            "demo",
            "--name",
            &self.short,
            "--http-port",
            &self.http_port.to_string(),
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        v.extend(self.demo_args.iter().cloned());
        v
    }

    /// The `[[services]]` table.
    pub fn toml(&self) -> String {
        let cmd: Vec<String> = self.argv().iter().map(|a| q(a)).collect();
        let deps: Vec<String> = self.deps.iter().map(|a| q(a)).collect();
        let mut t = String::new();
        writeln!(t, "[[services]]").unwrap();
        writeln!(t, "name = {}", q(&self.short.to_uppercase())).unwrap();
        writeln!(t, "short_name = {}", q(&self.short)).unwrap();
        writeln!(t, "description = \"reliability stand-in\"").unwrap();
        writeln!(t, "http_port = {}", self.http_port).unwrap();
        writeln!(t, "command = [{}]", cmd.join(", ")).unwrap();
        writeln!(t, "dependencies = [{}]", deps.join(", ")).unwrap();
        writeln!(t, "max_retries = {}", self.max_retries).unwrap();
        writeln!(t, "restart_backoff = {}", q(self.restart_backoff)).unwrap();
        writeln!(t, "restart_backoff_max = {}", q(self.restart_backoff_max)).unwrap();
        writeln!(t, "restart_reset_after = {}", q(self.restart_reset_after)).unwrap();
        writeln!(t, "stop_timeout = {}", q(self.stop_timeout)).unwrap();
        writeln!(t, "\n[services.health_check]").unwrap();
        writeln!(t, "type = \"http\"").unwrap();
        writeln!(t, "endpoint = \"/health\"").unwrap();
        writeln!(t, "interval = {}", q(self.interval)).unwrap();
        writeln!(t, "timeout = {}", q(self.timeout)).unwrap();
        writeln!(t, "failure_threshold = {}", self.failure_threshold).unwrap();
        writeln!(t, "start_timeout = {}\n", q(self.start_timeout)).unwrap();
        t
    }
}

// ---------------------------------------------------------------- the environment

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// One Russell with its config, state dir and services, all under one TempDir.
/// Dropping it kills Russell and every process it (transitively) started.
pub struct Env {
    pub dir: TempDir,
    pub marker: String,
    pub config_path: PathBuf,
    pub state_dir: PathBuf,
    pub port: u16,
    /// Token for calls when a token file is configured.
    pub token: Option<String>,
    russell: Option<Child>,
    /// Every Russell PID this environment started (for the final zombie scan).
    pub russell_pids: Vec<u32>,
    /// Number of Russell starts, for distinct log file names.
    starts: u32,
}

impl Env {
    /// A fresh directory, a free port, a unique marker; no config yet.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("mdw-reliability-")
            .tempdir()
            .unwrap();
        let marker = format!(
            "{}-{}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        Self {
            config_path: dir.path().join("services.toml"),
            state_dir: dir.path().join("state"),
            port: free_port(),
            dir,
            marker,
            token: None,
            russell: None,
            russell_pids: Vec::new(),
            starts: 0,
        }
    }

    /// Russell's gRPC address.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The `[russell]` and `[logs]` tables for this environment, plus `extra_russell` lines.
    pub fn header(&self, extra_russell: &str, logs: &str) -> String {
        format!(
            "[russell]\nlisten = {}\nstate_dir = {}\n{extra_russell}\n\n[logs]\n{logs}\n\n",
            q(&self.addr()),
            q(self.state_dir.to_str().unwrap())
        )
    }

    /// Writes a config made of the default header and `services`.
    pub fn write_services(&self, services: &[Svc]) {
        let mut t = self.header("", "");
        for s in services {
            t.push_str(&s.toml());
        }
        self.write_config(&t);
    }

    /// Writes the config file verbatim.
    pub fn write_config(&self, toml: &str) {
        std::fs::write(&self.config_path, toml).unwrap();
    }

    /// The command that starts Russell for this environment.
    pub fn russell_command(&self) -> Command {
        let mut cmd = Command::new(MDW);
        cmd.args(["serve", "russell", "--config"])
            .arg(&self.config_path)
            .args(["--listen", &self.addr(), "--state-dir"])
            .arg(&self.state_dir)
            .env(MARKER_VAR, &self.marker)
            // FIFOs in this test's own folder: a Russell killed with -9 leaves nothing behind.
            .env("XDG_RUNTIME_DIR", self.dir.path())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null());
        cmd
    }

    /// Starts `mdw serve russell` (its output goes to `russell-N.log` in the TempDir) and
    /// returns its PID. Does not wait for it to answer.
    pub fn spawn_russell(&mut self) -> u32 {
        assert!(self.russell.is_none(), "a Russell is already running");
        self.starts += 1;
        let log =
            std::fs::File::create(self.dir.path().join(format!("russell-{}.log", self.starts)))
                .unwrap();
        let child = self
            .russell_command()
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn mdw serve russell");
        let pid = child.id();
        self.russell = Some(child);
        self.russell_pids.push(pid);
        pid
    }

    /// Starts Russell and waits until GetOrchestratorStatus answers; returns a client.
    pub async fn start_russell(&mut self) -> Client {
        self.spawn_russell();
        self.connect().await
    }

    /// PID of the running Russell, if any.
    pub fn russell_pid(&self) -> Option<u32> {
        self.russell.as_ref().map(Child::id)
    }

    /// True while the Russell child has not exited.
    pub fn russell_running(&mut self) -> bool {
        match self.russell.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// kill -9 Russell and reap it.
    pub fn kill_russell(&mut self) {
        if let Some(mut c) = self.russell.take() {
            kill9(c.id());
            let _ = c.wait();
        }
    }

    /// Waits (bounded) for Russell to exit by itself; returns its exit code.
    pub fn wait_russell_exit(&mut self, timeout: Duration) -> Option<i32> {
        let mut code = None;
        let c = self.russell.as_mut()?;
        wait_for(timeout, || match c.try_wait() {
            Ok(Some(s)) => {
                code = Some(s.code().unwrap_or(-1));
                true
            }
            _ => false,
        });
        if code.is_some() {
            self.russell = None;
        }
        code
    }

    /// Text Russell printed so far (all starts).
    pub fn russell_log(&self) -> String {
        let mut out = String::new();
        for n in 1..=self.starts {
            let p = self.dir.path().join(format!("russell-{n}.log"));
            let _ = writeln!(
                out,
                "--- russell start {n} ---\n{}",
                std::fs::read_to_string(p).unwrap_or_default()
            );
        }
        out
    }

    /// Connects to Russell, retrying for up to 20 s until a status call succeeds.
    pub async fn connect(&mut self) -> Client {
        let end = Instant::now() + Duration::from_secs(20);
        let url = format!("http://{}", self.addr());
        loop {
            if let Ok(ch) = tonic::transport::Endpoint::from_shared(url.clone())
                .unwrap()
                .connect_timeout(Duration::from_secs(1))
                .timeout(Duration::from_secs(30))
                .connect()
                .await
            {
                let mut c = RussellServiceClient::new(ch)
                    .max_decoding_message_size(64 << 20)
                    .max_encoding_message_size(64 << 20);
                if c.get_orchestrator_status(self.req(pb::StatusRequest {}))
                    .await
                    .is_ok()
                {
                    return c;
                }
            }
            if !self.russell_running() {
                panic!("Russell exited before answering:\n{}", self.russell_log());
            }
            if Instant::now() >= end {
                panic!("Russell did not answer within 20s:\n{}", self.russell_log());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Wraps a message in a request carrying the token, when one is configured.
    pub fn req<T>(&self, msg: T) -> tonic::Request<T> {
        authed(msg, self.token.as_deref())
    }

    /// GetOrchestratorStatus.
    pub async fn status(&self, c: &mut Client) -> pb::OrchestratorStatus {
        c.get_orchestrator_status(self.req(pb::StatusRequest {}))
            .await
            .expect("GetOrchestratorStatus")
            .into_inner()
    }

    /// Polls the status until `cond` holds (bounded); returns the last status and whether
    /// it held.
    pub async fn wait_status(
        &self,
        c: &mut Client,
        timeout: Duration,
        mut cond: impl FnMut(&pb::OrchestratorStatus) -> bool,
    ) -> (pb::OrchestratorStatus, bool) {
        let end = Instant::now() + timeout;
        loop {
            let st = self.status(c).await;
            if cond(&st) {
                return (st, true);
            }
            if Instant::now() >= end {
                return (st, false);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until every service is `running` and healthy with a live PID; panics with the
    /// status and Russell's log otherwise.
    pub async fn wait_all_running(
        &self,
        c: &mut Client,
        timeout: Duration,
    ) -> pb::OrchestratorStatus {
        let (st, ok) = self
            .wait_status(c, timeout, |st| {
                !st.services.is_empty()
                    && st
                        .services
                        .iter()
                        .all(|s| s.state == "running" && s.healthy && alive(s.pid))
            })
            .await;
        assert!(
            ok,
            "not every service running after {timeout:?}: {}\n{}",
            summary(&st),
            self.russell_log()
        );
        st
    }

    /// Every live process of this environment (Russell, services, grandchildren).
    pub fn marked(&self) -> Vec<u32> {
        marked_procs(&self.marker)
    }

    /// The state directory's files (recursively).
    pub fn state_files(&self) -> Vec<PathBuf> {
        fn walk(p: &Path, out: &mut Vec<PathBuf>) {
            if let Ok(rd) = std::fs::read_dir(p) {
                for e in rd.flatten() {
                    let p = e.path();
                    if p.is_dir() {
                        walk(&p, out);
                    } else {
                        out.push(p);
                    }
                }
            }
        }
        let mut v = Vec::new();
        walk(&self.state_dir, &mut v);
        v.sort();
        v
    }

    /// Kills everything this environment started; returns how many processes were left.
    pub fn kill_everything(&mut self) -> usize {
        self.kill_russell();
        let mut left = 0;
        for _ in 0..50 {
            let procs = self.marked();
            if procs.is_empty() {
                break;
            }
            left = left.max(procs.len());
            for pid in procs {
                if let Some(st) = proc_stat(pid) {
                    kill9_group(st.pgrp);
                }
                kill9(pid);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        left
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.kill_everything();
    }
}

/// A request with `authorization: Bearer <token>` when a token is given.
pub fn authed<T>(msg: T, token: Option<&str>) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    if let Some(t) = token {
        r.metadata_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    r
}

/// One line per service: short_name state healthy pid restarts.
pub fn summary(st: &pb::OrchestratorStatus) -> String {
    let mut s = format!("russell={} ", st.status);
    for svc in &st.services {
        let _ = write!(
            s,
            "[{} {} h={} pid={} restarts={}/{} err={:?}] ",
            svc.short_name,
            svc.state,
            svc.healthy,
            svc.pid,
            svc.restart_count,
            svc.max_retries,
            svc.last_error
        );
    }
    s
}

/// short_name → service status.
pub fn by_name(st: &pb::OrchestratorStatus) -> BTreeMap<String, pb::ServiceStatus> {
    st.services
        .iter()
        .map(|s| (s.short_name.clone(), s.clone()))
        .collect()
}

/// Asserts the status matches reality: each running service's PID is alive, each of its
/// ports has exactly one listener and answers its health check with 200.
pub fn assert_status_matches_reality(st: &pb::OrchestratorStatus) {
    for s in &st.services {
        if s.state != "running" {
            continue;
        }
        assert!(
            alive(s.pid),
            "{}: status PID {} is not alive",
            s.short_name,
            s.pid
        );
        if s.http_port != 0 {
            let port = s.http_port as u16;
            assert_eq!(
                listeners_on_port(port),
                1,
                "{}: expected exactly one listener on port {port}",
                s.short_name
            );
            let ans = http_get(port, "/health");
            assert!(
                matches!(ans, Some((200, _))),
                "{}: port {port} does not answer healthy: {ans:?}",
                s.short_name
            );
        }
    }
}

/// Runs `mdw` with `args` to completion (bounded by the command itself).
pub fn mdw(args: &[&str]) -> std::process::Output {
    Command::new(MDW)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run mdw")
}
