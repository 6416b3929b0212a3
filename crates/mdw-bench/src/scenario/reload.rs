//! Reload: N services up; the services file is rewritten with one service's command
//! changed (`--body reload-<k>`, which the stand-in puts into its `/health` reply) and
//! ReloadConfig is called. Measured: call → that service answers `/health` with the new
//! body (its new process, on its new config), and call → RPC returned. Every other
//! service must keep its process (PID and start time) and its restart count; the scenario
//! fails otherwise.
//!
//! The reload's own work (parse, validate, diff) is not exposed by Russell. Two figures
//! stand for it: `russell_config::load_with` of the changed file plus `russell_config::diff`
//! against the running config, timed in this process (the bench's build, one thread), and
//! the round trip of a dry-run ReloadConfig (read, validate and diff inside Russell, plus
//! the gRPC call), an upper bound of what Russell spends on it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use russell_api::pb;

use crate::http::HttpConn;
use crate::lineup::Spec;
use crate::procs::ProcId;
use crate::report::{Goal, Row, Unit, spread};
use crate::russell::Client;
use crate::scenario::{Deployment, Env};
use crate::stats::{Summary, ms};

/// What the reload figures showed.
#[derive(Debug, Clone)]
pub struct ReloadResult {
    pub services: usize,
    /// ReloadConfig called → the changed service answers with its new config, ms.
    pub to_healthy: Summary,
    /// ReloadConfig called → the RPC returned, ms.
    pub rpc_returned: Summary,
    /// Services checked to have kept their process and restart count, per reload.
    pub others_kept: usize,
    /// Load (parse, validate) + diff of the changed file, in this process, ms.
    pub own_work: Summary,
    /// Dry-run ReloadConfig round trip, ms.
    pub dry_run: Summary,
    /// `mdw reload --dry-run` from process start to exit, ms.
    pub cli_dry_run: Summary,
}

/// `reloads` live reloads of one changed service each and `work_reps` timings of the
/// reload's own work, against `n` services.
pub async fn run(
    env: &Env,
    n: usize,
    reloads: usize,
    work_reps: usize,
) -> anyhow::Result<ReloadResult> {
    let mut d = env.deploy(&Spec::flat(n))?;
    let result = measure(env, &mut d, reloads, work_reps).await;
    d.finish().await;
    result
}

async fn measure(
    env: &Env,
    d: &mut Deployment,
    reloads: usize,
    work_reps: usize,
) -> anyhow::Result<ReloadResult> {
    let n = d.lineup.services.len();
    d.until_ports().await?;
    let mut client = d.russell.client(Duration::from_secs(10)).await?;
    let st = d.until_running(&mut client, false).await?;
    let mut before = processes(&st)?;
    let mut file = Edits::new(&d.lineup.toml, d.config_path())?;
    let running = russell_config::load_with(&file.path, &env.mdw)
        .map_err(|e| anyhow::anyhow!("the generated file does not load: {e}"))?;

    // The reload's own work, on a file with one change (the first victim's).
    let first = d.lineup.services[0].short_name.clone();
    file.change(0, "reload-0")?;
    let own_work = {
        let (path, mdw) = (file.path.clone(), env.mdw.clone());
        tokio::task::spawn_blocking(move || time_load_and_diff(&running, &path, &mdw, work_reps))
            .await??
    };
    let mut dry = Vec::with_capacity(work_reps);
    for _ in 0..work_reps {
        let t0 = Instant::now();
        let r = reload(&mut client, true).await?;
        dry.push(ms(t0.elapsed()));
        ensure!(
            r.services.len() == 1 && r.services[0].short_name == first && !r.applied,
            "a dry run of a file with only {first} changed reported {:?}",
            r.services
        );
    }
    let mut cli = Vec::new();
    for _ in 0..(work_reps / 5).max(2) {
        cli.push(ms(cli_dry_run(&env.mdw, d.russell.addr).await?));
    }

    let mut to_healthy = Vec::with_capacity(reloads);
    let mut returned = Vec::with_capacity(reloads);
    for k in 0..reloads {
        // victims spread over the file; the first one's change is already written
        let idx = (k * 37) % n;
        let victim = d.lineup.services[idx].clone();
        let body = format!("reload-{k}");
        if k > 0 {
            file.change(idx, &body)?;
        }
        let port = SocketAddr::from(([127, 0, 0, 1], victim.http_port));
        let t0 = Instant::now();
        let mut rpc_client = client.clone();
        let rpc = tokio::spawn(async move {
            let r = reload(&mut rpc_client, false).await;
            (Instant::now(), r)
        });
        let healthy_at = until_body(port, &body, t0 + Duration::from_secs(30))
            .await
            .with_context(|| format!("{} after the reload", victim.short_name))?;
        let (returned_at, r) = rpc.await?;
        let r = r?;
        ensure!(
            r.applied
                && r.services.len() == 1
                && r.services[0].short_name == victim.short_name
                && r.services[0].action == "restart",
            "the reload of a file with only {} changed applied {:?}",
            victim.short_name,
            r.services
        );
        to_healthy.push(ms(healthy_at - t0));
        returned.push(ms(returned_at - t0));

        let st = d.russell.status(&mut client).await?;
        let after = processes(&st)?;
        let moved: Vec<String> = before
            .iter()
            .filter(|(name, _)| **name != victim.short_name)
            .filter(|(name, p)| after.get(*name) != Some(p))
            .map(|(name, p)| format!("{name} (was PID {} restart {})", p.0.pid, p.1))
            .take(5)
            .collect();
        if !moved.is_empty() {
            bail!(
                "the reload of {} also touched other services: {}",
                victim.short_name,
                moved.join(", ")
            );
        }
        ensure!(
            after.get(&victim.short_name).map(|p| p.0)
                != before.get(&victim.short_name).map(|p| p.0),
            "{} answers with its new config but Russell reports its old PID",
            victim.short_name
        );
        before = after;
    }
    Ok(ReloadResult {
        services: n,
        to_healthy: Summary::of(&to_healthy).context("no reloads")?,
        rpc_returned: Summary::of(&returned).context("no reloads")?,
        others_kept: n - 1,
        own_work: Summary::of(&time_ms_of(&own_work)).context("no timings")?,
        dry_run: Summary::of(&dry).context("no dry runs")?,
        cli_dry_run: Summary::of(&cli).context("no CLI dry runs")?,
    })
}

