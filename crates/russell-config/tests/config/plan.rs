//! The start plan: a table of hand-made cases, and a property test over random DAGs
//! (every service after all its dependencies; levels as wide as the DAG allows; start_order
//! then file order within a level).
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use russell_config::{Config, parse};
use test_support::Rng;

fn config(text: &str) -> Config {
    parse(text, Path::new("/tmp/services.toml"), Path::new("/bin/mdw"))
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// `(name, start_order, dependencies)` → a services file.
fn file(services: &[(&str, i64, &[&str])]) -> String {
    let mut text = String::new();
    for (name, order, deps) in services {
        let deps: Vec<String> = deps.iter().map(|d| format!("\"{d}\"")).collect();
        let _ = write!(
            text,
            "[[services]]\nname = \"{name}\"\ncommand = [\"x\"]\nstart_order = {order}\ndependencies = [{}]\n\n",
            deps.join(", ")
        );
    }
    text
}

#[test]
fn table() {
    type Case<'a> = (&'a [(&'a str, i64, &'a [&'a str])], &'a [&'a [&'a str]]);
    let cases: &[Case<'_>] = &[
        (&[("a", 0, &[])], &[&["a"]]),
        (&[("a", 0, &[]), ("b", 0, &[])], &[&["a", "b"]]),
        (&[("a", 5, &[]), ("b", 1, &[])], &[&["b", "a"]]),
        (&[("a", 0, &["b"]), ("b", 0, &[])], &[&["b"], &["a"]]),
        // chain
        (
            &[("c", 0, &["b"]), ("b", 0, &["a"]), ("a", 0, &[])],
            &[&["a"], &["b"], &["c"]],
        ),
        // diamond
        (
            &[
                ("top", 0, &["l", "r"]),
                ("l", 2, &["base"]),
                ("r", 1, &["base"]),
                ("base", 0, &[]),
            ],
            &[&["base"], &["r", "l"], &["top"]],
        ),
        // a long branch does not delay an independent short one
        (
            &[
                ("x", 0, &["y"]),
                ("y", 0, &["z"]),
                ("z", 0, &[]),
                ("solo", 9, &[]),
                ("after_z", 0, &["z"]),
            ],
            &[&["z", "solo"], &["y", "after_z"], &["x"]],
        ),
        // start_order never beats the DAG
        (
            &[("first", -100, &["dep"]), ("dep", 100, &[])],
            &[&["dep"], &["first"]],
        ),
        // equal start_order: file order
        (
            &[("m", 1, &[]), ("k", 1, &[]), ("z", 0, &[])],
            &[&["z", "m", "k"]],
        ),
    ];
    for (services, expected) in cases {
        let plan = config(&file(services)).plan();
        let expected: Vec<Vec<String>> = expected
            .iter()
            .map(|l| l.iter().map(|s| (*s).to_owned()).collect())
            .collect();
        assert_eq!(plan.levels, expected, "{services:?}");
    }
}

#[test]
fn externals_do_not_make_levels() {
    let text = "[[externals]]\nname = \"db\"\n[[services]]\nname = \"a\"\ncommand = [\"x\"]\ndependencies = [\"db\"]\n";
    assert_eq!(config(text).plan().levels, vec![vec!["a".to_owned()]]);
}

#[test]
fn empty_file_has_an_empty_plan() {
    assert!(config("").plan().levels.is_empty());
}

#[test]
fn random_dags_respect_dependencies_and_are_as_wide_as_possible() {
    for seed in 1..=400u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let n = 1 + rng.below(40) as usize;
        // Topological rank r depends only on lower ranks; file order is shuffled.
        let mut file_order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            file_order.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let density = 1 + rng.below(4);
        let mut text = String::new();
        for &rank in &file_order {
            let mut deps = Vec::new();
            for lower in 0..rank {
                if rng.below(10) < density {
                    // Name, short_name or upper case: all must resolve.
                    deps.push(match rng.below(3) {
                        0 => format!("\"s{lower}\""),
                        1 => format!("\"S{lower}\""),
                        _ => format!("\"Svc{lower}\""),
                    });
                }
            }
            let order = rng.below(5) as i64 - 2;
            let _ = write!(
                text,
                "[[services]]\nname = \"Svc{rank}\"\nshort_name = \"s{rank}\"\ncommand = [\"x\"]\n\
                 start_order = {order}\ndependencies = [{}]\n\n",
                deps.join(", ")
            );
        }
        let config = config(&text);
        let plan = config.plan();
        let level: HashMap<&str, usize> = plan
            .levels
            .iter()
            .enumerate()
            .flat_map(|(i, l)| l.iter().map(move |s| (s.as_str(), i)))
            .collect();
        assert_eq!(level.len(), n, "seed {seed}: every service exactly once");
        assert_eq!(
            plan.levels.iter().map(Vec::len).sum::<usize>(),
            n,
            "seed {seed}"
        );
        for s in &config.services {
            let l = level[s.short_name.as_str()];
            let dep_levels: Vec<usize> = s.dependencies.iter().map(|d| level[d.as_str()]).collect();
            assert!(
                dep_levels.iter().all(|&d| d < l),
                "seed {seed}: {} at level {l} before a dependency",
                s.short_name
            );
            if l > 0 {
                assert!(
                    dep_levels.contains(&(l - 1)),
                    "seed {seed}: {} at level {l} could start earlier",
                    s.short_name
                );
            }
        }
        let file_index: HashMap<&str, usize> = config
            .services
            .iter()
            .enumerate()
            .map(|(i, s)| (s.short_name.as_str(), i))
            .collect();
        for l in &plan.levels {
            let keys: Vec<(i64, usize)> = l
                .iter()
                .map(|s| {
                    (
                        config.service(s).unwrap().start_order,
                        file_index[s.as_str()],
                    )
                })
                .collect();
            let mut sorted = keys.clone();
            sorted.sort_unstable();
            assert_eq!(
                keys, sorted,
                "seed {seed}: level ordered by start_order, file order"
            );
        }
    }
}

#[test]
fn random_graphs_with_a_back_edge_are_rejected_as_cycles() {
    for seed in 1..=200u64 {
        let mut rng = Rng(seed.wrapping_mul(0xD1B5_4A32_D192_ED03) | 1);
        let n = 2 + rng.below(20) as usize;
        let mut deps: Vec<Vec<usize>> = (0..n)
            .map(|r| (0..r).filter(|_| rng.below(3) == 0).collect())
            .collect();
        // Close a cycle: a chain low → … → high plus high's dependent edge back.
        let low = rng.below(n as u64 - 1) as usize;
        let high = low + 1 + rng.below((n - low - 1) as u64) as usize;
        deps[high].push(low);
        deps[low].push(high);
        let mut text = String::new();
        for (r, ds) in deps.iter().enumerate() {
            let ds: Vec<String> = ds.iter().map(|d| format!("\"s{d}\"")).collect();
            let _ = write!(
                text,
                "[[services]]\nname = \"s{r}\"\ncommand = [\"x\"]\ndependencies = [{}]\n",
                ds.join(", ")
            );
        }
        let errors = parse(&text, Path::new("/tmp/s.toml"), Path::new("/bin/mdw")).unwrap_err();
        assert!(
            errors
                .iter()
                .all(|e| e.message.starts_with("dependency cycle: ")),
            "seed {seed}: {errors}"
        );
        let first = &errors.0[0].message;
        let path: Vec<&str> = first
            .trim_start_matches("dependency cycle: ")
            .split(" → ")
            .collect();
        assert!(
            path.len() >= 3 && path.first() == path.last(),
            "seed {seed}: {first}"
        );
        for e in &errors {
            let path: Vec<usize> = e
                .message
                .trim_start_matches("dependency cycle: ")
                .split(" → ")
                .map(|s| s.trim_start_matches('s').parse().unwrap())
                .collect();
            for pair in path.windows(2) {
                assert!(
                    deps[pair[0]].contains(&pair[1]),
                    "seed {seed}: {} does not follow the edges",
                    e.message
                );
            }
        }
    }
}
