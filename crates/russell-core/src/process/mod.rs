//! Process control: spawn a service in its own process group wired to its FIFOs, watch a
//! process for exit (tokio's child wait for our own children — which also reaps them —
//! pidfd or polling for adopted ones), signal its group, and stop it gracefully.

pub mod env;
pub(crate) mod fifo;

pub use crate::proc::running;

use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use russell_config::Service;
use rustix::process::{Pid, Signal};
use tokio::io::unix::AsyncFd;
use tokio::net::unix::pipe;
use tokio::time::{Instant, sleep, timeout_at};

use crate::proc::alive;
use crate::state_file::ProcessRecord;

/// How often an adopted process without pidfd, and a process group after its leader
/// exited, are checked.
const POLL: Duration = Duration::from_millis(20);
const POLL_ADOPTED: Duration = Duration::from_millis(100);
/// After SIGKILL, how long to wait for the group to vanish before giving up on it.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// A spawn that could not happen.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error(transparent)]
    EnvFile(#[from] env::EnvFileError),
    #[error(
        "cannot create the output FIFOs in {dir} (check that it exists, is writable and not full)"
    )]
    Fifo {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot run '{program}' in {working_dir} (check command and working_dir)")]
    Exec {
        program: String,
        working_dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("working_dir {dir} is not a directory (create it or fix working_dir in the config)")]
    WorkingDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the service has an empty command")]
    EmptyCommand,
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExitInfo {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl std::fmt::Display for ExitInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.code, self.signal) {
            (Some(c), _) => write!(f, "exited with code {c}"),
            (None, Some(s)) => {
                let name = signal_name(s);
                write!(f, "killed by signal {s}{name}")
            }
            (None, None) => f.write_str("exited"),
        }
    }
}

fn signal_name(s: i32) -> &'static str {
    match s {
        1 => " (SIGHUP)",
        2 => " (SIGINT)",
        6 => " (SIGABRT)",
        9 => " (SIGKILL)",
        11 => " (SIGSEGV)",
        13 => " (SIGPIPE)",
        15 => " (SIGTERM)",
        _ => "",
    }
}

enum Watch {
    /// Our own child: tokio waits for it and reaps it.
    Child(tokio::process::Child),
    /// Someone else's process: readable once it exits.
    Pidfd(AsyncFd<OwnedFd>),
    /// No pidfd (old kernel): poll /proc.
    Poll,
    /// Already seen to exit.
    Gone(ExitInfo),
}

/// A process Russell manages: spawned by it or adopted.
pub(crate) struct Proc {
    pub pid: u32,
    /// The group to signal; `None` when the process does not lead its own group (an
    /// adopted stranger's child), then only the PID is signalled.
    pub pgid: Option<u32>,
    pub start_time: u64,
    pub adopted: bool,
    /// Its command line (from /proc when adopted).
    pub command: Vec<String>,
    watch: Watch,
}

/// A freshly spawned service and the read ends of its output.
pub(crate) struct Spawned {
    pub proc: Proc,
    pub stdout: pipe::Receiver,
    pub stderr: pipe::Receiver,
}

