//! The gRPC server over russell-core: `mdw.russell.v1.RussellService` (orchestrator,
//! registry, streams), mDW's `mdw.russell.RussellService` over the same state
//! (`compat/`), token auth and counters (`gate.rs`), argument checks, and the one mapping
//! from [`CoreError`] to a gRPC code.
//!
//! Handlers are thin: they check arguments, call the [`Orchestrator`] handle (or the
//! registry) and convert the result. No handler holds a lock across an `.await`.

pub mod compat;
mod encoded_status;
pub mod gate;
mod log_search;
mod orchestrator;
pub(crate) mod registry;
pub(crate) mod streams;

use std::sync::Arc;

use russell_core::{CoreError, Orchestrator};
use tokio::sync::{mpsc, oneshot, watch};
use tonic::{Request, Response, Status};

pub use encoded_status::RussellServer;

use crate::pb;
use crate::pb::russell_service_server::RussellService;

pub use registry::{DEFAULT_TTL, Registration, Registry};

/// Longest name (service, registry entry) an API call may carry.
pub const MAX_NAME_LEN: usize = 256;
/// Most names a WatchEventsRequest may list.
pub const MAX_NAMES: usize = 1024;
/// Most history lines a StreamLogsRequest may ask for.
pub const MAX_TAIL: u32 = 100_000;

/// The gRPC code for an orchestrator error — the only place codes for core errors are chosen.
pub fn to_status(err: CoreError) -> Status {
    // The whole chain: a state-directory error's cause (e.g. "Permission denied") is what
    // tells the user what to fix.
    let msg = russell_core::error::chain(&err);
    match err {
        CoreError::NotFound(_) => Status::not_found(msg),
        CoreError::InvalidState { .. } => Status::failed_precondition(msg),
        CoreError::ShuttingDown => Status::unavailable(msg),
        CoreError::StateDir { .. } | CoreError::StateFile(_) => Status::internal(msg),
    }
}

/// Checks a name from a request: not empty, not huge, no control characters.
pub fn check_name(field: &str, name: &str) -> Result<(), Status> {
    if name.trim().is_empty() {
        return Err(Status::invalid_argument(format!(
            "{field} is empty: give a service name or short_name"
        )));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(Status::invalid_argument(format!(
            "{field} is {} bytes long; names have at most {MAX_NAME_LEN}",
            name.len()
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(Status::invalid_argument(format!(
            "{field} contains control characters: {name:?}"
        )));
    }
    Ok(())
}

/// Checks a name and resolves it to a managed service's or external's short_name.
pub fn resolve(orch: &Orchestrator, field: &str, name: &str) -> Result<String, Status> {
    check_name(field, name)?;
    orch.resolve(name.trim()).map_err(to_status)
}

/// Checks a name and resolves it to a managed service's short_name; an external is
/// refused, saying that Russell does not `what` it (it has no process Russell touches).
pub fn resolve_service(
    orch: &Orchestrator,
    field: &str,
    name: &str,
    what: &str,
) -> Result<String, Status> {
    check_name(field, name)?;
    orch.resolve_service(name.trim(), what).map_err(to_status)
}

/// A request from the Shutdown RPC to the daemon: the daemon stops every service, then
/// answers on the oneshot, then ends the server.
pub type ShutdownRequest = oneshot::Sender<()>;

/// The `RussellService` implementation.
#[derive(Clone)]
pub struct RussellApi {
    orch: Orchestrator,
    registry: Arc<Registry>,
    /// To the daemon: Shutdown RPC requests. The daemon's loop receives them.
    shutdown: mpsc::Sender<ShutdownRequest>,
    /// From the daemon: turns true when the server is closing; open streams end then.
    closing: watch::Receiver<bool>,
    /// The last encoded GetOrchestratorStatus reply.
    encoded: Arc<encoded_status::Cache>,
    /// The last JSON of the HTTP view's `GET /v1/status`.
    status_json: Arc<encoded_status::Cache>,
    /// Calls of both services, for GetMetrics.
    metrics: Arc<gate::Metrics>,
    /// The state directory given on Russell's command line: it overrides the file's at
    /// start and on every reload.
    state_dir: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for RussellApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RussellApi")
    }
}

impl RussellApi {
    /// The API over `orch`.
    pub fn new(
        orch: Orchestrator,
        shutdown: mpsc::Sender<ShutdownRequest>,
        closing: watch::Receiver<bool>,
    ) -> Self {
        Self {
            orch,
            registry: Arc::new(Registry::default()),
            shutdown,
            closing,
            encoded: Arc::default(),
            status_json: Arc::default(),
            metrics: Arc::default(),
            state_dir: None,
        }
    }

    /// The state directory given on Russell's command line (overrides the file's on a
    /// reload, as at start).
    #[must_use]
    pub fn with_state_dir(mut self, state_dir: Option<std::path::PathBuf>) -> Self {
        self.state_dir = state_dir;
        self
    }

    /// The orchestrator this API serves.
    pub(crate) fn orch(&self) -> &Orchestrator {
        &self.orch
    }

    /// The status as the HTTP view's JSON, built once per snapshot (encoded_status.rs).
    pub(crate) async fn status_json(&self) -> Result<bytes::Bytes, serde_json::Error> {
        encoded_status::status_json(self).await
    }

    /// Calls of both gRPC services and of the HTTP view.
    pub(crate) fn metrics(&self) -> &Arc<gate::Metrics> {
        &self.metrics
    }

    /// The v1 server, wrapped in the token check (every call) and the counters.
    pub fn into_server(self, auth: TokenAuth) -> gate::Gate<RussellServer> {
        let metrics = self.metrics.clone();
        gate::Gate::new(
            RussellServer::new(self),
            auth,
            gate::Access::Everything,
            metrics,
        )
    }
}

/// Token check for every call but health: `authorization: Bearer <token>`, compared in
/// constant time. Without a token configured every call passes.
#[derive(Clone, Default)]
pub struct TokenAuth {
    expected: Option<Arc<[u8]>>,
}

impl std::fmt::Debug for TokenAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenAuth")
            .field("required", &self.expected.is_some())
            .finish()
    }
}

