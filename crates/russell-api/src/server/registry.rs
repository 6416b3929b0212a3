//! Registry RPCs (what Russell was before it orchestrated): services announce themselves
//! with Register and keep their entry alive with Heartbeat. Past its TTL without a
//! heartbeat an entry turns unhealthy; past twice its TTL it is dropped. Managed services
//! appear by themselves (source "managed"). Registry entries are only data: nothing here
//! starts, stops or signals a process.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use tonic::Status;

use super::{RussellApi, check_name};
use crate::convert::timestamp;
use crate::pb;

/// TTL of an entry that registered without one.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30);
/// Longest TTL accepted.
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// Most entries the registry holds; more registrations get RESOURCE_EXHAUSTED.
const MAX_ENTRIES: usize = 10_000;
/// Most ports and metadata pairs per entry.
const MAX_PAIRS: usize = 64;
/// Longest address, metadata key or value.
const MAX_TEXT: usize = 4096;

/// The announced services, keyed by lowercase name.
#[derive(Debug, Default)]
pub struct Registry {
    /// A std Mutex: every critical section is a short map operation, never across `.await`.
    entries: Mutex<HashMap<String, Entry>>,
    /// Source of registration ids.
    next_id: AtomicU64,
}

#[derive(Debug, Clone)]
struct Entry {
    id: String,
    name: String,
    address: String,
    ports: HashMap<String, u32>,
    metadata: HashMap<String, String>,
    ttl: Duration,
    last_heartbeat: Instant,
    last_heartbeat_wall: SystemTime,
}

impl Entry {
    fn healthy(&self, now: Instant) -> bool {
        now.duration_since(self.last_heartbeat) <= self.ttl
    }

    fn expired(&self, now: Instant) -> bool {
        now.duration_since(self.last_heartbeat) > self.ttl * 2
    }

    fn endpoint(&self, now: Instant) -> pb::Endpoint {
        pb::Endpoint {
            name: self.name.clone(),
            address: self.address.clone(),
            ports: self.ports.clone(),
            metadata: self.metadata.clone(),
            healthy: self.healthy(now),
            source: "registered".to_string(),
            last_heartbeat: Some(timestamp(self.last_heartbeat_wall)),
        }
    }
}

impl Registry {
    /// Runs `f` on the entries after dropping the expired ones.
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Entry>, Instant) -> T) -> T {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.retain(|_, e| !e.expired(now));
        f(&mut entries, now)
    }
}

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

fn check_text(field: &str, text: &str) -> Result<(), Status> {
    if text.len() > MAX_TEXT || text.chars().any(char::is_control) {
        return Err(Status::invalid_argument(format!(
            "{field} must be at most {MAX_TEXT} bytes without control characters"
        )));
    }
    Ok(())
}

pub(super) fn register(
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
    check_text("address", &req.address)?;
    if req.ports.len() > MAX_PAIRS || req.metadata.len() > MAX_PAIRS {
        return Err(Status::invalid_argument(format!(
            "at most {MAX_PAIRS} ports and {MAX_PAIRS} metadata entries per service"
        )));
    }
    for (key, port) in &req.ports {
        check_text("port name", key)?;
        if *port == 0 || *port > u32::from(u16::MAX) {
            return Err(Status::invalid_argument(format!(
                "port '{key}' = {port} is out of range (1-65535)"
            )));
        }
    }
    for (key, value) in &req.metadata {
        check_text("metadata key", key)?;
        check_text("metadata value", value)?;
    }
    let ttl = match req.ttl {
        None => DEFAULT_TTL,
        Some(d) if d.seconds == 0 && d.nanos == 0 => DEFAULT_TTL,
        Some(d) => match Duration::try_from(d) {
            Ok(ttl) if ttl <= MAX_TTL => ttl,
            _ => {
                return Err(Status::invalid_argument(format!(
                    "ttl {}s is out of range (0 = default 30s, at most {}s)",
                    d.seconds,
                    MAX_TTL.as_secs()
                )));
            }
        },
    };
    if is_managed(api, &name) {
        return Err(Status::already_exists(format!(
            "'{name}' is a service Russell manages; it is listed by itself and needs no Register"
        )));
    }
    let fresh_id = api.registry.next_id.fetch_add(1, Ordering::Relaxed) + 1;
    api.registry.with(|entries, now| {
        let key = name.to_lowercase();
        if !entries.contains_key(&key) && entries.len() >= MAX_ENTRIES {
            return Err(Status::resource_exhausted(format!(
                "the registry holds {MAX_ENTRIES} entries; deregister some first"
            )));
        }
        let id = entries
            .get(&key)
            .map_or_else(|| format!("{key}-{fresh_id}"), |e| e.id.clone());
        entries.insert(
            key,
            Entry {
                id: id.clone(),
                name,
                address: req.address.trim().to_string(),
                ports: req.ports,
                metadata: req.metadata,
                ttl,
                last_heartbeat: now,
                last_heartbeat_wall: SystemTime::now(),
            },
        );
        Ok(pb::RegisterResponse { id })
    })
}

pub(super) fn deregister(api: &RussellApi, name: &str) -> Result<pb::Empty, Status> {
    check_name("name", name)?;
    let removed = api
        .registry
        .with(|entries, _| entries.remove(&name.trim().to_lowercase()).is_some());
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

pub(super) fn heartbeat(api: &RussellApi, name: &str) -> Result<pb::Empty, Status> {
    check_name("name", name)?;
    let found = api.registry.with(|entries, now| {
        entries
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

pub(super) fn discover(api: &RussellApi, name: &str) -> Result<pb::DiscoverResponse, Status> {
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
        if let Some(e) = entries.get(&wanted) {
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

pub(super) fn list(api: &RussellApi) -> pb::ListServicesResponse {
    let mut services = managed(api);
    let mut registered = api.registry.with(|entries, now| {
        entries
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

    fn entry(ttl: Duration, age: Duration) -> Entry {
        let now = Instant::now();
        Entry {
            id: "x".into(),
            name: "x".into(),
            address: "127.0.0.1".into(),
            ports: HashMap::new(),
            metadata: HashMap::new(),
            ttl,
            last_heartbeat: now.checked_sub(age).unwrap_or(now),
            last_heartbeat_wall: SystemTime::now(),
        }
    }

    #[test]
    fn ttl_rules() {
        let now = Instant::now();
        let ttl = Duration::from_secs(10);
        let fresh = entry(ttl, Duration::from_secs(1));
        assert!(fresh.healthy(now) && !fresh.expired(now));
        let stale = entry(ttl, Duration::from_secs(15));
        assert!(!stale.healthy(now) && !stale.expired(now));
        let gone = entry(ttl, Duration::from_secs(25));
        assert!(!gone.healthy(now) && gone.expired(now));
    }
}
