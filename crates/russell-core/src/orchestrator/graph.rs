//! The dependency graph as the orchestrator runs it: russell-config's graph (levels, start
//! order, dependencies, dependents; the one `mdw config check` prints) with node indices
//! for services and externals, plus what only the core needs, the wait budgets.

use std::collections::HashSet;
use std::time::Duration;

use russell_config::{Config, Dependency};

use crate::service::DepSpec;
use crate::service::restart::start_budget;

/// The dependency graph: nodes are services (0..n) then externals (n..n+m).
pub(super) struct Graph {
    pub(super) n: usize,
    /// Per service: node indices it depends on.
    pub(super) deps: Vec<Vec<usize>>,
    /// Per service: services that depend on it directly.
    pub(super) dependents: Vec<Vec<usize>>,
    /// Per service: longest chain of service dependencies below it.
    pub(super) level: Vec<usize>,
    /// Services in start order: level, then start_order, then file order.
    pub(super) order: Vec<usize>,
    /// Per node: how long a dependent waits for it.
    pub(super) budget: Vec<Duration>,
    /// Per node: Some(start_timeout) for an optional external.
    pub(super) optional: Vec<Option<Duration>>,
    /// Per node: its short_name (what a service task finds its dependencies by).
    pub(super) names: Vec<String>,
}

impl Graph {
    /// russell-config's graph of `config`, with node indices and the wait budgets.
    pub(super) fn new(config: &Config) -> Self {
        let n = config.services.len();
        let plan = config.graph();
        let node = |d: &Dependency| match *d {
            Dependency::Service(i) => i,
            Dependency::External(i) => n + i,
        };
        let deps: Vec<Vec<usize>> = plan
            .services
            .iter()
            .map(|s| s.dependencies.iter().map(node).collect())
            .collect();
        // A service waits for each dependency at most that dependency's own budget: its
        // start budget plus its own wait for its dependencies (for an external, its
        // start_timeout). In start order every dependency's budget is known first (a
        // hand-built config with a cycle gets a zero budget for the edge that closes it).
        let mut budget: Vec<Duration> = vec![Duration::ZERO; n];
        budget.extend(
            config
                .externals
                .iter()
                .map(|e| e.health_check.start_timeout),
        );
        for &i in &plan.order {
            let wait = deps[i].iter().map(|&d| budget[d]).max().unwrap_or_default();
            let s = &config.services[i];
            budget[i] =
                wait + start_budget(
                    s.health_check.start_timeout,
                    s.max_retries,
                    s.restart_backoff,
                    s.restart_backoff_max,
                ) + s.stop_timeout;
        }
        let optional = (0..n)
            .map(|_| None)
            .chain(
                config
                    .externals
                    .iter()
                    .map(|e| e.optional.then_some(e.health_check.start_timeout)),
            )
            .collect();
        let names = (config.services.iter().map(|s| s.short_name.clone()))
            .chain(config.externals.iter().map(|e| e.short_name.clone()))
            .collect();
        Self {
            n,
            deps,
            dependents: plan.services.iter().map(|s| s.dependents.clone()).collect(),
            level: plan.services.iter().map(|s| s.level).collect(),
            order: plan.order,
            budget,
            optional,
            names,
        }
    }

    pub(super) fn dep_specs(&self, i: usize) -> Vec<DepSpec> {
        self.deps[i]
            .iter()
            .map(|&node| DepSpec {
                short: self.names[node].clone(),
                budget: self.budget[node],
                optional_after: self.optional[node],
            })
            .collect()
    }

    /// Service dependencies of `i`, transitively.
    pub(super) fn service_deps(&self, i: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut stack = vec![i];
        let mut seen = HashSet::new();
        while let Some(j) = stack.pop() {
            for &d in &self.deps[j] {
                if d < self.n && seen.insert(d) {
                    out.push(d);
                    stack.push(d);
                }
            }
        }
        out
    }

