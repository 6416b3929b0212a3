//! The Russell daemon: one instance per state directory (an exclusive lock on
//! `russell.lock` plus `russell.pid`), the orchestrator spawned with adoption, the gRPC
//! server (`mdw.russell.v1.RussellService` and mDW's `mdw.russell.RussellService` over the
//! same state, each behind its token rule; grpc.health.v1 open; reflection), systemd
//! readiness, and an orderly shutdown: on the caller's shutdown future (SIGTERM/SIGINT) or
//! the Shutdown RPC, every service is stopped in reverse dependency order, then the server
//! ends and [`serve`] returns.

use std::fs::{File, OpenOptions};
use std::future::Future;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use russell_config::Config;
use russell_core::{CoreError, Orchestrator, SpawnOptions};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;

use crate::mdw::russell::russell_service_server::RussellServiceServer as MdwServer;
use crate::pb;
use crate::pb::russell_service_server::RussellServiceServer;
use crate::server::compat::MdwApi;
use crate::server::{RussellApi, ShutdownRequest, TokenAuth};

/// Lock file name inside the state directory.
pub const LOCK_FILE: &str = "russell.lock";
/// PID file name inside the state directory.
pub const PID_FILE: &str = "russell.pid";
/// How long open connections get to finish once the server closes.
const SERVER_GRACE: Duration = Duration::from_secs(5);

/// How to serve, beyond the config.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Listen here instead of `config.russell.listen`.
    pub listen: Option<SocketAddr>,
    /// Allow a non-loopback listen address.
    pub allow_remote: bool,
    /// The state directory given on the command line, which overrides the file's; kept
    /// for reloads (the config passed to [`serve`] has it applied already).
    pub state_dir: Option<std::path::PathBuf>,
}

