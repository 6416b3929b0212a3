//! `mdw status [--json]`: Russell's view of every service as a table like the user's plan's
//! screen, or as JSON that mirrors OrchestratorStatus with snake_case keys.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

// "1h 23m", "45m", "12s", "2d 3h": the same style as ControlCenter's table.
use controlcenter::view::uptime as short_duration;
use russell_api::pb::{ExternalState, ServiceState};
use russell_api::{Client, pb};

use super::control::{block_on, call_error, connect};

/// Options of `mdw status`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON (OrchestratorStatus with snake_case keys) instead of the table.
    #[arg(long)]
    pub json: bool,
}

use russell_api::json::StatusJson;
/// A wire timestamp as a SystemTime.
pub use russell_api::json::to_system_time;

fn state_symbol(state: ServiceState) -> &'static str {
    match state {
        ServiceState::Running => "●",
        ServiceState::Stopped => "○",
        ServiceState::Failed => "✗",
        ServiceState::Completed => "✓",
        ServiceState::Unhealthy => "▲",
        _ => "◐",
    }
}

/// The table: a header line, counts, one row per service (its last error beneath), the
/// externals line.
pub fn render(addr: &str, s: &pb::OrchestratorStatus) -> String {
    let mut out = String::new();
    let uptime = to_system_time(s.started_at.as_ref())
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .map(short_duration)
        .unwrap_or_else(|| "—".to_string());
    out.push_str(&format!(
        "Russell {} at {addr} (PID {}) — {}, up {uptime}\n",
        s.version, s.pid, s.status
    ));
    out.push_str(&format!(
        "Services: {}/{} running   Healthy: {}/{}   Failed: {}\n\n",
        s.running_services,
        s.total_services,
        s.healthy_services,
        s.total_services,
        s.failed_services
    ));
    let width = s
        .services
        .iter()
        .map(|x| x.name.chars().count())
        .max()
        .unwrap_or(0)
        .max("SERVICE".len());
    out.push_str(&format!(
        "{:<width$}  {:<6}  {:<12}  {:<6}  {:<8}  {:<8}  {}\n",
        "SERVICE", "PORT", "STATUS", "HEALTH", "UPTIME", "RESTARTS", "PID"
    ));
    for x in &s.services {
        let port = match (x.grpc_port, x.http_port) {
            (0, 0) => "—".to_string(),
            (0, p) | (p, _) => format!(":{p}"),
        };
        let health = if x.healthy {
            "✓ ok"
        } else if x.pid != 0 {
            "✗ fail"
        } else {
            "— n/a"
        };
        let uptime = x
            .uptime
            .as_ref()
            .and_then(|d| Duration::try_from(*d).ok())
            .map(short_duration)
            .unwrap_or_else(|| "—".to_string());
        let restarts = if x.max_retries > 0 {
            format!("{}/{}", x.restart_count, x.max_retries)
        } else {
            x.restart_count.to_string()
        };
        let pid = if x.pid == 0 {
            "—".to_string()
        } else if x.adopted {
            format!("{} (adopted)", x.pid)
        } else {
            x.pid.to_string()
        };
        let now = x.service_state();
        let state = if x.disabled && now == ServiceState::Stopped {
            format!("{} disabled", state_symbol(now))
        } else {
            format!("{} {now}", state_symbol(now))
        };
        out.push_str(&format!(
            "{:<width$}  {port:<6}  {state:<12}  {health:<6}  {uptime:<8}  {restarts:<8}  {pid}\n",
            x.name
        ));
        let err = if x.last_error.is_empty() {
            &x.last_probe_error
        } else {
            &x.last_error
        };
        if !err.is_empty() {
            out.push_str(&format!("{:<width$}  ↳ {err}\n", ""));
        }
    }
    if !s.externals.is_empty() {
        let items: Vec<String> = s
            .externals
            .iter()
            .map(|e| {
                let mark = match e.external_state() {
                    ExternalState::Healthy => "✓",
                    ExternalState::Unhealthy => "✗",
                    ExternalState::Unknown | ExternalState::Unspecified => "?",
                };
                format!("{} {mark}", e.name)
            })
            .collect();
        out.push_str(&format!("\nDependencies: {}\n", items.join("  ")));
    }
    out
}

/// Fetches the status.
pub async fn fetch(addr: &str, client: &mut Client) -> anyhow::Result<pb::OrchestratorStatus> {
    Ok(client
        .get_orchestrator_status(pb::StatusRequest {})
        .await
        .map_err(|s| call_error(addr, &s))?
        .into_inner())
}

/// Prints the status as a table or JSON.
pub async fn print(
    addr: &str,
    client: &mut Client,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let status = fetch(addr, client).await?;
    if json {
        serde_json::to_writer_pretty(&mut *out, &StatusJson::from(&status))?;
        writeln!(out)?;
    } else {
        write!(out, "{}", render(addr, &status))?;
    }
    Ok(())
}

/// Runs `mdw status`.
pub fn run(addr: &str, args: Args) -> anyhow::Result<ExitCode> {
    block_on(async {
        let mut client = connect(addr).await?;
        print(addr, &mut client, args.json, &mut std::io::stdout().lock()).await?;
        Ok(ExitCode::SUCCESS)
    })?
}

#[cfg(test)]
mod tests {
    use super::*;
    use russell_api::prost_types;

    #[test]
    fn table_has_the_plan_columns() {
        let status = pb::OrchestratorStatus {
            status: "running".into(),
            total_services: 2,
            running_services: 1,
            healthy_services: 1,
            version: "0.1.0".into(),
            pid: 42,
            services: vec![
                pb::ServiceStatus {
                    name: "Kant".into(),
                    short_name: "kant".into(),
                    http_port: 8080,
                    service_state: ServiceState::Running.into(),
                    healthy: true,
                    pid: 1234,
                    uptime: Some(prost_types::Duration {
                        seconds: 83 * 60,
                        nanos: 0,
                    }),
                    max_retries: 3,
                    ..Default::default()
                },
                pb::ServiceStatus {
                    name: "Hypatia".into(),
                    short_name: "hypatia".into(),
                    grpc_port: 9220,
                    service_state: ServiceState::Failed.into(),
                    last_error: "exited with code 1".into(),
                    ..Default::default()
                },
            ],
            externals: vec![pb::ExternalStatus {
                name: "Ollama".into(),
                external_state: ExternalState::Healthy.into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let table = render("127.0.0.1:9100", &status);
        for needle in [
            "SERVICE",
            "PORT",
            "STATUS",
            "HEALTH",
            "UPTIME",
            "RESTARTS",
            "PID",
            ":8080",
            "● running",
            "✓ ok",
            "1h 23m",
            "1234",
            ":9220",
            "✗ failed",
            "↳ exited with code 1",
            "Dependencies: Ollama ✓",
            "0/3",
        ] {
            assert!(table.contains(needle), "missing {needle:?} in\n{table}");
        }
        let json = serde_json::to_value(StatusJson::from(&status)).unwrap_or_default();
        assert_eq!(json["services"][0]["uptime_seconds"], 83 * 60);
        assert_eq!(json["services"][1]["pid"], serde_json::Value::Null);
        assert_eq!(json["services"][1]["grpc_port"], 9220);
        assert_eq!(json["services"][0]["state"], "running");
        assert_eq!(json["services"][1]["state"], "failed");
        assert_eq!(json["externals"][0]["state"], "healthy");
    }
}
