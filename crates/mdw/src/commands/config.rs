//! `mdw config check` (not built yet).

use std::process::ExitCode;

/// Options of `mdw config check`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `mdw config check`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("mdw config check is not built yet")
}
