//! `mdw down` (not built yet).

use std::process::ExitCode;

/// Options of `mdw down`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `mdw down`.
pub fn run(_addr: &str, _args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("mdw down is not built yet")
}
