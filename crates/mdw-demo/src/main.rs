//! `mdw-demo`: the stand-in service as a standalone binary (same flags as `mdw demo`).

use std::process::ExitCode;

use clap::Parser;

/// The stand-in service used by the default config and by tests.
#[derive(Debug, Parser)]
// No automatic `--version`: the flag is the version announced with `--register`.
#[command(name = "mdw-demo", disable_version_flag = true)]
struct Cli {
    #[command(flatten)]
    args: mdw_demo::DemoArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match mdw_demo::run(cli.args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("mdw-demo: {err:#}");
            ExitCode::FAILURE
        }
    }
}
