//! Server streams: WatchEvents (from the core's event broadcast, filtered by name) and
//! StreamLogs (a tail of N lines, then follow). Each stream is one task that pumps into a
//! bounded channel; it ends when the client goes away or the server closes. A receiver that
//! falls behind the broadcast gets a notice and carries on.

use std::collections::HashSet;
use std::time::SystemTime;

use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::{MAX_NAMES, MAX_TAIL, RussellApi, resolve};
use crate::convert::timestamp;
use crate::pb;

/// What a server stream returns.
pub type Stream<T> = ReceiverStream<Result<T, Status>>;

/// Items buffered per stream before the pump waits for the client.
const BUFFER: usize = 256;

/// Event kind of the notice sent to a watcher that missed events.
pub const LAGGED_KIND: &str = "lagged";

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
    let mut events = api.orch.events();
    let mut closing = api.closing.clone();
    let (tx, rx) = mpsc::channel(BUFFER);
    tokio::spawn(async move {
        loop {
            let item = tokio::select! {
                () = tx.closed() => break,
                _ = closing.wait_for(|c| *c) => break,
                r = events.recv() => r,
            };
            let event = match item {
                Ok(e) if filter.is_empty() || filter.contains(&e.service) => pb::Event::from(&e),
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(n)) => lagged_notice(n),
                Err(broadcast::error::RecvError::Closed) => break,
            };
            if tx.send(Ok(event)).await.is_err() {
                break;
            }
        }
    });
    Ok(ReceiverStream::new(rx))
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

pub(super) fn stream_logs(
    api: &RussellApi,
    req: pb::StreamLogsRequest,
) -> Result<Stream<pb::LogLine>, Status> {
    let service = if req.name.is_empty() {
        None
    } else {
        Some(resolve(&api.orch, "name", &req.name)?)
    };
    if req.tail > MAX_TAIL {
        return Err(Status::invalid_argument(format!(
            "tail = {} is out of range (at most {MAX_TAIL})",
            req.tail
        )));
    }
    // Subscribe before reading the tail, so no line falls between the two.
    let mut live = req.follow.then(|| api.orch.log_subscribe());
    let tail = if req.tail == 0 {
        Vec::new()
    } else {
        api.orch.log_tail(service.as_deref(), req.tail as usize)
    };
    let mut closing = api.closing.clone();
    let (tx, rx) = mpsc::channel(BUFFER);
    tokio::spawn(async move {
        for line in &tail {
            if tx.send(Ok(pb::LogLine::from(line))).await.is_err() {
                return;
            }
        }
        let Some(live) = live.as_mut() else {
            return;
        };
        let last_tail = tail.last().map(|l| l.timestamp);
        loop {
            let item = tokio::select! {
                () = tx.closed() => break,
                _ = closing.wait_for(|c| *c) => break,
                r = live.recv() => r,
            };
            let line = match item {
                Ok(l) if service.as_ref().is_some_and(|s| *s != l.service) => continue,
                // Already sent with the tail (it arrived between subscribe and tail).
                Ok(l)
                    if last_tail.is_some_and(|t| l.timestamp <= t)
                        && tail.iter().rev().take(64).any(|x| {
                            x.timestamp == l.timestamp && x.service == l.service && x.line == l.line
                        }) =>
                {
                    continue;
                }
                Ok(l) => pb::LogLine::from(&l),
                Err(broadcast::error::RecvError::Lagged(n)) => pb::LogLine {
                    service: "russell".to_string(),
                    timestamp: Some(timestamp(SystemTime::now())),
                    stream: "stderr".to_string(),
                    line: format!("[{n} log lines skipped: this client read too slowly]"),
                },
                Err(broadcast::error::RecvError::Closed) => break,
            };
            if tx.send(Ok(line)).await.is_err() {
                break;
            }
        }
    });
    Ok(ReceiverStream::new(rx))
}
