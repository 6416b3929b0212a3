//! One action RPC (start all, stop all, start, stop, restart) from ControlCenter's
//! [`Command`] to Russell, and its outcome in words for the status line.

use std::sync::Arc;

use russell_api::client::{Client, status_text};
use russell_api::pb;
use tokio::sync::Notify;
use tokio::sync::mpsc;

use super::{Command, Update};

/// Runs one action RPC and reports its outcome; then asks for a fresh status.
pub(super) async fn run_action(
    mut client: Client,
    command: Command,
    ui: mpsc::UnboundedSender<Update>,
    refresh: Arc<Notify>,
) {
    let id = command_id(&command);
    let outcome = match command {
        Command::StartAll { .. } => client
            .start_all_services(pb::StartAllRequest { force: false })
            .await
            .map_err(|s| format!("start all: {}", status_text(&s)))
            .and_then(|r| start_all_summary(&r.into_inner())),
        Command::StopAll { .. } => client
            .stop_all_services(pb::Empty {})
            .await
            .map(|r| format!("stopped {} service(s)", r.into_inner().stopped.len()))
            .map_err(|s| format!("stop all: {}", status_text(&s))),
        Command::Start { name, .. } => client
            .start_service(pb::ServiceRequest { name: name.clone() })
            .await
            .map_err(|s| format!("start {name}: {}", status_text(&s)))
            .and_then(|r| start_summary("started", &name, &r.into_inner())),
        Command::Stop { name, .. } => client
            .stop_service(pb::ServiceRequest { name: name.clone() })
            .await
            .map(|_| format!("stopped {name}"))
            .map_err(|s| format!("stop {name}: {}", status_text(&s))),
        Command::Restart { name, .. } => client
            .restart_service(pb::ServiceRequest { name: name.clone() })
            .await
            .map_err(|s| format!("restart {name}: {}", status_text(&s)))
            .and_then(|r| start_summary("restarted", &name, &r.into_inner())),
        Command::LaunchRussell { .. } => Err("Russell is already running and reachable".into()),
        Command::Logs { .. } => return,
    };
    let _ = ui.send(Update::Done { id, outcome });
    refresh.notify_one();
}

pub(super) fn command_id(command: &Command) -> u64 {
    match command {
        Command::StartAll { id }
        | Command::StopAll { id }
        | Command::Start { id, .. }
        | Command::Stop { id, .. }
        | Command::Restart { id, .. }
        | Command::LaunchRussell { id } => *id,
        Command::Logs { generation, .. } => *generation,
    }
}

/// "started all (6)" or the failures Russell reported, one per service.
fn start_all_summary(response: &pb::StartAllResponse) -> Result<String, String> {
    let failed: Vec<String> = response
        .results
        .iter()
        .filter(|r| !r.success)
        .map(|r| {
            if r.error.is_empty() {
                format!("{} failed", r.name)
            } else {
                format!("{}: {}", r.name, r.error)
            }
        })
        .collect();
    if response.success && failed.is_empty() {
        Ok(format!("started all ({} services)", response.results.len()))
    } else if failed.is_empty() {
        Err("start all failed (Russell gave no reason)".into())
    } else {
        Err(format!("start all failed: {}", failed.join("; ")))
    }
}

fn start_summary(
    verb: &str,
    name: &str,
    result: &pb::ServiceStartResult,
) -> Result<String, String> {
    if result.success {
        Ok(format!("{verb} {name}"))
    } else if result.error.is_empty() {
        Err(format!(
            "{name} did not start ({} attempts)",
            result.attempts
        ))
    } else {
        Err(format!("{name}: {}", result.error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_all_summary_names_failures() {
        let response = pb::StartAllResponse {
            success: false,
            results: vec![
                pb::ServiceStartResult {
                    name: "kant".into(),
                    success: true,
                    ..Default::default()
                },
                pb::ServiceStartResult {
                    name: "turing".into(),
                    success: false,
                    error: "port 9200 is held by PID 77 (nc -l 9200)".into(),
                    attempts: 3,
                },
            ],
        };
        assert_eq!(
            start_all_summary(&response),
            Err("start all failed: turing: port 9200 is held by PID 77 (nc -l 9200)".to_string())
        );
    }
}
