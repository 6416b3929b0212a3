//! The one registry behind both APIs (what Russell was before it orchestrated; the v1 RPCs
//! are in `v1.rs`, mDW's Register/Heartbeat by id in `../compat/discovery.rs`): services announce themselves
//! with Register and keep their entry alive with Heartbeat. Past its TTL without a
//! heartbeat an entry turns unhealthy; past twice its TTL it is dropped. Managed services
//! appear by themselves (source "managed"). Registry entries are only data: nothing here
//! starts, stops or signals a process.
//!
//! Any local client may register, so the registry's memory is bounded: an entry counts its
//! names, address, ports and metadata (plus bookkeeping) and is at most [`MAX_ENTRY_BYTES`];
//! all entries together are at most [`MAX_TOTAL_BYTES`] (RESOURCE_EXHAUSTED beyond).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use tonic::Status;

use crate::convert::timestamp;
use crate::pb;

pub(crate) mod v1;

/// TTL of an entry that registered without one.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30);
/// Longest TTL accepted.
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// Most entries the registry holds; more registrations get RESOURCE_EXHAUSTED.
const MAX_ENTRIES: usize = 10_000;
/// Most ports and metadata pairs per entry.
const MAX_PAIRS: usize = 64;
/// Longest address or metadata value.
pub(crate) const MAX_TEXT: usize = 4096;
/// Longest port name or metadata key.
pub(crate) const MAX_KEY: usize = 256;
/// Most bytes one entry counts for (see [`entry_bytes`]).
pub const MAX_ENTRY_BYTES: usize = 64 * 1024;
/// Most bytes all entries together count for.
pub const MAX_TOTAL_BYTES: usize = 16 << 20;
/// Bookkeeping bytes counted per entry on top of its text.
const ENTRY_OVERHEAD: usize = 256;
/// Bookkeeping bytes counted per port or metadata pair on top of its text.
const PAIR_OVERHEAD: usize = 64;

/// Most tags per entry (mDW registrations).
const MAX_TAGS: usize = 64;

/// The announced services, keyed by lowercase name (for a managed service: its short_name).
#[derive(Debug)]
pub struct Registry {
    /// A std Mutex: every critical section is a short map operation, never across `.await`.
    entries: Mutex<Entries>,
    /// Source of registration ids.
    next_id: AtomicU64,
    /// Part of every id, different for every Russell: an id from before a restart of
    /// Russell is unknown to the next one, never mistaken for a new registration.
    boot: String,
}

impl Default for Registry {
    fn default() -> Self {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Self {
            entries: Mutex::default(),
            next_id: AtomicU64::new(0),
            boot: format!("{:x}", (nanos as u64) ^ u64::from(std::process::id())),
        }
    }
}

/// The entries and the bytes they count for together.
#[derive(Debug, Default)]
struct Entries {
    map: HashMap<String, Entry>,
    /// Registration id → key in `map`.
    by_id: HashMap<String, String>,
    bytes: usize,
}

impl Entries {
    /// Adds or replaces the entry under `key`, if the total stays within `limit` bytes.
    fn insert(&mut self, key: String, entry: Entry, limit: usize) -> Result<(), Status> {
        let old = self.map.get(&key).map_or(0, |e| e.bytes);
        if !self.map.contains_key(&key) && self.map.len() >= MAX_ENTRIES {
            return Err(Status::resource_exhausted(format!(
                "the registry holds {MAX_ENTRIES} entries, its limit; deregister some first"
            )));
        }
        let total = self.bytes - old + entry.bytes;
        if total > limit {
            return Err(Status::resource_exhausted(format!(
                "the registry is full: its entries hold {} KiB of its {} KiB limit and '{}' \
                 needs {} KiB more; deregister some entries or register less metadata",
                self.bytes / 1024,
                limit / 1024,
                entry.name,
                (entry.bytes - old.min(entry.bytes)).div_ceil(1024)
            )));
        }
        self.bytes = total;
        let id = entry.id.clone();
        self.by_id.insert(id.clone(), key.clone());
        if let Some(old) = self.map.insert(key, entry)
            && old.id != id
        {
            self.by_id.remove(&old.id);
        }
        Ok(())
    }

    fn remove(&mut self, key: &str) -> bool {
        match self.map.remove(key) {
            Some(e) => {
                self.bytes -= e.bytes;
                self.by_id.remove(&e.id);
                true
            }
            None => false,
        }
    }

    fn drop_expired(&mut self, now: Instant) {
        let mut freed = 0;
        let by_id = &mut self.by_id;
        self.map.retain(|_, e| {
            let keep = !e.expired(now);
            if !keep {
                freed += e.bytes;
                by_id.remove(&e.id);
            }
            keep
        });
        self.bytes -= freed;
    }
}

