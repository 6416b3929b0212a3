//! Orchestrator RPCs: start/stop/restart, status, and Shutdown (for `mdw down`).

use tokio::sync::oneshot;
use tonic::{Response, Status};

use super::{RussellApi, check_name, to_status};
use crate::pb;

pub(super) async fn start_all(
    api: &RussellApi,
    req: pb::StartAllRequest,
) -> Result<Response<pb::StartAllResponse>, Status> {
    let results = api.orch.start_all(req.force).await.map_err(to_status)?;
    Ok(Response::new(pb::StartAllResponse {
        success: results.iter().all(|r| r.success),
        results: results.into_iter().map(Into::into).collect(),
    }))
}

pub(super) async fn stop_all(api: &RussellApi) -> Result<Response<pb::StopAllResponse>, Status> {
    let stopped = api.orch.stop_all().await.map_err(to_status)?;
    Ok(Response::new(pb::StopAllResponse { stopped }))
}

/// Resolves to a managed service; an external is refused, saying that Russell does not
/// `what` it (it has no process Russell may touch).
fn managed(api: &RussellApi, name: &str, what: &str) -> Result<String, Status> {
    check_name("name", name)?;
    api.orch
        .resolve_service(name.trim(), what)
        .map_err(to_status)
}

pub(super) async fn start(
    api: &RussellApi,
    req: pb::ServiceRequest,
) -> Result<Response<pb::ServiceStartResult>, Status> {
    let short = managed(api, &req.name, "start")?;
    let result = api.orch.start_service(&short).await.map_err(to_status)?;
    Ok(Response::new(result.into()))
}

pub(super) async fn stop(
    api: &RussellApi,
    req: pb::ServiceRequest,
) -> Result<Response<pb::Empty>, Status> {
    let short = managed(api, &req.name, "stop")?;
    api.orch.stop_service(&short).await.map_err(to_status)?;
    Ok(Response::new(pb::Empty {}))
}

pub(super) async fn restart(
    api: &RussellApi,
    req: pb::ServiceRequest,
) -> Result<Response<pb::ServiceStartResult>, Status> {
    let short = managed(api, &req.name, "restart")?;
    let result = api.orch.restart_service(&short).await.map_err(to_status)?;
    Ok(Response::new(result.into()))
}

pub(super) async fn status(api: &RussellApi) -> pb::OrchestratorStatus {
    pb::OrchestratorStatus::from(&*api.orch.fresh_snapshot().await)
}

pub(super) async fn shutdown(api: &RussellApi) -> Result<Response<pb::Empty>, Status> {
    let (tx, rx) = oneshot::channel();
    api.shutdown
        .send(tx)
        .await
        .map_err(|_| Status::unavailable("russell is already shutting down"))?;
    rx.await
        .map_err(|_| Status::unavailable("russell is already shutting down"))?;
    Ok(Response::new(pb::Empty {}))
}
