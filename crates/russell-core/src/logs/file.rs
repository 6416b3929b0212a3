//! One service's log file on disk, rotated by size.

use std::fmt::Write as _;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use crate::{LogLine, LogStream};

/// `<short>.log`, rotated to `<short>.log.1` … `<short>.log.<max_files>` when it would grow
/// past `max_size` (0 = never rotate). Files are 0600. Write errors are logged once per
/// file open, never fatal: losing a log line must not stop a service.
pub(super) struct RotatingFile {
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
    pub(super) fn new(path: PathBuf, max_size: u64, max_files: u32) -> Self {
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

    pub(super) fn write_line(&mut self, line: &LogLine) {
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
    pub(super) fn warn(&mut self, e: &std::io::Error) {
        if !self.warned {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot write log file");
            self.warned = true;
        }
    }

    /// The open file, opened (created 0600 if missing, for appending) if it is not yet.
    pub(super) fn open(&mut self) -> std::io::Result<&mut File> {
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

    use std::time::SystemTime;

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
}
