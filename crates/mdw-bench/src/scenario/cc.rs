//! ControlCenter: N services up and nothing changing; `mdw cc` runs in a pseudo-terminal
//! ([`crate::pty`], 40 × 160) against that Russell. Once its screen shows every service
//! running, and after 3 s to settle, its own CPU (per-thread `schedstat`, or `utime +
//! stime` from `/proc/<pid>/stat` when that proves more) and RSS (VmRSS, once a second)
//! are read over a window; Russell's CPU over the same window too, as ControlCenter's
//! refreshes are what Russell serves then. `q` ends it; its process group is killed if it
//! does not exit.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::lineup::Spec;
use crate::procs::{CpuSample, ProcId};
use crate::pty::Pty;
use crate::report::{Goal, Row, Unit};
use crate::scenario::footprint::{Footprint, sample};
use crate::scenario::{Deployment, Env};

const ROWS: u16 = 40;
const COLS: u16 = 160;

/// What the ControlCenter window showed.
#[derive(Debug, Clone)]
pub struct CcResult {
    pub services: usize,
    /// ControlCenter's CPU and RSS.
    pub cc: Footprint,
    /// Russell's CPU over the same window, % of one core.
    pub russell_cpu: f64,
    /// Bytes ControlCenter wrote to its terminal during the window.
    pub screen_bytes: usize,
}

/// `mdw cc` open on `n` services for `window`.
pub async fn run(env: &Env, n: usize, window: Duration) -> anyhow::Result<CcResult> {
    let mut d = env.deploy(&Spec::flat(n))?;
    let result = measure(env, &mut d, window).await;
    d.finish().await;
    result
}

/// `mdw cc`, killed with its process group when dropped.
struct CcProcess {
    child: Child,
    id: ProcId,
}

impl Drop for CcProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.id.kill_group();
            let _ = self.child.wait();
        }
    }
}

async fn measure(env: &Env, d: &mut Deployment, window: Duration) -> anyhow::Result<CcResult> {
    let n = d.lineup.services.len();
    d.until_ports().await?;
    {
        let mut client = d.russell.client(Duration::from_secs(10)).await?;
        d.until_running(&mut client, false).await?;
    }
    let pty = Pty::open(ROWS, COLS)?;
    let output = pty.drain()?;
    let child = {
        use std::os::unix::process::CommandExt;
        Command::new(&env.mdw)
            .arg("--russell")
            .arg(d.russell.addr.to_string())
            .arg("cc")
            .env("TERM", "xterm-256color")
            .env_remove("MDW_RUSSELL_TOKEN")
            .stdin(pty.slave.try_clone()?)
            .stdout(pty.slave.try_clone()?)
            .stderr(pty.slave.try_clone()?)
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot run {} cc", env.mdw.display()))?
    };
    let pid = child.id() as i32;
    let mut cc = CcProcess {
        child,
        id: ProcId::of(pid).unwrap_or(ProcId { pid, start_time: 0 }),
    };
    let Pty {
        mut master, slave, ..
    } = pty;
    drop(slave);

    let all_running = format!("Services: {n}/{n} running");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let shown = output
            .lock()
            .map(|o| o.text().contains(&all_running))
            .unwrap_or(false);
        if shown {
            break;
        }
        if let Some(status) = cc.child.try_wait()? {
            bail!("mdw cc exited with {status} before its screen showed {all_running:?}");
        }
        if Instant::now() >= deadline {
            let screen = output.lock().map(|o| o.text()).unwrap_or_default();
            bail!("mdw cc did not show {all_running:?} within 30 s; its screen:\n{screen}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;

    let before = output.lock().map(|o| o.total).unwrap_or(0);
    let russell0 = CpuSample::take(d.russell.id.pid)?;
    let footprint = sample(pid, window).await?;
    let russell1 = CpuSample::take(d.russell.id.pid)?;
    let after = output.lock().map(|o| o.total).unwrap_or(0);
    if let Some(status) = cc.child.try_wait()? {
        bail!("mdw cc exited with {status} during the window");
    }

    // q quits; the guard kills the group if it does not
    {
        use std::io::Write;
        let _ = master.write_all(b"q");
    }
    let quit = Instant::now() + Duration::from_secs(5);
    while matches!(cc.child.try_wait(), Ok(None)) && Instant::now() < quit {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(cc);
    Ok(CcResult {
        services: n,
        cc: footprint,
        russell_cpu: russell0.percent_until(&russell1),
        screen_bytes: after - before,
    })
}

/// The ControlCenter figures as table rows.
pub fn rows(r: CcResult) -> Vec<Row> {
    let n = r.services;
    let secs = r.cc.rss_mib.n;
    vec![
        Row::value(
            format!("ControlCenter CPU, {n} services, nothing changing"),
            r.cc.cpu_percent,
            format!(
                "of one core, over {secs} s; it wrote {} KiB to its terminal; Russell meanwhile {}",
                r.screen_bytes / 1024,
                Unit::Percent.fmt(r.russell_cpu)
            ),
            Unit::Percent,
            Goal::AtMost(1.0),
        ),
        Row::median(
            format!("ControlCenter RSS, {n} services"),
            &r.cc.rss_mib,
            Unit::MiB,
            Goal::Info,
        ),
    ]
}
