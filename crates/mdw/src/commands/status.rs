//! `mdw status [--json]`: Russell's view of every service as a table like the user's plan's
//! screen, or as JSON that mirrors OrchestratorStatus with snake_case keys.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

// "1h 23m", "45m", "12s", "2d 3h": the same style as ControlCenter's table.
use controlcenter::view::uptime as short_duration;
use russell_api::pb::{ExternalState, ServiceState};
use russell_api::prost_types;
use russell_api::{Client, pb};
use serde::Serialize;

use super::control::{block_on, call_error, connect};

/// Options of `mdw status`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON (OrchestratorStatus with snake_case keys) instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// The JSON form of OrchestratorStatus.
#[derive(Debug, Serialize)]
pub struct StatusJson {
    pub status: String,
    pub version: String,
    pub pid: u32,
    pub total_services: i32,
    pub running_services: i32,
    pub healthy_services: i32,
    pub failed_services: i32,
    /// RFC 3339.
    pub started_at: Option<String>,
    pub services: Vec<ServiceJson>,
    pub externals: Vec<ExternalJson>,
}

/// The JSON form of one service's status.
#[derive(Debug, Serialize)]
pub struct ServiceJson {
    pub name: String,
    pub short_name: String,
    pub description: String,
    pub state: String,
    pub healthy: bool,
    pub pid: Option<u32>,
    pub restart_count: u32,
    pub max_retries: u32,
    pub last_error: String,
    pub last_probe_error: String,
    pub grpc_port: Option<u32>,
    pub http_port: Option<u32>,
    pub adopted: bool,
    pub stopped_by_user: bool,
    pub uptime_seconds: Option<u64>,
    pub started_at: Option<String>,
    pub last_health_check: Option<String>,
    pub dependencies: Vec<String>,
    /// "service" or "task".
    pub kind: String,
    pub cpu_percent: f32,
    pub rss_bytes: u64,
}

/// The JSON form of one external's status.
#[derive(Debug, Serialize)]
pub struct ExternalJson {
    pub name: String,
    pub short_name: String,
    pub description: String,
    pub optional: bool,
    pub state: String,
    pub last_error: String,
    pub last_health_check: Option<String>,
    /// Models an `ollama` check found missing (empty otherwise).
    pub missing_models: Vec<String>,
}

fn rfc3339(t: Option<&prost_types::Timestamp>) -> Option<String> {
    to_system_time(t).map(|t| humantime::format_rfc3339_seconds(t).to_string())
}

/// A wire timestamp as a SystemTime.
pub fn to_system_time(t: Option<&prost_types::Timestamp>) -> Option<SystemTime> {
    t.and_then(|t| SystemTime::try_from(*t).ok())
}

fn nonzero(n: u32) -> Option<u32> {
    (n != 0).then_some(n)
}

impl From<&pb::OrchestratorStatus> for StatusJson {
    fn from(s: &pb::OrchestratorStatus) -> Self {
        Self {
            status: s.status.clone(),
            version: s.version.clone(),
            pid: s.pid,
            total_services: s.total_services,
            running_services: s.running_services,
            healthy_services: s.healthy_services,
            failed_services: s.failed_services,
            started_at: rfc3339(s.started_at.as_ref()),
            services: s
                .services
                .iter()
                .map(|x| ServiceJson {
                    name: x.name.clone(),
                    short_name: x.short_name.clone(),
                    description: x.description.clone(),
                    state: x.service_state().as_str().to_string(),
                    healthy: x.healthy,
                    pid: nonzero(x.pid),
                    restart_count: x.restart_count,
                    max_retries: x.max_retries,
                    last_error: x.last_error.clone(),
                    last_probe_error: x.last_probe_error.clone(),
                    grpc_port: nonzero(x.grpc_port),
                    http_port: nonzero(x.http_port),
                    adopted: x.adopted,
                    stopped_by_user: x.stopped_by_user,
                    kind: x.kind.clone(),
                    uptime_seconds: x
                        .uptime
                        .as_ref()
                        .map(|d| u64::try_from(d.seconds).unwrap_or(0)),
                    started_at: rfc3339(x.started_at.as_ref()),
                    last_health_check: rfc3339(x.last_health_check.as_ref()),
                    dependencies: x.dependencies.clone(),
                    cpu_percent: x.cpu_percent,
                    rss_bytes: x.rss_bytes,
                })
                .collect(),
            externals: s
                .externals
                .iter()
                .map(|e| ExternalJson {
                    name: e.name.clone(),
                    short_name: e.short_name.clone(),
                    description: e.description.clone(),
                    optional: e.optional,
                    state: e.external_state().as_str().to_string(),
                    last_error: e.last_error.clone(),
                    last_health_check: rfc3339(e.last_health_check.as_ref()),
                    missing_models: e.missing_models.clone(),
                })
                .collect(),
        }
    }
}

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
        let state = format!("{} {now}", state_symbol(now));
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
