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
use std::fmt::Write as _;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::SystemTime;

use russell_config::LogSettings;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::unix::pipe;
use tokio::sync::{broadcast, mpsc};

use crate::events::LazyBroadcast;
use crate::log_search::LogFiles;
use crate::{LogLine, LogStream};

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

/// Bytes read from a FIFO at once, into a buffer on the stack: a FIFO hands out at most
/// what its writer wrote (typically a line or a few) per read.
const PUMP_READ: usize = 1024;

/// The pump task of one process; dropping it stops the pump (so that a detached Russell
/// leaves the FIFOs to the next one, and a replaced process's pump goes).
pub(crate) struct Pump(tokio::task::JoinHandle<()>);

impl Drop for Pump {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Reads a service's two FIFOs until both reach EOF (every writer closed them), pushing
/// each line into the store.
pub(crate) fn spawn_pump(
    store: Arc<LogStore>,
    service: String,
    stdout: pipe::Receiver,
    stderr: pipe::Receiver,
) -> Pump {
    Pump(tokio::spawn(pump(store, service, stdout, stderr)))
}

/// The pump's loop (see [`spawn_pump`]). A silent service costs no buffer: the pump
/// waits for readability and keeps only unconsumed bytes.
pub(crate) async fn pump(
    store: Arc<LogStore>,
    service: String,
    stdout: pipe::Receiver,
    stderr: pipe::Receiver,
) {
    let mut out = LineReader::new(stdout);
    let mut err = LineReader::new(stderr);
    let (mut out_done, mut err_done) = (false, false);
    loop {
        let (stream, line) = tokio::select! {
            l = out.next_line(), if !out_done => (LogStream::Stdout, l),
            l = err.next_line(), if !err_done => (LogStream::Stderr, l),
            else => break,
        };
        match line {
            Some(line) => {
                store
                    .push(LogLine {
                        service: service.clone(),
                        stream,
                        timestamp: SystemTime::now(),
                        line,
                    })
                    .await
            }
            None if stream == LogStream::Stdout => out_done = true,
            None => err_done = true,
        }
    }
}

/// Splits a byte stream into lines of at most [`MAX_LINE`] bytes. Cancel-safe: the only
/// await is a read, which takes bytes into `self` in the poll that returns them.
struct LineReader<R> {
    reader: R,
    /// Read and not yet returned: the start of the next line(s). Unallocated while empty,
    /// which is most of the time.
    pending: Vec<u8>,
    /// Leading bytes of `pending` known to hold no newline.
    scanned: usize,
    eof: bool,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    fn new(reader: R) -> Self {
        Self {
            reader,
            pending: Vec::new(),
            scanned: 0,
            eof: false,
        }
    }

    /// The next line without its newline; `None` at EOF (or on a read error).
    async fn next_line(&mut self) -> Option<String> {
        loop {
            if let Some(line) = self.complete_line() {
                return Some(line);
            }
            if self.eof {
                if self.pending.is_empty() {
                    return None;
                }
                return Some(self.take(self.pending.len(), 0));
            }
            std::future::poll_fn(|cx| self.poll_fill(cx)).await;
        }
    }

    /// A line ended by a newline, or [`MAX_LINE`] bytes without one, from `pending`.
    fn complete_line(&mut self) -> Option<String> {
        let window = self.pending.len().min(MAX_LINE + 1);
        let from = self.scanned.min(window);
        match self.pending[from..window].iter().position(|&b| b == b'\n') {
            Some(pos) => Some(self.take(from + pos, 1)),
            None if self.pending.len() >= MAX_LINE => Some(self.take(MAX_LINE, 0)),
            None => {
                self.scanned = window;
                None
            }
        }
    }

