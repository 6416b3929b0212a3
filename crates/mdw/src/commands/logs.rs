//! `mdw logs [NAME] [-f] [-n N]`: the last N captured lines, then (with -f) new ones as
//! they arrive. Without NAME, every service's lines, each prefixed with its short_name.

use std::io::Write;
use std::process::ExitCode;

use russell_api::{Client, pb};

use super::control::{block_on, call_error, connect};

/// Options of `mdw logs`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Service name or short_name (any case); none = all services.
    #[arg(add = clap_complete::engine::ArgValueCandidates::new(super::completions::service_candidates))]
    pub name: Option<String>,
    /// Keep following new lines.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Lines of history to show first.
    #[arg(short = 'n', long = "lines", default_value_t = 50)]
    pub lines: u32,
}

/// One line as printed: prefixed with the short_name when showing all services.
pub fn format_line(line: &pb::LogLine, prefixed: bool) -> String {
    if prefixed {
        format!("{:<10} | {}", line.service, line.line)
    } else {
        line.line.clone()
    }
}

/// Streams the lines to `out`; returns when the stream ends (without -f: after the tail).
pub async fn stream(
    addr: &str,
    client: &mut Client,
    args: &Args,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let mut lines = client
        .stream_logs(pb::StreamLogsRequest {
            name: args.name.clone().unwrap_or_default(),
            tail: args.lines,
            follow: args.follow,
        })
        .await
        .map_err(|s| call_error(addr, &s))?
        .into_inner();
    let prefixed = args.name.is_none();
    while let Some(line) = lines.message().await.map_err(|s| call_error(addr, &s))? {
        writeln!(out, "{}", format_line(&line, prefixed))?;
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
