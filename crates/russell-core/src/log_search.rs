//! Searching captured output: a filter (time window, regular expression) and the reader of
//! a service's log files, the rotated ones included.
//!
//! On disk every line is `<time> <out|err> <text>` (written by `RotatingFile` in logs/file.rs):
//! the time is RFC 3339 in UTC with milliseconds, so the files stay plain text for `less`
//! and `grep`, and sort by time. A line without that prefix (written by someone else) is
//! read as stdout with the time of the line before it (the file's modification time when
//! none comes before).
//!
//! Files of one service are read oldest first (`<short>.log.<k>` … `<short>.log.1`, then
//! `<short>.log`), line by line; only the newest matches are kept, at most a given number of
//! lines and bytes, so memory stays bounded whatever the files hold. Reading blocks: call
//! [`LogFiles::search`] on a blocking thread, never on the runtime or the actor.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use regex::Regex;

use crate::{LogLine, LogStream};

/// Which lines a search or a follow keeps. The empty filter keeps every line.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    /// Lines at or after this time.
    pub since: Option<SystemTime>,
    /// Lines at or before this time.
    pub until: Option<SystemTime>,
    /// Lines whose text (without the time and stream) matches.
    pub grep: Option<Regex>,
}

impl LogFilter {
    /// True when the filter keeps every line.
    pub fn is_empty(&self) -> bool {
        self.since.is_none() && self.until.is_none() && self.grep.is_none()
    }

    /// True when `line` passes.
    pub fn matches(&self, line: &LogLine) -> bool {
        self.passes(line.timestamp, &line.line)
    }

    /// True when a line of this time and text passes.
    fn passes(&self, time: SystemTime, text: &str) -> bool {
        self.since.is_none_or(|t| time >= t)
            && self.until.is_none_or(|t| time <= t)
            && self.grep.as_ref().is_none_or(|re| re.is_match(text))
    }
}

/// How much one search keeps at most: the newest matches win.
#[derive(Debug, Clone, Copy)]
pub struct SearchLimit {
    pub lines: usize,
    /// Text bytes (service name and line) kept at most.
    pub bytes: usize,
}

/// The log files of some services: where they are and whose they are.
#[derive(Debug, Clone)]
pub struct LogFiles {
    pub(crate) dir: PathBuf,
    /// short_names, in config order.
    pub(crate) shorts: Vec<String>,
}

/// Lines read between two looks at the cancel flag.
const CANCEL_EVERY: usize = 4096;
/// Rotated files looked for at most per service (`max_files` may have been larger once).
const MAX_ROTATED: u32 = 10_000;

impl LogFiles {
    /// The files of one of these services (a short_name), or of all; `None` for another.
    pub(crate) fn of(&self, service: Option<&str>) -> Option<LogFiles> {
        let shorts = match service {
            Some(s) if self.shorts.iter().any(|x| x == s) => vec![s.to_string()],
            Some(_) => return None,
            None => self.shorts.clone(),
        };
        Some(LogFiles {
            dir: self.dir.clone(),
            shorts,
        })
    }

    /// The newest lines of these services' files that pass `filter`, oldest first (all
    /// services merged by time). Stops early, with what it has, once `cancel` is set.
    /// Unreadable files are skipped (a service that never printed has none).
    pub fn search(
        &self,
        filter: &LogFilter,
        limit: SearchLimit,
        cancel: &AtomicBool,
    ) -> Vec<LogLine> {
        let mut kept = Kept::new(limit);
        for short in &self.shorts {
            if self.shorts.len() == 1 {
                search_service(&self.dir, short, filter, &mut kept, cancel);
                break;
            }
            // One service at a time into its own bound, then merged by time: memory stays
            // within twice the bound while lines of different services interleave.
            let mut one = Kept::new(limit);
            search_service(&self.dir, short, filter, &mut one, cancel);
            kept.merge(one);
            if cancel.load(Ordering::Relaxed) {
                break;
            }
        }
        kept.lines.into()
    }
}

/// The newest matches so far.
struct Kept {
    limit: SearchLimit,
    lines: VecDeque<LogLine>,
    bytes: usize,
}

fn line_bytes(l: &LogLine) -> usize {
    l.service.len() + l.line.len()
}

impl Kept {
    fn new(limit: SearchLimit) -> Self {
        Self {
            limit,
            lines: VecDeque::new(),
            bytes: 0,
        }
    }

    fn push(&mut self, line: LogLine) {
        self.bytes += line_bytes(&line);
        self.lines.push_back(line);
        self.trim();
    }

    fn trim(&mut self) {
        while self.lines.len() > self.limit.lines
            || (self.bytes > self.limit.bytes && !self.lines.is_empty())
        {
            if let Some(old) = self.lines.pop_front() {
                self.bytes -= line_bytes(&old);
            }
        }
    }