/// Spawns `svc` in a new process group: working_dir, Russell's environment, then
/// env_file (read now), then `env`, then the marks a later Russell finds it by
/// ([`crate::proc::strays`]); stdin /dev/null; stdout/stderr to its FIFOs in `run_dir`.
pub(crate) fn spawn(
    svc: &Service,
    run_dir: &Path,
    state_dir: &Path,
) -> Result<Spawned, SpawnError> {
    let (program, args) = svc.command.split_first().ok_or(SpawnError::EmptyCommand)?;
    let file_env = match &svc.env_file {
        Some(p) => env::read_env_file(p)?,
        None => Vec::new(),
    };
    let fifo_err = |source| SpawnError::Fifo {
        dir: run_dir.to_path_buf(),
        source,
    };
    let (out_w, err_w) = fifo::open_for_child(run_dir, &svc.short_name).map_err(fifo_err)?;
    let (stdout, stderr) = fifo::open_readers(run_dir, &svc.short_name).map_err(fifo_err)?;
    let child = {
        // The command (and with it Russell's copies of the write ends) is dropped at the
        // end of this block, so the readers see EOF once the service's processes close them.
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args)
            .current_dir(&svc.working_dir)
            .envs(file_env)
            .envs(&svc.env)
            .env(crate::proc::strays::SERVICE_ENV, &svc.short_name)
            .env(crate::proc::strays::STATE_DIR_ENV, state_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out_w))
            .stderr(Stdio::from(err_w))
            .process_group(0)
            .kill_on_drop(false);
        // A missing working_dir fails with the same ENOENT as a missing program: tell
        // them apart, or the user hunts for the wrong one.
        cmd.spawn().map_err(|source| {
            if svc.working_dir.is_dir() {
                SpawnError::Exec {
                    program: program.clone(),
                    working_dir: svc.working_dir.clone(),
                    source,
                }
            } else {
                SpawnError::WorkingDir {
                    dir: svc.working_dir.clone(),
                    source,
                }
            }
        })?
    };
    let pid = child.id().unwrap_or_default();
    let start_time = crate::proc::process_start_time(pid).unwrap_or_default();
    Ok(Spawned {
        proc: Proc {
            pid,
            pgid: Some(pid),
            start_time,
            adopted: false,
            command: svc.command.clone(),
            watch: Watch::Child(child),
        },
        stdout,
        stderr,
    })
}

impl Proc {
    /// Takes responsibility for a running process Russell did not spawn (or spawned
    /// before a restart of its own). It is signalled as a group only when it leads one
    /// that is not Russell's own.
    pub(crate) fn adopt(pid: u32, start_time: u64) -> Self {
        let own = rustix::process::getpgrp().as_raw_nonzero().get() as u32;
        let pgid = Pid::from_raw(pid as i32)
            .and_then(|p| rustix::process::getpgid(Some(p)).ok())
            .map(|g| g.as_raw_nonzero().get() as u32)
            .filter(|g| *g == pid && *g != own);
        let watch = Pid::from_raw(pid as i32)
            .and_then(|p| rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok())
            .and_then(register)
            .map_or(Watch::Poll, Watch::Pidfd);
        let command = crate::proc::command_line(pid).unwrap_or_default();
        Self {
            pid,
            pgid,
            start_time,
            adopted: true,
            command,
            watch,
        }
    }

    /// What the state file records.
    pub(crate) fn record(&self) -> ProcessRecord {
        ProcessRecord {
            pid: self.pid,
            pgid: self.pgid,
            start_time: self.start_time,
        }
    }

    /// Resolves when the process has exited (at once if it already did). Cancel-safe.
    pub(crate) async fn wait(&mut self) -> ExitInfo {
        let info = match &mut self.watch {
            Watch::Gone(info) => return *info,
            Watch::Child(child) => match child.wait().await {
                Ok(status) => ExitInfo {
                    code: status.code(),
                    signal: status.signal(),
                },
                Err(_) => ExitInfo::default(),
            },
            // Boxed: only adopted processes wait so, and their state would otherwise be
            // inlined into every service task's resting future.
            Watch::Pidfd(fd) => Box::pin(pidfd_exit(fd, self.pid, self.start_time)).await,
            Watch::Poll => Box::pin(gone(self.pid, self.start_time)).await,
        };
        self.watch = Watch::Gone(info);
        info
    }

    /// Sends `sig` to the process group (or to the PID when it leads none). A process
    /// that is already gone is not an error.
    pub(crate) fn signal(&self, sig: Signal) {
        let result = match (self.pgid, Pid::from_raw(self.pid as i32)) {
            (Some(g), _) => match Pid::from_raw(g as i32) {
                Some(g) => rustix::process::kill_process_group(g, sig),
                None => Ok(()),
            },
            (None, Some(p)) if alive(self.pid, self.start_time) => {
                rustix::process::kill_process(p, sig)
            }
            _ => Ok(()),
        };
        if let Err(e) = result
            && e != rustix::io::Errno::SRCH
        {
            tracing::warn!(pid = self.pid, error = %e, "cannot signal process");
        }
    }