impl TokenAuth {
    /// Requires `token` when `Some`.
    pub fn new(token: Option<&str>) -> Self {
        Self {
            expected: token.map(|t| Arc::from(t.trim().as_bytes())),
        }
    }

    /// Whether a token is required.
    pub fn required(&self) -> bool {
        self.expected.is_some()
    }
}

impl TokenAuth {
    /// Checks an `authorization` header value against the token (passes without one).
    pub fn check(&self, header: Option<&str>) -> Result<(), Status> {
        let Some(expected) = &self.expected else {
            return Ok(());
        };
        let given = header
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        match given {
            Some(token) if constant_time_eq(token.as_bytes(), expected) => Ok(()),
            Some(_) => Err(Status::unauthenticated("wrong token")),
            None => Err(Status::unauthenticated(
                "this Russell requires a token: send 'authorization: Bearer <token>' \
                 (mdw reads MDW_RUSSELL_TOKEN or MDW_RUSSELL_TOKEN_FILE)",
            )),
        }
    }
}

impl tonic::service::Interceptor for TokenAuth {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, Status> {
        let header = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        self.check(header).map(|()| req)
    }
}

/// Compares without an early exit, so timing does not reveal how much of a guess matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        let y = b.get(i % b.len().max(1)).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

#[tonic::async_trait]
impl RussellService for RussellApi {
    async fn start_all_services(
        &self,
        request: Request<pb::StartAllRequest>,
    ) -> Result<Response<pb::StartAllResponse>, Status> {
        orchestrator::start_all(self, request.into_inner()).await
    }

    async fn stop_all_services(
        &self,
        _request: Request<pb::Empty>,
    ) -> Result<Response<pb::StopAllResponse>, Status> {
        orchestrator::stop_all(self).await
    }

    async fn start_service(
        &self,
        request: Request<pb::ServiceRequest>,
    ) -> Result<Response<pb::ServiceStartResult>, Status> {
        orchestrator::start(self, request.into_inner()).await
    }

    async fn stop_service(
        &self,
        request: Request<pb::ServiceRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        orchestrator::stop(self, request.into_inner()).await
    }

