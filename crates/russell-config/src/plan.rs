//! The dependency graph of the services, computed once: per service its level, its
//! dependencies (services and externals, in file order) and its dependents, and the start
//! order. `mdw config check` prints it ([`Config::plan`]) and russell-core runs it
//! ([`Config::graph`]), so what is shown is what runs.

use std::collections::HashMap;

use crate::model::{Config, Service, StartPlan};

/// One dependency of a service: an index into `Config::services` or `Config::externals`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dependency {
    Service(usize),
    External(usize),
}

/// One service's place in the [`DependencyGraph`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphNode {
    /// 1 + the highest level among the services it depends on; 0 when it depends on no
    /// service (externals do not count).
    pub level: usize,
    /// What it depends on, in the order of its `dependencies` list.
    pub dependencies: Vec<Dependency>,
    /// Services (indices) that depend on it directly, in config order.
    pub dependents: Vec<usize>,
}

/// The dependency graph of a config's services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DependencyGraph {
    /// Per service, in config order.
    pub services: Vec<GraphNode>,
    /// Service indices in start order: level, then `start_order`, then file order.
    pub order: Vec<usize>,
}

impl DependencyGraph {
    /// The service indices of each level, in start order.
    pub fn levels(&self) -> Vec<Vec<usize>> {
        let mut levels: Vec<Vec<usize>> = Vec::new();
        for &i in &self.order {
            let l = self.services[i].level;
            if levels.len() <= l {
                levels.resize_with(l + 1, Vec::new);
            }
            levels[l].push(i);
        }
        levels.retain(|l| !l.is_empty());
        levels
    }
}

/// For each service, the indices (into `services`) of the services it depends on;
/// dependencies on externals or unknown names are left out.
pub(crate) fn dependency_indices(services: &[Service]) -> Vec<Vec<usize>> {
    let index: HashMap<&str, usize> = services
        .iter()
        .enumerate()
        .map(|(i, s)| (s.short_name.as_str(), i))
        .collect();
    services
        .iter()
        .map(|s| {
            s.dependencies
                .iter()
                .filter_map(|d| index.get(d.as_str()).copied())
                .collect()
        })
        .collect()
}

/// Levels by Kahn's algorithm over "depends on" edges: a level is known once every
/// dependency's is. A validated config has no cycle; a hand-built one gets the services on
/// its cycle in a last level rather than a panic.
fn levels(deps: &[Vec<usize>], dependents: &[Vec<usize>]) -> Vec<usize> {
    let mut waiting: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut level: Vec<Option<usize>> = vec![None; deps.len()];
    let mut ready: Vec<usize> = (0..deps.len()).filter(|&i| waiting[i] == 0).collect();
    while let Some(i) = ready.pop() {
        level[i] = Some(
            deps[i]
                .iter()
                .filter_map(|&d| level[d])
                .max()
                .map_or(0, |m| m + 1),
        );
        for &dependent in &dependents[i] {
            waiting[dependent] -= 1;
            if waiting[dependent] == 0 {
                ready.push(dependent);
            }
        }
    }
    let last = level.iter().flatten().max().map_or(0, |m| m + 1);
    level.into_iter().map(|l| l.unwrap_or(last)).collect()
}

impl Config {
    /// The dependency graph: levels, dependencies, dependents and start order.
    pub fn graph(&self) -> DependencyGraph {
        let mut index: HashMap<&str, Dependency> = HashMap::new();
        for (i, s) in self.services.iter().enumerate() {
            index.insert(s.short_name.as_str(), Dependency::Service(i));
        }
        for (i, e) in self.externals.iter().enumerate() {
            index
                .entry(e.short_name.as_str())
                .or_insert(Dependency::External(i));
        }
        let dependencies: Vec<Vec<Dependency>> = self
            .services
            .iter()
            .map(|s| {
                s.dependencies
                    .iter()
                    .filter_map(|d| index.get(d.as_str()).copied())
                    .collect()
            })
            .collect();
        let deps = dependency_indices(&self.services);
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); deps.len()];
        for (i, ds) in deps.iter().enumerate() {
            for &d in ds {
                dependents[d].push(i);
            }
        }
        let level = levels(&deps, &dependents);
        let mut order: Vec<usize> = (0..deps.len()).collect();
        order.sort_by_key(|&i| (level[i], self.services[i].start_order, i));
        let services = dependencies
            .into_iter()
            .zip(dependents)
            .zip(level)
            .map(|((dependencies, dependents), level)| GraphNode {
                level,
                dependencies,
                dependents,
            })
            .collect();
        DependencyGraph { services, order }
    }

    /// The dependency levels: a service's level is 1 + the highest level among the services
    /// it depends on (externals do not count), so each level is as wide as the DAG allows.
    /// Within a level, services are ordered by `start_order`, then file order.
    pub fn plan(&self) -> StartPlan {
        StartPlan {
            levels: self
                .graph()
                .levels()
                .into_iter()
                .map(|l| {
                    l.into_iter()
                        .map(|i| self.services[i].short_name.clone())
                        .collect()
                })
                .collect(),
        }
    }

    /// The service called `name` (its name or short_name, any case).
    pub fn service(&self, name: &str) -> Option<&Service> {
        let name = name.trim();
        self.services
            .iter()
            .find(|s| s.short_name.eq_ignore_ascii_case(name) || s.name.eq_ignore_ascii_case(name))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::path::Path;

    use super::*;

    #[test]
    fn graph_names_services_and_externals_in_file_order_with_dependents() {
        let text = "[[externals]]\nname = \"db\"\n\
            [[services]]\nname = \"c\"\ncommand = [\"x\"]\ndependencies = [\"b\", \"db\"]\n\
            [[services]]\nname = \"b\"\ncommand = [\"x\"]\ndependencies = [\"db\", \"a\"]\n\
            [[services]]\nname = \"a\"\ncommand = [\"x\"]\n\
            [[services]]\nname = \"d\"\ncommand = [\"x\"]\nstart_order = -1\n";
        let config = crate::parse(text, Path::new("/tmp/s.toml"), Path::new("/bin/mdw")).unwrap();
        let g = config.graph();
        let levels: Vec<usize> = g.services.iter().map(|s| s.level).collect();
        assert_eq!(levels, [2, 1, 0, 0]);
        assert_eq!(
            g.services[0].dependencies,
            [Dependency::Service(1), Dependency::External(0)]
        );
        assert_eq!(
            g.services[1].dependencies,
            [Dependency::External(0), Dependency::Service(2)]
        );
        assert_eq!(g.services[2].dependents, [1]);
        assert_eq!(g.services[1].dependents, [0]);
        assert_eq!(g.order, [3, 2, 1, 0]);
        assert_eq!(g.levels(), [vec![3, 2], vec![1], vec![0]]);
        assert_eq!(config.plan().levels, [vec!["d", "a"], vec!["b"], vec!["c"]]);
    }
}
