//! Reloading the services file while services run.
//!
//! The caller reads and validates the new file completely first (an invalid file changes
//! nothing). The actor, which owns the running config, diffs it against the new one
//! ([`russell_config::diff`]) and applies the difference in place. The table is rebuilt in
//! the new file's order (`table.rs`): kept services keep their task and process, an added
//! one gets a new task, a removed one leaves the table, status, state file and names at
//! once. Then, in one batch: every task of a changed service takes its new config
//! ([`crate::service::ServiceCmd::Reconfigure`]); removed services are stopped (dependents
//! first) and their tasks end; a service whose change needs it and that runs (or is on
//! its way) is restarted, which restarts its dependents where its `restart_dependents`
//! says so; a disabled one is stopped; an enabled or added one is started (with what it
//! needs), unless an added one needs a service the user stopped. A changed or added
//! external gets a new prober, a removed one's prober ends. Unchanged services are not
//! touched: same process, same restart count, no event. A renamed `short_name` is a
//! removal and an addition. `[russell]` listen, state_dir, token_file and `[logs]` only
//! apply at Russell's next start: the report says so and the rest applies.

use std::sync::Arc;

use russell_config::{Action, Config, ConfigDiff, ConfigErrors};
use tokio::sync::oneshot;

use super::actor::Actor;
use super::graph::Graph;
use super::{Command, Lookup, Orchestrator};
use crate::events::event;
use crate::service::ServiceCmd;
use crate::{CoreError, EventKind, ServiceState, StartResult};

/// What a reload did (or, for a dry run, would do).
#[derive(Debug, Clone)]
pub struct ReloadReport {
    pub diff: ConfigDiff,
    /// False for a dry run.
    pub applied: bool,
    /// The start results of the services the reload restarted or started, in table order.
    pub results: Vec<StartResult>,
}

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The new file is not valid; every problem, as `mdw config check` reports them.
    #[error("{0}\nnothing was reloaded: Russell keeps running the previous config")]
    Invalid(ConfigErrors),
    #[error(transparent)]
    Core(#[from] CoreError),
}

impl Orchestrator {
    /// Reads the services file Russell was started with again and applies the difference
    /// (see the module documentation); `dry_run` only computes it. `state_dir` is the
    /// state directory given on Russell's command line, which overrides the file's (as it
    /// did at start). Relative paths resolve as at start: against the file's folder, or in
    /// mDW's shape against Russell's working directory, which does not change.
    pub async fn reload_file(
        &self,
        dry_run: bool,
        state_dir: Option<&std::path::Path>,
    ) -> Result<ReloadReport, ReloadError> {
        let file = self.inner.config_file.clone();
        let mut config = tokio::task::spawn_blocking(move || russell_config::load(&file))
            .await
            .map_err(|_| CoreError::ShuttingDown)?
            .map_err(ReloadError::Invalid)?;
        if let Some(dir) = state_dir {
            config.russell.state_dir = dir.to_path_buf();
        }
        self.reload(config, dry_run).await
    }

    /// Applies `config` (already validated) in place of the running one.
    pub async fn reload(&self, config: Config, dry_run: bool) -> Result<ReloadReport, ReloadError> {
        self.ask(|reply| Command::Reload {
            config: Box::new(config),
            dry_run,
            reply,
        })
        .await?
    }

    /// Restarts one service (stop, then start with a fresh budget), naming `why` in its
    /// events. A disabled service is refused, as by [`Self::restart_service`].
    pub async fn restart_for(&self, name: &str, why: String) -> Result<StartResult, CoreError> {
        let short = self.enabled_service(name, "restart")?;
        self.ask(|reply| Command::RestartFor { short, why, reply })
            .await
    }

    /// The services file Russell runs (absolute).
    pub fn config_file(&self) -> &std::path::Path {
        &self.inner.config_file
    }
}

type Reply = oneshot::Sender<Result<ReloadReport, ReloadError>>;

