//! Captured output of the services: per-service rotating files, an in-memory tail, and a
//! broadcast for followers.
//!
//! Children never write to a plain pipe (a dead Russell would SIGPIPE them): each gets two
//! named FIFOs (see `process::fifo`) that it holds open read-write. A pump task per process
//! reads both FIFOs line by line (a line is capped at [`MAX_LINE`] bytes; longer ones are
//! split) and hands each line to the [`LogStore`]. Memory is bounded whatever a service
//! prints: per service `tail_lines` lines and at most [`RING_BYTES`], plus the follower
//! broadcast and a bounded queue to the disk writer; disk by
//! `max_file_size × (max_files + 1)` per service.
//!
//! File writes happen on one dedicated thread, never on the runtime: a slow or throttled
//! disk (dirty-page throttling under a log flood) must not stall probes, exits or the API.
//! The writer appends a line to its file first and only then puts it into the tail and the
//! follower broadcast, so whatever a client has seen is on disk (in the page cache). When
//! the writer falls behind, its queue fills, the pumps wait, and the services block on their
//! FIFOs like on any pipe: flow control, and no line is lost.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use russell_config::LogSettings;
use tokio::sync::{broadcast, mpsc};

use crate::LogLine;
use crate::events::LazyBroadcast;
use crate::log_search::LogFiles;

mod file;
mod pump;

use file::RotatingFile;
#[cfg(test)]
pub(crate) use pump::pump;
pub(crate) use pump::{Pump, spawn_pump};

/// Longest line kept as one line; longer output is split.
pub const MAX_LINE: usize = 64 * 1024;

/// Capacity of the follower broadcast (slow followers lag and skip).
const FOLLOW_CAPACITY: usize = 1024;

/// Text kept in memory per service at most, whatever `tail_lines` says.
pub const RING_BYTES: usize = 4 << 20;

/// Lines queued for the disk writer at most (all services together).
const DISK_QUEUE: usize = 4096;

#[derive(Default)]
struct Ring {
    lines: VecDeque<LogLine>,
    bytes: usize,
}

/// All services' logs. Shared (`Arc`) by the handle (tails, subscriptions) and the pumps.
pub(crate) struct LogStore {
    tails: Arc<Tails>,
    /// Pumps send every line here; the disk-writer thread receives, writes the file, then
    /// records the line in `tails`. Dropping the store ends the thread.
    disk: mpsc::Sender<LogLine>,
    /// Where the files are, and whose: what a search reads (see log_search.rs).
    files: LogFiles,
}

/// What clients read: the in-memory tails and the follower broadcast. Written only by the
/// disk-writer thread.
struct Tails {
    tail_lines: usize,
    /// The last `tail_lines` lines (and at most [`RING_BYTES`] of text) per service. Std
    /// locks: held only to push or copy, never across an await, so `log_tail` stays cheap.
    /// The map changes only on a reload that adds or removes services.
    rings: RwLock<HashMap<String, Mutex<Ring>>>,
    /// Every recorded line; `Orchestrator::log_subscribe` hands out receivers.
    tx: LazyBroadcast<LogLine>,
}

impl LogStore {
    /// A store for these services (short_names); files go to `dir/<short>.log`.
    pub(crate) fn new(dir: &Path, settings: &LogSettings, shorts: &[String]) -> Self {
        let tails = Arc::new(Tails {
            tail_lines: settings.tail_lines.max(1),
            rings: RwLock::new(
                shorts
                    .iter()
                    .map(|s| (s.clone(), Mutex::new(Ring::default())))
                    .collect(),
            ),
            tx: LazyBroadcast::new(FOLLOW_CAPACITY),
        });
        let files = Files {
            dir: dir.to_path_buf(),
            max_size: settings.max_file_size,
            max_files: settings.max_files,
            open: HashMap::new(),
        };
        let (disk, queue) = mpsc::channel(DISK_QUEUE);
        let writer_tails = Arc::clone(&tails);
        let spawned = std::thread::Builder::new()
            .name("russell-logs".into())
            .spawn(move || write_to_disk(queue, files, &writer_tails));
        if let Err(e) = spawned {
            // Without the thread, the queue's receiver is gone and pumps drop their lines:
            // the services keep running, only their output is lost. Say so once.
            tracing::error!(error = %e, "cannot start the log writer thread; service output is not kept");
        }
        let files = LogFiles {
            dir: dir.to_path_buf(),
            shorts: shorts.to_vec(),
        };
        Self { tails, disk, files }
    }

    /// The files of one service (a short_name), or of all; `None` for an unknown service.
    pub(crate) fn files(&self, service: Option<&str>) -> Option<LogFiles> {
        self.files.of(service)
    }

    /// Hands one line to the disk writer, waiting while its queue is full (flow control).
    pub(crate) async fn push(&self, line: LogLine) {
        // Closed means the writer is gone (shutdown): nothing left to record into. The
        // wait is boxed: it is rare, and would otherwise weigh on every pump's future.
        if let Err(mpsc::error::TrySendError::Full(line)) = self.disk.try_send(line) {
            let _ = Box::pin(self.disk.send(line)).await;
        }
    }