/// Bytes a registration counts for: its text plus bookkeeping. The name is counted twice
/// (as given and as the lowercase key), and once more for the id.
fn entry_bytes(
    name: &str,
    address: &str,
    ports: &HashMap<String, u32>,
    metadata: &HashMap<String, String>,
) -> usize {
    ENTRY_OVERHEAD
        + 3 * name.len()
        + address.len()
        + ports.keys().map(|k| k.len() + PAIR_OVERHEAD).sum::<usize>()
        + metadata
            .iter()
            .map(|(k, v)| k.len() + v.len() + PAIR_OVERHEAD)
            .sum::<usize>()
}

#[derive(Debug, Clone)]
struct Entry {
    id: String,
    /// What this entry counts for (see [`entry_bytes`], plus tags and version).
    bytes: usize,
    name: String,
    address: String,
    ports: HashMap<String, u32>,
    metadata: HashMap<String, String>,
    /// mDW registrations' tags (v1 has none).
    tags: Vec<String>,
    /// The version the service announced ("" when none).
    version: String,
    ttl: Duration,
    last_heartbeat: Instant,
    last_heartbeat_wall: SystemTime,
    registered_at: SystemTime,
}

/// One registration as the APIs show it.
#[derive(Debug, Clone)]
pub struct Registration {
    pub id: String,
    pub name: String,
    pub address: String,
    pub ports: HashMap<String, u32>,
    pub metadata: HashMap<String, String>,
    pub tags: Vec<String>,
    pub version: String,
    /// Heartbeat within the TTL.
    pub healthy: bool,
    pub last_heartbeat: SystemTime,
    pub registered_at: SystemTime,
}

/// What a registration announces, checked; [`Registry::upsert`] stores it.
#[derive(Debug)]
pub struct Announcement {
    /// The key: lowercase name, or the managed service's short_name.
    pub key: String,
    pub name: String,
    pub address: String,
    pub ports: HashMap<String, u32>,
    pub metadata: HashMap<String, String>,
    pub tags: Vec<String>,
    pub version: String,
    pub ttl: Duration,
}

impl Entry {
    fn view(&self, now: Instant) -> Registration {
        Registration {
            id: self.id.clone(),
            name: self.name.clone(),
            address: self.address.clone(),
            ports: self.ports.clone(),
            metadata: self.metadata.clone(),
            tags: self.tags.clone(),
            version: self.version.clone(),
            healthy: self.healthy(now),
            last_heartbeat: self.last_heartbeat_wall,
            registered_at: self.registered_at,
        }
    }

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
    fn with<T>(&self, f: impl FnOnce(&mut Entries, Instant) -> T) -> T {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.drop_expired(now);
        f(&mut entries, now)
    }

    /// Adds or replaces the entry under `a.key`; returns its id (kept when the key was
    /// already registered, new otherwise).
    pub fn upsert(&self, a: Announcement) -> Result<String, Status> {
        let bytes = entry_bytes(&a.name, &a.address, &a.ports, &a.metadata)
            + a.version.len()
            + a.tags
                .iter()
                .map(|t| t.len() + PAIR_OVERHEAD)
                .sum::<usize>();
        if bytes > MAX_ENTRY_BYTES {
            return Err(Status::invalid_argument(format!(
                "the entry for '{}' is {} KiB (name, address, ports, tags and metadata); an \
                 entry is at most {} KiB",
                a.name,
                bytes.div_ceil(1024),
                MAX_ENTRY_BYTES / 1024
            )));
        }
        let fresh_id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        self.with(|entries, now| {
            let (id, registered_at) = entries.map.get(&a.key).map_or_else(
                || {
                    (
                        format!("{}-{}-{fresh_id}", a.key, self.boot),
                        SystemTime::now(),
                    )
                },
                |e| (e.id.clone(), e.registered_at),
            );
            let entry = Entry {
                id: id.clone(),
                bytes,
                name: a.name,
                address: a.address,
                ports: a.ports,
                metadata: a.metadata,
                tags: a.tags,
                version: a.version,
                ttl: a.ttl,
                last_heartbeat: now,
                last_heartbeat_wall: SystemTime::now(),
                registered_at,
            };
            entries.insert(a.key, entry, MAX_TOTAL_BYTES)?;
            Ok(id)
        })
    }

    /// Renews the entry with this id; false when no entry has it (expired, deregistered,
    /// or registered with an earlier Russell).
    pub fn heartbeat_id(&self, id: &str) -> bool {
        self.with(|entries, now| {
            let Some(key) = entries.by_id.get(id) else {
                return false;
            };
            match entries.map.get_mut(key) {
                Some(e) => {
                    e.last_heartbeat = now;
                    e.last_heartbeat_wall = SystemTime::now();
                    true
                }
                None => false,
            }
        })
    }

    /// Removes the entry with this id; false when none has it.
    pub fn deregister_id(&self, id: &str) -> bool {
        self.with(|entries, _| match entries.by_id.get(id).cloned() {
            Some(key) => entries.remove(&key),
            None => false,
        })
    }

    /// The registration with this id.
    pub fn get_id(&self, id: &str) -> Option<Registration> {
        self.with(|entries, now| {
            let key = entries.by_id.get(id)?;
            entries.map.get(key).map(|e| e.view(now))
        })
    }

