//! The parts of a run (`--only`): what each measures (through [`crate::scenario`]) and the
//! table rows it reports.

use std::collections::HashMap;
use std::time::Duration;

use crate::report::{Goal, Row, Unit, spread};
use crate::scenario::footprint::Footprint;
use crate::scenario::{Env, api, cc, crash, footprint, http, reload, start, stop, watch};
use crate::stats::Summary;

/// A group of figures, selectable with `--only`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum Part {
    /// Start of 50 and 200 services; the 10-level DAG against its critical path.
    Start,
    /// kill -9 → new process → port answers, zero backoff and defaults.
    Crash,
    /// Russell's RSS and CPU idle with 200 services, without and with http checks.
    Footprint,
    /// StopAllServices of 200 until every process is gone.
    Stop,
    /// GetOrchestratorStatus throughput/p99; StopService → WatchEvents delay.
    Api,
    /// The HTTP listener at 200: /metrics scrape time and CPU, GET /v1/status under load,
    /// idle CPU with the listener on.
    Http,
    /// Reload with 1 of 200 services changed; the reload's own work.
    Reload,
    /// Watched file written → old process signalled; idle CPU with 200 watches.
    Watch,
    /// ControlCenter open on 200 idle services: its CPU and RSS.
    Cc,
    /// Start and footprint at 50, 200, 1000 services.
    Scaling,
}

/// Results that several parts report (scaling reuses start and footprint).
#[derive(Default)]
pub(crate) struct Cache {
    start: HashMap<usize, Summary>,
    footprint: HashMap<(usize, bool), Footprint>,
}

impl Cache {
    async fn start(&mut self, env: &Env, n: usize) -> anyhow::Result<Summary> {
        if let Some(s) = self.start.get(&n) {
            return Ok(*s);
        }
        let reps = if n > 200 {
            env.budget.big_reps
        } else {
            env.budget.start_reps
        };
        let s = start::flat(env, n, reps).await?;
        self.start.insert(n, s);
        Ok(s)
    }

    async fn footprint(&mut self, env: &Env, n: usize, checks: bool) -> anyhow::Result<Footprint> {
        if let Some(f) = self.footprint.get(&(n, checks)) {
            return Ok(f.clone());
        }
        let f = footprint::run(env, n, checks, env.budget.footprint_window).await?;
        self.footprint.insert((n, checks), f.clone());
        Ok(f)
    }
}

fn push<T>(rows: &mut Vec<Row>, figure: &str, r: anyhow::Result<T>, f: impl FnOnce(T) -> Vec<Row>) {
    match r {
        Ok(v) => rows.extend(f(v)),
        Err(e) => {
            eprintln!("{figure}: {e:#}");
            rows.push(Row::failed(figure, &format!("{e:#}")));
        }
    }
}

fn start_row(n: usize, s: &Summary, goal: Goal) -> Row {
    Row::median(format!("start {n} → all ports answer"), s, Unit::Ms, goal)
}

fn footprint_rows(
    n: usize,
    checks: bool,
    f: &Footprint,
    rss_goal: Goal,
    cpu_goal: Goal,
) -> Vec<Row> {
    let what = if checks {
        "http check every 10 s"
    } else {
        "no checks"
    };
    vec![
        Row::median(
            format!("Russell RSS, {n} idle, {what}"),
            &f.rss_mib,
            Unit::MiB,
            rss_goal,
        ),
        Row::value(
            format!("Russell CPU, {n} idle, {what}"),
            f.cpu_percent,
            format!("of one core, over {} s", f.rss_mib.n),
            Unit::Percent,
            cpu_goal,
        ),
    ]
}