    /// Reads once (waiting for readability) into a buffer on the stack and appends what
    /// came to `pending`; EOF or an error sets `eof`.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut buf = [0u8; PUMP_READ];
        loop {
            let mut read = ReadBuf::new(&mut buf);
            match Pin::new(&mut self.reader).poll_read(cx, &mut read) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Poll::Ready(Err(_)) => self.eof = true,
                Poll::Ready(Ok(())) if read.filled().is_empty() => self.eof = true,
                Poll::Ready(Ok(())) => self.pending.extend_from_slice(read.filled()),
            }
            return Poll::Ready(());
        }
    }

    /// The first `len` bytes of `pending` as a line (a trailing CR dropped), and `skip`
    /// more bytes (the newline) consumed. When they are all of `pending` (the usual case),
    /// its allocation becomes the line and `pending` is left unallocated.
    fn take(&mut self, len: usize, skip: usize) -> String {
        let mut bytes = if len + skip == self.pending.len() {
            let mut all = std::mem::take(&mut self.pending);
            all.truncate(len);
            all
        } else {
            let head = self.pending[..len].to_vec();
            self.pending.drain(..len + skip);
            head
        };
        self.scanned = 0;
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        // Lines stay in the tails: no slack from reads that grew `pending`.
        if bytes.capacity() > bytes.len() + 16 {
            bytes.shrink_to_fit();
        }
        String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

/// `<short>.log`, rotated to `<short>.log.1` … `<short>.log.<max_files>` when it would grow
/// past `max_size` (0 = never rotate). Files are 0600. Write errors are logged once per
/// file open, never fatal: losing a log line must not stop a service.
struct RotatingFile {
    path: PathBuf,
    max_size: u64,
    max_files: u32,
    file: Option<File>,
    size: u64,
    warned: bool,
    /// Formatting buffer, reused for every line.
    line_buf: String,
}

impl RotatingFile {
    fn new(path: PathBuf, max_size: u64, max_files: u32) -> Self {
        Self {
            path,
            max_size,
            max_files,
            file: None,
            size: 0,
            warned: false,
            line_buf: String::new(),
        }
    }

    fn write_line(&mut self, line: &LogLine) {
        let stream = match line.stream {
            LogStream::Stdout => "out",
            LogStream::Stderr => "err",
        };
        // One reused buffer: the writer thread allocates nothing per line once warm.
        let mut text = std::mem::take(&mut self.line_buf);
        text.clear();
        let _ = writeln!(
            text,
            "{} {stream} {}",
            humantime::format_rfc3339_millis(line.timestamp),
            line.line
        );
        let written = self.write_bytes(text.as_bytes());
        self.line_buf = text;
        if let Err(e) = written {
            self.warn(&e);
            self.file = None;
        }
    }

    /// Says once (until a write succeeds again) that the file cannot be written.
    fn warn(&mut self, e: &std::io::Error) {
        if !self.warned {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot write log file");
            self.warned = true;
        }
    }

    /// The open file, opened (created 0600 if missing, for appending) if it is not yet.
    fn open(&mut self) -> std::io::Result<&mut File> {
        let file = match self.file.take() {
            Some(f) => f,
            None => {
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o600)
                    .open(&self.path)?;
                self.size = f.metadata()?.len();
                self.warned = false;
                f
            }
        };
        Ok(self.file.insert(file))
    }

    fn write_bytes(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let len = bytes.len() as u64;
        if self.max_size > 0 && self.size > 0 && self.size + len > self.max_size {
            self.rotate()?;
        }
        self.open()?.write_all(bytes)?;
        self.size += len;
        if self.max_size > 0 && self.size >= self.max_size {
            self.rotate()?;
        }
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.file = None;
        self.size = 0;
        let numbered = |k: u32| {
            let mut p = self.path.clone().into_os_string();
            p.push(format!(".{k}"));
            PathBuf::from(p)
        };
        let result = if self.max_files == 0 {
            std::fs::remove_file(&self.path)
        } else {
            for k in (1..self.max_files).rev() {
                match std::fs::rename(numbered(k), numbered(k + 1)) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            std::fs::rename(&self.path, numbered(1))
        };
        match result {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn line(s: &str) -> LogLine {
        LogLine {
            service: "a".into(),
            stream: LogStream::Stdout,
            timestamp: SystemTime::now(),
            line: s.into(),
        }
    }

    #[test]
    fn rotates_at_size_and_keeps_max_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = RotatingFile::new(dir.path().join("a.log"), 200, 2);
        for i in 0..40 {
            f.write_line(&line(&format!("line {i:03}")));
        }
        let names = |p: &str| dir.path().join(p);
        assert!(names("a.log.1").exists());
        assert!(names("a.log.2").exists());
        assert!(!names("a.log.3").exists());
        for p in ["a.log", "a.log.1", "a.log.2"] {
            let len = std::fs::metadata(names(p)).map(|m| m.len()).unwrap_or(0);
            assert!(len <= 200, "{p} is {len} bytes");
        }
        let last = std::fs::read_to_string(names("a.log.1")).unwrap()
            + &std::fs::read_to_string(names("a.log")).unwrap_or_default();
        assert!(last.trim_end().ends_with("line 039"), "{last}");
    }

    #[tokio::test]
    async fn splits_long_lines_and_strips_cr() {
        let mut data = vec![b'x'; MAX_LINE + 10];
        data.extend_from_slice(b"\nshort\r\nlast");
        let mut r = LineReader::new(&data[..]);
        assert_eq!(r.next_line().await.unwrap().len(), MAX_LINE);
        assert_eq!(r.next_line().await.unwrap(), "x".repeat(10));
        assert_eq!(r.next_line().await.unwrap(), "short");
        assert_eq!(r.next_line().await.unwrap(), "last");
        assert_eq!(r.next_line().await, None);
    }

    #[tokio::test]
    async fn keeps_only_an_unfinished_line_between_reads() {
        use tokio::io::AsyncWriteExt;
        let (mut tx, rx) = pipe::pipe().unwrap();
        let mut r = LineReader::new(rx);
        tx.write_all(b"one\ntw").await.unwrap();
        assert_eq!(r.next_line().await.unwrap(), "one");
        assert_eq!(r.pending, b"tw");
        tx.write_all(b"o\r\nthree\n").await.unwrap();
        assert_eq!(r.next_line().await.unwrap(), "two");
        assert_eq!(r.next_line().await.unwrap(), "three");
        assert_eq!(
            r.pending.capacity(),
            0,
            "nothing kept once every line is out"
        );
        tx.write_all(b"last").await.unwrap();
        drop(tx);
        assert_eq!(r.next_line().await.unwrap(), "last");
        assert_eq!(r.next_line().await, None);
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
