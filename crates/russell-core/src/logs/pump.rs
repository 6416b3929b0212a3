//! The pump of one process: reads its two FIFOs line by line (a line is capped at
//! [`MAX_LINE`] bytes; longer ones are split) and hands each line to the [`LogStore`].

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::unix::pipe;

use super::{LogStore, MAX_LINE};
use crate::{LogLine, LogStream};

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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

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
}
