//! The `mdw` binary: parse the command line, run the command, map errors to an exit code.

fn main() -> std::process::ExitCode {
    mdw::main_with_args(std::env::args_os())
}
