//! `mdw cc` (alias `mdw controlcenter`): opens ControlCenter, the terminal UI, against the
//! Russell at `--russell` (env MDW_RUSSELL_ADDR). Token: env MDW_RUSSELL_TOKEN, or the file
//! named by MDW_RUSSELL_TOKEN_FILE. While Russell is not reachable, `u` starts it in the
//! background as `mdw up` does, with `--config` and `--state-dir`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::serve::DEFAULT_CONFIG;
use super::up;

/// Options of `mdw cc`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Services file for a Russell that `u` starts (when none is reachable).
    #[arg(long, default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// State directory for a Russell that `u` starts (overrides [russell] state_dir).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
}

/// Runs `mdw cc` until the user quits; the terminal is restored on exit and on panic.
pub fn run(addr: &str, args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime for ControlCenter")?;
    let launcher = up::launcher(addr, args.config, args.state_dir);
    runtime
        .block_on(controlcenter::run(addr.to_string(), Some(launcher)))
        .with_context(|| format!("ControlCenter (Russell at {addr})"))?;
    Ok(ExitCode::SUCCESS)
}
