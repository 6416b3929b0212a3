//! `mdw probe <kind> <target>`: one health check from the command line, for container
//! health checks, init containers and systemd units made by `mdw export`. It runs the very
//! probe Russell runs (russell-core's `health::probe`).
//!
//! Exit status: 0 healthy, 1 unhealthy (after `--wait`, if given), 2 usage error (clap's
//! own, or a target that cannot be probed as written). One line on stderr says why.

use std::process::ExitCode;
use std::time::Duration;

use russell_config::Probe;
use russell_core::health::{self, ProbeError};

/// Options of `mdw probe`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Bound on one probe.
    #[arg(long, global = true, default_value = "3s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Retry until healthy or this much time has passed (default: probe once).
    #[arg(long, global = true, value_parser = humantime::parse_duration)]
    pub wait: Option<Duration>,
    #[command(subcommand)]
    pub kind: Kind,
}

/// What to probe.
#[derive(Debug, clap::Subcommand)]
pub enum Kind {
    /// HTTP GET; 2xx is healthy.
    Http {
        /// e.g. http://127.0.0.1:8080/health
        #[arg(value_parser = http_url)]
        url: String,
        /// The body must also contain this text.
        #[arg(long)]
        expect_body: Option<String>,
    },
    /// grpc.health.v1.Health/Check; SERVING is healthy.
    Grpc {
        /// HOST:PORT
        #[arg(value_parser = host_port)]
        addr: String,
        /// Service name to ask about ("" = the whole server).
        #[arg(long, default_value = "")]
        service: String,
    },
    /// TCP connect.
    Tcp {
        /// HOST:PORT
        #[arg(value_parser = host_port)]
        addr: String,
    },
    /// Ollama's model list; healthy when every `--model` is pulled (a name without a tag
    /// matches any tag).
    Ollama {
        /// The model list, e.g. http://127.0.0.1:11434/api/tags
        #[arg(value_parser = http_url)]
        url: String,
        /// A model that must be listed (repeat for more).
        #[arg(long = "model", required = true)]
        models: Vec<String>,
    },
    /// Run a command; exit status 0 is healthy (`mdw probe exec -- CMD ARGS...`).
    Exec {
        #[arg(last = true, required = true, num_args = 1..)]
        command: Vec<String>,
    },
}

fn http_url(s: &str) -> Result<String, String> {
    match s.strip_prefix("http://") {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') => Ok(s.to_string()),
        _ => Err("expected an http:// URL with a host, e.g. http://127.0.0.1:8080/health".into()),
    }
}

fn host_port(s: &str) -> Result<String, String> {
    match s.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
            Ok(s.to_string())
        }
        _ => Err("expected HOST:PORT, e.g. 127.0.0.1:9200".into()),
    }
}

/// Runs `mdw probe …`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let probe = match args.kind {
        Kind::Http { url, expect_body } => Probe::Http { url, expect_body },
        Kind::Grpc { addr, service } => Probe::Grpc { addr, service },
        Kind::Tcp { addr } => Probe::Tcp { addr },
        Kind::Exec { command } => Probe::Exec { command },
        Kind::Ollama { url, models } => Probe::Ollama { url, models },
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(probe_until(&probe, args.timeout, args.wait));
    Ok(match outcome {
        Ok(()) => {
            eprintln!("healthy: {}", health::describe(&probe));
            ExitCode::SUCCESS
        }
        Err(err @ ProbeError::InvalidTarget { .. }) => {
            eprintln!("mdw probe: {err}");
            ExitCode::from(2)
        }
        Err(err) => {
            eprintln!("unhealthy: {err}");
            ExitCode::FAILURE
        }
    })
}

/// Probes once, or until healthy within `wait`: between attempts it pauses 100 ms,
/// doubling up to 1 s, never past the deadline.
async fn probe_until(
    probe: &Probe,
    timeout: Duration,
    wait: Option<Duration>,
) -> Result<(), ProbeError> {
    let deadline = wait.map(|w| tokio::time::Instant::now() + w);
    let mut pause = Duration::from_millis(100);
    loop {
        let result = health::probe(probe, timeout).await;
        let now = tokio::time::Instant::now();
        match (result, deadline) {
            (Ok(()), _) => return Ok(()),
            (Err(err @ ProbeError::InvalidTarget { .. }), _) => return Err(err),
            (Err(err), None) => return Err(err),
            (Err(err), Some(deadline)) if now >= deadline => return Err(err),
            (Err(_), Some(deadline)) => {
                tokio::time::sleep_until((now + pause).min(deadline)).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
        }
    }
}
