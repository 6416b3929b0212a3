//! The door of both gRPC services: who may call what (the token), and what was called (the
//! request counters GetMetrics reports). One wrapper per service around the generated server.
//!
//! - `mdw.russell.v1`: with a token configured, every call needs it.
//! - `mdw.russell` (mDW's contract): mDW's Go clients send no token, so with a token
//!   configured only the calls that change something ([`CONTROL`]) need it, and the others
//!   need it only from a peer that is not on loopback.
//!
//! A call counts as failed when its answer carries a grpc-status other than OK in its
//! headers (a refused call, or any error of a unary call); a stream counts by how it opened.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tonic::Status;
use tonic::codegen::{Body, BoxFuture, Context, Poll, Service, StdError, http};
use tonic::server::NamedService;
use tonic::transport::server::TcpConnectInfo;

use super::TokenAuth;

/// mDW's methods that change something: they need the token whenever one is configured.
pub const CONTROL: &[&str] = &[
    "StartService",
    "StopService",
    "RestartService",
    "StartAllServices",
    "StopAllServices",
    "CreatePipeline",
    "DeletePipeline",
    "ExecutePipeline",
];

/// Which calls need the token (when one is configured).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Every call (Russell's own API).
    Everything,
    /// [`CONTROL`] methods always; the others only from a non-loopback peer (mDW's API).
    ControlOrRemote,
}

/// Counters of the API calls of both services, since Russell started.
#[derive(Debug)]
pub struct Metrics {
    started: Instant,
    total: AtomicU64,
    failed: AtomicU64,
    /// Sum of the time until each answer's headers, in microseconds.
    latency_us: AtomicU64,
    in_flight: AtomicI64,
    /// Answered calls by method and code, for /metrics.
    by_call: Mutex<CallCounts>,
}

/// Most distinct methods counted by name; calls of further (unknown) methods count as
/// "other", so a client cannot grow the table without bound.
const MAX_METHODS: usize = 256;

/// Calls by protocol ("grpc", "http"), then method, then code.
pub type CallCounts = HashMap<&'static str, HashMap<Box<str>, HashMap<u16, u64>>>;

impl Default for Metrics {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            total: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            latency_us: AtomicU64::new(0),
            in_flight: AtomicI64::new(0),
            by_call: Mutex::default(),
        }
    }
}

/// A reading of [`Metrics`].
#[derive(Debug, Clone, Copy)]
pub struct MetricsReading {
    /// Calls answered (the one reading this is not counted yet).
    pub total: u64,
    pub failed: u64,
    pub average: Duration,
    /// Calls answered per second since Russell started.
    pub per_second: f64,
    /// Calls being handled right now (including the one reading this).
    pub in_flight: i64,
}

