//! `mdw cc` (alias `mdw controlcenter`): opens ControlCenter, the terminal UI, against the
//! Russell at `--russell` (env MDW_RUSSELL_ADDR). Token: env MDW_RUSSELL_TOKEN, or the file
//! named by MDW_RUSSELL_TOKEN_FILE.

use std::process::ExitCode;

use anyhow::Context;

/// Options of `mdw cc`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `mdw cc` until the user quits; the terminal is restored on exit and on panic.
pub fn run(addr: &str, _args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime for ControlCenter")?;
    runtime
        .block_on(controlcenter::run(addr.to_string()))
        .with_context(|| format!("ControlCenter (Russell at {addr})"))?;
    Ok(ExitCode::SUCCESS)
}
