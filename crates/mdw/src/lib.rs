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
    let cli = cli::Cli::parse_from(args);
    match commands::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("mdw: {err:#}");
            ExitCode::FAILURE
        }
    }
}
