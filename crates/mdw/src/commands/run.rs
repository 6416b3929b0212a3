//! `mdw run NAME`: runs a one-shot task (`kind = "task"`) again and waits until it ends.
//! A long-running service is refused, so that a typo never restarts one.

use std::io::Write;
use std::process::ExitCode;

use russell_api::{Client, pb};

use super::control::{NameArgs, block_on, call_error, connect};

/// Asks Russell for the task `name`, then restarts it (which runs it again and answers
/// when it completed or failed). 0 when it completed, 1 otherwise.
pub async fn run_with(
    addr: &str,
    client: &mut Client,
    name: &str,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let status = client
        .get_orchestrator_status(pb::StatusRequest::default())
        .await
        .map_err(|s| call_error(addr, &s))?
        .into_inner();
    let wanted = name.to_lowercase();
    let Some(svc) = status
        .services
        .iter()
        .find(|s| s.short_name == wanted || s.name.to_lowercase() == wanted)
    else {
        anyhow::bail!(
            "no service or task '{name}' at {addr}; `mdw status` lists what Russell runs"
        );
    };
    if svc.kind != "task" {
        anyhow::bail!(
            "'{}' is a service, not a task (kind = \"task\" in the services file); to restart it use: mdw restart {}",
            svc.short_name,
            svc.short_name
        );
    }
    let result = client
        .restart_service(pb::ServiceRequest {
            name: svc.short_name.clone(),
        })
        .await
        .map_err(|s| call_error(addr, &s))?
        .into_inner();
    if result.success {
        writeln!(out, "✓ {} completed", svc.short_name)?;
        Ok(ExitCode::SUCCESS)
    } else {
        writeln!(out, "✗ {} failed: {}", svc.short_name, result.error)?;
        Ok(ExitCode::FAILURE)
    }
}

/// Runs `mdw run NAME`.
pub fn run(addr: &str, args: NameArgs) -> anyhow::Result<ExitCode> {
    block_on(async {
        let mut client = connect(addr).await?;
        let mut out = std::io::stdout().lock();
        run_with(addr, &mut client, &args.name, &mut out).await
    })?
}