    async fn restart_service(
        &self,
        request: Request<pb::ServiceRequest>,
    ) -> Result<Response<pb::ServiceStartResult>, Status> {
        orchestrator::restart(self, request.into_inner()).await
    }

    /// Served by [`RussellServer`] before this is reached (see encoded_status.rs); this is
    /// the same cached reply for a server built without that wrapper.
    async fn get_orchestrator_status(
        &self,
        _request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::OrchestratorStatus>, Status> {
        encoded_status::decoded(self).await.map(Response::new)
    }

    type WatchEventsStream = streams::Stream<pb::Event>;

    async fn watch_events(
        &self,
        request: Request<pb::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        streams::watch_events(self, request.into_inner()).map(Response::new)
    }

    type StreamLogsStream = streams::Stream<pb::LogLine>;

    async fn stream_logs(
        &self,
        request: Request<pb::StreamLogsRequest>,
    ) -> Result<Response<Self::StreamLogsStream>, Status> {
        streams::stream_logs(self, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn shutdown(&self, _request: Request<pb::Empty>) -> Result<Response<pb::Empty>, Status> {
        orchestrator::shutdown(self).await
    }

    async fn register(
        &self,
        request: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::RegisterResponse>, Status> {
        registry::v1::register(self, request.into_inner()).map(Response::new)
    }

    async fn deregister(
        &self,
        request: Request<pb::ServiceRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        registry::v1::deregister(self, &request.into_inner().name).map(Response::new)
    }

    async fn heartbeat(
        &self,
        request: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        registry::v1::heartbeat(self, &request.into_inner().name).map(Response::new)
    }

    async fn discover(
        &self,
        request: Request<pb::DiscoverRequest>,
    ) -> Result<Response<pb::DiscoverResponse>, Status> {
        registry::v1::discover(self, &request.into_inner().name).map(Response::new)
    }

    async fn list_services(
        &self,
        _request: Request<pb::Empty>,
    ) -> Result<Response<pb::ListServicesResponse>, Status> {
        Ok(Response::new(registry::v1::list(self)))
    }

    async fn reload_config(
        &self,
        request: Request<pb::ReloadConfigRequest>,
    ) -> Result<Response<pb::ReloadConfigResponse>, Status> {
        orchestrator::reload(self, request.into_inner()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::service::Interceptor;

    #[test]
    fn names_are_checked() {
        assert!(check_name("name", "kant").is_ok());
        assert!(check_name("name", "Kant Gateway").is_ok());
        for bad in ["", "  ", "a\u{0}b", "a\nb", "\u{7f}"] {
            let err = check_name("name", bad).err();
            assert_eq!(
                err.map(|s| s.code()),
                Some(tonic::Code::InvalidArgument),
                "{bad:?}"
            );
        }
        let huge = "x".repeat(MAX_NAME_LEN + 1);
        assert_eq!(
            check_name("name", &huge).err().map(|s| s.code()),
            Some(tonic::Code::InvalidArgument)
        );
    }

    #[test]
    fn constant_time_eq_matches_only_equal() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"secret"));
        assert!(!constant_time_eq(b"secret", b""));
    }

    fn call(auth: &mut TokenAuth, header: Option<&str>) -> Result<(), tonic::Code> {
        let mut req = Request::new(());
        if let Some(h) = header {
            req.metadata_mut().insert(
                "authorization",
                h.parse().map_err(|_| tonic::Code::Internal)?,
            );
        }
        auth.call(req).map(|_| ()).map_err(|s| s.code())
    }

    #[test]
    fn token_auth() {
        let mut open = TokenAuth::new(None);
        assert_eq!(call(&mut open, None), Ok(()));
        let mut closed = TokenAuth::new(Some("s3cret\n"));
        assert_eq!(call(&mut closed, Some("Bearer s3cret")), Ok(()));
        assert_eq!(call(&mut closed, None), Err(tonic::Code::Unauthenticated));
        assert_eq!(
            call(&mut closed, Some("Bearer nope")),
            Err(tonic::Code::Unauthenticated)
        );
        assert_eq!(
            call(&mut closed, Some("s3cret")),
            Err(tonic::Code::Unauthenticated)
        );
    }
}
