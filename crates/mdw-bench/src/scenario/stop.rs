//! Stop: StopAllServices with N services up; time until every service process is gone
//! (dead in /proc, checked per PID) and until the RPC returned.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use russell_api::pb;

use crate::lineup::Spec;
use crate::procs::ProcId;
use crate::scenario::Env;
use crate::stats::Summary;

/// Both stop figures in ms.
#[derive(Debug, Clone)]
pub struct StopResult {
    pub all_gone: Summary,
    pub rpc_returned: Summary,
}

/// `reps` stop-alls of `n` services.
pub async fn run(env: &Env, n: usize, reps: usize) -> anyhow::Result<StopResult> {
    let mut gone = Vec::new();
    let mut returned = Vec::new();
    for _ in 0..reps {
        let mut d = env.deploy(&Spec::flat(n))?;
        let r = once(&mut d).await;
        d.finish().await;
        let (g, rpc) = r?;
        gone.push(g.as_secs_f64() * 1e3);
        returned.push(rpc.as_secs_f64() * 1e3);
    }
    Ok(StopResult {
        all_gone: Summary::of(&gone).context("no repetitions")?,
        rpc_returned: Summary::of(&returned).context("no repetitions")?,
    })
}

async fn once(d: &mut super::Deployment) -> anyhow::Result<(Duration, Duration)> {
    d.until_ports().await?;
    let mut client = d.russell.client(Duration::from_secs(10)).await?;
    let st = d.until_running(&mut client, false).await?;
    let ids: Vec<ProcId> = st
        .services
        .iter()
        .filter_map(|s| ProcId::of(s.pid as i32))
        .collect();
    if ids.len() != st.services.len() {
        bail!(
            "{} of {} service PIDs are not in /proc",
            st.services.len() - ids.len(),
            st.services.len()
        );
    }
    let t0 = Instant::now();
    let rpc = tokio::spawn(async move {
        client
            .stop_all_services(pb::Empty {})
            .await
            .map(|_| Instant::now())
    });
    let gone_at = tokio::task::spawn_blocking(move || {
        let mut pending = ids;
        loop {
            pending.retain(|p| !p.is_gone());
            if pending.is_empty() {
                return Ok(Instant::now());
            }
            if t0.elapsed() > Duration::from_secs(120) {
                bail!(
                    "{} processes still alive 120 s after StopAllServices",
                    pending.len()
                );
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    })
    .await??;
    let returned_at = tokio::time::timeout(Duration::from_secs(120), rpc)
        .await
        .context("StopAllServices did not return within 120 s")???;
    Ok((gone_at - t0, returned_at - t0))
}
