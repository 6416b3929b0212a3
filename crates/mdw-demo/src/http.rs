//! The HTTP health endpoint: hyper 1, HTTP/1.1, one task per connection.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::Health;

/// What the endpoint answers with.
pub(crate) struct Server {
    pub(crate) name: String,
    pub(crate) path: String,
    pub(crate) body: Option<String>,
    pub(crate) health: Arc<Health>,
}

impl Server {
    /// Accepts connections until the runtime is dropped.
    pub(crate) async fn serve(self, listener: TcpListener) {
        let server = Arc::new(self);
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                // Out of file descriptors or similar: back off briefly, keep serving.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            };
            let _ = stream.set_nodelay(true);
            let server = server.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let server = server.clone();
                    async move { Ok::<_, Infallible>(server.answer(&req)) }
                });
                // A client that hangs up mid-request is not an error worth reporting.
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }

    fn answer(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        if req.uri().path() != self.path {
            return respond(
                StatusCode::NOT_FOUND,
                format!("not found: {}", req.uri().path()),
            );
        }
        let (status, word) = if self.health.is_healthy() {
            (StatusCode::OK, "ok")
        } else {
            (StatusCode::SERVICE_UNAVAILABLE, "unhealthy")
        };
        let text = match &self.body {
            Some(extra) => format!("{word} {} {extra}", self.name),
            None => format!("{word} {}", self.name),
        };
        respond(status, text)
    }
}

fn respond(status: StatusCode, text: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    response
}