pub(crate) async fn run_part(env: &Env, part: Part, cache: &mut Cache, rows: &mut Vec<Row>) {
    let b = env.budget;
    match part {
        Part::Start => {
            let r = cache.start(env, 50).await;
            push(rows, "start 50", r, |s| {
                vec![start_row(50, &s, Goal::AtMost(100.0))]
            });
            let r = cache.start(env, 200).await;
            push(rows, "start 200", r, |s| {
                vec![start_row(200, &s, Goal::AtMost(300.0))]
            });
            let ready = Duration::from_millis(200);
            let r = start::times(env, &start::dag_spec(200, 10, ready), b.dag_reps).await;
            let critical = 10.0 * ready.as_secs_f64() * 1e3;
            push(rows, "DAG start", r, |s| {
                let ratio = Summary {
                    n: s.n,
                    min: s.min / critical,
                    p50: s.p50 / critical,
                    p90: s.p90 / critical,
                    p99: s.p99 / critical,
                    max: s.max / critical,
                };
                vec![
                    Row::median(
                        "DAG 200 × 10 levels (200 ms each) → all ports",
                        &s,
                        Unit::Ms,
                        Goal::Info,
                    ),
                    Row::median(
                        "DAG start / critical path (2 s)",
                        &ratio,
                        Unit::Ratio,
                        Goal::AtMost(1.10),
                    ),
                ]
            });
        }
        Part::Crash => {
            let r = crash::run(env, true, b.kills_zero).await;
            push(rows, "crash, backoff 0s", r, |c| {
                crash_rows("backoff 0s", &c, Goal::AtMost(3.0))
            });
            let r = crash::run(env, false, b.kills_default).await;
            push(rows, "crash, defaults", r, |c| {
                crash_rows("default backoff", &c, Goal::Info)
            });
        }
        Part::Footprint => {
            let r = cache.footprint(env, 200, false).await;
            push(rows, "footprint 200", r, |f| {
                footprint_rows(200, false, &f, Goal::AtMost(10.0), Goal::AtMost(0.05))
            });
            let r = cache.footprint(env, 200, true).await;
            push(rows, "footprint 200 checks", r, |f| {
                footprint_rows(200, true, &f, Goal::AtMost(10.0), Goal::AtMost(0.5))
            });
        }
        Part::Stop => {
            let r = stop::run(env, 200, b.stop_reps).await;
            push(rows, "stop-all 200", r, |s| {
                vec![
                    Row::median(
                        "stop-all 200 → every process gone",
                        &s.all_gone,
                        Unit::Ms,
                        Goal::AtMost(100.0),
                    ),
                    Row::median(
                        "stop-all 200 → RPC returned",
                        &s.rpc_returned,
                        Unit::Ms,
                        Goal::AtMost(100.0),
                    ),
                ]
            });
        }
        Part::Api => {
            let r = api::run(env, 200).await;
            push(rows, "API", r, |a| {
                let throughput = |client: &str, load: &api::Load, note: String| {
                    Row::value(
                        format!("GetOrchestratorStatus (200) throughput, {client}"),
                        load.requests_per_sec,
                        note,
                        Unit::PerSec,
                        Goal::AtLeast(20_000.0),
                    )
                };
                let latency = |client: &str, load: &api::Load| {
                    Row::value(
                        format!("GetOrchestratorStatus (200) p99 latency, {client}"),
                        load.latency.p99,
                        format!(
                            "p50 {}, max {}",
                            Unit::Ms.fmt(load.latency.p50),
                            Unit::Ms.fmt(load.latency.max)
                        ),
                        Unit::Ms,
                        Goal::AtMost(5.0),
                    )
                };
                vec![
                    throughput(
                        "decoding client",
                        &a.decoding,
                        format!(
                            "{}; decoding one reply alone: {:.0} µs",
                            load_note(&a.decoding, b.api_window, a.reply_bytes),
                            a.decode_us
                        ),
                    ),
                    latency("decoding client", &a.decoding),
                    throughput(
                        "raw-bytes client",
                        &a.raw,
                        load_note(&a.raw, b.api_window, a.reply_bytes),
                    ),
                    latency("raw-bytes client", &a.raw),
                    Row::median(
                        "StopService → WatchEvents subscriber",
                        &a.watch,
                        Unit::Ms,
                        Goal::AtMost(10.0),
                    ),
                ]
            });
        }
        Part::Http => {
            let r = http::run(env, 200, b.scrapes).await;
            let off = cache.footprint(env, 200, false).await.ok();
            push(rows, "HTTP listener", r, |h| {
                http::rows(h, off.as_ref(), b.api_window)
            });
        }
        Part::Reload => {
            let r = reload::run(env, 200, b.reloads, b.reload_work_reps).await;
            push(rows, "reload", r, reload::rows);
        }
        Part::Watch => {
            let r = watch::run(env, 200, b.rebuilds, b.footprint_window).await;
            let without = cache.footprint(env, 200, false).await.ok();
            push(rows, "watch", r, |w| watch::rows(w, without.as_ref()));
        }
        Part::Cc => {
            let r = cc::run(env, 200, b.cc_window).await;
            push(rows, "ControlCenter", r, cc::rows);
        }
        Part::Scaling => {
            for n in [50, 200, 1000] {
                let r = cache.start(env, n).await;
                push(rows, &format!("scaling start {n}"), r, |s| {
                    vec![Row::median(
                        format!("scaling: start {n} → all ports"),
                        &s,
                        Unit::Ms,
                        Goal::Info,
                    )]
                });
            }
            for n in [50, 200, 1000] {
                let r = cache.footprint(env, n, false).await;
                push(rows, &format!("scaling footprint {n}"), r, |f| {
                    footprint_rows(n, false, &f, Goal::Info, Goal::Info)
                        .into_iter()
                        .map(|mut r| {
                            r.figure = format!("scaling: {}", r.figure);
                            r
                        })
                        .collect()
                });
            }
        }
    }
}

fn crash_rows(label: &str, c: &crash::CrashResult, port_goal: Goal) -> Vec<Row> {
    let mut rows = Vec::new();
    match &c.to_process {
        Some(s) => {
            let by_russell = match (&c.exit_seen, &c.spawned) {
                (Some(e), Some(sp)) => format!(
                    "; by Russell's event times: exit seen {}, new PID spawned {} (p50)",
                    Unit::Ms.fmt(e.p50),
                    Unit::Ms.fmt(sp.p50)
                ),
                _ => String::new(),
            };
            rows.push(Row::value(
                format!("kill -9 → new process, p50 ({label})"),
                s.p50,
                format!(
                    "{}; {} kills without an event{by_russell}",
                    spread(s, Unit::Ms),
                    c.missed_events
                ),
                Unit::Ms,
                Goal::Info,
            ));
        }
        None => rows.push(Row::failed(
            format!("kill -9 → new process ({label})"),
            "no WatchEvents event named the new PID",
        )),
    }
    rows.push(Row::median(
        format!("kill -9 → port answers, p50 ({label})"),
        &c.to_port,
        Unit::Ms,
        port_goal,
    ));
    rows
}

/// The spread column of a throughput row: errors, window, CPU per request on each side.
fn load_note(l: &api::Load, window: std::time::Duration, reply_bytes: usize) -> String {
    format!(
        "{} errors, {} s; CPU per request: Russell {:.0} µs, load generator {:.0} µs (of {:.0} % / {:.0} % of a core); reply {} KiB",
        l.errors,
        window.as_secs(),
        l.russell_cpu * 1e4 / l.requests_per_sec.max(1.0),
        l.bench_cpu * 1e4 / l.requests_per_sec.max(1.0),
        l.russell_cpu,
        l.bench_cpu,
        reply_bytes / 1024
    )
}
