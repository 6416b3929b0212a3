//! `mdw status` (not built yet).

use std::process::ExitCode;

/// Options of `mdw status`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `mdw status`.
pub fn run(_addr: &str, _args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("mdw status is not built yet")
}
