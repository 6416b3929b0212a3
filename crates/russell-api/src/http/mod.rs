//! Russell's HTTP listener (`[russell] http_listen`): `/metrics` for Prometheus and a JSON
//! view of the same state the gRPC services show — status, one service, start/stop/restart
//! and an event stream (server-sent events). hyper's HTTP/1.1 server, one task per
//! connection; the routes are few, so a `match` routes them (`routes.rs`).
//!
//! The token rule is the v1 gRPC rule: with `token_file` set, every route needs
//! `Authorization: Bearer <token>`, reads included.

mod metrics;
mod routes;
mod sse;

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::server::{RussellApi, TokenAuth};

/// The body of every answer: a whole JSON or text body, or the event stream.
pub(crate) type Body = BoxBody<Bytes, Infallible>;

/// What the routes need: the API (orchestrator, counters) and the token rule.
#[derive(Clone, Debug)]
pub struct HttpView {
    api: RussellApi,
    auth: TokenAuth,
    /// Turns true when Russell closes: open event streams end.
    closing: watch::Receiver<bool>,
}

impl HttpView {
    /// The view over `api`, behind `auth`; event streams end when `closing` turns true.
    pub fn new(api: RussellApi, auth: TokenAuth, closing: watch::Receiver<bool>) -> Self {
        Self { api, auth, closing }
    }

    /// Serves `listener` until `closing` turns true; open connections are dropped then.
    pub async fn serve(self, listener: TcpListener) {
        let mut closing = self.closing.clone();
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = closing.wait_for(|c| *c) => return,
            };
            let Ok((stream, _peer)) = accepted else {
                // Out of file descriptors or similar: back off briefly, keep serving.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let _ = stream.set_nodelay(true);
            let view = self.clone();
            let mut closed = self.closing.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let view = view.clone();
                    async move { Ok::<_, Infallible>(routes::answer(&view, req).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service);
                // A client that hangs up mid-request is not an error worth reporting.
                tokio::select! {
                    _ = conn => {}
                    _ = closed.wait_for(|c| *c) => {}
                }
            });
        }
    }
}
