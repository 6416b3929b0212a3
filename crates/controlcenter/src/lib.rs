//! ControlCenter: the terminal UI of Russell (`mdw cc`).
//!
//! It shows Russell's view of the world and acts only through Russell's gRPC API; it never
//! probes ports or processes itself (and does not depend on russell-core).
//!
//! Theory of operation (the tokio-console shape):
//! - [`api`]: one background task owns the gRPC client. It fetches `GetOrchestratorStatus` on
//!   (re)connect, follows `WatchEvents` (each event is applied at once and triggers a fresh
//!   status), refreshes every 2 s as a safety net, follows `StreamLogs` for the log pane, runs
//!   each action as its own task, and reconnects with backoff when Russell goes away.
//! - [`state`]: fed only by those updates and by user actions; [`view`] only reads it.
//! - [`input`] maps keys to [`action::Action`]s (pure); [`app::handle`] carries them out.
//! - [`terminal`]: raw mode and alternate screen, restored on drop and on panic.

pub mod action;
pub mod api;
pub mod app;
pub mod input;
pub mod state;
pub mod terminal;
pub mod view;

use std::time::SystemTime;

/// Why ControlCenter stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The address or the token (MDW_RUSSELL_TOKEN / _FILE) is unusable.
    #[error(transparent)]
    Client(#[from] russell_api::client::ClientError),
    /// Setting up, drawing to or reading from the terminal failed.
    #[error("terminal I/O failed (ControlCenter needs an interactive terminal)")]
    Terminal(#[source] std::io::Error),
    /// SIGTERM/SIGHUP/SIGINT handlers could not be installed.
    #[error("cannot install signal handlers for SIGTERM/SIGHUP/SIGINT")]
    Signals(#[source] std::io::Error),
    /// The background task that talks to Russell ended unexpectedly.
    #[error("the connection task to Russell ended unexpectedly")]
    BackgroundGone,
}

/// Runs ControlCenter against Russell at `addr` until the user quits. With a `launcher`,
/// `u` starts Russell while it is not reachable.
///
/// Must run inside a multi-thread tokio runtime. The terminal is restored on return and on
/// panic.
pub async fn run(addr: String, launcher: Option<api::Launcher>) -> Result<(), Error> {
    let endpoint = russell_api::client::endpoint(&addr)?;
    let auth = russell_api::client::BearerAuth::from_env()?;
    let can_launch = launcher.is_some();
    let (mut handle, mut updates) = api::spawn(endpoint, auth, launcher);
    let mut state = state::State::new(addr, SystemTime::now());
    state.can_launch = can_launch;
    let mut guard = terminal::TerminalGuard::new()?;
    app::run_loop(&mut guard.terminal, &mut state, &mut handle, &mut updates).await
}