    /// Stop rounds: highest level first (dependents before what they depend on).
    pub(super) fn stop_rounds(&self) -> Vec<Vec<usize>> {
        let max = self.level.iter().copied().max().unwrap_or(0);
        (0..=max)
            .rev()
            .map(|lv| (0..self.n).filter(|&i| self.level[i] == lv).collect())
            .filter(|r: &Vec<usize>| !r.is_empty())
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use russell_config::{
        External, HealthCheck, LogSettings, PortConflictPolicy, Probe, RussellSettings, Service,
        StopSignal,
    };

    use super::*;

    pub(crate) const S: Duration = Duration::from_secs(1);

    pub(super) fn hc(start_timeout: Duration) -> HealthCheck {
        HealthCheck {
            probe: Probe::None,
            interval: S,
            timeout: S,
            failure_threshold: 3,
            success_threshold: 1,
            start_timeout,
        }
    }

    pub(crate) fn svc(short: &str, deps: &[&str], start_order: i64) -> Service {
        Service {
            name: short.into(),
            short_name: short.into(),
            description: String::new(),
            grpc_port: None,
            http_port: None,
            command: vec!["true".into()],
            working_dir: "/".into(),
            env: BTreeMap::new(),
            env_file: None,
            dependencies: deps.iter().map(|d| d.to_string()).collect(),
            start_order,
            max_retries: 2,
            stop_signal: StopSignal {
                number: 15,
                name: "SIGTERM",
            },
            stop_timeout: S,
            on_port_conflict: PortConflictPolicy::Adopt,
            restart_backoff: S,
            restart_backoff_max: 10 * S,
            restart_reset_after: 60 * S,
            restart_dependents: false,
            version: String::new(),
            enabled: true,
            kind: russell_config::ServiceKind::Service,
            restart: russell_config::RestartPolicy::Always,
            success_exit_codes: vec![0],
            health_check: hc(10 * S),
            watch: Vec::new(),
            watch_debounce: S / 2,
        }
    }

    pub(crate) fn cfg(services: Vec<Service>, externals: Vec<External>) -> Config {
        Config {
            source: "/x/services.toml".into(),
            russell: RussellSettings {
                listen: ([127, 0, 0, 1], 9100).into(),
                state_dir: "/x/.russell".into(),
                token_file: None,
                autostart: true,
                watch_config: false,
                http_listen: None,
            },
            logs: LogSettings {
                dir: None,
                max_file_size: 1,
                max_files: 1,
                tail_lines: 1,
            },
            services,
            externals,
            paths: Default::default(),
        }
    }

    /// a ← b ← c, d alone (start_order -1 puts it first among level 0), e needs db.
    pub(super) fn graph() -> Graph {
        let db = External {
            name: "db".into(),
            short_name: "db".into(),
            description: String::new(),
            optional: true,
            health_check: hc(5 * S),
        };
        Graph::new(&cfg(
            vec![
                svc("c", &["b"], 0),
                svc("b", &["a"], 0),
                svc("a", &[], 0),
                svc("d", &[], -1),
                svc("e", &["db"], 0),
            ],
            vec![db],
        ))
    }

    #[test]
    pub(super) fn levels_and_start_order() {
        let g = graph();
        assert_eq!(g.level, [2, 1, 0, 0, 0]);
        // level 0: d (start_order -1), a, e (file order); then b, then c
        assert_eq!(g.order, [3, 2, 4, 1, 0]);
    }

    #[test]
    pub(super) fn stop_rounds_put_dependents_first() {
        assert_eq!(graph().stop_rounds(), [vec![0], vec![1], vec![2, 3, 4]]);
    }

    #[test]
    pub(super) fn transitive_service_dependencies_skip_externals() {
        let g = graph();
        let mut deps = g.service_deps(0);
        deps.sort_unstable();
        assert_eq!(deps, [1, 2]);
        assert!(g.service_deps(4).is_empty());
    }

    #[test]
    pub(super) fn budgets_add_up_along_the_chain() {
        let g = graph();
        // own: 2 attempts × 10 s + 1 s backoff + 1 s stop_timeout = 22 s
        assert_eq!(g.budget[2], 22 * S);
        assert_eq!(g.budget[1], 44 * S);
        assert_eq!(g.budget[0], 66 * S);
        // e waits for db (5 s) before its own 22 s
        assert_eq!(g.budget[4], 27 * S);
        // the external itself: its start_timeout, and it is optional
        assert_eq!(g.budget[5], 5 * S);
        assert_eq!(g.optional[5], Some(5 * S));
        let specs = g.dep_specs(4);
        assert_eq!(specs.len(), 1);
        assert_eq!(specs[0].short, "db");
        assert_eq!(specs[0].optional_after, Some(5 * S));
    }
}
