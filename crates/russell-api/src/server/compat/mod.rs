//! mDW's `mdw.russell.RussellService`, served next to `mdw.russell.v1` on the same listener
//! over the same state: the one orchestrator handle and the one registry of [`RussellApi`]
//! (no copy of either). What only this face needs lives here: the pipeline store, the ring
//! of recent failures, and the mapping of core states onto mDW's enum (`status.rs`).
//! Access rules and counters: `../gate.rs`. The methods, one by one: docs/API.md.

mod control;
mod discovery;
mod overview;
mod pipelines;
mod status;
mod stream;

use std::sync::Arc;
use std::time::SystemTime;

use tonic::{Request, Response, Status};

use crate::mdw::russell::russell_service_server::{RussellService, RussellServiceServer};
use crate::mdw::{common as c, russell as m};
use crate::server::gate::{Access, Gate};
use crate::server::{RussellApi, TokenAuth, check_name, resolve_service};

pub use overview::ERRORS_KEPT;
pub use status::status_of;

/// The mDW-compatible service.
#[derive(Clone)]
pub struct MdwApi {
    api: RussellApi,
    pipelines: Arc<pipelines::Pipelines>,
    errors: Arc<overview::Errors>,
}

impl std::fmt::Debug for MdwApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MdwApi")
    }
}

impl MdwApi {
    /// mDW's face of `api`. Starts following the core's events for GetErrors (needs a
    /// tokio runtime).
    pub fn new(api: &RussellApi) -> Self {
        let errors = Arc::new(overview::Errors::default());
        errors.clone().feed(api);
        Self {
            api: api.clone(),
            pipelines: Arc::default(),
            errors,
        }
    }

    /// The server, behind mDW's access rules and the shared counters.
    pub fn into_server(self, auth: TokenAuth) -> Gate<RussellServiceServer<MdwApi>> {
        let metrics = self.api.metrics.clone();
        Gate::new(
            RussellServiceServer::new(self),
            auth,
            Access::ControlOrRemote,
            metrics,
        )
    }
}

fn ok<T>(r: Result<T, Status>) -> Result<Response<T>, Status> {
    r.map(Response::new)
}

/// GetServiceStatus: a managed service by name or short_name, else a registration by name.
fn service_status(api: &RussellApi, name: &str) -> Result<m::ServiceStatusResponse, Status> {
    check_name("name", name)?;
    let now = SystemTime::now();
    match resolve_service(&api.orch, "name", name, "report a process status of") {
        Ok(short) => {
            let snap = api.orch.snapshot();
            let s = snap
                .services
                .iter()
                .find(|s| s.short_name == short)
                .ok_or_else(|| Status::not_found(format!("no managed service '{short}'")))?;
            let reg = api.registry.get(&short);
            Ok(status::service_status(s, reg.as_ref(), now))
        }
        Err(e) if e.code() == tonic::Code::NotFound => {
            let reg = api.registry.get(&name.trim().to_lowercase()).ok_or(e)?;
            let port = reg.ports.get("port").and_then(|p| i32::try_from(*p).ok());
            Ok(m::ServiceStatusResponse {
                name: reg.name,
                status: if reg.healthy {
                    m::ServiceStatus::Healthy
                } else {
                    m::ServiceStatus::Unhealthy
                } as i32,
                port: port.unwrap_or(0),
                address: reg.address,
                started_at: status::unix(reg.registered_at),
                last_heartbeat: status::unix(reg.last_heartbeat),
                health_message: format!(
                    "registered, not managed: {}",
                    if reg.healthy {
                        "heartbeats arrive"
                    } else {
                        "heartbeats are late"
                    }
                ),
                metadata: reg.metadata,
                version: reg.version,
                ..Default::default()
            })
        }
        Err(e) => Err(e),
    }
}

fn all_service_status(api: &RussellApi) -> m::AllServiceStatusResponse {
    use russell_core::ServiceState as S;
    let snap = api.orch.snapshot();
    let now = SystemTime::now();
    let n =
        |f: &dyn Fn(S) -> bool| status::count(snap.services.iter().filter(|s| f(s.state)).count());
    m::AllServiceStatusResponse {
        services: snap
            .services
            .iter()
            .map(|s| status::service_status(s, api.registry.get(&s.short_name).as_ref(), now))
            .collect(),
        total: status::count(snap.services.len()),
        running: n(&|s| matches!(s, S::Running | S::Unhealthy)),
        stopped: n(&|s| matches!(s, S::Stopped | S::Failed)),
        unhealthy: n(&|s| s == S::Unhealthy),
    }
}

#[tonic::async_trait]
impl RussellService for MdwApi {
    async fn register(
        &self,
        request: Request<m::RegisterRequest>,
    ) -> Result<Response<m::RegisterResponse>, Status> {
        ok(discovery::register(&self.api, request.into_inner()))
    }

    async fn deregister(
        &self,
        request: Request<m::DeregisterRequest>,
    ) -> Result<Response<c::Empty>, Status> {
        ok(discovery::deregister(&self.api, request.get_ref()))
    }

    async fn heartbeat(
        &self,
        request: Request<m::HeartbeatRequest>,
    ) -> Result<Response<m::HeartbeatResponse>, Status> {
        ok(discovery::heartbeat(&self.api, request.get_ref()))
    }

