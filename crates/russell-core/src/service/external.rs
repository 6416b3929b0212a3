//! The task that probes one external (never started or stopped): right away, then every
//! [`super::task::FAST_PROBE`] until the first verdict flips to healthy, then
//! every `interval`. The first result decides the state; afterwards `failure_threshold`
//! consecutive failures make it unhealthy and `success_threshold` successes healthy again.

use std::sync::Arc;
use std::time::SystemTime;

use russell_config::External;
use tokio::time::{Instant, sleep_until};

use super::task::FAST_PROBE;
use super::{ActorMsg, Shared, TaskId};
use crate::events::event;
use crate::health::ProbeError;
use crate::{EventKind, ExternalState, ExternalStatus, ServiceState};

/// Probes until the actor goes away.
pub(crate) async fn run(id: TaskId, ext: Arc<External>, shared: Arc<Shared>) {
    let hc = &ext.health_check;
    let mut status = ExternalStatus {
        name: ext.name.clone(),
        short_name: ext.short_name.clone(),
        description: ext.description.clone(),
        optional: ext.optional,
        state: ExternalState::Unknown,
        last_error: String::new(),
        last_health_check: None,
        missing_models: Vec::new(),
    };
    let (mut failures, mut successes) = (0u32, 0u32);
    loop {
        let started = Instant::now();
        let result = crate::health::probe(&hc.probe, hc.timeout).await;
        status.last_health_check = Some(SystemTime::now());
        let before = status.state;
        match result {
            Ok(()) => {
                failures = 0;
                successes += 1;
                status.last_error.clear();
                status.missing_models.clear();
                if before != ExternalState::Healthy
                    && (before == ExternalState::Unknown
                        || successes >= hc.success_threshold.max(1))
                {
                    status.state = ExternalState::Healthy;
                }
            }
            Err(e) => {
                successes = 0;
                failures += 1;
                status.last_error = e.to_string();
                status.missing_models = match e {
                    ProbeError::MissingModels { missing, .. } => missing,
                    _ => Vec::new(),
                };
                if before == ExternalState::Unknown
                    || (before == ExternalState::Healthy && failures >= hc.failure_threshold.max(1))
                {
                    status.state = ExternalState::Unhealthy;
                }
            }
        }
        if shared
            .to_actor
            .send(ActorMsg::External {
                id,
                status: status.clone(),
            })
            .is_err()
        {
            return;
        }
        if status.state != before {
            let (kind, state, msg) = match status.state {
                ExternalState::Healthy => (
                    EventKind::Healthy,
                    ServiceState::Running,
                    "healthy".to_string(),
                ),
                _ => (
                    EventKind::Unhealthy,
                    ServiceState::Unhealthy,
                    format!("unhealthy: {}", status.last_error),
                ),
            };
            shared.emit(event(kind, &ext.short_name, msg, state, None));
        }
        let period = if status.state == ExternalState::Healthy {
            hc.interval
        } else {
            FAST_PROBE.max(hc.interval / 20).min(hc.interval)
        };
        tokio::select! {
            _ = sleep_until(started + period) => {}
            _ = shared.to_actor.closed() => return,
        }
    }
}
