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
use crate::russell::{EventLog, connect_channel};
use crate::scenario::{Env, join_load};
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
    /// CPU time to decode (and drop) one such reply alone, on one thread, µs: the floor of
    /// what the decoding client adds to the raw-bytes one.
    pub decode_us: f64,
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
        let reply = prost::Message::encode_to_vec(&d.russell.status(&mut client).await?);
        let reply_bytes = reply.len();
        let decode_us = tokio::task::spawn_blocking(move || decode_cost(&reply)).await??;
        let mut loads = Vec::new();
        for check in [Check::Services(n), Check::Bytes(reply_bytes)] {
            let l = load(
                d.russell.addr,
                d.russell.id.pid,
                env.budget.api_window,
                (env.api_tasks, env.api_channels),
                check,
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
            decode_us,
            watch: Summary::of(&watch).context("no watch samples")?,
        })
    }
    .await;
    d.finish().await;
    result
}

/// CPU time (µs) to decode `reply` into the generated message and drop it, as the
/// decoding client does: the least of 5 rounds of 200 decodes, on this thread's CPU clock.
fn decode_cost(reply: &[u8]) -> anyhow::Result<f64> {
    const ROUNDS: usize = 5;
    const DECODES: u32 = 200;
    let cpu = || {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
    };
    let mut best = Duration::MAX;
    for _ in 0..ROUNDS {
        let t0 = cpu();
        for _ in 0..DECODES {
            let m: pb::OrchestratorStatus = prost::Message::decode(reply)?;
            std::hint::black_box(m);
        }
        best = best.min(cpu().saturating_sub(t0));
    }
    Ok(best.as_secs_f64() * 1e6 / f64::from(DECODES))
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

/// What makes a reply count as a success (besides an OK status).
#[derive(Debug, Clone, Copy)]
enum Check {
    /// Decoded into the generated message, with this many services.
    Services(usize),
    /// Not decoded; its size within 10 % of this many bytes.
    Bytes(usize),
}

/// One client of the load generator.
#[derive(Clone)]
struct Caller {
    grpc: tonic::client::Grpc<tonic::transport::Channel>,
    check: Check,
}

impl Caller {
    /// One GetOrchestratorStatus call; true if it succeeded and its reply passes the check.
    /// The reply arrives as one slice (tonic hands over its receive buffer without a copy),
    /// and the decoding client decodes it from there: tonic-prost's codec decodes through
    /// `DecodeBuf`, where every varint and field ends in a call to `BytesMut::advance`,
    /// about a fifth more CPU for the same message.
    async fn call(&mut self) -> bool {
        if self.grpc.ready().await.is_err() {
            return false;
        }
        let request = tonic::Request::new(pb::StatusRequest {});
        let path = PathAndQuery::from_static(STATUS_PATH);
        let Ok(reply) = self.grpc.unary(request, path, RawCodec).await else {
            return false;
        };
        let bytes = reply.into_inner();
        match self.check {
            Check::Services(n) => <pb::OrchestratorStatus as prost::Message>::decode(&bytes[..])
                .is_ok_and(|s| s.services.len() == n),
            Check::Bytes(expected) => bytes.len().abs_diff(expected) <= expected / 10,
        }
    }
}

/// `tasks` loops over `channels` connections call GetOrchestratorStatus back to back for
/// `window` (after 0.5 s of warm-up, not counted); the CPU of Russell (`pid`) and of the
/// bench itself is sampled over the same window. `check` picks the decoding or the
/// raw-bytes client.
///
/// The loops run on [`load_threads`] OS threads, each with a current-thread runtime that
/// owns its share of the connections: a reply is read from the socket, decoded and dropped
/// on one thread, where the multi-thread runtime moved it between workers (and their
/// caches) on its way from the connection task to the caller.
async fn load(
    addr: std::net::SocketAddr,
    pid: i32,
    window: Duration,
    (tasks, channels): (usize, usize),
    check: Check,
) -> anyhow::Result<Load> {
    let (tasks, channels) = (tasks.max(1), channels.max(1));
    let threads = load_threads(channels);
    let warm = Instant::now() + Duration::from_millis(500);
    let end = warm + window;
    let mut loops = Vec::new();
    for t in 0..threads {
        let share = |n: usize| n / threads + usize::from(t < n % threads);
        let (tasks, channels) = (share(tasks), share(channels));
        let generator = std::thread::Builder::new()
            .name(format!("api-load-{t}"))
            .spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("cannot start a load generator runtime")?
                    .block_on(generate(addr, (tasks, channels), check, warm, end))
            })
            .context("cannot start a load generator thread")?;
        loops.push(generator);
    }
    let me = std::process::id() as i32;
    tokio::time::sleep_until(warm.into()).await;
    let (r0, b0) = (CpuSample::take(pid)?, CpuSample::take(me)?);
    tokio::time::sleep_until(end.into()).await;
    let (r1, b1) = (CpuSample::take(pid)?, CpuSample::take(me)?);
    let (all, errors) = join_load(loops).await?;
    Ok(Load {
        requests_per_sec: all.len() as f64 / window.as_secs_f64(),
        latency: Summary::of(&all).context("no successful GetOrchestratorStatus call")?,
        errors,
        russell_cpu: r0.percent_until(&r1),
        bench_cpu: b0.percent_until(&b1),
    })
}

/// OS threads of the load generator: one per core, at most one per connection.
pub(crate) fn load_threads(channels: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    channels.clamp(1, cores)
}

/// One load generator thread's share: `tasks` loops over `channels` connections of its own
/// until `end`. Returns the latencies (ms) of the calls that started after `warm` and
/// succeeded, and the number of those that failed.
async fn generate(
    addr: std::net::SocketAddr,
    (tasks, channels): (usize, usize),
    check: Check,
    warm: Instant,
    end: Instant,
) -> anyhow::Result<(Vec<f64>, usize)> {
    let mut clients = Vec::new();
    for _ in 0..channels {
        let grpc = tonic::client::Grpc::new(connect_channel(addr).await?);
        clients.push(Caller { grpc, check });
    }
    let mut loops = Vec::new();
    for i in 0..tasks {
        let mut c = clients[i % clients.len()].clone();
        loops.push(tokio::spawn(async move {
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
    let mut all = Vec::new();
    let mut errors = 0;
    for l in loops {
        let (lat, e) = l.await?;
        all.extend(lat);
        errors += e;
    }
    Ok((all, errors))
}
