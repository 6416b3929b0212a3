//! CPU and RSS of the services, sampled from /proc by one background task, only while
//! somebody reads snapshots.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, watch};

use crate::service::ActorMsg;
use crate::state_file::StateFile;

/// How often CPU and memory of the services are sampled.
const SAMPLE_EVERY: Duration = Duration::from_secs(3);

#[derive(Debug)]
pub(super) struct Demand {
    /// Set by every snapshot read; the sampler clears it at each round.
    pub(super) wanted: AtomicBool,
    /// Raised by the sampler at the top of each round, before it looks at `wanted`, and
    /// kept up while it sleeps until the next read.
    pub(super) parked: AtomicBool,
    /// Wakes a parked sampler.
    pub(super) wake: Notify,
    /// Counts sample rounds, bumped once the snapshot carrying the round is published.
    pub(super) sampled: watch::Sender<u64>,
}

impl Demand {
    /// Records a read; wakes the sampler if it was idle. Returns whether it was parked.
    pub(super) fn mark(&self) -> bool {
        // Looked at before the wake: once woken, the sampler lowers `parked` at once.
        let parked = self.parked.load(Ordering::SeqCst);
        if !self.wanted.load(Ordering::SeqCst) && !self.wanted.swap(true, Ordering::SeqCst) {
            self.wake.notify_one();
        }
        parked
    }
}

/// One background task samples CPU and RSS of every service's process group, every
/// [`SAMPLE_EVERY`] while snapshots are read; after a round with no read it sleeps until
/// the next read and samples at once.
pub(super) async fn sample_resources(
    rx: watch::Receiver<StateFile>,
    to_actor: mpsc::UnboundedSender<ActorMsg>,
    demand: Arc<Demand>,
) {
    let mut sampler = crate::proc::groups::GroupSampler::new();
    // An ended (aborted) sampler must not leave readers waiting for a round.
    let _unpark = Unpark(&demand);
    loop {
        // `parked` goes up before `wanted` is looked at: a reader that marks after this
        // look then sees `parked` and waits for the round its mark wakes.
        demand.parked.store(true, Ordering::SeqCst);
        if !demand.wanted.swap(false, Ordering::SeqCst) {
            demand.wake.notified().await;
            demand.wanted.store(false, Ordering::SeqCst);
        }
        demand.parked.store(false, Ordering::SeqCst);
        // The services the state file records now (a reload changes them).
        let groups: Vec<(String, u32)> = {
            let state = rx.borrow();
            (state.services.iter())
                .filter_map(|(s, r)| Some((s.clone(), r.process?.pgid?)))
                .collect()
        };
        let out = if groups.is_empty() {
            Vec::new()
        } else {
            let Some((back, out)) = sample_round(sampler, groups).await else {
                return;
            };
            sampler = back;
            out
        };
        // After the snapshot with these figures is out, tell readers waiting for it.
        let d = demand.clone();
        let done = Box::new(move || d.sampled.send_modify(|n| *n += 1));
        if to_actor.send(ActorMsg::Usage(out)).is_err()
            || to_actor.send(ActorMsg::Deliver(done)).is_err()
        {
            return;
        }
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
}

/// Clears `parked` when the sampler ends.
pub(super) struct Unpark<'a>(&'a Demand);

impl Drop for Unpark<'_> {
    fn drop(&mut self) {
        self.0.parked.store(false, Ordering::SeqCst);
    }
}

/// One /proc scan for `groups` (short_name, pgid) → (short_name, CPU %, RSS, CPU
/// seconds) per service.
pub(super) async fn sample_round(
    mut sampler: crate::proc::groups::GroupSampler,
    groups: Vec<(String, u32)>,
) -> Option<(
    crate::proc::groups::GroupSampler,
    Vec<(String, f32, u64, f64)>,
)> {
    let pgids: Vec<u32> = groups.iter().map(|(_, g)| *g).collect();
    // One /proc scan: blocking work, off the runtime's worker threads.
    let (back, usage) = tokio::task::spawn_blocking(move || {
        let usage = sampler.sample(&pgids);
        (sampler, usage)
    })
    .await
    .ok()?;
    let out = groups
        .into_iter()
        .map(|(i, g)| {
            let u = usage.get(&g);
            (
                i,
                u.map_or(0.0, |u| u.cpu_percent as f32),
                u.map_or(0, |u| u.rss_bytes),
                u.map_or(0.0, |u| u.cpu_seconds),
            )
        })
        .collect();
    Some((back, out))
}
