//! Sending commands to the service tasks: starts in dependency order, stops dependents
//! first, and the epoch bump that keeps a stale state from answering a new command.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_channel::mpsc::UnboundedSender;
use tokio::sync::oneshot;

use super::graph::Graph;
use crate::StartResult;
use crate::service::ServiceCmd;
use crate::state_file::ProcessRecord;

/// A command sent to service `.0`; its answer comes on `.1`.
pub(super) type Wait = (usize, oneshot::Receiver<StartResult>);

/// Sends commands to service tasks; cloneable into batch futures. Every command bumps the
/// service's epoch first (see [`super::actor::dep_view`]).
#[derive(Clone)]
pub(super) struct Dispatch {
    /// Per service: its task's command queue. The actor sends, the task receives; when
    /// the last `Dispatch` goes, each task sees the end of its queue and returns.
    pub(super) txs: Arc<Vec<UnboundedSender<ServiceCmd>>>,
    pub(super) epochs: Arc<Vec<Arc<AtomicU64>>>,
    pub(super) graph: Arc<Graph>,
    /// Per service: its name (for the answer when its task is gone).
    pub(super) names: Arc<[String]>,
    /// Per service: its short_name, as marked on its processes.
    pub(super) shorts: Arc<[String]>,
    /// The state directory as marked on the services' processes.
    pub(super) state_dir: PathBuf,
}

impl Dispatch {
    pub(super) fn bump(&self, i: usize) -> u64 {
        self.epochs[i].fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Starts `targets` in start order; `blocked` are told why they may not start. The
    /// results come back in config order.
    pub(super) async fn start(
        &self,
        targets: Vec<usize>,
        blocked: Vec<(usize, String)>,
    ) -> Vec<(usize, StartResult)> {
        let waits = self.send_start(targets, blocked);
        self.results(waits).await
    }

    /// The commands of [`Self::start`], sent at once; the answers to await with
    /// [`Self::results`].
    pub(super) fn send_start(
        &self,
        targets: Vec<usize>,
        blocked: Vec<(usize, String)>,
    ) -> Vec<Wait> {
        let set: HashSet<usize> = targets.iter().copied().collect();
        let ordered: Vec<usize> = self
            .graph
            .order
            .iter()
            .copied()
            .filter(|i| set.contains(i))
            .collect();
        // Bump every epoch before the first command goes out: no target may see another
        // target's stale state.
        let epochs: Vec<u64> = ordered.iter().map(|&i| self.bump(i)).collect();
        let mut waits = Vec::new();
        for (&i, epoch) in ordered.iter().zip(epochs) {
            let (reply, rx) = oneshot::channel();
            let _ = self.txs[i].unbounded_send(ServiceCmd::Start {
                epoch,
                reply: Some(reply),
            });
            waits.push((i, rx));
        }
        for (i, reason) in blocked {
            let (reply, rx) = oneshot::channel();
            let epoch = self.bump(i);
            let _ = self.txs[i].unbounded_send(ServiceCmd::Block {
                epoch,
                reason,
                reply,
            });
            waits.push((i, rx));
        }
        waits
    }

    /// The answers to commands sent, in config order.
    pub(super) async fn results(&self, waits: Vec<Wait>) -> Vec<(usize, StartResult)> {
        let mut results = futures_util::future::join_all(
            waits
                .into_iter()
                .map(|(i, rx)| async move { (i, rx.await.unwrap_or_else(|_| self.gone(i))) }),
        )
        .await;
        results.sort_by_key(|(i, _)| *i);
        results
    }

    /// Stops service `i`; `sweep`: and what left its group (see [`ServiceCmd::Stop`]).
    pub(super) async fn stop(&self, i: usize, by_user: bool, sweep: bool) {
        let (reply, rx) = oneshot::channel();
        let epoch = self.bump(i);
        if self.txs[i]
            .unbounded_send(ServiceCmd::Stop {
                epoch,
                by_user,
                sweep,
                reply,
            })
            .is_ok()
        {
            let _ = rx.await;
        }
    }

    /// Stops everything, dependents first, independent ones in parallel; then, with one
    /// /proc scan for all, what left the services' groups. Returns indices in stop order.
    pub(super) async fn stop_all(&self, by_user: bool) -> Vec<usize> {
        let mut order = Vec::new();
        for round in self.graph.stop_rounds() {
            futures_util::future::join_all(round.iter().map(|&i| self.stop(i, by_user, false)))
                .await;
            order.extend(round);
        }
        let (dir, shorts) = (self.state_dir.clone(), self.shorts.clone());
        let found =
            tokio::task::spawn_blocking(move || crate::proc::strays::escapees(&dir, &shorts))
                .await
                .unwrap_or_default();
        let mut by_service: HashMap<usize, Vec<ProcessRecord>> = HashMap::new();
        for stray in found {
            if let Some(i) = self.shorts.iter().position(|s| *s == stray.short) {
                by_service.entry(i).or_default().push(stray.record);
            }
        }
        futures_util::future::join_all(by_service.into_iter().map(|(i, found)| async move {
            let (reply, rx) = oneshot::channel();
            if self.txs[i]
                .unbounded_send(ServiceCmd::StopEscapees { found, reply })
                .is_ok()
            {
                let _ = rx.await;
            }
        }))
        .await;
        order
    }

    pub(super) async fn restart(&self, i: usize) -> StartResult {
        let (_, rx) = self.send_restart(i);
        rx.await.unwrap_or_else(|_| self.gone(i))
    }

    /// The command of [`Self::restart`]; the answer to await with [`Self::results`].
    pub(super) fn send_restart(&self, i: usize) -> Wait {
        let (reply, rx) = oneshot::channel();
        let epoch = self.bump(i);
        let _ = self.txs[i].unbounded_send(ServiceCmd::Restart { epoch, reply });
        (i, rx)
    }

    /// Like [`Self::restart`], with the reason in the service's events.
    pub(super) async fn restart_for(&self, i: usize, why: String) -> StartResult {
        let (reply, rx) = oneshot::channel();
        let epoch = self.bump(i);
        let _ = self.txs[i].unbounded_send(ServiceCmd::RestartFor {
            epoch,
            why: why.into(),
            reply,
        });
        rx.await.unwrap_or_else(|_| self.gone(i))
    }

    /// Stops service `i` and what left its group, then ends its task (a reload removed
    /// it from the services file).
    pub(super) async fn remove(&self, i: usize) {
        let (reply, rx) = oneshot::channel();
        if self.txs[i]
            .unbounded_send(ServiceCmd::Remove { reply })
            .is_ok()
        {
            let _ = rx.await;
        }
    }

    /// The answer for service `i` when its task ended before it answered.
    pub(super) fn gone(&self, i: usize) -> StartResult {
        StartResult {
            name: self.names[i].clone(),
            success: false,
            error: "its task is gone: Russell is shutting down, or a reload removed it from the services file".into(),
            attempts: 0,
        }
    }
}

pub(super) fn only_results(results: Vec<(usize, StartResult)>) -> Vec<StartResult> {
    results.into_iter().map(|(_, r)| r).collect()
}
