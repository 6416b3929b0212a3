//! `mdw up [-d]`: starts Russell in the background if none answers (detached in its own
//! process group, stdin closed, output to `state_dir/russell.log`), waits until its health
//! check says SERVING, starts every service, then opens ControlCenter (or, with `-d`,
//! prints the status).
//!
//! The daemon listens on the client address (`--russell` / MDW_RUSSELL_ADDR, default
//! 127.0.0.1:9100) so that every later client command finds it.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::control::{block_on, connect, start_all_with};
use super::serve::{DEFAULT_CONFIG, load_config};
use super::status;

/// How long a fresh Russell may take to answer its health check.
const READY_WAIT: Duration = Duration::from_secs(30);
/// Log file of a Russell started by `mdw up`, inside the state directory.
pub const LOG_FILE: &str = "russell.log";

/// Options of `mdw up`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Do not open ControlCenter; print the status and return.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Services file (when Russell has to be started).
    #[arg(long, default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// State directory (overrides [russell] state_dir).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
}

/// Starts `mdw serve russell` detached and waits until it answers at `addr`.
pub async fn start_daemon(addr: &str, args: &Args, out: &mut dyn Write) -> anyhow::Result<u32> {
    let config = load_config(&args.config, args.state_dir.as_deref())?;
    let state_dir = config.russell.state_dir.clone();
    std::fs::create_dir_all(&state_dir)
        .with_context(|| format!("cannot create the state directory {}", state_dir.display()))?;
    let log_path = state_dir.join(LOG_FILE);
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open Russell's log {}", log_path.display()))?;
    let exe = std::env::current_exe().context("cannot find the running mdw executable")?;
    let mut cmd = Command::new(exe);
    cmd.args(["serve", "russell", "--config"])
        .arg(&args.config)
        .arg("--state-dir")
        .arg(&state_dir)
        .args(["--listen", addr])
        .stdin(Stdio::null())
        .stdout(log.try_clone().context("cannot share the log file")?)
        .stderr(log)
        .process_group(0);
    let mut child = cmd.spawn().context("cannot start `mdw serve russell`")?;
    let pid = child.id();
    writeln!(
        out,
        "started Russell (PID {pid}) at {addr}; its log: {}",
        log_path.display()
    )?;
    let deadline = Instant::now() + READY_WAIT;
    loop {
        if matches!(russell_api::client::serving(addr).await, Ok(true)) {
            return Ok(pid);
        }
        if let Some(exit) = child.try_wait().context("cannot watch the new Russell")? {
            anyhow::bail!(
                "Russell exited at start ({exit}). The end of {}:\n{}",
                log_path.display(),
                log_tail(&log_path, 15)
            );
        }
        if Instant::now() >= deadline {
            anyhow::bail!(
                "Russell (PID {pid}) did not answer at {addr} within {}s; see {}",
                READY_WAIT.as_secs(),
                log_path.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// What ControlCenter's `u` does while Russell is not reachable: start it in the
/// background exactly as `mdw up` does (its services then come up by `autostart`). It refuses
/// when a Russell already answers at `addr`; a Russell started meanwhile by someone else for
/// the same state directory is refused by that directory's lock.
pub fn launcher(
    addr: &str,
    config: PathBuf,
    state_dir: Option<PathBuf>,
) -> controlcenter::api::Launcher {
    let addr = addr.to_string();
    let args = Args {
        detach: true,
        config,
        state_dir,
    };
    std::sync::Arc::new(move || {
        let (addr, args) = (addr.clone(), args.clone());
        Box::pin(async move {
            if russell_api::client::serving(&addr).await.is_ok() {
                return Err(format!("Russell already answers at {addr}"));
            }
            // start_daemon writes to a plain `dyn Write`: it runs on a thread of its own.
            let (tx, rx) = tokio::sync::oneshot::channel();
            std::thread::spawn(move || {
                let started = block_on(async {
                    let mut out = Vec::new();
                    start_daemon(&addr, &args, &mut out)
                        .await
                        .map(|pid| (pid, addr))
                });
                let _ = tx.send(started);
            });
            match rx.await {
                Ok(Ok(Ok((pid, addr)))) => Ok(format!("started Russell (PID {pid}) at {addr}")),
                Ok(Ok(Err(e)) | Err(e)) => Err(format!("cannot start Russell: {e:#}")),
                Err(_) => Err("cannot start Russell: its starter thread ended".to_string()),
            }
        })
    })
}

/// Runs `mdw up`.
pub fn run(addr: &str, args: Args) -> anyhow::Result<ExitCode> {
    let code = block_on(async {
        let mut out = std::io::stdout().lock();
        if russell_api::client::serving(addr).await.is_err() {
            start_daemon(addr, &args, &mut out).await?;
        } else {
            writeln!(out, "Russell already answers at {addr}")?;
        }
        let mut client = connect(addr).await?;
        let code = start_all_with(addr, &mut client, false, &mut out).await?;
        if args.detach {
            status::print(addr, &mut client, false, &mut out).await?;
        }
        anyhow::Ok(code)
    })??;
    if args.detach {
        return Ok(code);
    }
    block_on(controlcenter::run(
        addr.to_string(),
        Some(launcher(addr, args.config, args.state_dir)),
    ))?
    .with_context(|| format!("ControlCenter (Russell at {addr})"))?;
    Ok(code)
}