impl Metrics {
    fn begin(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    fn end(&self, took: Duration, ok: bool) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.latency_us.fetch_add(us, Ordering::Relaxed);
        if !ok {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        self.total.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one answered call of `method` over `protocol` with `code` (the grpc-status
    /// number, or the HTTP status).
    pub fn count_call(&self, protocol: &'static str, method: &str, code: u16) {
        let Ok(mut calls) = self.by_call.lock() else {
            return;
        };
        let methods = calls.entry(protocol).or_default();
        let method = if methods.contains_key(method) || methods.len() < MAX_METHODS {
            method
        } else {
            "other"
        };
        if let Some(codes) = methods.get_mut(method) {
            *codes.entry(code).or_default() += 1;
        } else {
            methods.insert(method.into(), HashMap::from([(code, 1)]));
        }
    }

    /// A copy of the counts by protocol, method and code.
    pub fn calls(&self) -> CallCounts {
        self.by_call.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// The counters now.
    pub fn read(&self) -> MetricsReading {
        let total = self.total.load(Ordering::Relaxed);
        let latency = self.latency_us.load(Ordering::Relaxed);
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        MetricsReading {
            total,
            failed: self.failed.load(Ordering::Relaxed),
            average: Duration::from_micros(latency.checked_div(total).unwrap_or(0)),
            per_second: total as f64 / secs,
            in_flight: self.in_flight.load(Ordering::Relaxed),
        }
    }
}

/// A generated server behind the token check and the counters.
#[derive(Clone)]
pub struct Gate<S> {
    inner: S,
    auth: TokenAuth,
    access: Access,
    metrics: Arc<Metrics>,
}

impl<S> std::fmt::Debug for Gate<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("access", &self.access)
            .finish()
    }
}

impl<S> Gate<S> {
    pub fn new(inner: S, auth: TokenAuth, access: Access, metrics: Arc<Metrics>) -> Self {
        Self {
            inner,
            auth,
            access,
            metrics,
        }
    }

    /// Whether this call may pass.
    fn admit<B>(&self, req: &http::Request<B>) -> Result<(), Status> {
        if !self.auth.required() {
            return Ok(());
        }
        let needs_token = match self.access {
            Access::Everything => true,
            Access::ControlOrRemote => {
                let method = req.uri().path().rsplit('/').next().unwrap_or("");
                let loopback = req
                    .extensions()
                    .get::<TcpConnectInfo>()
                    .and_then(TcpConnectInfo::remote_addr)
                    .is_some_and(|a| a.ip().is_loopback());
                CONTROL.contains(&method) || !loopback
            }
        };
        if !needs_token {
            return Ok(());
        }
        let header = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        self.auth.check(header)
    }
}

impl<S: NamedService> NamedService for Gate<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<http::Request<B>> for Gate<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>, Error = Infallible>,
    S::Future: Send + 'static,
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let metrics = self.metrics.clone();
        metrics.begin();
        let start = Instant::now();
        // Shares the request's buffer: no copy of the path per call.
        let method = req.uri().path_and_query().cloned();
        let answer = match self.admit(&req) {
            Ok(()) => Ok(self.inner.call(req)),
            Err(refused) => Err(refused),
        };
        Box::pin(async move {
            let resp = match answer {
                Ok(fut) => fut.await?,
                Err(refused) => refused.into_http(),
            };
            let code = resp
                .headers()
                .get("grpc-status")
                .and_then(|s| s.to_str().ok()?.parse::<u16>().ok())
                .unwrap_or(0);
            metrics.end(start.elapsed(), code == 0);
            let method = method.as_ref().map_or("", |p| p.path());
            metrics.count_call("grpc", method, code);
            Ok(resp)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_count_and_average() {
        let m = Metrics::default();
        m.begin();
        m.end(Duration::from_millis(2), true);
        m.begin();
        m.end(Duration::from_millis(4), false);
        m.begin();
        let r = m.read();
        assert_eq!((r.total, r.failed, r.in_flight), (2, 1, 1));
        assert_eq!(r.average, Duration::from_millis(3));
        assert!(r.per_second > 0.0);
    }

    #[test]
    fn calls_by_method_and_code_are_bounded() {
        let m = Metrics::default();
        m.count_call("grpc", "/a/B", 0);
        m.count_call("grpc", "/a/B", 0);
        m.count_call("grpc", "/a/B", 5);
        for i in 0..MAX_METHODS + 10 {
            m.count_call("http", &format!("/x{i}"), 404);
        }
        let calls = m.calls();
        assert_eq!(calls["grpc"]["/a/B"][&0], 2);
        assert_eq!(calls["grpc"]["/a/B"][&5], 1);
        assert_eq!(calls["http"].len(), MAX_METHODS + 1);
        assert_eq!(calls["http"]["other"][&404], 10);
    }

    fn request(path: &str, peer: &str, token: Option<&str>) -> http::Request<()> {
        let mut req = http::Request::builder().uri(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let mut req = req.body(()).unwrap_or_default();
        req.extensions_mut().insert(TcpConnectInfo {
            local_addr: None,
            remote_addr: peer.parse().ok(),
        });
        req
    }

    #[test]
    fn mdw_access_rules() {
        let gate = |auth| Gate::new((), auth, Access::ControlOrRemote, Arc::default());
        let open = gate(TokenAuth::new(None));
        let closed = gate(TokenAuth::new(Some("t")));
        let stop = "/mdw.russell.RussellService/StopService";
        let list = "/mdw.russell.RussellService/ListServices";
        let local = "127.0.0.1:5000";
        let remote = "192.0.2.1:5000";
        assert!(open.admit(&request(stop, remote, None)).is_ok());
        assert!(closed.admit(&request(list, local, None)).is_ok());
        assert!(closed.admit(&request(list, remote, None)).is_err());
        assert!(closed.admit(&request(list, remote, Some("t"))).is_ok());
        assert!(closed.admit(&request(stop, local, None)).is_err());
        assert!(closed.admit(&request(stop, local, Some("x"))).is_err());
        assert!(closed.admit(&request(stop, local, Some("t"))).is_ok());
        let v1 = Gate::new(
            (),
            TokenAuth::new(Some("t")),
            Access::Everything,
            Arc::default(),
        );
        assert!(v1.admit(&request(list, local, None)).is_err());
    }
}
