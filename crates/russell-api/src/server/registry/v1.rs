//! The v1 registry RPCs over the one store (`mod.rs`): Register and Heartbeat by name,
//! Deregister, Discover, ListServices. Managed services appear by themselves (source
//! "managed"); Register refuses their names, which only mDW's Register links
//! (`../compat/discovery.rs`).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use tonic::Status;

use super::{
    Announcement, DEFAULT_TTL, MAX_KEY, MAX_PAIRS, MAX_TEXT, MAX_TTL, check_metadata, check_text,
};
use crate::convert::timestamp;
use crate::pb;
use crate::server::{RussellApi, check_name};

/// The managed services as registry endpoints.
fn managed(api: &RussellApi) -> Vec<pb::Endpoint> {
    let snap = api.orch.snapshot();
    snap.services
        .iter()
        .map(|s| {
            let mut ports = HashMap::new();
            if let Some(p) = s.grpc_port {
                ports.insert("grpc".to_string(), u32::from(p));
            }
            if let Some(p) = s.http_port {
                ports.insert("http".to_string(), u32::from(p));
            }
            let mut metadata = HashMap::new();
            metadata.insert("name".to_string(), s.name.clone());
            metadata.insert("description".to_string(), s.description.clone());
            metadata.insert("state".to_string(), s.state.as_str().to_string());
            pb::Endpoint {
                name: s.short_name.clone(),
                address: "127.0.0.1".to_string(),
                ports,
                metadata,
                healthy: s.healthy,
                source: "managed".to_string(),
                last_heartbeat: s.last_health_check.map(timestamp),
            }
        })
        .collect()
}

/// Whether `name` names a managed service or an external (those are not registry entries).
fn is_managed(api: &RussellApi, name: &str) -> bool {
    api.orch.resolve(name).is_ok()
}

/// The ttl of a Register: none or zero is the default; anything else must be a valid
/// google.protobuf.Duration (seconds ≥ 0 here, nanos within 0..=999 999 999) of at most
/// [`MAX_TTL`]. Checked before converting, which would normalise out-of-range nanos.
fn check_ttl(ttl: Option<prost_types::Duration>) -> Result<Duration, Status> {
    let Some(d) = ttl else {
        return Ok(DEFAULT_TTL);
    };
    if d.seconds == 0 && d.nanos == 0 {
        return Ok(DEFAULT_TTL);
    }
    let out_of_range = || {
        Status::invalid_argument(format!(
            "ttl {{seconds: {}, nanos: {}}} is out of range: seconds must be 0 to {} and \
             nanos 0 to 999999999 (0 = default {}s)",
            d.seconds,
            d.nanos,
            MAX_TTL.as_secs(),
            DEFAULT_TTL.as_secs()
        ))
    };
    let (Ok(seconds), Ok(nanos)) = (u64::try_from(d.seconds), u32::try_from(d.nanos)) else {
        return Err(out_of_range());
    };
    if nanos > 999_999_999 {
        return Err(out_of_range());
    }
    let ttl = Duration::new(seconds, nanos);
    if ttl > MAX_TTL {
        return Err(out_of_range());
    }
    Ok(ttl)
}

pub(crate) fn register(
    api: &RussellApi,
    req: pb::RegisterRequest,
) -> Result<pb::RegisterResponse, Status> {
    check_name("name", &req.name)?;
    let name = req.name.trim().to_string();
    if req.address.trim().is_empty() {
        return Err(Status::invalid_argument(
            "address is empty: give the host or IP where the service listens",
        ));
    }
    check_text("address", &req.address, MAX_TEXT)?;
    if req.ports.len() > MAX_PAIRS || req.metadata.len() > MAX_PAIRS {
        return Err(Status::invalid_argument(format!(
            "at most {MAX_PAIRS} ports and {MAX_PAIRS} metadata entries per service"
        )));
    }
    for (key, port) in &req.ports {
        check_text("port name", key, MAX_KEY)?;
        if *port == 0 || *port > u32::from(u16::MAX) {
            return Err(Status::invalid_argument(format!(
                "port '{key}' = {port} is out of range (1-65535)"
            )));
        }
    }
    check_metadata(&req.metadata)?;
    let ttl = check_ttl(req.ttl)?;
    let address = req.address.trim().to_string();
    if is_managed(api, &name) {
        return Err(Status::already_exists(format!(
            "'{name}' is a service Russell manages; it is listed by itself and needs no Register"
        )));
    }
    let id = api.registry.upsert(Announcement {
        key: name.to_lowercase(),
        name,
        address,
        ports: req.ports,
        metadata: req.metadata,
        tags: Vec::new(),
        version: String::new(),
        ttl,
    })?;
    Ok(pb::RegisterResponse { id })
}