    /// The last `n` lines of one service, or of all merged by time.
    pub(crate) fn tail(&self, service: Option<&str>, n: usize) -> Vec<LogLine> {
        self.tails.tail(service, n)
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<LogLine> {
        self.tails.tx.subscribe()
    }

    /// The services are now these (a reload added or removed some): a removed one's tail
    /// is forgotten (its files stay on disk), an added one gets an empty tail.
    pub(crate) fn set_services(&self, shorts: &[String]) {
        let mut rings = write(&self.tails.rings);
        rings.retain(|s, _| shorts.contains(s));
        for s in shorts {
            rings.entry(s.clone()).or_default();
        }
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

/// The disk writer's files: one per service, opened when the store starts or, for a
/// service a reload added, at its first line.
struct Files {
    dir: PathBuf,
    max_size: u64,
    max_files: u32,
    open: HashMap<String, RotatingFile>,
}

impl Files {
    /// The file of `short`, if it is a service of `tails`; files of services that are gone
    /// are closed when a new one opens.
    fn get(&mut self, short: &str, tails: &Tails) -> Option<&mut RotatingFile> {
        if !self.open.contains_key(short) {
            let rings = read(&tails.rings);
            if !rings.contains_key(short) {
                return None;
            }
            self.open.retain(|s, _| rings.contains_key(s));
            drop(rings);
            self.open(short);
        }
        self.open.get_mut(short)
    }

    /// Creates (or opens) the file of `short`.
    fn open(&mut self, short: &str) {
        let mut file = RotatingFile::new(
            self.dir.join(format!("{short}.log")),
            self.max_size,
            self.max_files,
        );
        if let Err(e) = file.open() {
            file.warn(&e);
        }
        self.open.insert(short.to_string(), file);
    }
}

/// The disk-writer thread: append each line to its service's file, then make it visible.
fn write_to_disk(mut queue: mpsc::Receiver<LogLine>, mut files: Files, tails: &Tails) {
    // Create every file now, before the services print: on ext4 a create costs up to half
    // a millisecond of CPU, and a service prints its first lines just when it gets ready,
    // which is when its dependents are spawned and the machine is busiest.
    let shorts: Vec<String> = read(&tails.rings).keys().cloned().collect();
    for short in shorts {
        files.open(&short);
    }
    while let Some(line) = queue.blocking_recv() {
        if let Some(file) = files.get(&line.service, tails) {
            file.write_line(&line);
        }
        tails.record(line);
    }
}

impl Tails {
    /// Puts one line into its service's ring and the follower broadcast.
    fn record(&self, line: LogLine) {
        {
            let rings = read(&self.rings);
            let Some(ring) = rings.get(&line.service) else {
                return;
            };
            let mut ring = ring.lock().unwrap_or_else(PoisonError::into_inner);
            ring.bytes += line.line.len();
            ring.lines.push_back(line.clone());
            while ring.lines.len() > self.tail_lines || ring.bytes > RING_BYTES {
                match ring.lines.pop_front() {
                    Some(old) => ring.bytes -= old.line.len(),
                    None => break,
                }
            }
        }
        self.tx.send(line);
    }

    fn tail(&self, service: Option<&str>, n: usize) -> Vec<LogLine> {
        let copy = |ring: &Mutex<Ring>| -> Vec<LogLine> {
            let ring = ring.lock().unwrap_or_else(PoisonError::into_inner);
            let skip = ring.lines.len().saturating_sub(n);
            ring.lines.iter().skip(skip).cloned().collect()
        };
        let rings = read(&self.rings);
        match service {
            Some(s) => rings.get(s).map(copy).unwrap_or_default(),
            None => {
                let mut all: Vec<LogLine> = rings.values().flat_map(copy).collect();
                all.sort_by_key(|l| l.timestamp);
                let skip = all.len().saturating_sub(n);
                all.split_off(skip)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::SystemTime;

    use super::*;
    use crate::LogStream;

    fn line(s: &str) -> LogLine {
        LogLine {
            service: "a".into(),
            stream: LogStream::Stdout,
            timestamp: SystemTime::now(),
            line: s.into(),
        }
    }

    /// Waits until the writer thread has recorded `n` lines of service `a` in total.
    async fn recorded(store: &LogStore, service: &str, n: usize) {
        for _ in 0..500 {
            if store.tail(Some(service), usize::MAX).len() >= n {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        panic!("the writer never recorded {n} lines of {service}");
    }

    #[tokio::test]
    async fn tail_is_bounded_and_merged() {
        let dir = tempfile::tempdir().unwrap();
        let settings = LogSettings {
            dir: None,
            max_file_size: 1 << 20,
            max_files: 1,
            tail_lines: 3,
        };
        let store = LogStore::new(dir.path(), &settings, &["a".into(), "b".into()]);
        for i in 0..5 {
            store.push(line(&format!("{i}"))).await;
        }
        let mut b = line("b0");
        b.service = "b".into();
        store.push(b).await;
        recorded(&store, "b", 1).await;
        let a: Vec<_> = store
            .tail(Some("a"), 10)
            .into_iter()
            .map(|l| l.line)
            .collect();
        assert_eq!(a, ["2", "3", "4"]);
        let all: Vec<_> = store.tail(None, 2).into_iter().map(|l| l.line).collect();
        assert_eq!(all, ["4", "b0"]);
        assert!(store.tail(Some("zzz"), 1).is_empty());
    }

    #[tokio::test]
    async fn a_line_in_the_tail_is_already_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let settings = LogSettings {
            dir: None,
            max_file_size: 1 << 20,
            max_files: 1,
            tail_lines: 100,
        };
        let store = LogStore::new(dir.path(), &settings, &["a".into()]);
        let mut follow = store.subscribe();
        for i in 0..50 {
            store.push(line(&format!("n{i}"))).await;
        }
        for i in 0..50 {
            let seen = follow.recv().await.unwrap();
            assert_eq!(seen.line, format!("n{i}"));
            let file = std::fs::read_to_string(dir.path().join("a.log")).unwrap();
            assert!(file.contains(&format!(" n{i}\n")), "n{i} not yet on disk");
        }
    }
}