    /// Whether any (non-zombie) process of its group, or the process itself, is left.
    /// A /proc scan, run on the blocking pool.
    pub(crate) async fn anything_left(&self) -> bool {
        let (pgid, pid, start_time) = (self.pgid, self.pid, self.start_time);
        // Cheap first: no process at all in the group (not even a zombie) is the usual
        // case once the leader is reaped, and needs one syscall instead of a scan.
        if let Some(g) = pgid.and_then(|g| Pid::from_raw(g as i32))
            && rustix::process::test_kill_process_group(g) == Err(rustix::io::Errno::SRCH)
        {
            return false;
        }
        tokio::task::spawn_blocking(move || match pgid {
            // group_members skips zombies already.
            Some(g) => !crate::proc::groups::group_members(g).is_empty(),
            None => alive(pid, start_time),
        })
        .await
        .unwrap_or(true)
    }
}

/// Resolves once the process behind `fd` exited; a wait error falls back to /proc.
async fn pidfd_exit(fd: &AsyncFd<OwnedFd>, pid: u32, start_time: u64) -> ExitInfo {
    if fd.readable().await.is_err() {
        return gone(pid, start_time).await;
    }
    ExitInfo::default()
}

/// Polls /proc until the process is gone.
async fn gone(pid: u32, start_time: u64) -> ExitInfo {
    while alive(pid, start_time) {
        sleep(POLL_ADOPTED).await;
    }
    ExitInfo::default()
}

/// Registers a pidfd with tokio. `AsyncFd::new` is deprecated because a borrowed fd could
/// be closed behind tokio's back; ours is an `OwnedFd` moved in, which cannot be, and the
/// safe replacement (`register`) is `unsafe`, which this workspace denies.
#[allow(deprecated)]
fn register(fd: OwnedFd) -> Option<AsyncFd<OwnedFd>> {
    AsyncFd::new(fd).ok()
}

/// The outcome of [`stop`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stopped {
    pub exit: ExitInfo,
    /// SIGKILL was needed.
    pub killed: bool,
    /// Processes of the group survived even SIGKILL (unkillable, e.g. in D state).
    pub leftovers: bool,
}

/// Graceful stop as one race: `sig` to the group, wait up to `grace` for the leader and
/// every other member to go, else SIGKILL the group and wait until no member is left.
pub(crate) async fn stop(proc: &mut Proc, sig: Signal, grace: Duration) -> Stopped {
    proc.signal(sig);
    let deadline = Instant::now() + grace;
    let graceful = timeout_at(deadline, async {
        let exit = proc.wait().await;
        while proc.anything_left().await {
            sleep(POLL).await;
        }
        exit
    })
    .await;
    if let Ok(exit) = graceful {
        return Stopped {
            exit,
            killed: false,
            leftovers: false,
        };
    }
    let (exit, leftovers) = kill(proc).await;
    Stopped {
        exit,
        killed: true,
        leftovers,
    }
}

/// SIGKILL the group until it is empty (bounded by [`KILL_WAIT`]); returns the leader's
/// exit and whether something survived.
pub(crate) async fn kill(proc: &mut Proc) -> (ExitInfo, bool) {
    proc.signal(Signal::KILL);
    let exit = match tokio::time::timeout(KILL_WAIT, proc.wait()).await {
        Ok(e) => e,
        Err(_) => return (ExitInfo::default(), true),
    };
    let deadline = Instant::now() + KILL_WAIT;
    while proc.anything_left().await {
        if Instant::now() >= deadline {
            return (exit, true);
        }
        proc.signal(Signal::KILL);
        sleep(POLL).await;
    }
    (exit, false)
}

/// The configured stop signal as a rustix signal (SIGTERM if it has no name rustix knows).
pub(crate) fn stop_signal(svc: &Service) -> Signal {
    Signal::from_named_raw(svc.stop_signal.number).unwrap_or(Signal::TERM)
}
