//! `mdw start-all|stop-all|start|stop|restart` (not built yet).

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct StartAllArgs {
    /// Restart services that are already healthy too.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, clap::Args)]
pub struct StopAllArgs {}

#[derive(Debug, clap::Args)]
pub struct NameArgs {
    /// Service name or short_name (any case).
    pub name: String,
}

pub fn start_all(_addr: &str, _args: StartAllArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not built yet")
}
pub fn stop_all(_addr: &str, _args: StopAllArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not built yet")
}
pub fn start(_addr: &str, _args: NameArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not built yet")
}
pub fn stop(_addr: &str, _args: NameArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not built yet")
}
pub fn restart(_addr: &str, _args: NameArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not built yet")
}
