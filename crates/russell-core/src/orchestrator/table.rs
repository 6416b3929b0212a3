//! Which row of the actor's table each task reports to. Rows follow the services file's
//! order and change on a reload that adds, removes or reorders services; tasks are named
//! by a [`TaskId`] that is never reused, and the actor rebuilds these maps whenever the
//! table changes, so no index outlives the table it was taken from.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use russell_config::{Config, External};

use super::actor::Actor;
use super::dispatch::Dispatch;
use super::graph::Graph;
use crate::service::task::{ServiceTask, TaskInit};
use crate::service::{LeftBehind, TaskId};
use crate::{ExternalState, ExternalStatus};

/// Task ids and short_names → rows, for one shape of the table.
#[derive(Debug, Default)]
pub(super) struct Rows {
    /// Per service row: its task.
    pub(super) service_ids: Vec<TaskId>,
    /// Per external row: its prober.
    pub(super) external_ids: Vec<TaskId>,
    services: HashMap<TaskId, usize>,
    externals: HashMap<TaskId, usize>,
    /// Service short_name → row.
    shorts: HashMap<String, usize>,
    /// Node short_name → node index (services 0..n, then externals), for the
    /// dependency view.
    pub(super) nodes: Arc<HashMap<String, usize>>,
}

impl Rows {
    /// The rows of `config`, whose services and externals run as these tasks (same order).
    pub(super) fn new(
        config: &Config,
        service_ids: Vec<TaskId>,
        external_ids: Vec<TaskId>,
    ) -> Self {
        let index = |ids: &[TaskId]| ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        let shorts: HashMap<String, usize> = (config.services.iter().enumerate())
            .map(|(i, s)| (s.short_name.clone(), i))
            .collect();
        let n = config.services.len();
        let nodes = (shorts.iter().map(|(s, i)| (s.clone(), *i)))
            .chain(
                (config.externals.iter().enumerate()).map(|(i, e)| (e.short_name.clone(), n + i)),
            )
            .collect();
        Self {
            services: index(&service_ids),
            externals: index(&external_ids),
            service_ids,
            external_ids,
            shorts,
            nodes: Arc::new(nodes),
        }
    }

    /// The row of the service task `id`; `None` once a reload removed it.
    pub(super) fn service(&self, id: TaskId) -> Option<usize> {
        self.services.get(&id).copied()
    }

    /// The row of the external prober `id`; `None` once a reload removed or replaced it.
    pub(super) fn external(&self, id: TaskId) -> Option<usize> {
        self.externals.get(&id).copied()
    }

    /// The row of the service `short`.
    pub(super) fn by_short(&self, short: &str) -> Option<usize> {
        self.shorts.get(short).copied()
    }
}

/// The status of an external before its first probe.
pub(super) fn unprobed(e: &External) -> ExternalStatus {
    ExternalStatus {
        name: e.name.clone(),
        short_name: e.short_name.clone(),
        description: e.description.clone(),
        optional: e.optional,
        state: ExternalState::Unknown,
        last_error: String::new(),
        last_health_check: None,
        missing_models: Vec::new(),
    }
}

/// What [`Actor::reshape`] changed.
pub(super) struct Reshaped {
    /// Per new row: the old row of a kept service (`None`: added).
    pub(super) old_row: Vec<Option<usize>>,
    /// New rows of added services.
    pub(super) added: Vec<usize>,
    /// Old rows of removed services; their tasks still run until told to go.
    pub(super) removed: Vec<usize>,
    /// The dispatch of the old table: it still reaches the removed tasks, by old row.
    pub(super) old: Dispatch,
}

