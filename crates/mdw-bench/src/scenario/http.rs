//! HTTP listener (`[russell] http_listen`): N services up, the listener on a free
//! loopback port. First Russell idles for a window with nobody connected (to set beside
//! the same line-up without the listener). Then `/metrics` is scraped back to back on one
//! keep-alive connection: the time of each scrape, and Russell's CPU over all of them
//! (per-thread `schedstat`, or `utime + stime` from `/proc/<pid>/stat` when that proves
//! more) divided by their number. Last, `GET /v1/status` under load: keep-alive HTTP/1.1
//! connections, one request in flight on each, on the load generator's threads, for the
//! API window after 0.5 s of warm-up.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};

use crate::http::HttpConn;
use crate::lineup::Spec;
use crate::procs::CpuSample;
use crate::report::{Goal, Row, Unit};
use crate::scenario::footprint::{Footprint, sample};
use crate::scenario::{Deployment, Env, join_load};
use crate::stats::{Summary, ms};

/// Keep-alive connections of the `/v1/status` load.
pub const STATUS_CONNECTIONS: usize = 4;

/// What the HTTP figures showed.
#[derive(Debug, Clone)]
pub struct HttpResult {
    pub services: usize,
    /// One `/metrics` scrape, ms.
    pub scrape: Summary,
    /// Size of one exposition, bytes.
    pub scrape_bytes: usize,
    /// Russell's CPU per scrape, ms.
    pub cpu_per_scrape: f64,
    /// `GET /v1/status` under load.
    pub status: StatusLoad,
    /// Russell idle with the listener on and nobody connected.
    pub idle: Footprint,
}

/// What the `/v1/status` load saw in its window.
#[derive(Debug, Clone)]
pub struct StatusLoad {
    pub requests_per_sec: f64,
    /// Latency, ms.
    pub latency: Summary,
    pub errors: usize,
    /// Russell's CPU during the window, % of one core.
    pub russell_cpu: f64,
    pub reply_bytes: usize,
}

/// The idle window, `scrapes` scrapes and the status load against `n` services.
pub async fn run(env: &Env, n: usize, scrapes: usize) -> anyhow::Result<HttpResult> {
    let spec = Spec {
        http: true,
        ..Spec::flat(n)
    };
    let mut d = env.deploy(&spec)?;
    let result = measure(env, &mut d, scrapes).await;
    d.finish().await;
    result
}

async fn measure(env: &Env, d: &mut Deployment, scrapes: usize) -> anyhow::Result<HttpResult> {
    let n = d.lineup.services.len();
    let addr = d
        .lineup
        .http_listen
        .context("the line-up has no HTTP listener")?;
    let pid = d.russell.id.pid;
    d.until_ports().await?;
    {
        let mut client = d.russell.client(Duration::from_secs(10)).await?;
        d.until_running(&mut client, false).await?;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = sample(pid, env.budget.footprint_window).await?;

    let mut conn = HttpConn::connect(addr).await?;
    let first = conn.get("/metrics").await?;
    ensure!(
        first.status == 200 && first.body.starts_with(b"#"),
        "/metrics answered {} with {:?}",
        first.status,
        String::from_utf8_lossy(&first.body[..first.body.len().min(200)])
    );
    for _ in 0..10 {
        conn.get("/metrics").await?;
    }
    let mut took = Vec::with_capacity(scrapes);
    let cpu0 = CpuSample::take(pid)?;
    for _ in 0..scrapes {
        let t0 = Instant::now();
        let r = conn.get("/metrics").await?;
        took.push(ms(t0.elapsed()));
        if r.status != 200 || r.body.len() < first.body.len() / 2 {
            bail!(
                "a /metrics scrape answered {} with {} bytes",
                r.status,
                r.body.len()
            );
        }
    }
    let cpu1 = CpuSample::take(pid)?;
    drop(conn);

    let status = status_load(addr, pid, env.budget.api_window).await?;
    Ok(HttpResult {
        services: n,
        scrape: Summary::of(&took).context("no scrapes")?,
        scrape_bytes: first.body.len(),
        cpu_per_scrape: cpu0.cpu_seconds_until(&cpu1) * 1e3 / scrapes.max(1) as f64,
        status,
        idle,
    })
}

/// `GET /v1/status` back to back on [`STATUS_CONNECTIONS`] connections for `window`.
async fn status_load(addr: SocketAddr, pid: i32, window: Duration) -> anyhow::Result<StatusLoad> {
    let reply_bytes = crate::http::get_once(addr, "/v1/status", Duration::from_secs(10))
        .await?
        .len();
    let threads = super::api::load_threads(STATUS_CONNECTIONS);
    let warm = Instant::now() + Duration::from_millis(500);
    let end = warm + window;
    let mut loops = Vec::new();
    for t in 0..threads {
        let conns = STATUS_CONNECTIONS / threads + usize::from(t < STATUS_CONNECTIONS % threads);
        let generator = std::thread::Builder::new()
            .name(format!("http-load-{t}"))
            .spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("cannot start a load generator runtime")?
                    .block_on(generate(addr, conns, reply_bytes, warm, end))
            })
            .context("cannot start a load generator thread")?;
        loops.push(generator);
    }
    tokio::time::sleep_until(warm.into()).await;
    let r0 = CpuSample::take(pid)?;
    tokio::time::sleep_until(end.into()).await;
    let r1 = CpuSample::take(pid)?;
    let (all, errors) = join_load(loops).await?;
    Ok(StatusLoad {
        requests_per_sec: all.len() as f64 / window.as_secs_f64(),
        latency: Summary::of(&all).context("no successful GET /v1/status")?,
        errors,
        russell_cpu: r0.percent_until(&r1),
        reply_bytes,
    })
}

