//! Orchestrator RPCs: start/stop/restart and Shutdown (for `mdw down`). GetOrchestratorStatus
//! is answered from encoded bytes in encoded_status.rs.

use tokio::sync::oneshot;
use tonic::{Response, Status};

use super::{RussellApi, resolve_service, to_status};
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

pub(super) async fn start(
    api: &RussellApi,
    req: pb::ServiceRequest,
) -> Result<Response<pb::ServiceStartResult>, Status> {
    let short = resolve_service(&api.orch, "name", &req.name, "start")?;
    let result = api.orch.start_service(&short).await.map_err(to_status)?;
    Ok(Response::new(result.into()))
}

pub(super) async fn stop(
    api: &RussellApi,
    req: pb::ServiceRequest,
) -> Result<Response<pb::Empty>, Status> {
    let short = resolve_service(&api.orch, "name", &req.name, "stop")?;
    api.orch.stop_service(&short).await.map_err(to_status)?;
    Ok(Response::new(pb::Empty {}))
}

pub(super) async fn restart(
    api: &RussellApi,
    req: pb::ServiceRequest,
) -> Result<Response<pb::ServiceStartResult>, Status> {
    let short = resolve_service(&api.orch, "name", &req.name, "restart")?;
    let result = api.orch.restart_service(&short).await.map_err(to_status)?;
    Ok(Response::new(result.into()))
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
