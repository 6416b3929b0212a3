//! mDW's registration and discovery over the one registry (`../registry/mod.rs`): Register,
//! Heartbeat and Deregister by id, Discover, GetService, ListServices.
//!
//! A registration under a managed service's name or short_name is stored under that
//! short_name and linked to it: discovery shows one entry for the service, with the
//! orchestrator's status and the registration's id, address, port, tags and version.
//! Registrations are not persisted: after a restart of Russell an old id is unknown, the
//! heartbeat answers `acknowledged = false`, and mDW's services register again.

use std::collections::{HashMap, HashSet};
use tonic::Status;

use super::status::{managed_id, port_of, status_of, unix};
use crate::mdw::{common as c, russell as m};
use crate::server::registry::{
    Announcement, MAX_KEY, MAX_TEXT, check_metadata, check_tags, check_text,
};
use crate::server::{DEFAULT_TTL, MAX_NAME_LEN, Registration, RussellApi, check_name};

/// What a heartbeat tells mDW's services about the next one (their own interval is 10 s).
const NEXT_HEARTBEAT_MS: i64 = 10_000;

/// Checks an id from a request.
fn check_id(id: &str) -> Result<(), Status> {
    if id.trim().is_empty() {
        return Err(Status::invalid_argument(
            "id is empty: give the id that Register returned",
        ));
    }
    if id.len() > 2 * MAX_NAME_LEN || id.chars().any(char::is_control) {
        return Err(Status::invalid_argument(format!(
            "id must be at most {} bytes without control characters",
            2 * MAX_NAME_LEN
        )));
    }
    Ok(())
}

pub(super) fn register(
    api: &RussellApi,
    req: m::RegisterRequest,
) -> Result<m::RegisterResponse, Status> {
    check_name("name", &req.name)?;
    let name = req.name.trim().to_string();
    if req.address.trim().is_empty() {
        return Err(Status::invalid_argument(
            "address is empty: give the host or IP where the service listens (mDW sends localhost)",
        ));
    }
    check_text("address", &req.address, MAX_TEXT)?;
    if !(0..=i32::from(u16::MAX)).contains(&req.port) {
        return Err(Status::invalid_argument(format!(
            "port {} is out of range (1-65535, or 0 for none)",
            req.port
        )));
    }
    check_tags(&req.tags)?;
    check_metadata(&req.metadata)?;
    check_text("version", &req.version, MAX_KEY)?;
    let managed = api.orch.resolve_service(&name, "register").ok();
    let key = managed.clone().unwrap_or_else(|| name.to_lowercase());
    let ports = u32::try_from(req.port)
        .ok()
        .filter(|p| *p != 0)
        .map(|p| HashMap::from([("port".to_string(), p)]))
        .unwrap_or_default();
    let id = api.registry.upsert(Announcement {
        key,
        name: name.clone(),
        address: req.address.trim().to_string(),
        ports,
        metadata: req.metadata,
        tags: req.tags,
        version: req.version.trim().to_string(),
        ttl: DEFAULT_TTL,
    })?;
    let message = match managed {
        Some(short) => format!("registered '{name}' as {id}, linked to managed service '{short}'"),
        None => format!("registered '{name}' as {id}"),
    };
    Ok(m::RegisterResponse {
        id,
        success: true,
        message,
    })
}

pub(super) fn heartbeat(
    api: &RussellApi,
    req: &m::HeartbeatRequest,
) -> Result<m::HeartbeatResponse, Status> {
    check_id(&req.id)?;
    let acknowledged = api.registry.heartbeat_id(req.id.trim());
    Ok(m::HeartbeatResponse {
        acknowledged,
        next_heartbeat_ms: NEXT_HEARTBEAT_MS,
    })
}

pub(super) fn deregister(api: &RussellApi, req: &m::DeregisterRequest) -> Result<c::Empty, Status> {
    check_id(&req.id)?;
    let id = req.id.trim();
    if api.registry.deregister_id(id) {
        return Ok(c::Empty {});
    }
    if let Some(short) = id.strip_prefix("managed/")
        && api.orch.resolve_service(short, "deregister").is_ok()
    {
        return Err(Status::failed_precondition(format!(
            "'{short}' is managed by Russell, not registered; stop it with StopService"
        )));
    }
    Err(Status::not_found(format!(
        "no registration has id '{id}' (it expired, was deregistered, or was made with an \
         earlier Russell: register again)"
    )))
}