impl Actor {
    pub(super) fn on_reload(&mut self, new: Config, dry_run: bool, reply: Reply) {
        let diff = russell_config::diff(&self.config, &new);
        if dry_run {
            let _ = reply.send(Ok(ReloadReport {
                diff,
                applied: false,
                results: Vec::new(),
            }));
            return;
        }
        let new = self.kept_settings(new);
        let old_graph = self.dispatch.graph.clone();
        let changed: Vec<&str> = diff
            .externals
            .iter()
            .map(|c| c.short_name.as_str())
            .collect();
        let reshaped = self.reshape(&new, Graph::new(&new), &changed);
        let graph = self.dispatch.graph.clone();
        let mut acks = Vec::new();
        let (mut restart, mut enable, mut disable) = (Vec::new(), Vec::new(), Vec::new());
        for (i, svc) in new.services.iter().enumerate() {
            let Some(j) = reshaped.old_row[i] else {
                continue;
            };
            let change = diff.service(&svc.short_name).map(|c| c.action);
            let specs = graph.dep_specs(i);
            if change.is_none() && specs == old_graph.dep_specs(j) {
                continue;
            }
            let (tx, rx) = oneshot::channel();
            let new = Box::new((Arc::new(svc.clone()), specs));
            if self.dispatch.txs[i]
                .unbounded_send(ServiceCmd::Reconfigure { new, reply: tx })
                .is_ok()
            {
                acks.push(rx);
            }
            let status = &self.statuses[i];
            match change {
                Some(Action::Restart) if status.state != ServiceState::Stopped => restart.push(i),
                Some(Action::Enable) if !status.stopped_by_user => enable.push(i),
                Some(Action::Disable) => disable.push(i),
                _ => {}
            }
        }
        // An added service starts like an enabled one, unless a dependency was stopped by
        // the user (then it is blocked naming it, as at Russell's start).
        let mut blocked = Vec::new();
        for &i in &reshaped.added {
            if !new.services[i].enabled {
                continue;
            }
            let deps = graph.service_deps(i);
            match deps.iter().find(|&&d| self.statuses[d].stopped_by_user) {
                Some(&d) => blocked.push((
                    i,
                    format!(
                        "not started: dependency '{}' was stopped by the user; start it first",
                        self.statuses[d].short_name
                    ),
                )),
                None => enable.push(i),
            }
        }
        // Whatever an enabled service needs and is not running starts with it.
        let mut starts: Vec<usize> = Vec::new();
        for &i in &enable {
            for d in graph.service_deps(i) {
                let stopped = matches!(
                    self.statuses[d].state,
                    ServiceState::Stopped | ServiceState::Failed
                );
                if new.services[d].enabled && stopped && !starts.contains(&d) {
                    starts.push(d);
                }
            }
            if !starts.contains(&i) {
                starts.push(i);
            }
        }
        *self
            .lookup
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Lookup::new(&new);
        let message = summary(&new, &diff, restart.len());
        let spec = Arc::new(super::watcher::WatchSpec::new(&new));
        self.watch_tx.send_if_modified(|old| {
            let changed = **old != *spec;
            if changed {
                *old = spec;
            }
            changed
        });
        self.config = new;
        let tx = self.events.clone();
        let ev = event(
            EventKind::Reloaded,
            "russell",
            message,
            ServiceState::Running,
            None,
        );
        self.deliveries.push(Box::new(move || tx.send(ev)));

        let dispatch = self.dispatch.clone();
        let turn = self.reload_turn.clone();
        self.batches.spawn(async move {
            let dispatch = &dispatch;
            // One reload's stops, and the sending of its starts, at a time: a service
            // removed by one reload and added again by the next starts only once the old
            // one is gone. The answers are awaited after the turn (a task's queue keeps
            // the order of what was sent).
            let waits = {
                let _turn = turn.lock().await;
                futures_util::future::join_all(acks).await;
                // Removed services go first, dependents before what they depend on (in
                // the old graph: a service that stays cannot depend on a removed one).
                let old = &reshaped.old;
                for round in old.graph.stop_rounds() {
                    let gone = round.iter().filter(|j| reshaped.removed.contains(j));
                    futures_util::future::join_all(gone.map(|&j| old.remove(j))).await;
                }
                drop(reshaped);
                let stops = disable.iter().map(|&i| dispatch.stop(i, false, true));
                futures_util::future::join_all(stops).await;
                let mut waits: Vec<_> = restart.iter().map(|&i| dispatch.send_restart(i)).collect();
                waits.extend(dispatch.send_start(starts, blocked));
                waits
            };
            let results = dispatch.results(waits).await;
            let _ = reply.send(Ok(ReloadReport {
                diff,
                applied: true,
                results: results.into_iter().map(|(_, r)| r).collect(),
            }));
        });
    }

    /// `new` with the settings that only apply at Russell's start kept as they run.
    fn kept_settings(&self, mut new: Config) -> Config {
        new.russell = russell_config::RussellSettings {
            watch_config: new.russell.watch_config,
            ..self.config.russell.clone()
        };
        new.logs = self.config.logs.clone();
        new
    }
}

/// The reloaded event's message: the file and the counts.
fn summary(config: &Config, diff: &ConfigDiff, restarting: usize) -> String {
    let mut msg = format!(
        "reloaded {}: {} changed ({} added, {} removed, {} restarting, {} applied without a restart, {} enabled, {} disabled), {} externals changed",
        config.source.display(),
        diff.services.len(),
        diff.count(Action::Add),
        diff.count(Action::Remove),
        restarting,
        diff.count(Action::Apply),
        diff.count(Action::Enable),
        diff.count(Action::Disable),
        diff.externals.len(),
    );
    if !diff.needs_russell_restart.is_empty() {
        msg.push_str("; needs a Russell restart: ");
        msg.push_str(&diff.needs_russell_restart.join(", "));
    }
    msg
}
