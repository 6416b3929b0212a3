//! `mdw down`: asks Russell to stop every service and then itself (the Shutdown RPC), and
//! waits until Russell's process is gone.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use russell_api::{Client, pb};

use super::control::{block_on, call_error};
use super::status::fetch;

/// How long Russell may take to exit once its services are stopped.
const EXIT_WAIT: Duration = Duration::from_secs(30);

/// Options of `mdw down`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Shuts Russell down and waits for its PID to go away.
pub async fn down_with(addr: &str, client: &mut Client, out: &mut dyn Write) -> anyhow::Result<()> {
    let status = fetch(addr, client).await?;
    let pid = status.pid;
    writeln!(
        out,
        "stopping {} services and Russell (PID {pid})…",
        status.total_services
    )?;
    if let Err(s) = client.shutdown(pb::Empty {}).await {
        // The connection may close as Russell exits; the PID check below decides.
        if s.code() != tonic::Code::Unavailable && s.code() != tonic::Code::Cancelled {
            return Err(call_error(addr, &s));
        }
    }
    let deadline = Instant::now() + EXIT_WAIT;
    while pid != 0 && russell_core::process::running(pid) {
        if Instant::now() >= deadline {
            anyhow::bail!(
                "Russell (PID {pid}) stopped its services but has not exited after {}s; \
                 check it with `ps -p {pid}`",
                EXIT_WAIT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    writeln!(out, "Russell stopped")?;
    Ok(())
}

/// Runs `mdw down`. Nothing answering counts as done.
pub fn run(addr: &str, _args: Args) -> anyhow::Result<ExitCode> {
    block_on(async {
        let mut out = std::io::stdout().lock();
        let mut client = match russell_api::connect(addr).await {
            Ok(c) => c,
            Err(russell_api::ClientError::Unreachable { .. }) => {
                writeln!(out, "Russell is not running at {addr}; nothing to stop")?;
                return Ok(ExitCode::SUCCESS);
            }
            Err(e) => return Err(super::control::connect_error(e)),
        };
        down_with(addr, &mut client, &mut out).await?;
        Ok(ExitCode::SUCCESS)
    })?
}
