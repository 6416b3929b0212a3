//! `mdw start-all|stop-all|start|stop|restart`, and the client plumbing every client verb
//! shares: a runtime, a connection that fails in one line, and a readable call error.

use std::future::Future;
use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use russell_api::{Client, pb};

/// Options of `mdw start-all`.
#[derive(Debug, clap::Args)]
pub struct StartAllArgs {
    /// Restart services that are already healthy too.
    #[arg(long)]
    pub force: bool,
}

/// Options of `mdw stop-all`.
#[derive(Debug, clap::Args)]
pub struct StopAllArgs {}

/// Options of `mdw start|stop|restart`.
#[derive(Debug, clap::Args)]
pub struct NameArgs {
    /// Service name or short_name (any case).
    #[arg(add = clap_complete::engine::ArgValueCandidates::new(super::completions::service_candidates))]
    pub name: String,
}

/// Runs `fut` on a fresh Tokio runtime (client verbs are short-lived).
pub(crate) fn block_on<F: Future>(fut: F) -> anyhow::Result<F::Output> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    Ok(rt.block_on(fut))
}

/// Connects to Russell at `addr`. "Not reachable" is one line naming the address and what
/// to do (the transport's own words add nothing); every other error keeps its cause, e.g.
/// why the token file cannot be read.
pub(crate) async fn connect(addr: &str) -> anyhow::Result<Client> {
    russell_api::connect(addr).await.map_err(connect_error)
}

/// See [`connect`].
pub(crate) fn connect_error(e: russell_api::ClientError) -> anyhow::Error {
    match e {
        russell_api::ClientError::Unreachable { .. } => anyhow::anyhow!("{e}"),
        other => anyhow::Error::new(other),
    }
}

/// A failed call as one readable line.
pub(crate) fn call_error(addr: &str, status: &tonic::Status) -> anyhow::Error {
    anyhow::anyhow!(russell_api::client::describe_status(addr, status))
}

/// Prints the outcome of starts; true when all succeeded.
pub fn print_results(out: &mut dyn Write, results: &[pb::ServiceStartResult]) -> bool {
    let mut ok = true;
    for r in results {
        if r.success {
            let _ = writeln!(out, "✓ {:<14} healthy", r.name);
        } else {
            ok = false;
            let _ = writeln!(
                out,
                "✗ {:<14} failed after {} attempt{}: {}",
                r.name,
                r.attempts,
                if r.attempts == 1 { "" } else { "s" },
                r.error
            );
        }
    }
    ok
}

fn code(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `mdw start-all`: starts every service; non-zero when one failed.
pub async fn start_all_with(
    addr: &str,
    client: &mut Client,
    force: bool,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let reply = client
        .start_all_services(pb::StartAllRequest { force })
        .await
        .map_err(|s| call_error(addr, &s))?
        .into_inner();
    let ok = print_results(out, &reply.results);
    Ok(code(ok && reply.success))
}

/// `mdw stop-all`: stops every service, dependents first.
pub async fn stop_all_with(
    addr: &str,
    client: &mut Client,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let reply = client
        .stop_all_services(pb::Empty {})
        .await
        .map_err(|s| call_error(addr, &s))?
        .into_inner();
    if reply.stopped.is_empty() {
        writeln!(out, "nothing was running")?;
    } else {
        writeln!(out, "stopped: {}", reply.stopped.join(", "))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// What `mdw start|stop|restart NAME` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
    Restart,
}

/// `mdw start|stop|restart NAME`.
pub async fn one_with(
    addr: &str,
    client: &mut Client,
    action: Action,
    name: &str,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let req = pb::ServiceRequest {
        name: name.to_string(),
    };
    let result = match action {
        Action::Start => client.start_service(req).await,
        Action::Restart => client.restart_service(req).await,
        Action::Stop => {
            client
                .stop_service(req)
                .await
                .map_err(|s| call_error(addr, &s))?;
            writeln!(out, "✓ {name} stopped")?;
            return Ok(ExitCode::SUCCESS);
        }
    };
    let result = result.map_err(|s| call_error(addr, &s))?.into_inner();
    Ok(code(print_results(out, &[result])))
}

fn run_client<F>(addr: &str, f: F) -> anyhow::Result<ExitCode>
where
    F: AsyncFnOnce(&mut Client, &mut dyn Write) -> anyhow::Result<ExitCode>,
{
    block_on(async {
        let mut client = connect(addr).await?;
        let mut out = std::io::stdout().lock();
        f(&mut client, &mut out).await
    })?
}

/// Runs `mdw start-all`.
pub fn start_all(addr: &str, args: StartAllArgs) -> anyhow::Result<ExitCode> {
    run_client(addr, async |c, out| {
        start_all_with(addr, c, args.force, out).await
    })
}

/// Runs `mdw stop-all`.
pub fn stop_all(addr: &str, _args: StopAllArgs) -> anyhow::Result<ExitCode> {
    run_client(addr, async |c, out| stop_all_with(addr, c, out).await)
}

/// Runs `mdw start NAME`.
pub fn start(addr: &str, args: NameArgs) -> anyhow::Result<ExitCode> {
    run_client(addr, async |c, out| {
        one_with(addr, c, Action::Start, &args.name, out).await
    })
}

/// Runs `mdw stop NAME`.
pub fn stop(addr: &str, args: NameArgs) -> anyhow::Result<ExitCode> {
    run_client(addr, async |c, out| {
        one_with(addr, c, Action::Stop, &args.name, out).await
    })
}

/// Runs `mdw restart NAME`.
pub fn restart(addr: &str, args: NameArgs) -> anyhow::Result<ExitCode> {
    run_client(addr, async |c, out| {
        one_with(addr, c, Action::Restart, &args.name, out).await
    })
}
