//! Server streams: WatchEvents (from the core's event broadcast, filtered by name) and
//! StreamLogs (a tail of N lines, then follow; with a filter — since, until, grep — the
//! tail is searched in the log files, see log_search.rs, and the follow filtered alike).
//! Each stream is one task that pumps into a channel; it ends when the client goes away or
//! the server closes.
//!
//! Memory is bounded whatever clients do:
//! - at most [`MAX_STREAMS`] StreamLogs and [`MAX_STREAMS`] WatchEvents streams are open at
//!   once; more get RESOURCE_EXHAUSTED;
//! - each stream holds at most [`STREAM_BYTES`] of messages its client has not taken yet.
//!   Past that, live lines and events are dropped and counted, and the client gets a notice
//!   ("N log lines skipped", or a "lagged" event) once it reads again — as when it falls
//!   behind the core's broadcast;
//! - the history (tail) a StreamLogs call copies is held, until it is sent, against a
//!   budget of [`TAIL_BYTES`] shared by all streams; history is never dropped.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use russell_core::LogLine;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, SemaphorePermit, broadcast, mpsc};
use tonic::Status;

use russell_core::log_search::to_millis;

use super::{MAX_NAMES, MAX_TAIL, RussellApi, log_search, resolve, resolve_service};
use crate::convert::timestamp;
use crate::pb;

/// Most StreamLogs streams open at once; the same number again for WatchEvents.
pub const MAX_STREAMS: usize = 256;
/// Bytes of messages one stream holds for its client at most.
pub(crate) const STREAM_BYTES: usize = 256 * 1024;
/// Messages one stream holds at most; high enough that the byte budget binds first even
/// for short lines (2048 × [`MESSAGE_OVERHEAD`] = [`STREAM_BYTES`]).
const STREAM_ITEMS: usize = 2048;
/// Bookkeeping bytes counted per message on top of its text.
const MESSAGE_OVERHEAD: usize = 128;
/// Log history that all StreamLogs streams together hold before they have sent it.
const TAIL_BYTES: usize = 64 << 20;
/// Dropped lines are matched against this many of the tail's last lines (see stream_logs).
const TAIL_OVERLAP: usize = 64;

/// Places of the open StreamLogs streams.
static LOG_STREAMS: Semaphore = Semaphore::const_new(MAX_STREAMS);
/// Places of the open WatchEvents streams.
pub(crate) static WATCH_STREAMS: Semaphore = Semaphore::const_new(MAX_STREAMS);
/// Bytes of history copied for StreamLogs calls and not yet sent.
static TAILS: Semaphore = Semaphore::const_new(TAIL_BYTES);

/// Streams open now, of both kinds.
pub(crate) fn open_streams() -> usize {
    2 * MAX_STREAMS - LOG_STREAMS.available_permits() - WATCH_STREAMS.available_permits()
}

/// Event kind of the notice sent to a watcher that missed events.
pub const LAGGED_KIND: &str = "lagged";

/// What a server stream returns: the messages its pump queued. Each holds its share of the
/// stream's byte budget until the transport takes it; dropping the stream frees its place.
pub struct Stream<T> {
    rx: mpsc::Receiver<Queued<T>>,
    _slot: SemaphorePermit<'static>,
}

impl<T> std::fmt::Debug for Stream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("queued", &self.rx.len())
            .finish()
    }
}

impl<T> tokio_stream::Stream for Stream<T> {
    type Item = Result<T, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx).map(|q| q.map(|q| Ok(q.item)))
    }
}

/// A queued message and its bytes of the stream's budget.
pub(crate) struct Queued<T> {
    item: T,
    _bytes: OwnedSemaphorePermit,
}

/// The client went away.
pub(crate) struct Gone;

/// What became of a message offered without waiting.
enum Offer {
    Queued,
    Full,
    Gone,
}

/// The pump's end of a [`Stream`].
pub(crate) struct Feed<T> {
    pub(crate) tx: mpsc::Sender<Queued<T>>,
    budget: Arc<Semaphore>,
    /// Size of `budget`: a message counts at most this much, so that any one fits.
    limit: usize,
    /// Messages dropped since the last notice.
    skipped: u64,
    /// The message telling the client how many it missed.
    notice: fn(u64) -> T,
}

