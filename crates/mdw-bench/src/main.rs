//! `mdw-bench`: parses the command line and runs the benchmark suite; see the crate docs.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use mdw_bench::{Options, Part, run};

/// The load generator decodes tens of thousands of 200-service status replies a second,
/// about 1800 small allocations each, on threads that free what the other allocated:
/// glibc's malloc spent a third of the decoding client's CPU on that. mimalloc's
/// thread-local free lists keep the client's cost close to what decoding itself needs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Benchmarks Russell (`mdw serve russell`) with generated line-ups of stand-in services,
/// on loopback only. Build first: `cargo build --release -j2 -p mdw -p mdw-demo` (what is
/// measured) and `cargo build --profile loadgen -j2 -p mdw-bench` (this tool, built for
/// speed); then run `target/loadgen/mdw-bench`.
#[derive(Debug, Parser)]
#[command(name = "mdw-bench", version)]
struct Cli {
    /// Fewer repetitions and shorter windows (every figure, about a third of the time).
    #[arg(long)]
    quick: bool,
    /// Run only these parts (comma-separated), in this order.
    #[arg(long, value_delimiter = ',')]
    only: Vec<Part>,
    /// The mdw binary (default: target/release/mdw, else next to mdw-bench).
    #[arg(long)]
    mdw: Option<PathBuf>,
    /// The stand-in binary (default: mdw-demo found like mdw, else `mdw demo`).
    #[arg(long)]
    standin: Option<PathBuf>,
    /// Where to write the markdown fragment (default: mdw-bench-results.md next to mdw-bench).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Seed of the random kill moments and victims.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Load generator: concurrent GetOrchestratorStatus loops.
    #[arg(long, default_value_t = mdw_bench::scenario::api::TASKS)]
    api_tasks: usize,
    /// Load generator: HTTP/2 connections the loops share.
    #[arg(long, default_value_t = mdw_bench::scenario::api::CHANNELS)]
    api_channels: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let opts = Options {
        quick: cli.quick,
        only: cli.only,
        mdw: cli.mdw,
        standin: cli.standin,
        out: cli.out,
        seed: cli.seed,
        api_tasks: cli.api_tasks,
        api_channels: cli.api_channels,
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mdw-bench: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        tokio::select! {
            r = run(opts) => r,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted; Russell and its services were stopped")),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mdw-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
