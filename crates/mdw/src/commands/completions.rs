//! `mdw completions bash|zsh|fish|elvish|powershell` prints the shell's registration script;
//! `mdw man [--out DIR]` prints or writes the man pages.
//!
//! Completion runs through clap_complete's engine: the registration script calls mdw itself
//! with `COMPLETE=<shell>` at Tab time ([`complete_from_env`] answers before anything else
//! runs), so subcommands, flags and the service names of the services file are always those
//! of the installed mdw. Service names come from `$MDW_CONFIG`, else `configs/services.toml`
//! below the current directory: a completion must answer at once, so Russell is not asked.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::CommandFactory;
use clap_complete::engine::CompletionCandidate;
use clap_complete::env::{Bash, Elvish, EnvCompleter, Fish, Powershell, Zsh};

use super::serve::DEFAULT_CONFIG;
use crate::cli::Cli;

/// The environment variable that switches mdw into answering a completion request.
const COMPLETE_VAR: &str = "COMPLETE";

/// The shells `mdw completions` writes a registration for.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
}

/// Options of `mdw completions`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to print the registration script for.
    pub shell: Shell,
}

/// Options of `mdw man`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write mdw.1 and one mdw-<verb>.1 per verb into this folder instead of printing mdw.1.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Answers a completion request when `COMPLETE` is set (and then exits); returns otherwise.
pub fn complete_from_env_for<T: Into<std::ffi::OsString> + Clone>(args: &[T]) {
    let current_dir = std::env::current_dir().ok();
    let answered = clap_complete::CompleteEnv::with_factory(Cli::command)
        .var(COMPLETE_VAR)
        .try_complete(args.iter().cloned(), current_dir.as_deref())
        .unwrap_or_else(|e| e.exit());
    if answered {
        std::process::exit(0);
    }
}

/// Runs `mdw completions SHELL`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe().context("cannot find the running mdw executable")?;
    let completer = exe.display().to_string();
    let shell: &dyn EnvCompleter = match args.shell {
        Shell::Bash => &Bash,
        Shell::Zsh => &Zsh,
        Shell::Fish => &Fish,
        Shell::Elvish => &Elvish,
        Shell::Powershell => &Powershell,
    };
    let mut out = std::io::stdout().lock();
    shell
        .write_registration(COMPLETE_VAR, "mdw", "mdw", &completer, &mut out)
        .context("cannot write the completion script")?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `mdw man`.
pub fn man(args: ManArgs) -> anyhow::Result<ExitCode> {
    let cmd = Cli::command();
    match args.out {
        None => {
            let mut out = std::io::stdout().lock();
            clap_mangen::Man::new(cmd)
                .render(&mut out)
                .context("cannot write the man page")?;
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            clap_mangen::generate_to(cmd, &dir)
                .with_context(|| format!("cannot write the man pages into {}", dir.display()))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Completion candidates for a service argument: the services' short names of the services
/// file (with their display names as help). An unreadable or invalid file gives none.
pub fn service_candidates() -> Vec<CompletionCandidate> {
    let path =
        std::env::var_os("MDW_CONFIG").map_or_else(|| PathBuf::from(DEFAULT_CONFIG), PathBuf::from);
    names_in(&path)
        .into_iter()
        .map(|(short, name)| CompletionCandidate::new(short).help(Some(name.into())))
        .collect()
}

/// (short_name, name) of every service in the file at `path`.
fn names_in(path: &Path) -> Vec<(String, String)> {
    russell_config::load(path)
        .map(|c| {
            c.services
                .into_iter()
                .map(|s| (s.short_name, s.name))
                .collect()
        })
        .unwrap_or_default()
}
