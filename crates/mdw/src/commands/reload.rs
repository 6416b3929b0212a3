//! `mdw reload [--dry-run]`: Russell reads its services file again and applies the
//! difference (only changed services restart, added ones start, removed ones stop; see
//! the README's config reference for what each key's change does). The same as SIGHUP to
//! Russell.

use std::io::Write;
use std::process::ExitCode;

use russell_api::pb;

use super::control::{block_on, call_error, connect, print_results};

/// Options of `mdw reload`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print what would change, apply nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Runs `mdw reload`.
pub fn run(addr: &str, args: Args) -> anyhow::Result<ExitCode> {
    block_on(async {
        let mut client = connect(addr).await?;
        let mut out = std::io::stdout().lock();
        reload_with(addr, &mut client, args.dry_run, &mut out).await
    })?
}

/// Asks Russell to reload and prints the difference; non-zero when a restarted service
/// did not come back.
pub async fn reload_with(
    addr: &str,
    client: &mut russell_api::Client,
    dry_run: bool,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let reply = client
        .reload_config(pb::ReloadConfigRequest { dry_run })
        .await
        .map_err(|s| call_error(addr, &s))?
        .into_inner();
    print_diff(out, &reply)?;
    let ok = print_results(out, &reply.results);
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The difference, one line per changed service or external.
pub fn print_diff(out: &mut dyn Write, r: &pb::ReloadConfigResponse) -> std::io::Result<()> {
    let verb = if r.applied {
        "reloaded"
    } else {
        "would reload (dry run)"
    };
    if r.services.is_empty() && r.externals.is_empty() && r.needs_russell_restart.is_empty() {
        return writeln!(out, "{verb} {}: nothing changed", r.file);
    }
    writeln!(out, "{verb} {}:", r.file)?;
    for (what, changes) in [("service", &r.services), ("external", &r.externals)] {
        for c in changes {
            let keys = if c.keys.is_empty() {
                String::new()
            } else {
                format!(" ({})", c.keys.join(", "))
            };
            writeln!(out, "  {:<8} {what} {}{keys}", c.action, c.short_name)?;
        }
    }
    for key in &r.needs_russell_restart {
        writeln!(
            out,
            "  {key} changed: needs a Russell restart (mdw down && mdw up)"
        )?;
    }
    Ok(())
}
