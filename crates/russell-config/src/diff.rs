//! What a reload changes: the difference between the config Russell runs and a newly read
//! one, per service and per external, with what each change needs (a restart, or nothing
//! but taking the new values).
//!
//! Services and externals are matched by `short_name`: a renamed `short_name` is a removal
//! and an addition. Every key of [`Service`] and [`External`] is classified in one place
//! ([`service_keys`], [`external_keys`]); the destructuring there makes a key added to the
//! model stop the build until it is classified.

use serde::Serialize;

use crate::{Config, External, HealthCheck, Service};

/// What a reload does to one service or external.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// New in the file: started if the running set would start it (enabled, and its
    /// dependencies can start).
    Add,
    /// Gone from the file: stopped (dependents first) and forgotten.
    Remove,
    /// A key that the process reads changed: stopped and started on the new values.
    Restart,
    /// Only keys Russell reads itself changed (description, version, health-check timing,
    /// restart budget, ...): the new values apply, the process keeps running.
    Apply,
    /// `enabled` became true: started like an added service.
    Enable,
    /// `enabled` became false: stopped, kept in the table.
    Disable,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "add",
            Self::Remove => "remove",
            Self::Restart => "restart",
            Self::Apply => "apply",
            Self::Enable => "enable",
            Self::Disable => "disable",
        }
    }
}

/// How a change of one key takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// The process must be restarted to see it.
    Restart,
    /// Russell applies it without touching the process.
    Live,
}

/// One service's or external's change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub short_name: String,
    pub action: Action,
    /// The keys that differ (empty for add/remove), in model order.
    pub keys: Vec<&'static str>,
}

/// The difference between two configs.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ConfigDiff {
    /// Services that change, in the new file's order (removed ones after, in the old
    /// file's order). Unchanged services are not listed.
    pub services: Vec<Change>,
    /// Externals that change, the same way.
    pub externals: Vec<Change>,
    /// Settings that only a restart of Russell applies (e.g. "[russell] listen").
    pub needs_russell_restart: Vec<&'static str>,
}

impl ConfigDiff {
    /// Nothing to apply and nothing to report.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
            && self.externals.is_empty()
            && self.needs_russell_restart.is_empty()
    }

    /// How many services (not externals) the diff gives `action`.
    pub fn count(&self, action: Action) -> usize {
        self.services.iter().filter(|c| c.action == action).count()
    }

    /// The service change for `short_name`, if it changes.
    pub fn service(&self, short_name: &str) -> Option<&Change> {
        self.services.iter().find(|c| c.short_name == short_name)
    }
}

/// The difference between the running config `old` and the newly read `new`.
pub fn diff(old: &Config, new: &Config) -> ConfigDiff {
    let mut out = ConfigDiff::default();
    for s in &new.services {
        match old.services.iter().find(|o| o.short_name == s.short_name) {
            None => out.services.push(Change {
                short_name: s.short_name.clone(),
                action: Action::Add,
                keys: Vec::new(),
            }),
            Some(o) => {
                let keys = service_keys(o, s);
                if keys.is_empty() {
                    continue;
                }
                let action = if o.enabled && !s.enabled {
                    Action::Disable
                } else if !o.enabled && s.enabled {
                    Action::Enable
                } else if keys.iter().any(|(_, e)| *e == Effect::Restart) {
                    Action::Restart
                } else {
                    Action::Apply
                };
                out.services.push(Change {
                    short_name: s.short_name.clone(),
                    action,
                    keys: keys.into_iter().map(|(k, _)| k).collect(),
                });
            }
        }
    }
    for o in &old.services {
        if !new.services.iter().any(|s| s.short_name == o.short_name) {
            out.services.push(Change {
                short_name: o.short_name.clone(),
                action: Action::Remove,
                keys: Vec::new(),
            });
        }
    }
    for e in &new.externals {
        match old.externals.iter().find(|o| o.short_name == e.short_name) {
            None => out.externals.push(Change {
                short_name: e.short_name.clone(),
                action: Action::Add,
                keys: Vec::new(),
            }),
            Some(o) => {
                let keys = external_keys(o, e);
                if keys.is_empty() {
                    continue;
                }
                let action = if keys.iter().any(|(_, e)| *e == Effect::Restart) {
                    Action::Restart
                } else {
                    Action::Apply
                };
                out.externals.push(Change {
                    short_name: e.short_name.clone(),
                    action,
                    keys: keys.into_iter().map(|(k, _)| k).collect(),
                });
            }
        }
    }
    for o in &old.externals {
        if !new.externals.iter().any(|e| e.short_name == o.short_name) {
            out.externals.push(Change {
                short_name: o.short_name.clone(),
                action: Action::Remove,
                keys: Vec::new(),
            });
        }
    }
    let r = (&old.russell, &new.russell);
    let mut russell = |changed: bool, key: &'static str| {
        if changed {
            out.needs_russell_restart.push(key);
        }
    };
    russell(r.0.listen != r.1.listen, "[russell] listen");
    russell(r.0.state_dir != r.1.state_dir, "[russell] state_dir");
    russell(r.0.token_file != r.1.token_file, "[russell] token_file");
    russell(r.0.http_listen != r.1.http_listen, "[russell] http_listen");
    russell(old.logs != new.logs, "[logs]");
    out
}

