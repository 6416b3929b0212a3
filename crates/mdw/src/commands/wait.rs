//! `mdw wait [--timeout D]`: exit 0 once every service is healthy; otherwise, at the
//! timeout, non-zero naming the services that are not (for scripts and CI).

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use russell_api::{Client, pb};

use super::control::{block_on, connect};
use super::status::fetch;

/// How often the status is read while waiting.
const POLL: Duration = Duration::from_millis(250);

/// Options of `mdw wait`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Give up after this long (e.g. 30s, 2m).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

/// The services that are not healthy, as "name (state: error)".
pub fn not_healthy(status: &pb::OrchestratorStatus) -> Vec<String> {
    status
        .services
        .iter()
        .filter(|s| !s.healthy)
        .map(|s| {
            let err = if s.last_error.is_empty() {
                &s.last_probe_error
            } else {
                &s.last_error
            };
            if err.is_empty() {
                format!("{} ({})", s.short_name, s.service_state())
            } else {
                format!("{} ({}: {err})", s.short_name, s.service_state())
            }
        })
        .collect()
}

/// Waits until every service is healthy or `timeout` passes; true when healthy.
pub async fn wait_healthy(
    addr: &str,
    client: &mut Client,
    timeout: Duration,
    out: &mut dyn Write,
) -> anyhow::Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        let status = fetch(addr, client).await?;
        let missing = not_healthy(&status);
        if missing.is_empty() {
            writeln!(out, "all {} services are healthy", status.total_services)?;
            return Ok(true);
        }
        if Instant::now() >= deadline {
            writeln!(
                out,
                "not healthy after {}: {}",
                humantime::format_duration(timeout),
                missing.join(", ")
            )?;
            return Ok(false);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Runs `mdw wait`.
pub fn run(addr: &str, args: Args) -> anyhow::Result<ExitCode> {
    block_on(async {
        let mut client = connect(addr).await?;
        let ok = wait_healthy(
            addr,
            &mut client,
            args.timeout,
            &mut std::io::stdout().lock(),
        )
        .await?;
        Ok(if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })?
}
