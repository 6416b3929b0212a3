//! `mdw logs [NAME] [-f] [-n N] [--since WHEN] [--until WHEN] [--grep REGEX] [--json]`: the
//! last N captured lines, then (with -f) new ones as they arrive. Without NAME, every
//! service's lines, each prefixed with its short_name. The filters are applied by Russell,
//! to the rotated log files and the live follow alike (see russell-api's
//! server/log_search.rs), so they work the same from another host.

use std::io::Write;
use std::process::ExitCode;
use std::time::SystemTime;

use russell_api::convert::timestamp;
use russell_api::server::MAX_TAIL;
use russell_api::{Client, pb};

use super::control::{block_on, call_error, connect};
use super::status::to_system_time;
use super::when;

/// History lines shown without a filter when -n is not given.
const DEFAULT_LINES: u32 = 50;

/// Options of `mdw logs`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Service name or short_name (any case); none = all services.
    #[arg(add = clap_complete::engine::ArgValueCandidates::new(super::completions::service_candidates))]
    pub name: Option<String>,
    /// Keep following new lines (filtered like the history).
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Lines of history to show first [default: 50; with --since, --until or --grep: every
    /// match, up to 100000].
    #[arg(short = 'n', long = "lines")]
    pub lines: Option<u32>,
    /// Only lines from this time on: a duration back from now (10m, 2h, 1h30m) or an
    /// RFC 3339 time (2026-12-03T04:00:00Z; without an offset it is UTC).
    #[arg(long, value_name = "WHEN", value_parser = when::parse_arg)]
    pub since: Option<SystemTime>,
    /// Only lines up to this time (same forms as --since); -f ends once it passes.
    #[arg(long, value_name = "WHEN", value_parser = when::parse_arg)]
    pub until: Option<SystemTime>,
    /// Only lines matching this regular expression (Rust regex syntax, e.g. 'panic|fatal',
    /// '(?i)error' for any case).
    #[arg(long, value_name = "REGEX")]
    pub grep: Option<String>,
    /// One JSON object per line: time (RFC 3339, milliseconds), service, stream, line.
    #[arg(long)]
    pub json: bool,
}

impl Args {
    fn filtered(&self) -> bool {
        self.since.is_some() || self.until.is_some() || self.grep.is_some()
    }

    /// The request for these options.
    pub fn request(&self) -> pb::StreamLogsRequest {
        let default = if self.filtered() {
            MAX_TAIL
        } else {
            DEFAULT_LINES
        };
        pb::StreamLogsRequest {
            name: self.name.clone().unwrap_or_default(),
            tail: self.lines.unwrap_or(default),
            follow: self.follow,
            since: self.since.map(timestamp),
            until: self.until.map(timestamp),
            grep: self.grep.clone().unwrap_or_default(),
        }
    }
}

/// One line as printed: prefixed with the short_name when showing all services.
pub fn format_line(line: &pb::LogLine, prefixed: bool) -> String {
    if prefixed {
        format!("{:<10} | {}", line.service, line.line)
    } else {
        line.line.clone()
    }
}

/// One line as a JSON object: time (RFC 3339 with milliseconds, UTC), service, stream, line.
pub fn line_json(line: &pb::LogLine) -> serde_json::Value {
    serde_json::json!({
        "time": to_system_time(line.timestamp.as_ref())
            .map(|t| humantime::format_rfc3339_millis(t).to_string()),
        "service": line.service,
        "stream": line.stream,
        "line": line.line,
    })
}

/// Streams the lines to `out`; returns when the stream ends (without -f: after the tail).
pub async fn stream(
    addr: &str,
    client: &mut Client,
    args: &Args,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let mut lines = client
        .stream_logs(args.request())
        .await
        .map_err(|s| call_error(addr, &s))?
        .into_inner();
    let prefixed = args.name.is_none();
    while let Some(line) = lines.message().await.map_err(|s| call_error(addr, &s))? {
        if args.json {
            writeln!(out, "{}", line_json(&line))?;
        } else {
            writeln!(out, "{}", format_line(&line, prefixed))?;
        }
        out.flush()?;
    }
    Ok(())
}

/// Runs `mdw logs`.
pub fn run(addr: &str, args: Args) -> anyhow::Result<ExitCode> {
    block_on(async {
        let mut client = connect(addr).await?;
        stream(addr, &mut client, &args, &mut std::io::stdout().lock()).await?;
        Ok(ExitCode::SUCCESS)
    })?
}
