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

/// ReloadConfig: the services file again, with the command line's state directory.
pub(super) async fn reload(
    api: &RussellApi,
    req: pb::ReloadConfigRequest,
) -> Result<Response<pb::ReloadConfigResponse>, Status> {
    let report = api
        .orch
        .reload_file(req.dry_run, api.state_dir.as_deref())
        .await
        .map_err(reload_status)?;
    Ok(Response::new(reload_response(
        &report,
        api.orch.config_file(),
    )))
}

/// A refused reload as a status: what is wrong with the file.
pub(crate) fn reload_status(err: russell_core::ReloadError) -> Status {
    match err {
        russell_core::ReloadError::Core(e) => to_status(e),
        other => Status::failed_precondition(other.to_string()),
    }
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

/// A reload's report as ReloadConfig's answer; `file` is the services file read.
fn reload_response(
    r: &russell_core::ReloadReport,
    file: &std::path::Path,
) -> pb::ReloadConfigResponse {
    let changes = |cs: &[russell_config::Change]| {
        cs.iter()
            .map(|c| pb::ConfigChange {
                short_name: c.short_name.clone(),
                action: c.action.as_str().to_string(),
                keys: c.keys.iter().map(|k| (*k).to_string()).collect(),
            })
            .collect()
    };
    pb::ReloadConfigResponse {
        applied: r.applied,
        services: changes(&r.diff.services),
        externals: changes(&r.diff.externals),
        needs_russell_restart: r
            .diff
            .needs_russell_restart
            .iter()
            .map(|k| (*k).to_string())
            .collect(),
        results: r.results.iter().cloned().map(Into::into).collect(),
        file: file.display().to_string(),
    }
}
