//! Watch: N services, each with `watch = [<its own file>]` and the default debounce
//! (500 ms). First Russell idles for a window (its CPU and RSS, to set beside the same
//! line-up without watches); then, one service at a time, the bench rewrites that
//! service's file ("a rebuild") and measures how long until Russell signals the old
//! process: by the timestamp of Russell's `restarting` event (host clock, the same clock
//! the bench read just before the write) and, from outside, until /proc shows the old
//! process gone. Before the next rebuild the service runs again under a new PID.

use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};

use crate::lineup::{GenService, Spec};
use crate::procs::ProcId;
use crate::report::{Goal, Row, Unit};
use crate::russell::{Client, EventLog};
use crate::scenario::footprint::{Footprint, sample};
use crate::scenario::{Deployment, Env};
use crate::stats::{Summary, ms};

/// What the watch figures showed.
#[derive(Debug, Clone)]
pub struct WatchResult {
    pub services: usize,
    /// File written → Russell's `restarting` event (its own timestamp), ms.
    pub to_signal: Summary,
    /// File written → the old process gone (/proc), ms.
    pub to_gone: Summary,
    /// Russell idle with every service watching a file.
    pub idle: Footprint,
}

/// An idle window of `window`, then `rebuilds` rewrites of one watched file each, with
/// `n` watching services.
pub async fn run(
    env: &Env,
    n: usize,
    rebuilds: usize,
    window: Duration,
) -> anyhow::Result<WatchResult> {
    let spec = Spec {
        watch: true,
        ..Spec::flat(n)
    };
    let mut d = env.deploy(&spec)?;
    let result = measure(&mut d, rebuilds, window).await;
    d.finish().await;
    result
}

async fn measure(
    d: &mut Deployment,
    rebuilds: usize,
    window: Duration,
) -> anyhow::Result<WatchResult> {
    let n = d.lineup.services.len();
    d.until_ports().await?;
    let mut client = d.russell.client(Duration::from_secs(10)).await?;
    d.until_running(&mut client, false).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = sample(d.russell.id.pid, window).await?;

    let mut events = EventLog::subscribe(&mut client, Vec::new()).await?;
    let mut to_signal = Vec::with_capacity(rebuilds);
    let mut to_gone = Vec::with_capacity(rebuilds);
    for k in 0..rebuilds {
        let svc = d.lineup.services[(k * 7) % n].clone();
        let file = svc
            .watch_file
            .clone()
            .context("the line-up has no watched files")?;
        let old = current(d, &mut client, &svc).await?;
        events.drain();
        let written = SystemTime::now();
        let t0 = Instant::now();
        std::fs::write(&file, format!("build {}\n", k + 1))
            .with_context(|| format!("cannot write {}", file.display()))?;
        let gone_at = tokio::task::spawn_blocking(move || {
            while !old.is_gone() {
                if t0.elapsed() > Duration::from_secs(10) {
                    return None;
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            Some(Instant::now())
        })
        .await?
        .with_context(|| {
            format!(
                "{} (PID {}) still runs 10 s after {} was written",
                svc.short_name,
                old.pid,
                file.display()
            )
        })?;
        let (_, ev) = events
            .first(Instant::now() + Duration::from_secs(5), |ev| {
                ev.kind == "restarting" && (ev.service == svc.short_name || ev.service == svc.name)
            })
            .await
            .with_context(|| format!("no restarting event for {}", svc.short_name))?;
        let stamp = ev
            .timestamp
            .context("the restarting event has no timestamp")?;
        let at = SystemTime::UNIX_EPOCH
            + Duration::new(stamp.seconds.max(0) as u64, stamp.nanos.max(0) as u32);
        let signalled = at.duration_since(written).unwrap_or(Duration::ZERO);
        to_signal.push(ms(signalled));
        to_gone.push(ms(gone_at - t0));
        until_new_process(d, &mut client, &svc, old).await?;
    }
    Ok(WatchResult {
        services: n,
        to_signal: Summary::of(&to_signal).context("no rebuilds")?,
        to_gone: Summary::of(&to_gone).context("no rebuilds")?,
        idle,
    })
}

/// The process of `svc` that Russell reports now.
async fn current(
    d: &mut Deployment,
    client: &mut Client,
    svc: &GenService,
) -> anyhow::Result<ProcId> {
    let st = d.russell.status(client).await?;
    let s = st
        .services
        .iter()
        .find(|s| s.short_name == svc.short_name)
        .with_context(|| format!("Russell does not report {}", svc.short_name))?;
    ProcId::of(s.pid as i32)
        .with_context(|| format!("{} (PID {}) is not in /proc", svc.short_name, s.pid))
}

/// Waits (bounded) until Russell reports `svc` running under a process other than `old`.
async fn until_new_process(
    d: &mut Deployment,
    client: &mut Client,
    svc: &GenService,
    old: ProcId,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st = d.russell.status(client).await?;
        if let Some(s) = st.services.iter().find(|s| s.short_name == svc.short_name)
            && s.state == "running"
            && s.pid != 0
            && ProcId::of(s.pid as i32).is_some_and(|p| p != old)
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "{} did not run again within 30 s of its restart",
                svc.short_name
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The watch figures as table rows; `without` is the same line-up's idle footprint
/// without watches.
pub fn rows(r: WatchResult, without: Option<&Footprint>) -> Vec<Row> {
    let n = r.services;
    let base = without.map_or_else(
        || "without watches: not measured".to_string(),
        |f| {
            format!(
                "without watches: {} (RSS {})",
                Unit::Percent.fmt(f.cpu_percent),
                Unit::MiB.fmt(f.rss_mib.p50)
            )
        },
    );
    vec![
        Row::median(
            "watched file written → restarting (debounce 500 ms), p50",
            &r.to_signal,
            Unit::Ms,
            Goal::AtMost(600.0),
        ),
        Row::median(
            "watched file written → old process gone, p50",
            &r.to_gone,
            Unit::Ms,
            Goal::Info,
        ),
        Row::value(
            format!("Russell CPU, {n} idle, each watching a file"),
            r.idle.cpu_percent,
            format!("over {} s; {base}", r.idle.rss_mib.n),
            Unit::Percent,
            Goal::AtMost(0.05),
        ),
        Row::median(
            format!("Russell RSS, {n} idle, each watching a file"),
            &r.idle.rss_mib,
            Unit::MiB,
            Goal::Info,
        ),
    ]
}
