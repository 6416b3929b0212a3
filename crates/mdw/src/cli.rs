//! The command line: global options and one subcommand per verb. Each verb's own options
//! live beside its code in `commands/<verb>.rs`.

use clap::{Parser, Subcommand};

use crate::commands;

/// Default Russell address for clients.
pub const DEFAULT_RUSSELL_ADDR: &str = "127.0.0.1:9100";

#[derive(Debug, Parser)]
#[command(
    name = "mdw",
    version,
    about = "mDW platform: Russell orchestrator and ControlCenter"
)]
pub struct Cli {
    /// Russell's gRPC address, for client commands.
    #[arg(long, global = true, env = "MDW_RUSSELL_ADDR", default_value = DEFAULT_RUSSELL_ADDR)]
    pub russell: String,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a server in the foreground (`mdw serve russell`).
    Serve(commands::serve::Args),
    /// Start Russell in the background if none answers, start all services, open ControlCenter.
    Up(commands::up::Args),
    /// Stop all services, then Russell.
    Down(commands::down::Args),
    /// Open ControlCenter, the terminal UI.
    #[command(name = "cc", visible_alias = "controlcenter")]
    Cc(commands::cc::Args),
    /// Show Russell's view of every service.
    Status(commands::status::Args),
    /// Start every service in dependency order.
    StartAll(commands::control::StartAllArgs),
    /// Stop every service, dependents first.
    StopAll(commands::control::StopAllArgs),
    /// Start one service (name or short_name, any case).
    Start(commands::control::NameArgs),
    /// Stop one service.
    Stop(commands::control::NameArgs),
    /// Restart one service.
    Restart(commands::control::NameArgs),
    /// Run a one-shot task again and wait until it ends (exit 0 when it completed).
    Run(commands::control::NameArgs),
    /// Show (and follow) service logs.
    Logs(commands::logs::Args),
    /// Follow Russell's events.
    Events(commands::events::Args),
    /// Wait until every service is healthy (for scripts and CI).
    Wait(commands::wait::Args),
    /// Check a services file and print its start plan.
    Config(commands::config::Args),
    /// The stand-in service used by the default config and by tests.
    Demo(commands::demo::Args),
    /// Print the start graph of a services file (levels, needs, externals; --dot for Graphviz).
    Graph(commands::graph::Args),
    /// Print the shell's completion script (service names are completed from the services file).
    Completions(commands::completions::Args),
    /// Print the man page (or write one per verb with --out DIR).
    Man(commands::completions::ManArgs),
    /// Turn the services file into Compose, Kubernetes or systemd files.
    Export(commands::export::Args),
    /// Run one health check (exit 0 healthy, 1 unhealthy, 2 usage error).
    Probe(commands::probe::Args),
    /// Read the services file again and apply the difference (only changed services restart).
    Reload(commands::reload::Args),
}
