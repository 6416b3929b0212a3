//! `mdw serve russell` (not built yet).

use std::process::ExitCode;

/// Options of `mdw serve russell`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `mdw serve russell`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("mdw serve russell is not built yet")
}