/// The reload figures as table rows.
pub fn rows(r: ReloadResult) -> Vec<Row> {
    let n = r.services;
    vec![
        Row::median(
            format!("reload, 1 of {n} changed → it answers on its new config"),
            &r.to_healthy,
            Unit::Ms,
            Goal::Info,
        ),
        Row::median(
            format!("reload, 1 of {n} changed → RPC returned"),
            &r.rpc_returned,
            Unit::Ms,
            Goal::Info,
        )
        .note(format!(
            "{}; every reload: the other {} kept PID, start time and restart count",
            spread(&r.rpc_returned, Unit::Ms),
            r.others_kept
        )),
        Row::median(
            format!("reload's own work at {n}: load + validate + diff, in-process"),
            &r.own_work,
            Unit::Ms,
            Goal::AtMost(20.0),
        ),
        Row::median(
            format!("reload --dry-run round trip at {n} (upper bound of the same)"),
            &r.dry_run,
            Unit::Ms,
            Goal::AtMost(20.0),
        ),
        Row::median(
            format!("`mdw reload --dry-run` at {n}, CLI process start to exit"),
            &r.cli_dry_run,
            Unit::Ms,
            Goal::Info,
        ),
    ]
}

/// One `mdw reload --dry-run` against `addr`, from spawn to exit (output discarded).
async fn cli_dry_run(mdw: &std::path::Path, addr: SocketAddr) -> anyhow::Result<Duration> {
    let t0 = Instant::now();
    let out = tokio::process::Command::new(mdw)
        .arg("--russell")
        .arg(addr.to_string())
        .args(["reload", "--dry-run"])
        .env_remove("MDW_RUSSELL_TOKEN")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await
        .with_context(|| format!("cannot run {} reload --dry-run", mdw.display()))?;
    let took = t0.elapsed();
    ensure!(
        out.status.success(),
        "mdw reload --dry-run exited with {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(took)
}

/// Each service's process and restart count, by short name.
fn processes(st: &pb::OrchestratorStatus) -> anyhow::Result<HashMap<String, (ProcId, u32)>> {
    st.services
        .iter()
        .map(|s| {
            let id = ProcId::of(s.pid as i32)
                .with_context(|| format!("{} (PID {}) is not in /proc", s.short_name, s.pid))?;
            Ok((s.short_name.clone(), (id, s.restart_count)))
        })
        .collect()
}

async fn reload(client: &mut Client, dry_run: bool) -> anyhow::Result<pb::ReloadConfigResponse> {
    Ok(client
        .reload_config(pb::ReloadConfigRequest { dry_run })
        .await
        .context("ReloadConfig failed")?
        .into_inner())
}

/// Polls `GET /health` on `port` (1 ms apart) until the reply carries `body`.
async fn until_body(port: SocketAddr, body: &str, deadline: Instant) -> anyhow::Result<Instant> {
    loop {
        if let Ok(mut c) = HttpConn::connect(port).await
            && let Ok(r) = c.get("/health").await
            && r.status == 200
            && r.body.ends_with(body.as_bytes())
        {
            return Ok(Instant::now());
        }
        if Instant::now() >= deadline {
            bail!("port {port} did not answer with body {body:?} in time");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The services file as a TOML table, rewritten one service at a time.
struct Edits {
    table: toml::Table,
    path: PathBuf,
}

impl Edits {
    fn new(text: &str, path: PathBuf) -> anyhow::Result<Edits> {
        Ok(Edits {
            table: text.parse().context("the generated file is not TOML")?,
            path,
        })
    }

    /// Gives service `idx` the stand-in argument `--body <body>` and writes the file.
    fn change(&mut self, idx: usize, body: &str) -> anyhow::Result<()> {
        let command = self
            .table
            .get_mut("services")
            .and_then(|s| s.as_array_mut())
            .and_then(|s| s.get_mut(idx))
            .and_then(|s| s.get_mut("command"))
            .and_then(|c| c.as_array_mut())
            .with_context(|| format!("service {idx} has no command in the generated file"))?;
        command.push("--body".into());
        command.push(body.into());
        let text = toml::to_string(&self.table).context("cannot write the services file")?;
        std::fs::write(&self.path, text)
            .with_context(|| format!("cannot write {}", self.path.display()))
    }
}

/// `reps` rounds of load + diff of `path` against `running`; the duration of each.
fn time_load_and_diff(
    running: &russell_config::Config,
    path: &std::path::Path,
    mdw: &std::path::Path,
    reps: usize,
) -> anyhow::Result<Vec<Duration>> {
    let mut took = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t0 = Instant::now();
        let new = russell_config::load_with(path, mdw)
            .map_err(|e| anyhow::anyhow!("the changed file does not load: {e}"))?;
        let diff = russell_config::diff(running, &new);
        took.push(t0.elapsed());
        ensure!(
            diff.services.len() == 1,
            "the diff of one changed service lists {}",
            diff.services.len()
        );
    }
    Ok(took)
}

fn time_ms_of(d: &[Duration]) -> Vec<f64> {
    d.iter().copied().map(ms).collect()
}
