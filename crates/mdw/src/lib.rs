//! mdw: the command line that wires Russell (russell-core + russell-api), ControlCenter and
//! the stand-in service together. Every verb lives in `commands/<verb>.rs`.

pub mod cli;
pub mod commands;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

/// Parses `args` and runs the command; errors are printed as `mdw: <error>` chains.
pub fn main_with_args<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<T> = args.into_iter().collect();
    commands::completions::complete_from_env_for(&args);
    let cli = cli::Cli::parse_from(args);
    if !matches!(cli.command, cli::Command::Serve(_) | cli::Command::Demo(_)) {
        end_quietly_when_output_closes();
    }
    match commands::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("mdw: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Client commands behave like other Unix tools when their reader goes away early
/// (`mdw logs -f | head`, `mdw config check | less` quit early): they end quietly on SIGPIPE
/// instead of panicking in `println!`. Russell (`serve`) and the stand-in keep Rust's
/// default of ignoring SIGPIPE, so a closed terminal never takes the orchestrator down.
fn end_quietly_when_output_closes() {
    // SAFETY: runs at the start of `main`, before this process starts any thread, and only
    // sets the disposition of SIGPIPE back to the system default.
    #[allow(unsafe_code)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