/// A stream and its feed, holding `budget` bytes at most.
pub(crate) fn channel<T>(
    slot: SemaphorePermit<'static>,
    budget: usize,
    notice: fn(u64) -> T,
) -> (Feed<T>, Stream<T>) {
    let (tx, rx) = mpsc::channel(STREAM_ITEMS);
    let feed = Feed {
        tx,
        budget: Arc::new(Semaphore::new(budget)),
        limit: budget,
        skipped: 0,
        notice,
    };
    (feed, Stream { rx, _slot: slot })
}

/// Semaphore permits for `bytes` (with the budget at most `limit`).
fn permits(bytes: usize, limit: usize) -> u32 {
    u32::try_from(bytes.saturating_add(MESSAGE_OVERHEAD).min(limit)).unwrap_or(u32::MAX)
}

impl<T> Feed<T> {
    /// Queues a message of `bytes`, waiting for room. False when the client is gone.
    async fn send(&self, bytes: usize, item: T) -> bool {
        let wanted = permits(bytes, self.limit);
        let Ok(room) = self.budget.clone().acquire_many_owned(wanted).await else {
            return false;
        };
        self.tx.send(Queued { item, _bytes: room }).await.is_ok()
    }

    /// Queues a message of `bytes` if there is room now; `make` builds it only then.
    fn try_queue(&self, bytes: usize, make: impl FnOnce() -> T) -> Offer {
        if self.tx.is_closed() {
            return Offer::Gone;
        }
        let wanted = permits(bytes, self.limit);
        let Ok(room) = self.budget.clone().try_acquire_many_owned(wanted) else {
            return Offer::Full;
        };
        let queued = Queued {
            item: make(),
            _bytes: room,
        };
        match self.tx.try_send(queued) {
            Ok(()) => Offer::Queued,
            Err(TrySendError::Full(_)) => Offer::Full,
            Err(TrySendError::Closed(_)) => Offer::Gone,
        }
    }

    /// Queues a live message if the stream has room, else drops and counts it. A pending
    /// notice of dropped messages goes first.
    pub(crate) fn offer(&mut self, bytes: usize, make: impl FnOnce() -> T) -> Result<(), Gone> {
        if !self.flush()? {
            self.skipped += 1;
            return Ok(());
        }
        match self.try_queue(bytes, make) {
            Offer::Queued => Ok(()),
            Offer::Full => {
                self.skipped += 1;
                Ok(())
            }
            Offer::Gone => Err(Gone),
        }
    }

    /// Counts `n` messages missed before they reached this stream, and tries to tell.
    pub(crate) fn missed(&mut self, n: u64) -> Result<(), Gone> {
        self.skipped = self.skipped.saturating_add(n);
        self.flush().map(|_| ())
    }

    /// Queues the notice of dropped messages, if any. True when none is pending any more.
    fn flush(&mut self) -> Result<bool, Gone> {
        if self.skipped == 0 {
            return Ok(true);
        }
        let (n, notice) = (self.skipped, self.notice);
        match self.try_queue(MESSAGE_OVERHEAD, || notice(n)) {
            Offer::Queued => {
                self.skipped = 0;
                Ok(true)
            }
            Offer::Full => Ok(false),
            Offer::Gone => Err(Gone),
        }
    }
}

/// A place among `MAX_STREAMS` open streams of `rpc`, or RESOURCE_EXHAUSTED.
pub(crate) fn take_slot(
    slots: &'static Semaphore,
    rpc: &str,
) -> Result<SemaphorePermit<'static>, Status> {
    slots.try_acquire().map_err(|_| {
        Status::resource_exhausted(format!(
            "Russell already serves {MAX_STREAMS} open {rpc} streams, its limit; close some \
             (mdw logs -f, mdw events, ControlCenter) and retry"
        ))
    })
}

pub(super) fn watch_events(
    api: &RussellApi,
    req: pb::WatchEventsRequest,
) -> Result<Stream<pb::Event>, Status> {
    if req.names.len() > MAX_NAMES {
        return Err(Status::invalid_argument(format!(
            "{} names given; watch at most {MAX_NAMES} (or none for all)",
            req.names.len()
        )));
    }
    let filter = req
        .names
        .iter()
        .map(|n| resolve(&api.orch, "names[]", n))
        .collect::<Result<HashSet<_>, _>>()?;
    let slot = take_slot(&WATCH_STREAMS, "WatchEvents")?;
    let mut events = api.orch.events();
    let mut closing = api.closing.clone();
    let (mut feed, stream) = channel(slot, STREAM_BYTES, lagged_notice);
    tokio::spawn(async move {
        loop {
            let item = tokio::select! {
                () = feed.tx.closed() => break,
                _ = closing.wait_for(|c| *c) => break,
                r = events.recv() => r,
            };
            let sent = match item {
                Ok(e) if filter.is_empty() || filter.contains(&e.service) => {
                    let event = pb::Event::from(&e);
                    let bytes = event.kind.len()
                        + event.service.len()
                        + event.message.len()
                        + event.state.len();
                    feed.offer(bytes, || event)
                }
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(n)) => feed.missed(n),
                Err(broadcast::error::RecvError::Closed) => break,
            };
            if sent.is_err() {
                break;
            }
        }
    });
    Ok(stream)
}

