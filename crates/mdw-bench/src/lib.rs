//! mdw-bench: the benchmark harness (docs/BENCHMARKS.md). It treats Russell as a black box: it writes
//! services files of stand-in services ([`lineup`]), launches `mdw serve russell` on them
//! ([`russell`]), and measures from outside — sockets, /proc and the gRPC API
//! ([`scenario`]) — then prints a table and writes a markdown fragment ([`report`]).
//!
//! Every run is bounded in time and cleans up after itself: Russell gets SIGTERM (it stops
//! its services), then every process group the bench recorded gets SIGKILL, by PID.

pub mod http;
pub mod lineup;
pub mod parts;
pub mod ports;
pub mod procs;
pub mod pty;
pub mod report;
pub mod russell;
pub mod scenario;
pub mod stats;
pub mod wait;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};

pub use crate::parts::Part;
use crate::parts::{Cache, run_part};
use crate::report::Row;
use crate::scenario::{Budget, Env};

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
            Part::Http,
            Part::Reload,
            Part::Watch,
            Part::Cc,
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
