//! GetOrchestratorStatus served from encoded bytes (and the HTTP view's `GET /v1/status`
//! from kept JSON the same way).
//!
//! With a few hundred services a reply is tens of KiB, and converting the snapshot to
//! protobuf and encoding it (hundreds of small allocations) was most of a status request's
//! cost (docs/BENCHMARKS.md has the figures). So the
//! encoded reply is kept and reused until the snapshot changes or [`REFRESH`] has passed;
//! the latter keeps every service's `uptime` within [`REFRESH`] of the truth. Everything
//! else (auth, other methods) goes to the generated server unchanged.
//!
//! One path: [`RussellServer::call`] answers the method before the generated server sees it,
//! and the trait method `RussellService::get_orchestrator_status` (server/mod.rs), reached
//! only when someone serves `RussellServiceServer<RussellApi>` without this wrapper, answers
//! from the same cache through [`decoded`]. The test below holds both to the same reply.

use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use prost::Message;
use prost::bytes::{BufMut, Bytes};
use tonic::Status;
use tonic::codec::{Codec, EncodeBuf, Encoder};
use tonic::codegen::{Body, BoxFuture, Context, Poll, Service, StdError, http};
use tonic::server::{NamedService, UnaryService};
use tonic_prost::ProstCodec;

use super::RussellApi;
use crate::pb;
use crate::pb::russell_service_server::RussellServiceServer;

/// The method served from the cache.
const PATH: &str = "/mdw.russell.v1.RussellService/GetOrchestratorStatus";
/// Longest time an encoded reply is reused for an unchanged snapshot.
pub(super) const REFRESH: Duration = Duration::from_millis(200);

/// A reply built from a snapshot (encoded protobuf, or the HTTP view's JSON): the
/// snapshot it shows, when it was built, the bytes.
#[derive(Default)]
pub(super) struct Cache(Mutex<Option<(Arc<russell_core::Snapshot>, Instant, Bytes)>>);

impl Cache {
    /// The kept reply if it was built from `snap` less than [`REFRESH`] ago, else `build`'s
    /// (kept when it succeeds).
    fn reply<E>(
        &self,
        snap: Arc<russell_core::Snapshot>,
        build: impl FnOnce(&russell_core::Snapshot) -> Result<Bytes, E>,
    ) -> Result<Bytes, E> {
        let mut cache = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((seen, at, bytes)) = cache.as_ref()
            && Arc::ptr_eq(seen, &snap)
            && at.elapsed() < REFRESH
        {
            return Ok(bytes.clone());
        }
        let bytes = build(&snap)?;
        *cache = Some((snap, Instant::now(), bytes.clone()));
        Ok(bytes)
    }
}

/// The encoded status reply (fresh per [`REFRESH`] and per snapshot change).
pub(super) async fn encoded(api: &RussellApi) -> Bytes {
    let snap = api.orch.fresh_snapshot().await;
    let built = api.encoded.reply(snap, |s| {
        Ok::<_, Infallible>(Bytes::from(pb::OrchestratorStatus::from(s).encode_to_vec()))
    });
    match built {
        Ok(bytes) => bytes,
        Err(never) => match never {},
    }
}

/// `GET /v1/status`'s JSON (the shape of `mdw status --json`), kept like [`encoded`]:
/// building it for 200 services costs far more than serving it.
pub(super) async fn status_json(api: &RussellApi) -> Result<Bytes, serde_json::Error> {
    let snap = api.orch.fresh_snapshot().await;
    api.status_json.reply(snap, |s| {
        let status = pb::OrchestratorStatus::from(s);
        serde_json::to_vec(&crate::json::StatusJson::from(&status)).map(Bytes::from)
    })
}

/// The status reply as a message: [`encoded`], decoded (for the generated trait method).
pub(super) async fn decoded(api: &RussellApi) -> Result<pb::OrchestratorStatus, Status> {
    pb::OrchestratorStatus::decode(encoded(api).await)
        .map_err(|e| Status::internal(format!("cannot decode the cached status reply: {e}")))
}

/// `RussellService` with GetOrchestratorStatus answered from [`encoded`].
#[derive(Clone)]
pub struct RussellServer {
    api: RussellApi,
    inner: RussellServiceServer<RussellApi>,
}

impl RussellServer {
    pub(super) fn new(api: RussellApi) -> Self {
        Self {
            inner: RussellServiceServer::new(api.clone()),
            api,
        }
    }
}

impl NamedService for RussellServer {
    const NAME: &'static str = <RussellServiceServer<RussellApi> as NamedService>::NAME;
}

impl<B> Service<http::Request<B>> for RussellServer
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != PATH {
            return self.inner.call(req);
        }
        let method = Method(self.api.clone());
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(BytesCodec);
            Ok(grpc.unary(method, req).await)
        })
    }
}

struct Method(RussellApi);

impl UnaryService<pb::StatusRequest> for Method {
    type Response = Bytes;
    type Future = BoxFuture<tonic::Response<Bytes>, Status>;

    fn call(&mut self, _request: tonic::Request<pb::StatusRequest>) -> Self::Future {
        let api = self.0.clone();
        Box::pin(async move { Ok(tonic::Response::new(encoded(&api).await)) })
    }
}

/// Decodes a `StatusRequest`; "encodes" a reply that already is protobuf.
struct BytesCodec;

type RequestCodec = ProstCodec<pb::StatusRequest, pb::StatusRequest>;

impl Codec for BytesCodec {
    type Encode = Bytes;
    type Decode = pb::StatusRequest;
    type Encoder = BytesEncoder;
    type Decoder = <RequestCodec as Codec>::Decoder;

    fn encoder(&mut self) -> Self::Encoder {
        BytesEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        RequestCodec::default().decoder()
    }
}

struct BytesEncoder;

impl Encoder for BytesEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::pb::russell_service_server::RussellService;

    /// The wrapper's path and the trait method's path give the very same reply: the trait
    /// method decodes the bytes the wrapper sends.
    #[tokio::test]
    async fn trait_method_and_wrapper_share_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "[russell]\nstate_dir = {:?}\n",
            dir.path().join("state").display().to_string()
        );
        let source = dir.path().join("services.toml");
        let config =
            russell_config::parse(&text, &source, std::path::Path::new("/bin/false")).unwrap();
        let (orch, _actor) =
            russell_core::Orchestrator::spawn(config, russell_core::SpawnOptions { adopt: false })
                .await
                .unwrap();
        let (shutdown, _rx) = tokio::sync::mpsc::channel(1);
        let (_closing_tx, closing) = tokio::sync::watch::channel(false);
        let api = RussellApi::new(orch, shutdown, closing);

        let bytes = encoded(&api).await;
        let reply = api
            .get_orchestrator_status(tonic::Request::new(pb::StatusRequest {}))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(Bytes::from(reply.encode_to_vec()), bytes);
        assert_eq!(reply.pid, std::process::id());
    }
}