/// The keys of a service that differ, each with how its change takes effect. Exhaustive by
/// destructuring: a new key of [`Service`] does not compile until it is classified here
/// (and in the README's config reference).
pub fn service_keys(old: &Service, new: &Service) -> Vec<(&'static str, Effect)> {
    let Service {
        name,
        short_name: _,
        description,
        grpc_port,
        http_port,
        command,
        working_dir,
        env,
        env_file,
        dependencies,
        start_order,
        max_retries,
        stop_signal,
        stop_timeout,
        on_port_conflict,
        restart_backoff,
        restart_backoff_max,
        restart_reset_after,
        restart_dependents,
        version,
        enabled,
        health_check,
        kind,
        restart,
        success_exit_codes,
        watch,
        watch_debounce,
    } = new;
    let mut keys = Vec::new();
    let mut key = |changed: bool, k: &'static str, e: Effect| {
        if changed {
            keys.push((k, e));
        }
    };
    use Effect::{Live, Restart};
    key(old.name != *name, "name", Live);
    key(old.description != *description, "description", Live);
    key(old.grpc_port != *grpc_port, "grpc_port", Restart);
    key(old.http_port != *http_port, "http_port", Restart);
    key(old.command != *command, "command", Restart);
    key(old.working_dir != *working_dir, "working_dir", Restart);
    key(old.env != *env, "env", Restart);
    key(old.env_file != *env_file, "env_file", Restart);
    key(old.dependencies != *dependencies, "dependencies", Restart);
    key(old.start_order != *start_order, "start_order", Live);
    key(old.max_retries != *max_retries, "max_retries", Live);
    key(old.stop_signal != *stop_signal, "stop_signal", Live);
    key(old.stop_timeout != *stop_timeout, "stop_timeout", Live);
    key(
        old.on_port_conflict != *on_port_conflict,
        "on_port_conflict",
        Live,
    );
    key(
        old.restart_backoff != *restart_backoff,
        "restart_backoff",
        Live,
    );
    key(
        old.restart_backoff_max != *restart_backoff_max,
        "restart_backoff_max",
        Live,
    );
    key(
        old.restart_reset_after != *restart_reset_after,
        "restart_reset_after",
        Live,
    );
    key(
        old.restart_dependents != *restart_dependents,
        "restart_dependents",
        Live,
    );
    key(old.version != *version, "version", Live);
    key(old.enabled != *enabled, "enabled", Restart);
    key(old.kind != *kind, "kind", Restart);
    key(old.restart != *restart, "restart", Live);
    key(
        old.success_exit_codes != *success_exit_codes,
        "success_exit_codes",
        Live,
    );
    key(old.watch != *watch, "watch", Live);
    key(
        old.watch_debounce != *watch_debounce,
        "watch_debounce",
        Live,
    );
    health_keys(&old.health_check, health_check, &mut key);
    keys
}

/// The keys of an external that differ. A changed probe restarts its prober (an external
/// has no process of Russell's); everything else applies as is.
pub fn external_keys(old: &External, new: &External) -> Vec<(&'static str, Effect)> {
    let External {
        name,
        short_name: _,
        description,
        optional,
        health_check,
    } = new;
    let mut keys = Vec::new();
    let mut key = |changed: bool, k: &'static str, e: Effect| {
        if changed {
            keys.push((k, e));
        }
    };
    key(old.name != *name, "name", Effect::Live);
    key(old.description != *description, "description", Effect::Live);
    key(old.optional != *optional, "optional", Effect::Live);
    health_keys(&old.health_check, health_check, &mut key);
    keys
}

/// A health check's keys: what is probed needs a restart (the process may serve the new
/// target only after one); how often and how strictly applies live.
fn health_keys(
    old: &HealthCheck,
    new: &HealthCheck,
    key: &mut impl FnMut(bool, &'static str, Effect),
) {
    let HealthCheck {
        probe,
        interval,
        timeout,
        failure_threshold,
        success_threshold,
        start_timeout,
    } = new;
    use Effect::{Live, Restart};
    key(old.probe != *probe, "health_check", Restart);
    key(old.interval != *interval, "health_check.interval", Live);
    key(old.timeout != *timeout, "health_check.timeout", Live);
    key(
        old.failure_threshold != *failure_threshold,
        "health_check.failure_threshold",
        Live,
    );
    key(
        old.success_threshold != *success_threshold,
        "health_check.success_threshold",
        Live,
    );
    key(
        old.start_timeout != *start_timeout,
        "health_check.start_timeout",
        Live,
    );
}
