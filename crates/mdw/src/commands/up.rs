//! `mdw up` (not built yet).

use std::process::ExitCode;

/// Options of `mdw up`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `mdw up`.
pub fn run(_addr: &str, _args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("mdw up is not built yet")
}
