//! The start plan: dependency levels of the services, and lookup by name.

use std::collections::HashMap;

use crate::model::{Config, Service, StartPlan};

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

impl Config {
    /// The dependency levels: a service's level is 1 + the highest level among the services
    /// it depends on (externals do not count), so each level is as wide as the DAG allows.
    /// Within a level, services are ordered by `start_order`, then file order.
    pub fn plan(&self) -> StartPlan {
        let deps = dependency_indices(&self.services);
        // Kahn's algorithm over "depends on" edges; levels grow as dependencies settle.
        let mut waiting: Vec<usize> = deps.iter().map(Vec::len).collect();
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); deps.len()];
        for (i, ds) in deps.iter().enumerate() {
            for &d in ds {
                dependents[d].push(i);
            }
        }
        let mut level: Vec<Option<usize>> = vec![None; deps.len()];
        let mut ready: Vec<usize> = (0..deps.len()).filter(|&i| waiting[i] == 0).collect();
        while let Some(i) = ready.pop() {
            let l = deps[i]
                .iter()
                .filter_map(|&d| level[d])
                .max()
                .map_or(0, |m| m + 1);
            level[i] = Some(l);
            for &dependent in &dependents[i] {
                waiting[dependent] -= 1;
                if waiting[dependent] == 0 {
                    ready.push(dependent);
                }
            }
        }
        // A validated config has no cycle; a hand-built one gets its cycle in a last level
        // rather than a panic.
        let last = level.iter().flatten().max().map_or(0, |m| m + 1);
        let mut levels: Vec<Vec<usize>> = Vec::new();
        for (i, l) in level.iter().enumerate() {
            let l = l.unwrap_or(last);
            if levels.len() <= l {
                levels.resize_with(l + 1, Vec::new);
            }
            levels[l].push(i);
        }
        StartPlan {
            levels: levels
                .into_iter()
                .filter(|l| !l.is_empty())
                .map(|mut l| {
                    l.sort_by_key(|&i| (self.services[i].start_order, i));
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
