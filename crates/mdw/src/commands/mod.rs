//! One module per verb. `run` dispatches.

pub mod cc;
pub mod completions;
pub mod config;
pub mod control;
pub mod demo;
pub mod down;
pub mod events;
pub mod export;
pub mod graph;
pub mod logs;
pub mod probe;
pub mod reload;
pub mod run;
pub mod secrets;
pub mod serve;
pub mod status;
pub mod up;
pub mod wait;
pub mod when;

use std::process::ExitCode;

use crate::cli::{Cli, Command};

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let addr = cli.russell;
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Up(args) => up::run(&addr, args),
        Command::Down(args) => down::run(&addr, args),
        Command::Cc(args) => cc::run(&addr, args),
        Command::Status(args) => status::run(&addr, args),
        Command::StartAll(args) => control::start_all(&addr, args),
        Command::StopAll(args) => control::stop_all(&addr, args),
        Command::Start(args) => control::start(&addr, args),
        Command::Stop(args) => control::stop(&addr, args),
        Command::Restart(args) => control::restart(&addr, args),
        Command::Run(args) => run::run(&addr, args),
        Command::Logs(args) => logs::run(&addr, args),
        Command::Events(args) => events::run(&addr, args),
        Command::Wait(args) => wait::run(&addr, args),
        Command::Config(args) => config::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Completions(args) => completions::run(args),
        Command::Graph(args) => graph::run(args),
        Command::Man(args) => completions::man(args),
        Command::Export(args) => export::run(args),
        Command::Probe(args) => probe::run(args),
        Command::Reload(args) => reload::run(&addr, args),
    }
}