    /// The registration under `key` (lowercase name or managed short_name).
    pub fn get(&self, key: &str) -> Option<Registration> {
        self.with(|entries, now| entries.map.get(key).map(|e| e.view(now)))
    }

    /// Every registration, keyed as stored.
    pub fn all(&self) -> Vec<(String, Registration)> {
        self.with(|entries, now| {
            entries
                .map
                .iter()
                .map(|(k, e)| (k.clone(), e.view(now)))
                .collect()
        })
    }
}

/// Checks tags of a registration: at most [`MAX_TAGS`], each a short text.
pub fn check_tags(tags: &[String]) -> Result<(), Status> {
    if tags.len() > MAX_TAGS {
        return Err(Status::invalid_argument(format!(
            "{} tags given; at most {MAX_TAGS} per service",
            tags.len()
        )));
    }
    for t in tags {
        check_text("tag", t, MAX_KEY)?;
    }
    Ok(())
}

/// Checks metadata of a registration (count and sizes).
pub fn check_metadata(metadata: &HashMap<String, String>) -> Result<(), Status> {
    if metadata.len() > MAX_PAIRS {
        return Err(Status::invalid_argument(format!(
            "{} metadata entries given; at most {MAX_PAIRS} per service",
            metadata.len()
        )));
    }
    for (key, value) in metadata {
        check_text("metadata key", key, MAX_KEY)?;
        check_text("metadata value", value, MAX_TEXT)?;
    }
    Ok(())
}
/// Checks a free text of a request: at most `max` bytes, no control characters.
pub fn check_text(field: &str, text: &str, max: usize) -> Result<(), Status> {
    if text.len() > max || text.chars().any(char::is_control) {
        return Err(Status::invalid_argument(format!(
            "{field} must be at most {max} bytes without control characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(ttl: Duration, age: Duration) -> Entry {
        let now = Instant::now();
        Entry {
            id: "x".into(),
            bytes: 100,
            name: "x".into(),
            address: "127.0.0.1".into(),
            ports: HashMap::new(),
            metadata: HashMap::new(),
            tags: Vec::new(),
            version: String::new(),
            ttl,
            last_heartbeat: now.checked_sub(age).unwrap_or(now),
            last_heartbeat_wall: SystemTime::now(),
            registered_at: SystemTime::now(),
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

    fn sized(name: &str, bytes: usize, age: Duration) -> Entry {
        Entry {
            name: name.into(),
            bytes,
            ..entry(Duration::from_secs(10), age)
        }
    }

    fn code<T>(r: Result<T, Status>) -> Option<tonic::Code> {
        r.err().map(|s| s.code())
    }

    #[test]
    fn total_bytes_are_capped() {
        let now = Instant::now();
        let fresh = Duration::ZERO;
        let mut e = Entries::default();
        assert!(e.insert("a".into(), sized("a", 600, fresh), 1000).is_ok());
        let full = e.insert("b".into(), sized("b", 600, fresh), 1000);
        let msg = full.as_ref().err().map(|s| s.message().to_string());
        assert_eq!(code(full), Some(tonic::Code::ResourceExhausted));
        assert!(msg.is_some_and(|m| m.contains("registry is full") && m.contains("'b'")));
        assert_eq!((e.map.len(), e.bytes), (1, 600));
        // Replacing an entry counts only the difference.
        assert!(e.insert("a".into(), sized("a", 900, fresh), 1000).is_ok());
        assert_eq!(e.bytes, 900);
        assert!(e.remove("a") && !e.remove("a"));
        assert_eq!(e.bytes, 0);
        // Expired entries give their bytes back.
        assert!(
            e.insert(
                "old".into(),
                sized("old", 700, Duration::from_secs(25)),
                1000
            )
            .is_ok()
        );
        assert!(
            e.insert("new".into(), sized("new", 200, fresh), 1000)
                .is_ok()
        );
        e.drop_expired(now);
        assert_eq!((e.map.len(), e.bytes), (1, 200));
    }

    #[test]
    fn entry_bytes_count_every_text() {
        let ports = HashMap::from([("http".to_string(), 80)]);
        let metadata = HashMap::from([("k".to_string(), "v".repeat(1000))]);
        let bytes = entry_bytes("svc", "127.0.0.1", &ports, &metadata);
        assert_eq!(
            bytes,
            ENTRY_OVERHEAD + 9 + 9 + (4 + PAIR_OVERHEAD) + (1 + 1000 + PAIR_OVERHEAD)
        );
        // The largest entry the per-field limits allow is refused as a whole.
        let widest: HashMap<String, String> = (0..MAX_PAIRS)
            .map(|k| {
                (
                    format!("{k:0width$}", width = MAX_KEY),
                    "v".repeat(MAX_TEXT),
                )
            })
            .collect();
        assert!(entry_bytes("x", "h", &HashMap::new(), &widest) > MAX_ENTRY_BYTES);
    }
}