    async fn discover(
        &self,
        request: Request<m::DiscoverRequest>,
    ) -> Result<Response<m::DiscoverResponse>, Status> {
        ok(discovery::discover(&self.api, request.get_ref()))
    }

    async fn get_service(
        &self,
        request: Request<m::GetServiceRequest>,
    ) -> Result<Response<m::ServiceInfo>, Status> {
        ok(discovery::get_service(&self.api, request.get_ref()))
    }

    async fn list_services(
        &self,
        _request: Request<c::Empty>,
    ) -> Result<Response<m::ServiceListResponse>, Status> {
        ok(Ok(discovery::list(&self.api)))
    }

    async fn start_service(
        &self,
        request: Request<m::StartServiceRequest>,
    ) -> Result<Response<m::StartServiceResponse>, Status> {
        ok(control::start(&self.api, request.get_ref()).await)
    }

    async fn stop_service(
        &self,
        request: Request<m::StopServiceRequest>,
    ) -> Result<Response<m::StopServiceResponse>, Status> {
        ok(control::stop(&self.api, request.get_ref()).await)
    }

    async fn restart_service(
        &self,
        request: Request<m::RestartServiceRequest>,
    ) -> Result<Response<m::RestartServiceResponse>, Status> {
        ok(control::restart(&self.api, request.get_ref()).await)
    }

    async fn get_service_status(
        &self,
        request: Request<m::GetServiceStatusRequest>,
    ) -> Result<Response<m::ServiceStatusResponse>, Status> {
        ok(service_status(&self.api, &request.get_ref().name))
    }

    async fn get_all_service_status(
        &self,
        _request: Request<c::Empty>,
    ) -> Result<Response<m::AllServiceStatusResponse>, Status> {
        ok(Ok(all_service_status(&self.api)))
    }

    type StreamServiceStatusStream = crate::server::streams::Stream<m::ServiceStatusEvent>;

    async fn stream_service_status(
        &self,
        _request: Request<c::Empty>,
    ) -> Result<Response<Self::StreamServiceStatusStream>, Status> {
        ok(stream::stream_status(&self.api))
    }

    async fn get_system_health(
        &self,
        _request: Request<c::Empty>,
    ) -> Result<Response<m::SystemHealthResponse>, Status> {
        ok(Ok(overview::system_health(&self.api)))
    }

    async fn health_check(
        &self,
        _request: Request<c::HealthCheckRequest>,
    ) -> Result<Response<c::HealthCheckResponse>, Status> {
        ok(Ok(overview::health_check(&self.api)))
    }

    async fn get_system_overview(
        &self,
        _request: Request<c::Empty>,
    ) -> Result<Response<m::SystemOverviewResponse>, Status> {
        let metrics = &self.api.metrics;
        ok(Ok(overview::overview(&self.api, metrics, &self.errors)))
    }

    async fn get_metrics(
        &self,
        _request: Request<c::Empty>,
    ) -> Result<Response<m::MetricsResponse>, Status> {
        ok(Ok(overview::metrics(&self.api.metrics)))
    }

    async fn get_errors(
        &self,
        request: Request<m::GetErrorsRequest>,
    ) -> Result<Response<m::ErrorsResponse>, Status> {
        ok(overview::errors(&self.errors, request.get_ref()))
    }

    async fn start_all_services(
        &self,
        request: Request<m::StartAllRequest>,
    ) -> Result<Response<m::StartAllResponse>, Status> {
        ok(control::start_all(&self.api, request.get_ref()).await)
    }

    async fn stop_all_services(
        &self,
        request: Request<m::StopAllRequest>,
    ) -> Result<Response<m::StopAllResponse>, Status> {
        ok(control::stop_all(&self.api, request.get_ref()).await)
    }

    async fn get_orchestrator_status(
        &self,
        _request: Request<c::Empty>,
    ) -> Result<Response<m::OrchestratorStatusResponse>, Status> {
        let snap = self.api.orch.fresh_snapshot().await;
        ok(Ok(status::orchestrator_status(&snap, SystemTime::now())))
    }

    async fn create_pipeline(
        &self,
        request: Request<m::CreatePipelineRequest>,
    ) -> Result<Response<m::Pipeline>, Status> {
        ok(self.pipelines.create(request.into_inner()))
    }

    async fn get_pipeline(
        &self,
        request: Request<m::GetPipelineRequest>,
    ) -> Result<Response<m::Pipeline>, Status> {
        ok(self.pipelines.get(request.get_ref()))
    }

    async fn list_pipelines(
        &self,
        _request: Request<c::Empty>,
    ) -> Result<Response<m::PipelineListResponse>, Status> {
        ok(Ok(self.pipelines.list()))
    }

    async fn delete_pipeline(
        &self,
        request: Request<m::DeletePipelineRequest>,
    ) -> Result<Response<c::Empty>, Status> {
        ok(self.pipelines.delete(request.get_ref()))
    }

    async fn execute_pipeline(
        &self,
        request: Request<m::ExecutePipelineRequest>,
    ) -> Result<Response<m::PipelineExecutionResponse>, Status> {
        ok(self.pipelines.execute(request.get_ref()))
    }
}
