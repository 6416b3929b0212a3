//! `mdw cc` (not built yet).

use std::process::ExitCode;

/// Options of `mdw cc`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `mdw cc`.
pub fn run(_addr: &str, _args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("mdw cc is not built yet")
}