/// One thread's share: `conns` loops, one connection each, until `end`. Returns the
/// latencies (ms) of the requests that started after `warm` and answered 200 with a body
/// within 10 % of `expected` bytes, and the number of the others.
async fn generate(
    addr: SocketAddr,
    conns: usize,
    expected: usize,
    warm: Instant,
    end: Instant,
) -> anyhow::Result<(Vec<f64>, usize)> {
    let mut loops = Vec::new();
    for _ in 0..conns {
        let mut c = HttpConn::connect(addr).await?;
        loops.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(16384);
            let mut errors = 0usize;
            loop {
                let t = Instant::now();
                if t >= end {
                    break;
                }
                let ok = c.get("/v1/status").await.is_ok_and(|r| {
                    r.status == 200 && r.body.len().abs_diff(expected) <= expected / 10
                });
                if t >= warm {
                    if ok {
                        lat.push(ms(t.elapsed()));
                    } else {
                        errors += 1;
                    }
                }
                if !ok {
                    match HttpConn::connect(addr).await {
                        Ok(fresh) => c = fresh,
                        Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
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

/// The HTTP figures as table rows; `without` is the same line-up's idle footprint without
/// the listener.
pub fn rows(r: HttpResult, without: Option<&Footprint>, window: Duration) -> Vec<Row> {
    let n = r.services;
    let base = without.map_or_else(
        || "listener off: not measured".to_string(),
        |f| format!("listener off: {}", Unit::Percent.fmt(f.cpu_percent)),
    );
    let s = &r.status;
    vec![
        Row::median(
            format!("/metrics scrape ({n}), p50"),
            &r.scrape,
            Unit::Ms,
            Goal::Info,
        ),
        Row::value(
            format!("/metrics scrape ({n}), p99"),
            r.scrape.p99,
            format!(
                "p50 {}, max {} (n={}); exposition {} KiB",
                Unit::Ms.fmt(r.scrape.p50),
                Unit::Ms.fmt(r.scrape.max),
                r.scrape.n,
                r.scrape_bytes / 1024
            ),
            Unit::Ms,
            Goal::AtMost(5.0),
        ),
        Row::value(
            format!("/metrics ({n}): Russell's CPU per scrape"),
            r.cpu_per_scrape,
            format!("over {} scrapes, one keep-alive connection", r.scrape.n),
            Unit::Ms,
            Goal::Info,
        ),
        Row::value(
            format!("Russell CPU, {n} idle, HTTP listener on, nobody connected"),
            r.idle.cpu_percent,
            format!("over {} s; {base}", r.idle.rss_mib.n),
            Unit::Percent,
            Goal::AtMost(0.05),
        ),
        Row::value(
            format!("GET /v1/status ({n}) throughput"),
            s.requests_per_sec,
            format!(
                "{} errors, {} s, {STATUS_CONNECTIONS} keep-alive HTTP/1.1 connections; Russell {:.0} µs CPU per request ({:.0} % of a core); reply {} KiB",
                s.errors,
                window.as_secs(),
                s.russell_cpu * 1e4 / s.requests_per_sec.max(1.0),
                s.russell_cpu,
                s.reply_bytes / 1024
            ),
            Unit::PerSec,
            Goal::Info,
        ),
        Row::value(
            format!("GET /v1/status ({n}) p99 latency"),
            s.latency.p99,
            format!(
                "p50 {}, max {}",
                Unit::Ms.fmt(s.latency.p50),
                Unit::Ms.fmt(s.latency.max)
            ),
            Unit::Ms,
            Goal::AtMost(5.0),
        ),
    ]
}