fn lagged_notice(missed: u64) -> pb::Event {
    pb::Event {
        kind: LAGGED_KIND.to_string(),
        message: format!(
            "{missed} events were skipped because this client read too slowly; re-read the status"
        ),
        timestamp: Some(timestamp(SystemTime::now())),
        ..Default::default()
    }
}

fn skipped_lines_notice(missed: u64) -> pb::LogLine {
    pb::LogLine {
        service: "russell".to_string(),
        timestamp: Some(timestamp(SystemTime::now())),
        stream: "stderr".to_string(),
        line: format!("[{missed} log lines skipped: this client read too slowly]"),
    }
}

/// Bytes a log line counts for.
fn line_bytes(l: &LogLine) -> usize {
    l.service.len() + l.line.len()
}

pub(super) async fn stream_logs(
    api: &RussellApi,
    req: pb::StreamLogsRequest,
) -> Result<Stream<pb::LogLine>, Status> {
    let service = if req.name.is_empty() {
        None
    } else {
        // An external has no output here: refused, instead of a follow that never ends.
        let what = "capture the output of";
        Some(resolve_service(&api.orch, "name", &req.name, what)?)
    };
    if req.tail > MAX_TAIL {
        return Err(Status::invalid_argument(format!(
            "tail = {} is out of range (at most {MAX_TAIL})",
            req.tail
        )));
    }
    let filter = log_search::filter(&req)?;
    let slot = take_slot(&LOG_STREAMS, "StreamLogs")?;
    // Subscribe before reading the tail, so no line falls between the two.
    let mut live = req.follow.then(|| api.orch.log_subscribe());
    let mut tail = if req.tail == 0 {
        Vec::new()
    } else if filter.is_empty() {
        api.orch.log_tail(service.as_deref(), req.tail as usize)
    } else {
        // Half the guard below: a search over several services holds two such sets while
        // it merges them, and the guard counts bookkeeping on top of the text.
        let bytes = TAIL_BYTES / 2;
        log_search::history(api, service.as_deref(), &filter, req.tail as usize, bytes).await?
    };
    // A window that ended before now has no live lines to follow.
    let follow_until = match filter.until {
        Some(u) => match u.duration_since(SystemTime::now()) {
            Ok(left) => Some(tokio::time::Instant::now() + left),
            Err(_) => {
                live = None;
                None
            }
        },
        None => None,
    };
    let tail_bytes = tail.iter().map(|l| line_bytes(l) + MESSAGE_OVERHEAD).sum();
    let tail_room = TAILS
        .try_acquire_many(permits(tail_bytes, TAIL_BYTES))
        .map_err(|_| {
            Status::resource_exhausted(format!(
                "open log streams already hold {} MiB of history their clients have not read; \
                 retry later or ask for fewer lines (tail = {})",
                TAIL_BYTES >> 20,
                req.tail
            ))
        })?;
    let mut closing = api.closing.clone();
    let (mut feed, stream) = channel(slot, STREAM_BYTES, skipped_lines_notice);
    tokio::spawn(async move {
        for line in &tail {
            let sent = tokio::select! {
                s = feed.send(line_bytes(line), pb::LogLine::from(line)) => s,
                _ = closing.wait_for(|c| *c) => false,
            };
            if !sent {
                return;
            }
        }
        // Keep only what the follow loop compares against.
        let recent = tail.split_off(tail.len().saturating_sub(TAIL_OVERLAP));
        drop(tail);
        drop(tail_room);
        let Some(live) = live.as_mut() else {
            return;
        };
        // Compared in milliseconds: lines read back from the files keep no more.
        let last_tail = recent.last().map(|l| to_millis(l.timestamp));
        let ends = async {
            match follow_until {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(ends);
        loop {
            let item = tokio::select! {
                () = feed.tx.closed() => break,
                _ = closing.wait_for(|c| *c) => break,
                () = &mut ends => break,
                r = live.recv() => r,
            };
            let sent = match item {
                Ok(l) if service.as_ref().is_some_and(|s| *s != l.service) => continue,
                Ok(l) if !filter.matches(&l) => continue,
                // Already sent with the tail (it arrived between subscribe and tail).
                Ok(l)
                    if last_tail.is_some_and(|t| to_millis(l.timestamp) <= t)
                        && recent.iter().any(|x| {
                            to_millis(x.timestamp) == to_millis(l.timestamp)
                                && x.service == l.service
                                && x.line == l.line
                        }) =>
                {
                    continue;
                }
                Ok(l) => feed.offer(line_bytes(&l), || pb::LogLine::from(&l)),
                Err(broadcast::error::RecvError::Lagged(n)) => feed.missed(n),
                Err(broadcast::error::RecvError::Closed) => break,
            };
            if sent.is_err() {
                break;
            }
        }
    });
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_stream::StreamExt;

    static TEST_SLOTS: Semaphore = Semaphore::const_new(2);
    static ONE_SLOT: Semaphore = Semaphore::const_new(1);
    static OTHER_SLOT: Semaphore = Semaphore::const_new(1);

    fn notice(n: u64) -> String {
        format!("skipped {n}")
    }

    async fn next(s: &mut Stream<String>) -> Option<String> {
        s.next().await.and_then(Result::ok)
    }

    #[test]
    fn streams_beyond_the_limit_are_refused() {
        let a = take_slot(&TEST_SLOTS, "StreamLogs");
        let b = take_slot(&TEST_SLOTS, "StreamLogs");
        assert!(a.is_ok() && b.is_ok());
        let refused = take_slot(&TEST_SLOTS, "StreamLogs").err();
        assert_eq!(
            refused.as_ref().map(Status::code),
            Some(tonic::Code::ResourceExhausted)
        );
        let msg = refused.map(|s| s.message().to_string()).unwrap_or_default();
        assert!(msg.contains("256 open StreamLogs streams"), "{msg}");
        drop(a);
        assert!(take_slot(&TEST_SLOTS, "StreamLogs").is_ok());
    }

    #[tokio::test]
    async fn a_stalled_stream_holds_its_budget_then_gets_a_notice() {
        let slot = take_slot(&ONE_SLOT, "test").expect("slot");
        // Room for two 300-byte messages (each counts 300 + MESSAGE_OVERHEAD).
        let budget = 2 * (300 + MESSAGE_OVERHEAD) + 50;
        let (mut feed, mut stream) = channel(slot, budget, notice);
        for i in 0..5 {
            assert!(feed.offer(300, || format!("line {i}")).is_ok());
        }
        assert_eq!(feed.skipped, 3);
        assert_eq!(next(&mut stream).await.as_deref(), Some("line 0"));
        // Room for the notice, not for the next line as well.
        assert!(feed.offer(300, || "line 5".to_string()).is_ok());
        assert_eq!(feed.skipped, 1);
        assert_eq!(next(&mut stream).await.as_deref(), Some("line 1"));
        assert_eq!(next(&mut stream).await.as_deref(), Some("skipped 3"));
        assert!(feed.offer(300, || "line 6".to_string()).is_ok());
        assert_eq!(next(&mut stream).await.as_deref(), Some("skipped 1"));
        assert_eq!(next(&mut stream).await.as_deref(), Some("line 6"));
        drop(stream);
        assert!(feed.offer(300, || "line 7".to_string()).is_err());
        // The stream's place is free again.
        assert!(take_slot(&ONE_SLOT, "test").is_ok());
    }

    #[tokio::test]
    async fn missed_messages_are_told_and_big_ones_still_fit() {
        let slot = take_slot(&OTHER_SLOT, "test").expect("slot");
        let (mut feed, mut stream) = channel(slot, 1000, notice);
        assert!(feed.missed(7).is_ok());
        assert_eq!(next(&mut stream).await.as_deref(), Some("skipped 7"));
        // Larger than the whole budget: counted as the whole budget, so it fits when empty.
        assert!(feed.send(5000, "huge".to_string()).await);
        assert!(feed.offer(10, || "small".to_string()).is_ok());
        assert_eq!(feed.skipped, 1);
        assert_eq!(next(&mut stream).await.as_deref(), Some("huge"));
    }
}
