//! `mdw events` (not built yet).

use std::process::ExitCode;

/// Options of `mdw events`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `mdw events`.
pub fn run(_addr: &str, _args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("mdw events is not built yet")
}