impl Actor {
    /// Rebuilds the table for `new`, in its file order, with `graph` (built from `new`).
    /// A kept service brings its task, status, process record and epochs; an added one
    /// gets a new task, stopped; a removed one leaves the table (its task goes on until
    /// [`Dispatch::remove`] through [`Reshaped::old`]). A kept external keeps its prober
    /// unless `changed` names it; a changed or added one gets a new prober (its status
    /// takes the new name, description and `optional` at once), a removed one's ends.
    pub(super) fn reshape(&mut self, new: &Config, graph: Graph, changed: &[&str]) -> Reshaped {
        let old = self.dispatch.clone();
        let shorts: Vec<String> = new.services.iter().map(|s| s.short_name.clone()).collect();
        self.shared.logs.set_services(&shorts);
        let n = new.services.len();
        let (mut statuses, mut records, mut seen) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut ids, mut txs, mut epochs) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut old_row, mut added) = (Vec::with_capacity(n), Vec::new());
        for (i, svc) in new.services.iter().enumerate() {
            if let Some(j) = self.rows.by_short(&svc.short_name) {
                statuses.push(self.statuses[j].clone());
                records.push(self.records[j]);
                seen.push(self.seen[j]);
                ids.push(self.rows.service_ids[j]);
                txs.push(old.txs[j].clone());
                epochs.push(old.epochs[j].clone());
                old_row.push(Some(j));
                continue;
            }
            let id = self.take_id();
            let status = super::spawn::initial_status(svc, None);
            let (tx, rx) = futures_channel::mpsc::unbounded();
            let task = ServiceTask::new(TaskInit {
                id,
                svc: Arc::new(svc.clone()),
                shared: self.shared.clone(),
                deps_rx: self.dep_tx.subscribe(),
                deps: graph.dep_specs(i),
                cmds: rx,
                status: status.clone(),
            });
            self.tasks
                .spawn(task.run(None, None, LeftBehind::default()));
            statuses.push(Arc::new(status));
            records.push(None);
            seen.push(0);
            ids.push(id);
            txs.push(tx);
            epochs.push(Arc::new(AtomicU64::new(0)));
            old_row.push(None);
            added.push(i);
        }
        let kept: HashSet<&str> = shorts.iter().map(String::as_str).collect();
        let removed = (0..self.statuses.len())
            .filter(|&j| !kept.contains(self.statuses[j].short_name.as_str()))
            .collect();

        let m = new.externals.len();
        let (mut ext_status, mut ext_ids, mut ext_tasks) = (
            Vec::with_capacity(m),
            Vec::with_capacity(m),
            Vec::with_capacity(m),
        );
        let old_ext: HashMap<String, usize> = (self.externals.iter().enumerate())
            .map(|(k, e)| (e.short_name.clone(), k))
            .collect();
        let mut probers: Vec<Option<tokio::task::AbortHandle>> =
            std::mem::take(&mut self.external_tasks)
                .into_iter()
                .map(Some)
                .collect();
        for ext in &new.externals {
            let found = old_ext.get(&ext.short_name).copied();
            if let Some(k) = found
                && let Some(prober) = probers[k].take()
            {
                if !changed.contains(&ext.short_name.as_str()) {
                    ext_status.push(self.externals[k].clone());
                    ext_ids.push(self.rows.external_ids[k]);
                    ext_tasks.push(prober);
                    continue;
                }
                prober.abort();
            }
            let id = self.take_id();
            let prober =
                crate::service::external::run(id, Arc::new(ext.clone()), self.shared.clone());
            ext_tasks.push(self.tasks.spawn(prober));
            ext_ids.push(id);
            ext_status.push(match found {
                Some(k) => ExternalStatus {
                    name: ext.name.clone(),
                    description: ext.description.clone(),
                    optional: ext.optional,
                    ..self.externals[k].clone()
                },
                None => unprobed(ext),
            });
        }
        // What is left belongs to removed externals.
        for prober in probers.into_iter().flatten() {
            prober.abort();
        }

        self.rows = Rows::new(new, ids, ext_ids);
        self.statuses = statuses;
        self.records = records;
        self.seen = seen;
        self.externals = ext_status;
        self.external_tasks = ext_tasks;
        self.dispatch = Dispatch {
            txs: Arc::new(txs),
            epochs: Arc::new(epochs),
            graph: Arc::new(graph),
            names: new.services.iter().map(|s| s.name.clone()).collect(),
            shorts: shorts.into_iter().collect(),
            state_dir: old.state_dir.clone(),
        };
        self.deps_changed = true;
        self.records_changed = true;
        Reshaped {
            old_row,
            added,
            removed,
            old,
        }
    }

    /// A task id never handed out before.
    pub(super) fn take_id(&mut self) -> TaskId {
        let id = self.next_id;
        self.next_id += 1;
        id
    }
}
