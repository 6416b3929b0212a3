//! `mdw logs` (not built yet).

use std::process::ExitCode;

/// Options of `mdw logs`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `mdw logs`.
pub fn run(_addr: &str, _args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("mdw logs is not built yet")
}