    /// Merges another set, both in time order (a service's file is written in order), in
    /// one pass; on equal times `self`'s line goes first.
    fn merge(&mut self, other: Kept) {
        if other.lines.is_empty() {
            return;
        }
        let mut mine = std::mem::take(&mut self.lines).into_iter().peekable();
        let mut theirs = other.lines.into_iter().peekable();
        let mut all = VecDeque::with_capacity(mine.len() + theirs.len());
        loop {
            let take_mine = match (mine.peek(), theirs.peek()) {
                (Some(a), Some(b)) => a.timestamp <= b.timestamp,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            let next = if take_mine {
                mine.next()
            } else {
                theirs.next()
            };
            all.extend(next);
        }
        self.lines = all;
        self.bytes += other.bytes;
        self.trim();
    }
}

/// File `k` of a service: `<short>.log` for 0, else `<short>.log.<k>`.
fn path_of(dir: &Path, short: &str, k: u32) -> PathBuf {
    match k {
        0 => dir.join(format!("{short}.log")),
        k => dir.join(format!("{short}.log.{k}")),
    }
}

/// The files of a service that exist now, oldest first, each as its number and inode.
fn files_of(dir: &Path, short: &str) -> Vec<(u32, u64)> {
    let mut files: Vec<(u32, u64)> = (0..=MAX_ROTATED)
        .map_while(|k| {
            let meta = std::fs::metadata(path_of(dir, short, k));
            // The current file may be missing (a service that never printed).
            match meta {
                Ok(m) => Some((k, m.ino())),
                Err(_) if k == 0 => Some((0, 0)),
                Err(_) => None,
            }
        })
        .filter(|&(_, ino)| ino != 0)
        .collect();
    files.reverse();
    files
}

/// Rotations looked past when a file moved on while the search ran.
const MOVED_AT_MOST: u32 = 4;

/// Opens the file listed as number `k` with inode `ino`: a rotation since the listing
/// renamed it to a higher number (or deleted it: `None`, its lines are past keeping).
fn open_listed(dir: &Path, short: &str, k: u32, ino: u64) -> Option<File> {
    (k..=k.saturating_add(MOVED_AT_MOST)).find_map(|k| {
        let file = File::open(path_of(dir, short, k)).ok()?;
        let same = file.metadata().is_ok_and(|m| m.ino() == ino);
        same.then_some(file)
    })
}

fn search_service(
    dir: &Path,
    short: &str,
    filter: &LogFilter,
    kept: &mut Kept,
    cancel: &AtomicBool,
) {
    // Listed first, then followed by inode: a rotation during the search neither skips a
    // file nor reads one twice.
    for (k, ino) in files_of(dir, short) {
        let Some(file) = open_listed(dir, short, k, ino) else {
            continue;
        };
        let modified = file
            .metadata()
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        // Written to last before `since`: every line in it is older.
        if filter.since.is_some_and(|t| modified < t) {
            continue;
        }
        let mut reader = BufReader::new(file);
        let mut buf = Vec::new();
        let mut previous = modified;
        let mut count = 0usize;
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            count += 1;
            if count.is_multiple_of(CANCEL_EVERY) && cancel.load(Ordering::Relaxed) {
                return;
            }
            let text = String::from_utf8_lossy(&buf);
            // Nothing is allocated for a line that does not pass: most of them, in a search.
            let (time, stream, line) = split_line(&text, previous);
            previous = time;
            if filter.passes(time, line) {
                kept.push(LogLine {
                    service: short.to_string(),
                    stream,
                    timestamp: time,
                    line: line.to_string(),
                });
            }
        }
    }
}

/// One line of a log file (newline included or not), as written by `RotatingFile`; a line
/// without the `<time> <out|err> ` prefix is stdout at `fallback`.
pub fn parse_line(service: &str, text: &str, fallback: SystemTime) -> LogLine {
    let (timestamp, stream, line) = split_line(text, fallback);
    LogLine {
        service: service.to_string(),
        stream,
        timestamp,
        line: line.to_string(),
    }
}

/// [`parse_line`] without copying: the time, the stream and the text.
fn split_line(text: &str, fallback: SystemTime) -> (SystemTime, LogStream, &str) {
    let text = text.strip_suffix('\n').unwrap_or(text);
    let parsed = text.split_once(' ').and_then(|(time, rest)| {
        let time = humantime::parse_rfc3339(time).ok()?;
        let (stream, line) = match rest.split_once(' ') {
            Some(("out", line)) => (LogStream::Stdout, line),
            Some(("err", line)) => (LogStream::Stderr, line),
            None if rest == "out" => (LogStream::Stdout, ""),
            None if rest == "err" => (LogStream::Stderr, ""),
            _ => return None,
        };
        Some((time, stream, line))
    });
    parsed.unwrap_or((fallback, LogStream::Stdout, text))
}

