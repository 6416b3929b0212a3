//! `mdw serve russell`: runs Russell in the foreground until SIGTERM/SIGINT or the
//! Shutdown RPC (`mdw down`), then stops every service and exits 0.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use russell_api::daemon::{ServeOptions, serve};
use tracing_subscriber::filter::{LevelFilter, Targets};

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

/// The `--state-dir` override as `load_config` applied it (absolute), for reloads.
fn config_state_dir(args: &Args) -> anyhow::Result<Option<std::path::PathBuf>> {
    args.state_dir
        .as_deref()
        .map(|dir| {
            std::path::absolute(dir).with_context(|| format!("state directory {}", dir.display()))
        })
        .transpose()
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

/// Russell's own log filter from `MDW_LOG`: `info` when unset; a level (`debug`) or
/// per-module levels (`russell_core=debug,info`). A value that does not parse is reported
/// (second item) and `info` is used, so a typo never silences Russell.
fn log_filter(var: Option<String>) -> (Targets, Option<String>) {
    let info = Targets::new().with_default(LevelFilter::INFO);
    match var.as_deref().map(str::trim) {
        None | Some("") => (info, None),
        Some(text) => match text.parse::<Targets>() {
            Ok(targets) => (targets, None),
            Err(e) => (
                info,
                Some(format!(
                    "MDW_LOG={text:?} is not a log filter ({e}); using \"info\". Examples: MDW_LOG=debug, MDW_LOG=russell_core=debug,info"
                )),
            ),
        },
    }
}

/// Hands freed heap memory back to the system after a burst. glibc keeps what a burst
/// freed (a start of 200 services, each probed within milliseconds; a round of http
/// checks, 16 at a time with 16 KiB of buffers each; a flood of status requests) mapped,
/// and Russell then sits on it for good. Every 5 s it reads its own RSS from
/// /proc/self/statm, kept open (asking glibc instead walks every free chunk, which is
/// slower); when that grew by 256 KiB since the last trim, it trims. The measured effect is
/// in docs/BENCHMARKS.md.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
async fn trim_heap() {
    use procfs::FromRead as _;
    use std::io::Seek as _;
    /// Growth worth a trim.
    const SLACK: u64 = 256 << 10;
    let Ok(mut statm) = std::fs::File::open("/proc/self/statm") else {
        return;
    };
    let page = procfs::page_size();
    let mut rss = move || {
        statm.rewind().ok()?;
        Some(procfs::process::StatM::from_read(&mut statm).ok()?.resident * page)
    };
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut after_trim = 0;
    loop {
        tick.tick().await;
        let Some(now) = rss() else { return };
        if now >= after_trim + SLACK {
            // SAFETY: malloc_trim only adjusts glibc's own allocator state, which glibc
            // locks; no Rust memory is touched.
            #[allow(unsafe_code)]
            unsafe {
                libc::malloc_trim(0);
            }
            after_trim = rss().unwrap_or(now);
        } else {
            // What was trimmed and then used again counts from here.
            after_trim = after_trim.min(now);
        }
    }
}

/// Runs `mdw serve russell`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let (filter, bad_filter) = log_filter(std::env::var("MDW_LOG").ok());
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                // A closed stderr (`mdw serve russell 2>&1 | head`) must not take Russell
                // down: tracing would otherwise report the EPIPE with eprintln!, which panics.
                .log_internal_errors(false),
        )
        .with(filter)
        .try_init();
    if let Some(why) = bad_filter {
        tracing::warn!("{why}");
    }
    let Subject::Russell = args.subject;
    let config = load_config(&args.config, args.state_dir.as_deref())?;
    let opts = ServeOptions {
        listen: args.listen,
        allow_remote: args.allow_remote,
        state_dir: config_state_dir(&args)?,
    };
    // One thread: Russell's work is short reactions to events, and a status reply is
    // CPU-bound anyway; one thread also means one malloc arena (a smaller RSS).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async {
        let shutdown = signalled()?;
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        tokio::spawn(trim_heap());
        serve(config, opts, None, shutdown).await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::log_filter;
    use tracing_subscriber::filter::LevelFilter;

    #[test]
    fn log_filter_defaults_to_info_and_reports_a_bad_value() {
        let (unset, none) = log_filter(None);
        assert_eq!(unset.default_level(), Some(LevelFilter::INFO));
        assert!(none.is_none());

        let (debug, none) = log_filter(Some("debug".into()));
        assert_eq!(debug.default_level(), Some(LevelFilter::DEBUG));
        assert!(none.is_none());

        let (per_module, none) = log_filter(Some("russell_core=debug,warn".into()));
        assert_eq!(per_module.default_level(), Some(LevelFilter::WARN));
        assert!(per_module.would_enable("russell_core::logs", &tracing::Level::DEBUG));
        assert!(none.is_none());

        let (fallback, why) = log_filter(Some("russell_core=loud".into()));
        assert_eq!(fallback.default_level(), Some(LevelFilter::INFO));
        let why = why.expect("a bad MDW_LOG is reported");
        assert!(why.contains("MDW_LOG=\"russell_core=loud\""), "{why}");
    }
}
