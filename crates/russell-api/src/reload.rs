//! SIGHUP reloads the services file, as the ReloadConfig RPC and `mdw reload` do: the same
//! call into the orchestrator, so both give the same result. The outcome goes to Russell's
//! log (the reloaded event carries the counts for `mdw events` and ControlCenter).

use std::path::PathBuf;

use russell_core::Orchestrator;
use tokio::signal::unix::{SignalKind, signal};

use crate::daemon::DaemonError;

/// Installs the SIGHUP handler now and reloads on every SIGHUP until the task is aborted.
pub(crate) fn on_sighup(
    orch: Orchestrator,
    state_dir: Option<PathBuf>,
) -> Result<tokio::task::JoinHandle<()>, DaemonError> {
    let mut hup = signal(SignalKind::hangup()).map_err(DaemonError::Signal)?;
    Ok(tokio::spawn(async move {
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading {}", orch.config_file().display());
            match orch.reload_file(false, state_dir.as_deref()).await {
                Ok(report) => {
                    let d = &report.diff;
                    tracing::info!(
                        "reloaded: {} services and {} externals changed",
                        d.services.len(),
                        d.externals.len()
                    );
                    if !d.needs_russell_restart.is_empty() {
                        tracing::warn!(
                            "needs a Russell restart to apply: {}",
                            d.needs_russell_restart.join(", ")
                        );
                    }
                    for r in report.results.iter().filter(|r| !r.success) {
                        tracing::warn!("{} did not start after the reload: {}", r.name, r.error);
                    }
                }
                Err(e) => tracing::warn!("reload refused: {e}"),
            }
        }
    }))
}
