//! API: GetOrchestratorStatus throughput and latency under a bounded load generator, and the
//! delay from a StopService call until a WatchEvents subscriber sees the change.

use std::time::{Duration, Instant};

use anyhow::Context;
use russell_api::pb;

use crate::lineup::Spec;
use crate::procs::CpuSample;
use crate::russell::{EventLog, connect};
use crate::scenario::Env;
use crate::stats::Summary;

/// Concurrent request loops of the load generator (default).
pub const TASKS: usize = 16;
/// HTTP/2 connections they share (default).
pub const CHANNELS: usize = 4;

/// Results of the API figures.
#[derive(Debug, Clone)]
pub struct ApiResult {
    pub requests_per_sec: f64,
    /// Request latency, ms.
    pub latency: Summary,
    pub errors: usize,
    /// CPU of Russell and of the bench itself during the load window, % of one core.
    pub russell_cpu: f64,
    pub bench_cpu: f64,
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
        let l = load(
            d.russell.addr,
            d.russell.id.pid,
            env.budget.api_window,
            env.api_tasks,
            env.api_channels,
        )
        .await?;
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
            requests_per_sec: l.requests_per_sec,
            latency: l.latency,
            errors: l.errors,
            russell_cpu: l.russell_cpu,
            bench_cpu: l.bench_cpu,
            reply_bytes,
            watch: Summary::of(&watch).context("no watch samples")?,
        })
    }
    .await;
    d.finish().await;
    result
}

/// What the load generator saw in its measured window.
struct Load {
    requests_per_sec: f64,
    latency: Summary,
    errors: usize,
    russell_cpu: f64,
    bench_cpu: f64,
}

/// `tasks` loops over `channels` connections call GetOrchestratorStatus back to back for
/// `window` (after 0.5 s of warm-up, not counted); the CPU of Russell (`pid`) and of the
/// bench itself is sampled over the same window.
async fn load(
    addr: std::net::SocketAddr,
    pid: i32,
    window: Duration,
    tasks: usize,
    channels: usize,
) -> anyhow::Result<Load> {
    let mut clients = Vec::new();
    let (tasks_n, channels) = (tasks.max(1), channels.max(1));
    for _ in 0..channels {
        clients.push(connect(addr).await?);
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
                let ok = c
                    .get_orchestrator_status(pb::StatusRequest {})
                    .await
                    .is_ok();
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