/// Why the daemon could not start or ended badly.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Another Russell holds the lock.
    #[error(
        "another Russell{} already runs with state directory {dir} (it holds {dir}/{LOCK_FILE}) — \
         stop it with `mdw down`, or give this one another --state-dir",
        pid.map(|p| format!(" (PID {p})")).unwrap_or_default(),
        dir = state_dir.display()
    )]
    AlreadyRunning {
        pid: Option<u32>,
        state_dir: PathBuf,
    },
    /// The state directory or a file in it could not be used.
    #[error("state directory {}: cannot {what}", path.display())]
    StateDir {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A non-loopback address without `--allow-remote`.
    #[error(
        "refusing to listen on {addr}: it is reachable from other machines. \
         Pass --allow-remote (and set token_file in [russell]) to allow it, or listen on 127.0.0.1"
    )]
    RemoteListen { addr: SocketAddr },
    /// The listen address could not be bound.
    #[error(
        "cannot listen on {addr} (is another Russell or program using it? pick another with --listen)"
    )]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// `http_listen` could not be bound.
    #[error(
        "cannot listen on {addr} for HTTP (http_listen in [russell]): is another program using it? \
         pick another port, or leave http_listen out to keep the HTTP listener off"
    )]
    HttpBind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The token file is unreadable or empty.
    #[error("token_file {}: {what}", path.display())]
    Token { path: PathBuf, what: String },
    /// The orchestrator refused to start.
    #[error("the orchestrator could not start")]
    Core(#[source] CoreError),
    /// SIGHUP (reload) could not be handled.
    #[error("cannot handle SIGHUP (reload)")]
    Signal(#[source] std::io::Error),
    /// The reflection service could not be built.
    #[error("server reflection could not be set up")]
    Reflection(#[source] tonic_reflection::server::Error),
    /// The gRPC server failed.
    #[error("the gRPC server on {addr} failed")]
    Serve {
        addr: SocketAddr,
        #[source]
        source: tonic::transport::Error,
    },
}

/// Holds the single-instance lock while alive; removes the PID file on drop (the lock goes
/// with the file handle).
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
    pid_path: PathBuf,
}

impl InstanceLock {
    /// Creates `state_dir` (0700) and takes the lock, or says which PID holds it.
    pub fn acquire(state_dir: &Path) -> Result<Self, DaemonError> {
        let dir_err = |what, source| DaemonError::StateDir {
            path: state_dir.to_path_buf(),
            what,
            source,
        };
        std::fs::create_dir_all(state_dir).map_err(|e| dir_err("create it", e))?;
        std::fs::set_permissions(state_dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| dir_err("set its mode to 0700", e))?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(state_dir.join(LOCK_FILE))
            .map_err(|e| dir_err("open the lock file", e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(DaemonError::AlreadyRunning {
                    pid: read_pid(state_dir),
                    state_dir: state_dir.to_path_buf(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(dir_err("lock the lock file", e)),
        }
        let pid_path = state_dir.join(PID_FILE);
        write_pid_file(&pid_path).map_err(|e| dir_err("write the PID file", e))?;
        Ok(Self {
            _file: file,
            pid_path,
        })
    }
}

impl Drop for InstanceLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.pid_path);
    }
}

/// The PID recorded in `state_dir/russell.pid`, if any.
pub fn read_pid(state_dir: &Path) -> Option<u32> {
    std::fs::read_to_string(state_dir.join(PID_FILE))
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// The PID file, written like every file Russell keeps (`state_file::write_atomically`:
/// tmp, fsync, rename, fsync the directory), readable by all as before (0644).
fn write_pid_file(path: &Path) -> std::io::Result<()> {
    let bytes = format!("{}\n", std::process::id());
    russell_core::state_file::write_atomically(
        path,
        &path.with_extension("tmp"),
        bytes.as_bytes(),
        0o644,
    )
}

fn read_token(path: &Path) -> Result<String, DaemonError> {
    let token = std::fs::read_to_string(path).map_err(|e| DaemonError::Token {
        path: path.to_path_buf(),
        what: format!("cannot read it ({e})"),
    })?;
    let token = token.trim().to_string();
    if token.is_empty() {
        return Err(DaemonError::Token {
            path: path.to_path_buf(),
            what: "it is empty; put the token on its first line".to_string(),
        });
    }
    if token.chars().any(|c| c.is_control() || !c.is_ascii()) {
        return Err(DaemonError::Token {
            path: path.to_path_buf(),
            what: "the token must be printable ASCII".to_string(),
        });
    }
    Ok(token)
}

/// Tells systemd (or whoever set `NOTIFY_SOCKET`) our state, e.g. `READY=1`.
fn sd_notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sent = (|| -> std::io::Result<()> {
        use std::os::unix::ffi::OsStrExt;
        let sock = std::os::unix::net::UnixDatagram::unbound()?;
        let bytes = path.as_bytes();
        if let Some(name) = bytes.strip_prefix(b"@") {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            sock.send_to_addr(state.as_bytes(), &addr)?;
        } else {
            sock.send_to(state.as_bytes(), Path::new(&path))?;
        }
        Ok(())
    })();
    if let Err(e) = sent {
        tracing::warn!(
            "could not notify NOTIFY_SOCKET {}: {e}",
            path.to_string_lossy()
        );
    }
}

/// Runs Russell until `shutdown` resolves or a client calls Shutdown; then stops every
/// service and returns. `listener`, when given, is served instead of binding the listen
/// address (tests bind port 0).
pub async fn serve(
    config: Config,
    opts: ServeOptions,
    listener: Option<TcpListener>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DaemonError> {
    let state_dir = config.russell.state_dir.clone();
    let _lock = InstanceLock::acquire(&state_dir)?;

    let token = config
        .russell
        .token_file
        .as_deref()
        .map(read_token)
        .transpose()?;
    let wanted = opts.listen.unwrap_or(config.russell.listen);
    let listener = match listener {
        Some(l) => l,
        None => {
            check_listen(wanted, opts.allow_remote, token.is_some())?;
            TcpListener::bind(wanted)
                .await
                .map_err(|source| DaemonError::Bind {
                    addr: wanted,
                    source,
                })?
        }
    };
    let addr = listener.local_addr().map_err(|source| DaemonError::Bind {
        addr: wanted,
        source,
    })?;
    if addr != wanted {
        check_listen(addr, opts.allow_remote, token.is_some())?;
    }

    let http_listener = bind_http(&config, &opts, token.is_some()).await?;
    let autostart = config.russell.autostart;
    let (orch, actor) = Orchestrator::spawn(config, SpawnOptions { adopt: true })
        .await
        .map_err(DaemonError::Core)?;

    // Shutdown RPC → this loop; `closing` → server and open streams.
    let (shutdown_tx, mut shutdown_rx) = mpsc::channel::<ShutdownRequest>(8);
    let (closing_tx, closing_rx) = watch::channel(false);
    let api = RussellApi::new(orch.clone(), shutdown_tx, closing_rx.clone())
        .with_state_dir(opts.state_dir.clone());
    let hup = crate::reload::on_sighup(orch.clone(), opts.state_dir.clone())?;
    let mdw_api = MdwApi::new(&api);
    let auth = TokenAuth::new(token.as_deref());
    if let Some(listener) = http_listener {
        let view = crate::http::HttpView::new(api.clone(), auth.clone(), closing_rx.clone());
        tokio::spawn(view.serve(listener));
    }

    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", ServingStatus::NotServing)
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(DaemonError::Reflection)?;
    let router = Server::builder()
        .add_service(health)
        .add_service(tonic::service::interceptor::InterceptedService::new(
            reflection,
            auth.clone(),
        ))
        .add_service(api.into_server(auth.clone()))
        .add_service(mdw_api.into_server(auth));
    let mut closed = closing_rx.clone();
    let mut server = tokio::spawn(router.serve_with_incoming_shutdown(
        TcpIncoming::from(listener).with_nodelay(Some(true)),
        async move {
            let _ = closed.wait_for(|c| *c).await;
        },
    ));

    reporter
        .set_serving::<RussellServiceServer<RussellApi>>()
        .await;
    reporter.set_serving::<MdwServer<MdwApi>>().await;
    reporter
        .set_service_status("", ServingStatus::Serving)
        .await;
    sd_notify("READY=1");
    tracing::info!(
        "Russell {} listening on {addr} (PID {}, state in {})",
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        state_dir.display()
    );

    let restore = autostart.then(|| {
        let orch = orch.clone();
        tokio::spawn(async move {
            match orch.restore().await {
                Ok(results) => {
                    for r in results.iter().filter(|r| !r.success) {
                        tracing::warn!("{} did not start: {}", r.name, r.error);
                    }
                }
                Err(e) => tracing::warn!(
                    "restoring services failed: {}",
                    russell_core::error::chain(&e)
                ),
            }
        })
    });

    let mut replies = Vec::new();
    let mut server_result = None;
    tokio::pin!(shutdown);
    tokio::select! {
        () = &mut shutdown => tracing::info!("signal received: stopping every service"),
        Some(reply) = shutdown_rx.recv() => {
            tracing::info!("Shutdown requested over the API: stopping every service");
            replies.push(reply);
        }
        r = &mut server => server_result = Some(r),
    }

    sd_notify("STOPPING=1");
    reporter
        .set_service_status("", ServingStatus::NotServing)
        .await;
    reporter
        .set_not_serving::<RussellServiceServer<RussellApi>>()
        .await;
    reporter.set_not_serving::<MdwServer<MdwApi>>().await;
    if let Some(task) = restore {
        task.abort();
    }
    hup.abort();
    match orch.shutdown().await {
        Ok(()) | Err(CoreError::ShuttingDown) => {}
        Err(e) => tracing::warn!("stopping services: {}", russell_core::error::chain(&e)),
    }
    let _ = tokio::time::timeout(SERVER_GRACE, actor).await;
    while let Ok(reply) = shutdown_rx.try_recv() {
        replies.push(reply);
    }
    for reply in replies {
        let _ = reply.send(());
    }
    let _ = closing_tx.send(true);
    let server_result = match server_result {
        Some(r) => Some(r),
        None => tokio::time::timeout(SERVER_GRACE, server).await.ok(),
    };
    tracing::info!("Russell stopped");
    match server_result {
        Some(Ok(Err(source))) => Err(DaemonError::Serve { addr, source }),
        _ => Ok(()),
    }
}

/// Binds `[russell] http_listen` when set (checked like `listen`).
async fn bind_http(
    config: &Config,
    opts: &ServeOptions,
    has_token: bool,
) -> Result<Option<TcpListener>, DaemonError> {
    let Some(addr) = config.russell.http_listen else {
        return Ok(None);
    };
    check_listen(addr, opts.allow_remote, has_token)?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| DaemonError::HttpBind { addr, source })?;
    tracing::info!("HTTP (/metrics, /v1/…) on {addr}");
    Ok(Some(listener))
}

/// A non-loopback address needs `allow_remote`; without a token it only warns.
fn check_listen(addr: SocketAddr, allow_remote: bool, has_token: bool) -> Result<(), DaemonError> {
    if addr.ip().is_loopback() {
        return Ok(());
    }
    if !allow_remote {
        return Err(DaemonError::RemoteListen { addr });
    }
    if !has_token {
        tracing::warn!(
            "listening on {addr} without a token: anyone who can reach it can stop and start services \
             (set token_file in [russell])"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn second_lock_names_the_pid() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let first = InstanceLock::acquire(&state).unwrap();
        let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert_eq!(read_pid(&state), Some(std::process::id()));
        let err = InstanceLock::acquire(&state).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("PID {}", std::process::id())),
            "{msg}"
        );
        drop(first);
        assert_eq!(read_pid(&state), None);
        let _again = InstanceLock::acquire(&state).unwrap();
    }

    #[test]
    fn remote_listen_needs_the_flag() {
        let local: SocketAddr = "127.0.0.1:9100".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:9100".parse().unwrap();
        assert!(check_listen(local, false, false).is_ok());
        assert!(matches!(
            check_listen(any, false, true),
            Err(DaemonError::RemoteListen { .. })
        ));
        assert!(check_listen(any, true, false).is_ok());
    }

    #[test]
    fn token_file_checks() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("token");
        std::fs::write(&p, "  abc123 \n").unwrap();
        assert_eq!(read_token(&p).unwrap(), "abc123");
        std::fs::write(&p, "\n").unwrap();
        assert!(read_token(&p).unwrap_err().to_string().contains("empty"));
        assert!(read_token(&dir.path().join("none")).is_err());
    }
}
