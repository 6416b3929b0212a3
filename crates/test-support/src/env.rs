//! The reliability suite's environment: one black-box Russell (the real
//! `mdw serve russell` on a free loopback port), driven over gRPC, whose services are real
//! `mdw demo` processes.
//!
//! Cleanup does not depend on Russell: every process an [`Env`] starts carries a unique
//! marker in its environment ([`MARKER_VAR`], set on Russell and so inherited by every
//! service and grandchild). [`Env`]'s `Drop` kills Russell by PID, then every process that
//! carries the marker, by process group and by PID — never by name.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use crate::rng::Rng;

use russell_api::pb;
use russell_api::pb::russell_service_client::RussellServiceClient;
use tempfile::TempDir;
use tonic::transport::Channel;

use crate::bins::mdw_bin;
use crate::kill::{kill_group, kill9};
use crate::ports::{free_port, http_get};
use crate::procs::{alive, listeners_on_port, marked_procs, proc_stat};
use crate::svc::{Svc, q};
use crate::wait::wait_for;

/// Environment variable whose value marks every process of one [`Env`].
pub const MARKER_VAR: &str = "MDW_RELIABILITY_MARKER";

/// A generated gRPC client of Russell.
pub type Client = RussellServiceClient<Channel>;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The cases of one test binary share the machine: an ordinary [`Env`] holds this lock for
/// reading, a long case ([`Env::alone`]) for writing, so a long case (100 kills, 20 s of
/// load) never runs beside the timing-sensitive ones.
static MACHINE: RwLock<()> = RwLock::new(());

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
    /// This environment's turn on the machine, released after Drop killed everything.
    _shared: Option<RwLockReadGuard<'static, ()>>,
    _alone: Option<RwLockWriteGuard<'static, ()>>,
}

impl Env {
    /// A fresh directory, a free port, a unique marker; no config yet.
    pub fn new() -> Self {
        let shared = MACHINE.read().unwrap_or_else(|e| e.into_inner());
        let mut env = Self::unlocked();
        env._shared = Some(shared);
        env
    }

    /// [`Env::new`] for a long case: waits until no other environment of this test binary
    /// exists and keeps the machine to itself until it is dropped.
    pub fn alone() -> Self {
        let alone = MACHINE.write().unwrap_or_else(|e| e.into_inner());
        let mut env = Self::unlocked();
        env._alone = Some(alone);
        env
    }

    fn unlocked() -> Self {
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
            _shared: None,
            _alone: None,
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
        let mut cmd = Command::new(mdw_bin());
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
        marked_procs(MARKER_VAR, &self.marker)
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
                    kill_group(st.pgrp);
                }
                kill9(pid);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        left
    }
}

impl Default for Env {
    fn default() -> Self {
        Self::new()
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
    Command::new(mdw_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run mdw")
}
