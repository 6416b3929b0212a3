//! Building [`Event`]s: one constructor so that every event carries service, message,
//! timestamp and the state after it; and the broadcast that events and log lines go out on.

use std::sync::OnceLock;
use std::time::SystemTime;

use tokio::sync::broadcast;

use crate::{Event, EventKind, ServiceState};

/// An event with the common fields set and the optional ones empty.
pub(crate) fn event(
    kind: EventKind,
    service: &str,
    message: impl Into<String>,
    state: ServiceState,
    pid: Option<u32>,
) -> Event {
    Event {
        kind,
        service: service.to_string(),
        message: message.into(),
        timestamp: SystemTime::now(),
        state,
        pid,
        exit_code: None,
        signal: None,
        attempt: None,
        delay: None,
    }
}

/// A broadcast channel whose buffer is allocated at the first subscription. Until then a
/// send has no receiver, so it is dropped either way (a receiver only ever sees what was
/// sent after it subscribed): nothing changes for receivers, and a Russell that nobody
/// follows keeps no buffer.
pub(crate) struct LazyBroadcast<T> {
    capacity: usize,
    tx: OnceLock<broadcast::Sender<T>>,
}

impl<T: Clone> LazyBroadcast<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            tx: OnceLock::new(),
        }
    }

    /// A receiver of everything sent from now on; creates the channel the first time.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<T> {
        self.tx
            .get_or_init(|| broadcast::channel(self.capacity).0)
            .subscribe()
    }

    /// Sends to the current receivers; without any, the value is dropped.
    pub(crate) fn send(&self, value: T) {
        if let Some(tx) = self.tx.get() {
            // No receiver (any more) is fine.
            let _ = tx.send(value);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn allocates_at_the_first_subscription_and_delivers_what_follows() {
        let b = LazyBroadcast::new(4);
        b.send(1);
        assert!(b.tx.get().is_none());
        let mut rx = b.subscribe();
        b.send(2);
        let mut late = b.subscribe();
        b.send(3);
        assert_eq!(rx.try_recv().unwrap(), 2);
        assert_eq!(rx.try_recv().unwrap(), 3);
        assert_eq!(late.try_recv().unwrap(), 3);
        assert!(rx.try_recv().is_err());
    }
}