pub(crate) fn deregister(api: &RussellApi, name: &str) -> Result<pb::Empty, Status> {
    check_name("name", name)?;
    let removed = api
        .registry
        .with(|entries, _| entries.remove(&name.trim().to_lowercase()));
    if removed {
        Ok(pb::Empty {})
    } else if is_managed(api, name.trim()) {
        Err(Status::failed_precondition(format!(
            "'{}' is managed by Russell, not registered; stop it with StopService",
            name.trim()
        )))
    } else {
        Err(Status::not_found(format!(
            "no registered service named '{}'",
            name.trim()
        )))
    }
}

pub(crate) fn heartbeat(api: &RussellApi, name: &str) -> Result<pb::Empty, Status> {
    check_name("name", name)?;
    let found = api.registry.with(|entries, now| {
        entries
            .map
            .get_mut(&name.trim().to_lowercase())
            .map(|e| {
                e.last_heartbeat = now;
                e.last_heartbeat_wall = SystemTime::now();
            })
            .is_some()
    });
    if found {
        Ok(pb::Empty {})
    } else if is_managed(api, name.trim()) {
        Err(Status::failed_precondition(format!(
            "'{}' is managed by Russell; its health is probed, no heartbeat needed",
            name.trim()
        )))
    } else {
        Err(Status::not_found(format!(
            "no registered service named '{}' (it may have expired: register again)",
            name.trim()
        )))
    }
}

pub(crate) fn discover(api: &RussellApi, name: &str) -> Result<pb::DiscoverResponse, Status> {
    check_name("name", name)?;
    let wanted = name.trim().to_lowercase();
    let mut endpoints: Vec<pb::Endpoint> = managed(api)
        .into_iter()
        .filter(|e| {
            e.name == wanted
                || e.metadata
                    .get("name")
                    .is_some_and(|n| n.to_lowercase() == wanted)
        })
        .collect();
    api.registry.with(|entries, now| {
        if let Some(e) = entries.map.get(&wanted) {
            endpoints.push(e.endpoint(now));
        }
    });
    if endpoints.is_empty() {
        return Err(Status::not_found(format!(
            "no service named '{}' is managed or registered",
            name.trim()
        )));
    }
    Ok(pb::DiscoverResponse { endpoints })
}

pub(crate) fn list(api: &RussellApi) -> pb::ListServicesResponse {
    let mut services = managed(api);
    let mut registered = api.registry.with(|entries, now| {
        entries
            .map
            .values()
            .map(|e| e.endpoint(now))
            .collect::<Vec<_>>()
    });
    registered.sort_by(|a, b| a.name.cmp(&b.name));
    services.extend(registered);
    pb::ListServicesResponse { services }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code<T>(r: Result<T, Status>) -> Option<tonic::Code> {
        r.err().map(|s| s.code())
    }

    #[test]
    fn ttl_must_be_a_valid_duration() {
        let d = |seconds, nanos| Some(prost_types::Duration { seconds, nanos });
        assert_eq!(check_ttl(None).ok(), Some(DEFAULT_TTL));
        assert_eq!(check_ttl(d(0, 0)).ok(), Some(DEFAULT_TTL));
        assert_eq!(
            check_ttl(d(10, 500_000_000)).ok(),
            Some(Duration::from_millis(10_500))
        );
        assert_eq!(check_ttl(d(86_400, 0)).ok(), Some(MAX_TTL));
        for (seconds, nanos) in [
            (1, 2_000_000_000),
            (0, 1_000_000_000),
            (1, -1),
            (0, -5),
            (-1, 0),
            (-1, -999_999_999),
            (86_400, 1),
            (i64::MAX, 0),
        ] {
            let err = check_ttl(d(seconds, nanos));
            let msg = err.as_ref().err().map(|s| s.message().to_string());
            assert_eq!(
                code(err),
                Some(tonic::Code::InvalidArgument),
                "{seconds} {nanos}"
            );
            assert!(msg.is_some_and(|m| m.contains("out of range")));
        }
    }
}
