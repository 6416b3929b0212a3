//! Footprint: Russell's RSS and CPU (% of one core) while idle with N services up, sampled
//! from /proc over a fixed window.

use std::time::Duration;

use crate::lineup::Spec;
use crate::procs::{CpuSample, rss_bytes};
use crate::scenario::Env;
use crate::stats::Summary;

/// What one idle window showed.
#[derive(Debug, Clone)]
pub struct Footprint {
    /// RSS samples (one a second), MiB.
    pub rss_mib: Summary,
    /// CPU over the whole window, % of one core.
    pub cpu_percent: f64,
}

/// Idle footprint with `n` services; `http_check`: an http check every 10 s on each.
pub async fn run(
    env: &Env,
    n: usize,
    http_check: bool,
    window: Duration,
) -> anyhow::Result<Footprint> {
    let spec = Spec {
        http_check: http_check.then_some(Duration::from_secs(10)),
        ..Spec::flat(n)
    };
    idle(env, &spec, window).await
}

/// Idle footprint of Russell running the line-up `spec` (every service up, and healthy
/// when it has a check).
pub async fn idle(env: &Env, spec: &Spec, window: Duration) -> anyhow::Result<Footprint> {
    let mut d = env.deploy(spec)?;
    let result = async {
        d.until_ports().await?;
        {
            let mut client = d.russell.client(Duration::from_secs(10)).await?;
            d.until_running(&mut client, spec.http_check.is_some())
                .await?;
        }
        // let start-up work (first probes, log files, late allocations) settle
        tokio::time::sleep(Duration::from_secs(2)).await;
        let f = sample(d.russell.id.pid, window).await?;
        anyhow::ensure!(
            d.russell.is_running(),
            "Russell exited during the idle window"
        );
        Ok::<_, anyhow::Error>(f)
    }
    .await;
    d.finish().await;
    result
}

/// RSS (once a second) and CPU of process `pid` over `window`, touching nothing else.
pub async fn sample(pid: i32, window: Duration) -> anyhow::Result<Footprint> {
    let begin = CpuSample::take(pid)?;
    let mut rss = Vec::new();
    let ticks = window.as_secs().max(1);
    for _ in 0..ticks {
        rss.push(rss_bytes(pid)? as f64 / (1024.0 * 1024.0));
        tokio::time::sleep(window / ticks as u32).await;
    }
    let end = CpuSample::take(pid)?;
    Ok(Footprint {
        rss_mib: Summary::of(&rss).ok_or_else(|| anyhow::anyhow!("no RSS sample"))?,
        cpu_percent: begin.percent_until(&end),
    })
}
