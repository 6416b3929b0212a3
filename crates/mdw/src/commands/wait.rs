//! `mdw wait` (not built yet).

use std::process::ExitCode;

/// Options of `mdw wait`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `mdw wait`.
pub fn run(_addr: &str, _args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("mdw wait is not built yet")
}
