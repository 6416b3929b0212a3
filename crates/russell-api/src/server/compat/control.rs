//! mDW's control of managed processes: StartService, StopService (force = no grace),
//! RestartService, StartAllServices, StopAllServices. Each goes to the one orchestrator, as
//! the v1 calls do; a start that fails answers `success = false` with the reason (mDW's
//! shape), a bad name answers INVALID_ARGUMENT / NOT_FOUND and changes nothing.
//!
//! A forced stop asks the orchestrator for the ordinary stop and, as soon as the service
//! shows `stopping` (pushed on the snapshot watch), sends SIGKILL to its process group
//! instead of waiting out `stop_timeout`; the orchestrator still does the rest (reaping,
//! strays, state file) and reports `stopped` once nothing of the group is left.

use std::collections::HashSet;
use std::future::Future;

use russell_core::{Orchestrator, ServiceState, Snapshot};
use tonic::Status;

use super::status::{count, managed_id};
use crate::mdw::russell as m;
use crate::server::{RussellApi, resolve_service, to_status};

/// The id mDW sees for a managed service: its registration's, else `managed/<short>`.
fn service_id(api: &RussellApi, short: &str) -> String {
    api.registry
        .get(short)
        .map_or_else(|| managed_id(short), |r| r.id)
}

/// The PID of `short` in the current snapshot (0 without a process).
fn pid_of(api: &RussellApi, short: &str) -> i32 {
    api.orch
        .snapshot()
        .services
        .iter()
        .find(|s| s.short_name == short)
        .and_then(|s| s.pid)
        .map_or(0, |p| i32::try_from(p).unwrap_or(0))
}

pub(super) async fn start(
    api: &RussellApi,
    req: &m::StartServiceRequest,
) -> Result<m::StartServiceResponse, Status> {
    let short = resolve_service(&api.orch, "name", &req.name, "start")?;
    let r = api.orch.start_service(&short).await.map_err(to_status)?;
    let pid = pid_of(api, &short);
    Ok(m::StartServiceResponse {
        success: r.success,
        message: if r.success {
            format!("{short} is running (PID {pid})")
        } else {
            r.error
        },
        service_id: service_id(api, &short),
        pid,
    })
}

pub(super) async fn restart(
    api: &RussellApi,
    req: &m::RestartServiceRequest,
) -> Result<m::RestartServiceResponse, Status> {
    let short = resolve_service(&api.orch, "name", &req.name, "restart")?;
    let r = api.orch.restart_service(&short).await.map_err(to_status)?;
    let pid = pid_of(api, &short);
    Ok(m::RestartServiceResponse {
        success: r.success,
        message: if r.success {
            format!("{short} restarted (PID {pid})")
        } else {
            r.error
        },
        service_id: service_id(api, &short),
        pid,
    })
}

pub(super) async fn stop(
    api: &RussellApi,
    req: &m::StopServiceRequest,
) -> Result<m::StopServiceResponse, Status> {
    let short = resolve_service(&api.orch, "name", &req.name, "stop")?;
    let stopping = api.orch.stop_service(&short);
    if req.force {
        killing(&api.orch, Some(&short), stopping).await
    } else {
        stopping.await
    }
    .map_err(to_status)?;
    Ok(m::StopServiceResponse {
        success: true,
        message: format!(
            "{short} stopped{}",
            if req.force { " (killed, no grace)" } else { "" }
        ),
    })
}

pub(super) async fn start_all(
    api: &RussellApi,
    req: &m::StartAllRequest,
) -> Result<m::StartAllResponse, Status> {
    let results = api.orch.start_all(req.force).await.map_err(to_status)?;
    let ok = results.iter().filter(|r| r.success).count();
    Ok(m::StartAllResponse {
        success: ok == results.len(),
        message: format!("{ok} of {} services running", results.len()),
        results: results
            .into_iter()
            .map(|r| m::ServiceStartResult {
                name: r.name,
                success: r.success,
                error: r.error,
                attempts: i32::try_from(r.attempts).unwrap_or(i32::MAX),
            })
            .collect(),
    })
}

pub(super) async fn stop_all(
    api: &RussellApi,
    req: &m::StopAllRequest,
) -> Result<m::StopAllResponse, Status> {
    let stopping = api.orch.stop_all();
    let stopped = if req.force {
        killing(&api.orch, None, stopping).await
    } else {
        stopping.await
    }
    .map_err(to_status)?;
    Ok(m::StopAllResponse {
        success: true,
        message: format!("{} services stopped", count(stopped.len())),
        results: stopped
            .into_iter()
            .map(|name| m::ServiceStopResult {
                name,
                success: true,
                error: String::new(),
            })
            .collect(),
    })
}

/// Runs `stop` and meanwhile SIGKILLs the group of every service (or only `only`) that
/// shows `stopping` with a process, once per PID.
async fn killing<T>(orch: &Orchestrator, only: Option<&str>, stop: impl Future<Output = T>) -> T {
    let mut watch = orch.watch();
    let mut killed = HashSet::new();
    tokio::pin!(stop);
    loop {
        kill_stopping(&watch.borrow_and_update(), only, &mut killed);
        tokio::select! {
            out = &mut stop => return out,
            changed = watch.changed() => if changed.is_err() {
                return stop.await;
            }
        }
    }
}

fn kill_stopping(snap: &Snapshot, only: Option<&str>, killed: &mut HashSet<u32>) {
    use rustix::process::{Pid, Signal, kill_process, kill_process_group};
    for s in &snap.services {
        if only.is_some_and(|o| o != s.short_name) || s.state != ServiceState::Stopping {
            continue;
        }
        let Some(pid) = s.pid.filter(|p| *p > 1) else {
            continue;
        };
        if !killed.insert(pid) {
            continue;
        }
        let Some(p) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
            continue;
        };
        // The service runs in its own group (led by its PID); a leader that is not a group
        // leader (an adopted port holder) is killed alone. Gone already is fine.
        let _ = kill_process_group(p, Signal::KILL);
        let _ = kill_process(p, Signal::KILL);
        tracing::info!(
            "{}: forced stop, SIGKILL to PID {pid} and its group",
            s.short_name
        );
    }
}
