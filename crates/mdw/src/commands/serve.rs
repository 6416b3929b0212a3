//! `mdw serve russell`: runs Russell in the foreground until SIGTERM/SIGINT or the
//! Shutdown RPC (`mdw down`), then stops every service and exits 0.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use russell_api::daemon::{ServeOptions, serve};

/// Default services file.
pub const DEFAULT_CONFIG: &str = "configs/services.toml";

/// What to serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Subject {
    /// The orchestrator and its gRPC API.
    Russell,
}

/// Options of `mdw serve russell`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to serve.
    #[arg(value_enum)]
    pub subject: Subject,
    /// Services file.
    #[arg(long, default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// gRPC listen address (overrides [russell] listen).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// State directory (overrides [russell] state_dir).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Allow a listen address other than loopback (set a token_file too).
    #[arg(long)]
    pub allow_remote: bool,
}

/// Loads and validates the services file, printing every problem in one go.
pub fn load_config(
    path: &Path,
    state_dir: Option<&Path>,
) -> anyhow::Result<russell_config::Config> {
    let mut config = russell_config::load(path).map_err(|errs| {
        anyhow::anyhow!(
            "{} has {} problem{}:\n{errs}",
            path.display(),
            errs.len(),
            if errs.len() == 1 { "" } else { "s" }
        )
    })?;
    if let Some(dir) = state_dir {
        config.russell.state_dir = std::path::absolute(dir)
            .with_context(|| format!("state directory {}", dir.display()))?;
    }
    Ok(config)
}

/// Installs SIGTERM/SIGINT handlers now (so a signal right after readiness is not lost)
/// and returns a future that resolves on either.
fn signalled() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

/// Runs `mdw serve russell`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MDW_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // A closed stderr (`mdw serve russell 2>&1 | head`) must not take Russell down:
        // tracing would otherwise report the EPIPE with eprintln!, which panics.
        .log_internal_errors(false)
        .try_init();
    let Subject::Russell = args.subject;
    let config = load_config(&args.config, args.state_dir.as_deref())?;
    let opts = ServeOptions {
        listen: args.listen,
        allow_remote: args.allow_remote,
    };
    // One thread: Russell's work is short reactions to events, and a status reply is
    // CPU-bound anyway; one thread also means one malloc arena (a smaller RSS).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async {
        let shutdown = signalled()?;
        serve(config, opts, None, shutdown).await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