/// Every service as mDW's ServiceInfo: managed ones (with their registration, if any) in
/// config order, then registrations of other names by name.
fn infos(api: &RussellApi) -> Vec<m::ServiceInfo> {
    let snap = api.orch.snapshot();
    let mut regs: HashMap<String, Registration> = api.registry.all().into_iter().collect();
    let managed: HashSet<&str> = snap
        .services
        .iter()
        .map(|s| s.short_name.as_str())
        .collect();
    let mut out: Vec<m::ServiceInfo> = snap
        .services
        .iter()
        .map(|s| managed_info(s, regs.remove(&s.short_name).as_ref()))
        .collect();
    let mut others: Vec<m::ServiceInfo> = regs
        .into_iter()
        .filter(|(k, _)| !managed.contains(k.as_str()))
        .map(|(_, r)| registered_info(r))
        .collect();
    others.sort_by(|a, b| a.name.cmp(&b.name));
    out.extend(others);
    out
}

fn managed_info(s: &russell_core::ServiceStatus, reg: Option<&Registration>) -> m::ServiceInfo {
    let mut metadata = reg.map(|r| r.metadata.clone()).unwrap_or_default();
    metadata.insert("managed".to_string(), "true".to_string());
    metadata.insert("display_name".to_string(), s.name.clone());
    metadata.insert("state".to_string(), s.state.as_str().to_string());
    metadata.insert("enabled".to_string(), s.enabled.to_string());
    let version = reg
        .map(|r| r.version.as_str())
        .filter(|v| !v.is_empty())
        .unwrap_or(s.version.as_str());
    m::ServiceInfo {
        id: reg.map_or_else(|| managed_id(&s.short_name), |r| r.id.clone()),
        name: s.short_name.clone(),
        address: reg.map_or_else(|| "localhost".to_string(), |r| r.address.clone()),
        port: reg
            .and_then(|r| r.ports.get("port"))
            .and_then(|p| i32::try_from(*p).ok())
            .unwrap_or_else(|| port_of(s)),
        status: status_of(s.state) as i32,
        last_heartbeat: reg
            .map(|r| r.last_heartbeat)
            .or(s.last_health_check)
            .map_or(0, unix),
        registered_at: reg
            .map(|r| r.registered_at)
            .or(s.pid.and(s.started_at))
            .map_or(0, unix),
        metadata,
        tags: reg.map(|r| r.tags.clone()).unwrap_or_default(),
        version: version.to_string(),
    }
}

fn registered_info(r: Registration) -> m::ServiceInfo {
    let port = r
        .ports
        .get("port")
        .or_else(|| r.ports.values().min())
        .and_then(|p| i32::try_from(*p).ok())
        .unwrap_or(0);
    let status = if r.healthy {
        m::ServiceStatus::Healthy
    } else {
        m::ServiceStatus::Unhealthy
    };
    m::ServiceInfo {
        id: r.id,
        name: r.name,
        address: r.address,
        port,
        status: status as i32,
        last_heartbeat: unix(r.last_heartbeat),
        registered_at: unix(r.registered_at),
        metadata: r.metadata,
        tags: r.tags,
        version: r.version,
    }
}

pub(super) fn discover(
    api: &RussellApi,
    req: &m::DiscoverRequest,
) -> Result<m::DiscoverResponse, Status> {
    if req.name.is_empty() && req.tags.is_empty() {
        return Err(Status::invalid_argument(
            "give a name, tags, or both (ListServices lists everything)",
        ));
    }
    if !req.name.is_empty() {
        check_name("name", &req.name)?;
    }
    check_tags(&req.tags)?;
    let wanted = req.name.trim().to_lowercase();
    let services = infos(api)
        .into_iter()
        .filter(|i| {
            wanted.is_empty()
                || i.name.to_lowercase() == wanted
                || i.metadata
                    .get("display_name")
                    .is_some_and(|n| n.to_lowercase() == wanted)
        })
        .filter(|i| req.tags.iter().all(|t| i.tags.contains(t)))
        .collect();
    Ok(m::DiscoverResponse { services })
}

pub(super) fn get_service(
    api: &RussellApi,
    req: &m::GetServiceRequest,
) -> Result<m::ServiceInfo, Status> {
    check_id(&req.id)?;
    let id = req.id.trim();
    infos(api).into_iter().find(|i| i.id == id).ok_or_else(|| {
        Status::not_found(format!(
            "no service has id '{id}' (ListServices shows the ids; a registration made \
                 with an earlier Russell is gone)"
        ))
    })
}

pub(super) fn list(api: &RussellApi) -> m::ServiceListResponse {
    let services = infos(api);
    m::ServiceListResponse {
        total: super::status::count(services.len()),
        services,
    }
}

/// Every registration with its key, for the overview.
pub(super) fn registrations(api: &RussellApi) -> Vec<(String, Registration)> {
    api.registry.all()
}
