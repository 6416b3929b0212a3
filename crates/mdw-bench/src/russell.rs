//! One Russell under test: launched as `mdw serve russell` in its own process group, reached
//! over gRPC, and always torn down — SIGTERM first (Russell stops its services), then SIGKILL
//! to every process group the bench recorded (Russell's and each service's, by PID).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use russell_api::pb;
use russell_api::pb::russell_service_client::RussellServiceClient;
use rustix::process::Signal;
use tokio::process::Child;
use tokio::sync::mpsc;
use tonic::transport::Channel;

use crate::procs::{ProcId, signal, signal_group};

/// The gRPC client the bench uses.
pub type Client = RussellServiceClient<Channel>;

/// Opens one gRPC connection (one HTTP/2 channel) to Russell.
pub async fn connect(addr: SocketAddr) -> anyhow::Result<Client> {
    let channel = connect_channel(addr).await?;
    Ok(RussellServiceClient::new(channel).max_decoding_message_size(256 << 20))
}

/// One HTTP/2 connection to Russell's gRPC address, with the settings of the real client
/// ([`russell_api::client::endpoint`]).
pub async fn connect_channel(addr: SocketAddr) -> anyhow::Result<Channel> {
    russell_api::client::endpoint(&addr.to_string())?
        .connect_timeout(Duration::from_secs(1))
        .connect()
        .await
        .with_context(|| format!("cannot connect to Russell at {addr}"))
}

/// A running Russell and what the bench knows about the processes under it.
pub struct Russell {
    child: Child,
    /// Russell's PID (and process group).
    pub id: ProcId,
    /// Its gRPC address.
    pub addr: SocketAddr,
    /// Just before the spawn: the zero of every start measurement.
    pub launched_at: Instant,
    /// Russell's stdout and stderr.
    pub log: PathBuf,
    /// Service processes seen in any status reply, killed by group at teardown if alive.
    seen: Vec<ProcId>,
    done: bool,
}

impl Russell {
    /// Runs `<mdw> serve russell --config CONFIG --listen ADDR --state-dir DIR`.
    pub fn launch(
        mdw: &Path,
        config: &Path,
        addr: SocketAddr,
        state_dir: &Path,
        log: &Path,
    ) -> anyhow::Result<Russell> {
        let out = std::fs::File::create(log)
            .with_context(|| format!("cannot create the log file {}", log.display()))?;
        let err = out.try_clone()?;
        let mut cmd = tokio::process::Command::new(mdw);
        cmd.args(["serve", "russell", "--config"])
            .arg(config)
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--state-dir")
            .arg(state_dir)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let launched_at = Instant::now();
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot run {} serve russell", mdw.display()))?;
        let pid = child.id().context("Russell exited at once")? as i32;
        let id = ProcId::of(pid).unwrap_or(ProcId { pid, start_time: 0 });
        Ok(Russell {
            child,
            id,
            addr,
            launched_at,
            log: log.to_path_buf(),
            seen: Vec::new(),
            done: false,
        })
    }

    /// Connects once the API answers; fails early (with the log's tail) if Russell exits.
    pub async fn client(&mut self, timeout: Duration) -> anyhow::Result<Client> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "Russell (PID {}) exited with {status} before its API answered; its log:\n{}",
                    self.id.pid,
                    log_tail(&self.log, 30)
                );
            }
            match connect(self.addr).await {
                Ok(c) => return Ok(c),
                Err(e) if Instant::now() >= deadline => {
                    return Err(e.context(format!(
                        "Russell's API did not answer within {timeout:?}; its log:\n{}",
                        log_tail(&self.log, 30)
                    )));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    }

    /// GetOrchestratorStatus, remembering every service PID it names.
    pub async fn status(&mut self, client: &mut Client) -> anyhow::Result<pb::OrchestratorStatus> {
        let st = client
            .get_orchestrator_status(pb::StatusRequest {})
            .await
            .context("GetOrchestratorStatus failed")?
            .into_inner();
        for s in &st.services {
            if s.pid != 0
                && let Some(id) = ProcId::of(s.pid as i32)
                && !self.seen.contains(&id)
            {
                self.seen.push(id);
            }
        }
        Ok(st)
    }

    /// True while Russell's process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Tears down: records the service PIDs once more, SIGTERM to Russell (which stops its
    /// services), waits up to `grace`, then SIGKILLs every recorded group still alive.
    /// Returns how many processes had to be killed that way.
    pub async fn shutdown(mut self, grace: Duration) -> usize {
        if let Ok(Ok(mut c)) =
            tokio::time::timeout(Duration::from_secs(2), connect(self.addr)).await
        {
            let _ = tokio::time::timeout(Duration::from_secs(5), self.status(&mut c)).await;
        }
        self.record_children();
        signal(self.id.pid, Signal::TERM);
        let exited = tokio::time::timeout(grace, self.child.wait()).await.is_ok();
        let killed = self.kill_leftovers();
        if !exited {
            let _ = self.child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        }
        self.done = true;
        killed + usize::from(!exited)
    }

    /// Records Russell's direct children (by parent PID in /proc), in case a status reply
    /// never named them.
    fn record_children(&mut self) {
        for id in crate::procs::children_of(self.id.pid) {
            if !self.seen.contains(&id) {
                self.seen.push(id);
            }
        }
    }

    fn kill_leftovers(&self) -> usize {
        let alive: Vec<&ProcId> = self.seen.iter().filter(|p| !p.is_gone()).collect();
        for p in &alive {
            p.kill_group();
        }
        signal_group(self.id.pid, Signal::KILL);
        alive.len()
    }
}

impl Drop for Russell {
    /// The path taken when a measurement failed half-way: SIGTERM and a bounded blocking
    /// wait (so Russell can stop its services), then SIGKILL to every recorded group.
    fn drop(&mut self) {
        if self.done {
            return;
        }
        self.record_children();
        signal(self.id.pid, Signal::TERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.id.is_gone() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.kill_leftovers();
        signal(self.id.pid, Signal::KILL);
        let _ = self.child.start_kill();
    }
}

/// The last `n` lines of a log file, for error messages.
pub fn log_tail(path: &Path, n: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// A WatchEvents subscription whose events are stamped with their arrival time by a
/// background task, so a measurement can start before or after the event arrived.
pub struct EventLog {
    rx: mpsc::UnboundedReceiver<(Instant, pb::Event)>,
    task: tokio::task::JoinHandle<()>,
}

impl EventLog {
    /// Subscribes to WatchEvents for `names` (empty = all).
    pub async fn subscribe(client: &mut Client, names: Vec<String>) -> anyhow::Result<EventLog> {
        let mut stream = client
            .watch_events(pb::WatchEventsRequest { names })
            .await
            .context("WatchEvents failed")?
            .into_inner();
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            while let Ok(Some(ev)) = stream.message().await {
                if tx.send((Instant::now(), ev)).is_err() {
                    break;
                }
            }
        });
        Ok(EventLog { rx, task })
    }

    /// Drops every event received so far.
    pub fn drain(&mut self) {
        while self.rx.try_recv().is_ok() {}
    }

    /// The first event (with its arrival time) satisfying `pred`, waiting until `deadline`.
    pub async fn first(
        &mut self,
        deadline: Instant,
        mut pred: impl FnMut(&pb::Event) -> bool,
    ) -> Option<(Instant, pb::Event)> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.rx.recv()).await {
                Ok(Some((at, ev))) if pred(&ev) => return Some((at, ev)),
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return None,
            }
        }
    }
}

impl Drop for EventLog {
    fn drop(&mut self) {
        self.task.abort();
    }
}
