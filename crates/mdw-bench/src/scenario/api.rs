//! API: GetOrchestratorStatus throughput and latency under a bounded load generator, and the
//! delay from a StopService call until a WatchEvents subscriber sees the change.
//!
//! The load runs twice: once with the generated client, which decodes every reply into
//! messages (what a real client pays), and once with a raw-bytes codec that still makes a
//! real gRPC call over loopback and checks the status and the reply's size, but does not
//! decode it. The second shows what Russell itself can serve on these 2 cores.

use std::time::{Duration, Instant};

use anyhow::Context;
use prost::bytes::{Buf, Bytes};
use russell_api::pb;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;

use crate::lineup::Spec;
use crate::procs::CpuSample;
use crate::russell::{EventLog, connect, connect_channel};
use crate::scenario::Env;
use crate::stats::Summary;

/// Concurrent request loops of the load generator (default).
pub const TASKS: usize = 16;
/// HTTP/2 connections they share (default).
pub const CHANNELS: usize = 4;

/// Results of the API figures.
#[derive(Debug, Clone)]
pub struct ApiResult {
    /// Load with the generated client, decoding every reply.
    pub decoding: Load,
    /// Load with the raw-bytes client (status and size checked, reply not decoded).
    pub raw: Load,
    /// Encoded size of one GetOrchestratorStatus reply, bytes.
    pub reply_bytes: usize,
    /// StopService call → first event for that service at the subscriber, ms.
    pub watch: Summary,
}

/// Runs both API figures against `n` services.
pub async fn run(env: &Env, n: usize) -> anyhow::Result<ApiResult> {
    let mut d = env.deploy(&Spec::flat(n))?;
    let result = async {
        d.until_ports().await?;
        let mut client = d.russell.client(Duration::from_secs(10)).await?;
        d.until_running(&mut client, false).await?;
        let reply_bytes = prost::Message::encoded_len(&d.russell.status(&mut client).await?);
        let mut loads = Vec::new();
        for raw in [false, true] {
            let l = load(
                d.russell.addr,
                d.russell.id.pid,
                env.budget.api_window,
                (env.api_tasks, env.api_channels),
                raw.then_some(reply_bytes),
            )
            .await?;
            loads.push(l);
        }
        let (raw, decoding) = (
            loads.pop().context("no raw load")?,
            loads.pop().context("no decoding load")?,
        );
        let mut events = EventLog::subscribe(&mut client, Vec::new()).await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut watch = Vec::new();
        for svc in d.lineup.services.iter().take(env.budget.watch_reps) {
            events.drain();
            let t0 = Instant::now();
            client
                .stop_service(pb::ServiceRequest {
                    name: svc.short_name.clone(),
                })
                .await
                .with_context(|| format!("StopService {} failed", svc.short_name))?;
            let (at, _) = events
                .first(t0 + Duration::from_secs(5), |ev| {
                    ev.service == svc.short_name || ev.service == svc.name
                })
                .await
                .with_context(|| {
                    format!("no event for {} within 5 s of StopService", svc.short_name)
                })?;
            watch.push(at.duration_since(t0).as_secs_f64() * 1e3);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok::<_, anyhow::Error>(ApiResult {
            decoding,
            raw,
            reply_bytes,
            watch: Summary::of(&watch).context("no watch samples")?,
        })
    }
    .await;
    d.finish().await;
    result
}

/// What the load generator saw in its measured window.
#[derive(Debug, Clone)]
pub struct Load {
    pub requests_per_sec: f64,
    /// Request latency, ms.
    pub latency: Summary,
    pub errors: usize,
    /// CPU of Russell and of the bench itself during the load window, % of one core.
    pub russell_cpu: f64,
    pub bench_cpu: f64,
}

/// The full gRPC path of GetOrchestratorStatus.
const STATUS_PATH: &str = "/mdw.russell.v1.RussellService/GetOrchestratorStatus";

/// A gRPC codec that encodes the (empty) request and hands the reply over as raw bytes.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = pb::StatusRequest;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = pb::StatusRequest;
    type Error = tonic::Status;
    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        prost::Message::encode(&item, dst).map_err(|e| tonic::Status::internal(e.to_string()))
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Self::Error> {
        let n = src.remaining();
        Ok(Some(src.copy_to_bytes(n)))
    }
}

/// One client of the load generator.
#[derive(Clone)]
enum Caller {
    /// The generated client: decodes every reply.
    Decoding(crate::russell::Client),
    /// Raw bytes; a reply counts only if its size is within 10 % of the expected one.
    Raw(tonic::client::Grpc<tonic::transport::Channel>, usize),
}

impl Caller {
    /// One GetOrchestratorStatus call; true if it succeeded.
    async fn call(&mut self) -> bool {
        match self {
            Caller::Decoding(c) => c
                .get_orchestrator_status(pb::StatusRequest {})
                .await
                .is_ok(),
            Caller::Raw(g, expected) => {
                if g.ready().await.is_err() {
                    return false;
                }
                let reply = g
                    .unary(
                        tonic::Request::new(pb::StatusRequest {}),
                        PathAndQuery::from_static(STATUS_PATH),
                        RawCodec,
                    )
                    .await;
                reply.is_ok_and(|r| r.get_ref().len().abs_diff(*expected) <= *expected / 10)
            }
        }
    }
}

/// `tasks` loops over `channels` connections call GetOrchestratorStatus back to back for
/// `window` (after 0.5 s of warm-up, not counted); the CPU of Russell (`pid`) and of the
/// bench itself is sampled over the same window. With `raw = Some(reply_bytes)` the calls
/// do not decode the replies.
async fn load(
    addr: std::net::SocketAddr,
    pid: i32,
    window: Duration,
    (tasks, channels): (usize, usize),
    raw: Option<usize>,
) -> anyhow::Result<Load> {
    let mut clients = Vec::new();
    let (tasks_n, channels) = (tasks.max(1), channels.max(1));
    for _ in 0..channels {
        clients.push(match raw {
            None => Caller::Decoding(connect(addr).await?),
            Some(expected) => Caller::Raw(
                tonic::client::Grpc::new(connect_channel(addr).await?),
                expected,
            ),
        });
    }
    let warm = Instant::now() + Duration::from_millis(500);
    let end = warm + window;
    let mut tasks = Vec::new();
    for i in 0..tasks_n {
        let mut c = clients[i % channels].clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(65536);
            let mut errors = 0usize;
            loop {
                let t = Instant::now();
                if t >= end {
                    break;
                }
                let ok = c.call().await;
                if t >= warm {
                    if ok {
                        lat.push(t.elapsed().as_secs_f64() * 1e3);
                    } else {
                        errors += 1;
                    }
                }
            }
            (lat, errors)
        }));
    }
    let me = std::process::id() as i32;
    tokio::time::sleep_until(warm.into()).await;
    let (r0, b0) = (CpuSample::take(pid)?, CpuSample::take(me)?);
    tokio::time::sleep_until(end.into()).await;
    let (r1, b1) = (CpuSample::take(pid)?, CpuSample::take(me)?);
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (lat, e) = t.await?;
        all.extend(lat);
        errors += e;
    }
    Ok(Load {
        requests_per_sec: all.len() as f64 / window.as_secs_f64(),
        latency: Summary::of(&all).context("no successful GetOrchestratorStatus call")?,
        errors,
        russell_cpu: r0.percent_until(&r1),
        bench_cpu: b0.percent_until(&b1),
    })
}
