//! Crash recovery: 20 services; kill -9 one service's process at random moments, and time
//! from the kill until Russell has a new process for it (the first WatchEvents event that
//! names a new PID, checked in /proc) and until its port answers again.

use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use rustix::process::Signal;

use crate::lineup::Spec;
use crate::procs::{ProcId, signal};
use crate::russell::EventLog;
use crate::scenario::Env;
use crate::stats::{Rng, Summary};
use crate::wait::port_answers;

/// Outcome of one series of kills.
#[derive(Debug, Clone)]
pub struct CrashResult {
    /// ms from kill to a new process (event with its PID arrived).
    pub to_process: Option<Summary>,
    /// ms from kill to the port answering again.
    pub to_port: Summary,
    /// Kills after which no event with the new PID arrived.
    pub missed_events: usize,
    /// By Russell's own event timestamps (same host clock), ms after the kill: when it
    /// saw the exit, and when it had spawned the new process.
    pub exit_seen: Option<Summary>,
    pub spawned: Option<Summary>,
}

/// `kills` kill -9s over 20 services. `zero_backoff`: `restart_backoff = "0s"` and
/// `max_retries = 1000` with victims drawn at random; else the loader's defaults, each
/// service killed at most once (so the default retry budget is never exhausted).
pub async fn run(env: &Env, zero_backoff: bool, kills: usize) -> anyhow::Result<CrashResult> {
    const N: usize = 20;
    let spec = if zero_backoff {
        Spec {
            restart_backoff: Some(Duration::ZERO),
            max_retries: Some(1000),
            ..Spec::flat(N)
        }
    } else {
        Spec::flat(N)
    };
    let mut rng = Rng::new(env.seed ^ u64::from(zero_backoff));
    let mut d = env.deploy(&spec)?;
    let result = async {
        d.until_ports().await?;
        let mut client = d.russell.client(Duration::from_secs(10)).await?;
        d.until_running(&mut client, false).await?;
        let mut events = EventLog::subscribe(&mut client, Vec::new()).await?;
        let order = rng.permutation(N);
        let mut to_process = Vec::new();
        let mut to_port = Vec::new();
        let mut missed = 0;
        let mut exit_seen = Vec::new();
        let mut spawned = Vec::new();
        for k in 0..kills {
            let victim = if zero_backoff {
                rng.range(0, N as u64) as usize
            } else {
                order[k % N]
            };
            // a random moment: 20–300 ms after the previous recovery
            tokio::time::sleep(Duration::from_millis(rng.range(20, 300))).await;
            let svc = d.lineup.services[victim].clone();
            let st = d.until_running(&mut client, false).await?;
            let pid = st
                .services
                .iter()
                .find(|s| s.short_name == svc.short_name)
                .map(|s| s.pid as i32)
                .with_context(|| format!("status does not list {}", svc.short_name))?;
            let old = ProcId::of(pid)
                .with_context(|| format!("PID {pid} of {} is not in /proc", svc.short_name))?;
            events.drain();
            let port = svc.http_port;
            let (killed_at, killed_wall, answered_at) =
                tokio::task::spawn_blocking(move || kill_and_wait_port(old, port)).await??;
            to_port.push(answered_at.duration_since(killed_at).as_secs_f64() * 1e3);
            let mut exited_ts = None;
            let new = events
                .first(Instant::now() + Duration::from_secs(2), |ev| {
                    let mine = ev.service == svc.short_name || ev.service == svc.name;
                    if mine && ev.kind == "exited" && exited_ts.is_none() {
                        exited_ts = event_time(ev);
                    }
                    mine && ev.pid != 0 && ev.pid as i32 != old.pid
                })
                .await;
            let after_kill = |t: Option<SystemTime>| {
                t.and_then(|t| t.duration_since(killed_wall).ok())
                    .map(|d| d.as_secs_f64() * 1e3)
            };
            exit_seen.extend(after_kill(exited_ts));
            spawned.extend(after_kill(new.as_ref().and_then(|(_, ev)| event_time(ev))));
            match new {
                Some((at, ev)) if ProcId::of(ev.pid as i32).is_some() || at <= answered_at => {
                    to_process.push(at.saturating_duration_since(killed_at).as_secs_f64() * 1e3);
                }
                _ => missed += 1,
            }
        }
        Ok::<_, anyhow::Error>(CrashResult {
            to_process: Summary::of(&to_process),
            to_port: Summary::of(&to_port).context("no kills")?,
            missed_events: missed,
            exit_seen: Summary::of(&exit_seen),
            spawned: Summary::of(&spawned),
        })
    }
    .await;
    d.finish().await;
    result
}

/// An event's timestamp (Russell's wall clock).
fn event_time(ev: &russell_api::pb::Event) -> Option<SystemTime> {
    let ts = ev.timestamp.as_ref()?;
    let d = Duration::new(
        u64::try_from(ts.seconds).ok()?,
        u32::try_from(ts.nanos).ok()?,
    );
    SystemTime::UNIX_EPOCH.checked_add(d)
}

/// SIGKILL `old`, wait until it is dead, then connect to `port` until it answers: every
/// 100 µs for the first 50 ms, then every ms (bounded at 60 s). Returns the kill's instant
/// and wall time, and the instant the port answered.
fn kill_and_wait_port(old: ProcId, port: u16) -> anyhow::Result<(Instant, SystemTime, Instant)> {
    let killed_wall = SystemTime::now();
    let killed_at = Instant::now();
    if !signal(old.pid, Signal::KILL) {
        bail!("cannot send SIGKILL to PID {}", old.pid);
    }
    while !old.is_gone() {
        if killed_at.elapsed() > Duration::from_secs(5) {
            bail!("PID {} survived SIGKILL for 5 s", old.pid);
        }
        std::thread::sleep(Duration::from_micros(20));
    }
    loop {
        if port_answers(port) {
            return Ok((killed_at, killed_wall, Instant::now()));
        }
        let waited = killed_at.elapsed();
        if waited > Duration::from_secs(60) {
            bail!(
                "port {port} did not answer within 60 s after killing PID {}",
                old.pid
            );
        }
        std::thread::sleep(if waited < Duration::from_millis(50) {
            Duration::from_micros(100)
        } else {
            Duration::from_millis(1)
        });
    }
}
