//! `mdw events [NAME...]`: Russell's events as they happen, one line each, until Russell
//! closes the stream or the user presses Ctrl-C.

use std::io::Write;
use std::process::ExitCode;

use russell_api::{Client, pb};

use super::control::{block_on, call_error, connect};
use super::status::to_system_time;

/// Options of `mdw events`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only these services (name or short_name); none = all.
    #[arg(add = clap_complete::engine::ArgValueCandidates::new(super::completions::service_candidates))]
    pub names: Vec<String>,
    /// One JSON object per line instead of text.
    #[arg(long)]
    pub json: bool,
}

/// One event as a line: time, kind, service, state after it, detail.
pub fn format_event(e: &pb::Event) -> String {
    let time = to_system_time(e.timestamp.as_ref())
        .map(|t| humantime::format_rfc3339_millis(t).to_string())
        .unwrap_or_default();
    let mut line = format!(
        "{time} {:<20} {:<10} {:<10}",
        e.kind,
        e.service,
        e.service_state()
    );
    if e.pid != 0 {
        line.push_str(&format!(" pid={}", e.pid));
    }
    if !e.message.is_empty() {
        line.push(' ');
        line.push_str(&e.message);
    }
    line.trim_end().to_string()
}

fn event_json(e: &pb::Event) -> serde_json::Value {
    serde_json::json!({
        "kind": e.kind,
        "service": e.service,
        "state": e.service_state().as_str(),
        "message": e.message,
        "pid": (e.pid != 0).then_some(e.pid),
        "exit_code": e.exit_code,
        "signal": e.signal,
        "attempt": (e.attempt != 0).then_some(e.attempt),
        "timestamp": to_system_time(e.timestamp.as_ref())
            .map(|t| humantime::format_rfc3339_millis(t).to_string()),
    })
}

/// Prints events until the stream ends.
pub async fn follow(
    addr: &str,
    client: &mut Client,
    args: &Args,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let mut events = client
        .watch_events(pb::WatchEventsRequest {
            names: args.names.clone(),
        })
        .await
        .map_err(|s| call_error(addr, &s))?
        .into_inner();
    while let Some(e) = events.message().await.map_err(|s| call_error(addr, &s))? {
        if args.json {
            writeln!(out, "{}", event_json(&e))?;
        } else {
            writeln!(out, "{}", format_event(&e))?;
        }
        out.flush()?;
    }
    Ok(())
}

/// Runs `mdw events`.
pub fn run(addr: &str, args: Args) -> anyhow::Result<ExitCode> {
    block_on(async {
        let mut client = connect(addr).await?;
        follow(addr, &mut client, &args, &mut std::io::stdout().lock()).await?;
        Ok(ExitCode::SUCCESS)
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Text and JSON carry the readable name of the wire's enum, not the enum's number.
    #[test]
    fn state_is_the_readable_name() {
        let e = pb::Event {
            kind: "healthy".into(),
            service: "kant".into(),
            service_state: pb::ServiceState::Running.into(),
            pid: 7,
            ..Default::default()
        };
        assert_eq!(event_json(&e)["state"], "running");
        let line = format_event(&e);
        assert!(line.contains("kant       running    pid=7"), "{line}");
    }
}
