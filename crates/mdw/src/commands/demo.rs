//! `mdw demo` (not built yet).

use std::process::ExitCode;

/// Options of `mdw demo`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `mdw demo`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("mdw demo is not built yet")
}
