//! Building [`Event`]s: one constructor so that every event carries service, message,
//! timestamp and the state after it.

use std::time::SystemTime;

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
