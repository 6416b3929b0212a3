//! StreamServiceStatus: one message per state change of a managed service, pushed from the
//! core's event broadcast (never polled), with the state before and after. Bounded like
//! WatchEvents (`../streams.rs`): a client that reads too slowly gets a notice (name
//! "russell") instead of the messages it missed; when the broadcast itself ran ahead, the
//! changes are recomputed from the current snapshot, so no change is lost silently.

use std::collections::HashMap;
use std::time::SystemTime;

use russell_core::{ServiceState, Snapshot};
use tokio::sync::broadcast;
use tonic::Status;

use super::status::{status_of, unix};
use crate::mdw::russell as m;
use crate::server::RussellApi;
use crate::server::streams::{Feed, STREAM_BYTES, Stream, WATCH_STREAMS, channel, take_slot};

pub(super) fn stream_status(api: &RussellApi) -> Result<Stream<m::ServiceStatusEvent>, Status> {
    let slot = take_slot(&WATCH_STREAMS, "StreamServiceStatus")?;
    // Subscribe before reading the states, so no change falls between the two.
    let mut events = api.orch.events();
    let mut states: HashMap<String, ServiceState> = api
        .orch
        .snapshot()
        .services
        .iter()
        .map(|s| (s.short_name.clone(), s.state))
        .collect();
    let orch = api.orch.clone();
    let mut closing = api.closing.clone();
    let (mut feed, stream) = channel(slot, STREAM_BYTES, skipped_notice);
    tokio::spawn(async move {
        loop {
            let item = tokio::select! {
                () = feed.tx.closed() => break,
                _ = closing.wait_for(|c| *c) => break,
                r = events.recv() => r,
            };
            let sent = match item {
                Ok(e) => match states.get_mut(&e.service) {
                    Some(prev) if *prev != e.state => {
                        let msg = change(&e.service, *prev, e.state, e.message, e.timestamp);
                        *prev = e.state;
                        send(&mut feed, msg)
                    }
                    // An external, or an event that changed no state.
                    _ => Ok(()),
                },
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    catch_up(&orch.snapshot(), &mut states, &mut feed)
                }
                Err(broadcast::error::RecvError::Closed) => break,
            };
            if sent.is_err() {
                break;
            }
        }
    });
    Ok(stream)
}

fn change(
    name: &str,
    prev: ServiceState,
    now: ServiceState,
    message: String,
    at: SystemTime,
) -> m::ServiceStatusEvent {
    m::ServiceStatusEvent {
        name: name.to_string(),
        previous_status: status_of(prev) as i32,
        current_status: status_of(now) as i32,
        message: if message.is_empty() {
            format!("{} → {}", prev.as_str(), now.as_str())
        } else {
            format!("{} → {}: {message}", prev.as_str(), now.as_str())
        },
        timestamp: unix(at),
    }
}

fn send(
    feed: &mut Feed<m::ServiceStatusEvent>,
    msg: m::ServiceStatusEvent,
) -> Result<(), crate::server::streams::Gone> {
    let bytes = msg.name.len() + msg.message.len();
    feed.offer(bytes, || msg)
}

/// After missed events: one message per service whose state differs from the last sent.
fn catch_up(
    snap: &Snapshot,
    states: &mut HashMap<String, ServiceState>,
    feed: &mut Feed<m::ServiceStatusEvent>,
) -> Result<(), crate::server::streams::Gone> {
    for s in &snap.services {
        let Some(prev) = states.get_mut(&s.short_name) else {
            continue;
        };
        if *prev != s.state {
            let msg = change(
                &s.short_name,
                *prev,
                s.state,
                String::new(),
                SystemTime::now(),
            );
            *prev = s.state;
            send(feed, msg)?;
        }
    }
    Ok(())
}

fn skipped_notice(missed: u64) -> m::ServiceStatusEvent {
    m::ServiceStatusEvent {
        name: "russell".to_string(),
        message: format!(
            "{missed} status changes were skipped because this client read too slowly; \
             re-read GetAllServiceStatus"
        ),
        timestamp: unix(SystemTime::now()),
        ..Default::default()
    }
}
