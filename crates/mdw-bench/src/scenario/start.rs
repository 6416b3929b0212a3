//! Start: launch Russell on N services (ready at once, no dependencies) and time until
//! every port answers; and a layered DAG whose services open their ports 200 ms after
//! spawn behind http checks, against its critical path.

use std::time::Duration;

use crate::lineup::Spec;
use crate::scenario::Env;
use crate::stats::Summary;

/// Milliseconds from launching Russell until all `n` ports answer, over `reps` runs.
pub async fn flat(env: &Env, n: usize, reps: usize) -> anyhow::Result<Summary> {
    times(env, &Spec::flat(n), reps).await
}

/// The DAG of `levels` levels over `n` services, each ready `ready` after its spawn.
pub fn dag_spec(n: usize, levels: usize, ready: Duration) -> Spec {
    Spec {
        levels,
        fan_in: 2,
        ready_after: Some(ready),
        http_check: Some(Duration::from_secs(10)),
        ..Spec::flat(n)
    }
}

/// Milliseconds from launch until every port of `spec` answers, per repetition.
pub async fn times(env: &Env, spec: &Spec, reps: usize) -> anyhow::Result<Summary> {
    let mut samples = Vec::with_capacity(reps);
    for _ in 0..reps {
        let mut d = env.deploy(spec)?;
        let took = d.until_ports().await;
        d.finish().await;
        samples.push(took?.as_secs_f64() * 1e3);
    }
    Summary::of(&samples).ok_or_else(|| anyhow::anyhow!("no repetitions"))
}
