//! `mdw demo`: the stand-in service (crate mdw-demo), for the default config and for tests.

use std::process::ExitCode;

/// Options of `mdw demo` (identical to the `mdw-demo` binary).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub demo: mdw_demo::DemoArgs,
}

/// Runs the stand-in service in the foreground until a signal or `--exit-after` ends it.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    mdw_demo::run(args.demo)
}
