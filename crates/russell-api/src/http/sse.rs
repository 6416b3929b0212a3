//! `GET /v1/events`: the core's event broadcast as server-sent events. One `data:` line of
//! JSON per event, sent the moment the broadcast delivers it; a comment line first (so a
//! client knows it is subscribed), and one every [`KEEP_ALIVE`] so that proxies keep an
//! idle stream open. The stream ends when Russell closes.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;
use http_body_util::{BodyExt, StreamBody};
use hyper::Response;
use hyper::body::Frame;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use russell_core::{Event, Orchestrator};
use tokio::sync::{broadcast, watch};

use super::Body;
use crate::json::EventJson;

/// Pause after which an idle stream gets a comment line.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The event as one SSE message.
fn message(e: &Event) -> Bytes {
    let json = EventJson {
        kind: e.kind.as_str().to_owned(),
        service: e.service.clone(),
        message: e.message.clone(),
        timestamp: Some(humantime::format_rfc3339_millis(e.timestamp).to_string()),
        state: e.state.as_str().to_owned(),
        pid: e.pid,
        exit_code: e.exit_code,
        signal: e.signal,
    };
    let line = serde_json::to_string(&json).unwrap_or_default();
    Bytes::from(format!("event: {}\ndata: {line}\n\n", e.kind.as_str()))
}

struct Follow {
    rx: broadcast::Receiver<Event>,
    closing: watch::Receiver<bool>,
    greeted: bool,
}

/// The event stream response.
pub(super) fn events(orch: &Orchestrator, closing: watch::Receiver<bool>) -> Response<Body> {
    let follow = Follow {
        rx: orch.events(),
        closing,
        greeted: false,
    };
    let frames = stream::unfold(follow, |mut f| async move {
        if !f.greeted {
            f.greeted = true;
            return Some((Ok(Frame::data(Bytes::from_static(b": subscribed\n\n"))), f));
        }
        let chunk = tokio::select! {
            r = f.rx.recv() => match r {
                Ok(e) => message(&e),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    Bytes::from(format!(": {n} events dropped: this client read too slowly\n\n"))
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            },
            _ = f.closing.wait_for(|c| *c) => return None,
            () = tokio::time::sleep(KEEP_ALIVE) => Bytes::from_static(b": keep-alive\n\n"),
        };
        Some((Ok::<_, Infallible>(Frame::data(chunk)), f))
    });
    let mut resp = Response::new(StreamBody::new(frames).boxed());
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}
