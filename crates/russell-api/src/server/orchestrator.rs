//! Orchestrator RPCs: start/stop/restart, status, and Shutdown (for `mdw down`).

use russell_core::Snapshot;
use tokio::sync::oneshot;
use tonic::{Response, Status};

use super::{RussellApi, resolve, to_status};
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

/// Resolves to a managed service; externals and registry entries are refused (they have no
/// process Russell may touch).
fn managed(api: &RussellApi, name: &str) -> Result<String, Status> {
    let short = resolve(&api.orch, "name", name)?;
    if api.max_retries.contains_key(&short) {
        Ok(short)
    } else {
        Err(Status::failed_precondition(format!(
            "'{short}' is an external dependency: Russell only checks it and never starts or stops it"
        )))
    }
}

pub(super) async fn start(
    api: &RussellApi,
    req: pb::ServiceRequest,
) -> Result<Response<pb::ServiceStartResult>, Status> {
    let short = managed(api, &req.name)?;
    let result = api.orch.start_service(&short).await.map_err(to_status)?;
    Ok(Response::new(result.into()))
}

pub(super) async fn stop(
    api: &RussellApi,
    req: pb::ServiceRequest,
) -> Result<Response<pb::Empty>, Status> {
    let short = managed(api, &req.name)?;
    api.orch.stop_service(&short).await.map_err(to_status)?;
    Ok(Response::new(pb::Empty {}))
}

pub(super) async fn restart(
    api: &RussellApi,
    req: pb::ServiceRequest,
) -> Result<Response<pb::ServiceStartResult>, Status> {
    let short = managed(api, &req.name)?;
    let result = api.orch.restart_service(&short).await.map_err(to_status)?;
    Ok(Response::new(result.into()))
}

pub(super) async fn status(api: &RussellApi) -> pb::OrchestratorStatus {
    convert(api, &*api.orch.fresh_snapshot().await)
}

/// The status message of `snap`, uptimes as of now.
pub(super) fn convert(api: &RussellApi, snap: &Snapshot) -> pb::OrchestratorStatus {
    let mut status = pb::OrchestratorStatus::from(snap);
    for s in &mut status.services {
        s.max_retries = api.max_retries.get(&s.short_name).copied().unwrap_or(0);
    }
    status
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
