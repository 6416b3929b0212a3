//! mdw-bench: the benchmark harness (docs/BENCHMARKS.md). It treats Russell as a black box: it writes
//! services files of stand-in services ([`lineup`]), launches `mdw serve russell` on them
//! ([`russell`]), and measures from outside — sockets, /proc and the gRPC API
//! ([`scenario`]) — then prints a table and writes a markdown fragment ([`report`]).
//!
//! Every run is bounded in time and cleans up after itself: Russell gets SIGTERM (it stops
//! its services), then every process group the bench recorded gets SIGKILL, by PID.

pub mod lineup;
pub mod ports;
pub mod procs;
pub mod report;
pub mod russell;
pub mod scenario;
pub mod stats;
pub mod wait;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::report::{Goal, Row, Unit, spread};
use crate::scenario::footprint::Footprint;
use crate::scenario::{Budget, Env, api, crash, footprint, start, stop};
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
    /// Start and footprint at 50, 200, 1000 services.
    Scaling,
}

/// What to run and where the binaries are.
#[derive(Debug, Clone)]
pub struct Options {
    pub quick: bool,
    /// Parts to run, in this order; empty = all.
    pub only: Vec<Part>,
    /// mdw binary; default: `mdw` in `../release/` (the release build, next to the bench's
    /// `loadgen` folder), else next to this executable.
    pub mdw: Option<PathBuf>,
    /// Stand-in binary; default: `mdw-demo` found like `mdw`, else `mdw demo`.
    pub standin: Option<PathBuf>,
    /// Markdown output; default: `mdw-bench-results.md` next to this executable.
    pub out: Option<PathBuf>,
    pub seed: u64,
    /// Load generator: concurrent request loops and HTTP/2 connections.
    pub api_tasks: usize,
    pub api_channels: usize,
}

/// Bound on one part, whatever happens inside it.
const PART_BOUND: Duration = Duration::from_secs(15 * 60);

/// `name` in the sibling `release` folder if it is there (target/loadgen/mdw-bench measures
/// target/release/mdw, the build users run), else next to this executable.
fn find_binary(exe_dir: &Path, name: &str) -> PathBuf {
    let beside = exe_dir.join(name);
    match exe_dir
        .parent()
        .map(|target| target.join("release").join(name))
    {
        Some(release) if release.is_file() => release,
        _ => beside,
    }
}

/// Runs the selected parts, prints the table, writes the markdown fragment.
pub async fn run(opts: Options) -> anyhow::Result<()> {
    let exe_dir = std::env::current_exe()
        .context("cannot find this executable")?
        .parent()
        .map(Path::to_path_buf)
        .context("this executable has no folder")?;
    let mdw = opts
        .mdw
        .clone()
        .unwrap_or_else(|| find_binary(&exe_dir, "mdw"));
    if !mdw.is_file() {
        bail!(
            "{} not found: build it with `cargo build --release -j2 -p mdw -p mdw-demo`, or pass --mdw PATH",
            mdw.display()
        );
    }
    let standin = match &opts.standin {
        Some(p) => vec![p.display().to_string()],
        None => match find_binary(&exe_dir, "mdw-demo") {
            p if p.is_file() => vec![p.display().to_string()],
            _ => vec![mdw.display().to_string(), "demo".into()],
        },
    };
    let nofile = procs::raise_nofile(16_384).context("cannot raise RLIMIT_NOFILE")?;
    let env = Env {
        mdw,
        standin,
        budget: if opts.quick {
            Budget::quick()
        } else {
            Budget::full()
        },
        seed: opts.seed,
        api_tasks: opts.api_tasks,
        api_channels: opts.api_channels,
    };
    let mut parts = if opts.only.is_empty() {
        vec![
            Part::Start,
            Part::Crash,
            Part::Footprint,
            Part::Stop,
            Part::Api,
            Part::Scaling,
        ]
    } else {
        opts.only.clone()
    };
    parts.dedup();
    eprintln!(
        "mdw-bench: {} with stand-in {} ({} mode, RLIMIT_NOFILE {nofile})",
        env.mdw.display(),
        env.standin.join(" "),
        if opts.quick { "quick" } else { "full" }
    );

    let load_before = loadavg();
    let mut cache = Cache::default();
    let mut rows = Vec::new();
    for part in parts {
        eprintln!("== {part:?}");
        let before = rows.len();
        if tokio::time::timeout(PART_BOUND, run_part(&env, part, &mut cache, &mut rows))
            .await
            .is_err()
        {
            rows.push(Row::failed(
                format!("{part:?}"),
                "part timed out (15 min bound)",
            ));
        }
        eprint!("{}", report::table(&rows[before..]));
    }

    let table = report::table(&rows);
    println!("\n{table}");
    let heading = vec![
        format!(
            "Results of `mdw-bench{}` ({}).",
            if opts.quick { " --quick" } else { "" },
            machine_line()
        ),
        format!(
            "Load average (1 min) before and after the run: {load_before} → {}; other work on the machine shows up in every figure.",
            loadavg()
        ),
        format!(
            "Stand-in: `{}`; load generator: {} tasks over {} connections.",
            env.standin
                .iter()
                .map(|s| Path::new(s)
                    .file_name()
                    .map_or(s.clone(), |f| f.to_string_lossy().into_owned()))
                .collect::<Vec<_>>()
                .join(" "),
            env.api_tasks,
            env.api_channels
        ),
    ];
    let md = report::markdown(&heading, &rows);
    let out = opts
        .out
        .clone()
        .unwrap_or_else(|| exe_dir.join("mdw-bench-results.md"));
    std::fs::write(&out, md).with_context(|| format!("cannot write {}", out.display()))?;
    eprintln!("markdown written to {}", out.display());
    Ok(())
}

/// Results that several parts report (scaling reuses start and footprint).
#[derive(Default)]
struct Cache {
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

async fn run_part(env: &Env, part: Part, cache: &mut Cache, rows: &mut Vec<Row>) {
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

/// The 1-minute load average from /proc/loadavg.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// "2 × AMD EPYC, 23.5 GiB, Linux 6.x": the machine the figures come from.
pub fn machine_line() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / (1024.0 * 1024.0));
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cpus} × {model}, {mem_gib:.1} GiB RAM, Linux {}",
        kernel.trim()
    )
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