/// `t` cut to whole milliseconds, the precision the files keep.
pub fn to_millis(t: SystemTime) -> SystemTime {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => SystemTime::UNIX_EPOCH + Duration::from_millis(d.as_millis() as u64),
        Err(_) => t,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at(s: &str) -> SystemTime {
        humantime::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn parses_the_written_format_and_tolerates_others() {
        let fallback = at("2026-01-01T00:00:00Z");
        let l = parse_line("a", "2026-12-03T04:00:00.123Z err boom: x y\n", fallback);
        assert_eq!(l.timestamp, at("2026-12-03T04:00:00.123Z"));
        assert_eq!(l.stream, LogStream::Stderr);
        assert_eq!(l.line, "boom: x y");
        let empty = parse_line("a", "2026-12-03T04:00:00.123Z out", fallback);
        assert_eq!((empty.stream, empty.line.as_str()), (LogStream::Stdout, ""));
        for foreign in ["plain text", "2026-12-03T04:00:00Z what now", ""] {
            let l = parse_line("a", foreign, fallback);
            assert_eq!((l.timestamp, l.line.as_str()), (fallback, foreign));
        }
    }

    fn write(dir: &Path, name: &str, lines: &[(&str, &str)]) {
        let text: String = lines
            .iter()
            .map(|(t, l)| format!("{t} out {l}\n"))
            .collect();
        std::fs::write(dir.join(name), text).unwrap();
    }

    fn search(files: &LogFiles, filter: &LogFilter, lines: usize) -> Vec<String> {
        let limit = SearchLimit {
            lines,
            bytes: usize::MAX,
        };
        files
            .search(filter, limit, &AtomicBool::new(false))
            .into_iter()
            .map(|l| format!("{}:{}", l.service, l.line))
            .collect()
    }

    #[test]
    fn reads_rotated_files_oldest_first_and_keeps_the_newest_matches() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(d, "a.log.2", &[("2026-12-03T01:00:00Z", "panic one")]);
        write(d, "a.log.1", &[("2026-12-03T02:00:00Z", "fine")]);
        write(d, "a.log", &[("2026-12-03T03:00:00Z", "panic three")]);
        write(d, "b.log", &[("2026-12-03T02:30:00Z", "panic b")]);
        let files = LogFiles {
            dir: d.to_path_buf(),
            shorts: vec!["a".into(), "b".into(), "silent".into()],
        };
        let grep = LogFilter {
            grep: Some(Regex::new("^panic").unwrap()),
            ..LogFilter::default()
        };
        assert_eq!(
            search(&files, &grep, 10),
            ["a:panic one", "b:panic b", "a:panic three"]
        );
        assert_eq!(search(&files, &grep, 2), ["b:panic b", "a:panic three"]);
        let window = LogFilter {
            since: Some(at("2026-12-03T01:30:00Z")),
            until: Some(at("2026-12-03T02:45:00Z")),
            grep: None,
        };
        assert_eq!(search(&files, &window, 10), ["a:fine", "b:panic b"]);
        let bytes = SearchLimit {
            lines: 10,
            bytes: "apanic three".len(),
        };
        let newest = files.search(&grep, bytes, &AtomicBool::new(false));
        assert_eq!(newest.len(), 1);
    }

    #[test]
    fn a_file_renamed_by_a_rotation_is_still_found() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(d, "a.log.1", &[("2026-12-03T01:00:00Z", "old")]);
        write(d, "a.log", &[("2026-12-03T02:00:00Z", "new")]);
        let listed = files_of(d, "a");
        assert_eq!(listed.iter().map(|f| f.0).collect::<Vec<_>>(), [1, 0]);
        // A rotation: a.log.1 → a.log.2, a.log → a.log.1, a fresh a.log.
        std::fs::rename(d.join("a.log.1"), d.join("a.log.2")).unwrap();
        std::fs::rename(d.join("a.log"), d.join("a.log.1")).unwrap();
        write(d, "a.log", &[("2026-12-03T03:00:00Z", "newest")]);
        let read = |(k, ino): (u32, u64)| {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut open_listed(d, "a", k, ino).unwrap(), &mut text)
                .unwrap();
            text
        };
        assert!(read(listed[0]).ends_with(" old\n"));
        assert!(read(listed[1]).ends_with(" new\n"));
        assert!(files_of(d, "missing").is_empty());
    }

    #[test]
    fn the_empty_filter_keeps_everything() {
        let f = LogFilter::default();
        assert!(f.is_empty());
        let line = parse_line("a", "anything", SystemTime::now());
        assert!(f.matches(&line));
    }
}
