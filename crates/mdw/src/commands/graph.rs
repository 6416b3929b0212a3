//! `mdw graph [PATH] [--dot]`: the start graph of a services file — its dependency levels
//! (from the config's one start plan), what each service needs, and the externals — as text
//! for the terminal or as Graphviz DOT (`mdw graph --dot | dot -Tsvg > graph.svg`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use russell_config::Config;

use super::serve::{DEFAULT_CONFIG, load_config};

/// Options of `mdw graph`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The services file.
    #[arg(default_value = DEFAULT_CONFIG)]
    pub path: PathBuf,
    /// Print Graphviz DOT instead of text (an edge runs from what is needed to who needs it).
    #[arg(long)]
    pub dot: bool,
}

/// Runs `mdw graph`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = load_config(&args.path, None)?;
    let text = if args.dot {
        dot(&config)
    } else {
        tree(&args.path, &config)
    };
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

/// The graph as text: externals, then each level with its services and what they need.
pub fn tree(path: &Path, config: &Config) -> String {
    let plan = config.plan();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "start graph of {} — {} services, {} externals, {} level{}",
        path.display(),
        config.services.len(),
        config.externals.len(),
        plan.levels.len(),
        if plan.levels.len() == 1 { "" } else { "s" }
    );
    let width = config
        .services
        .iter()
        .map(|s| s.short_name.len())
        .chain(config.externals.iter().map(|e| e.short_name.len()))
        .max()
        .unwrap_or(0);
    let names = config
        .services
        .iter()
        .map(|s| s.name.chars().count())
        .max()
        .unwrap_or(0);
    if !config.externals.is_empty() {
        let _ = writeln!(out, "\nexternals (checked, never started)");
        let last = config.externals.len() - 1;
        for (i, e) in config.externals.iter().enumerate() {
            let branch = if i == last { "└─" } else { "├─" };
            let kind = if e.optional { "optional" } else { "required" };
            let _ = writeln!(
                out,
                "  {branch} ◇ {:width$}  {} ({kind})",
                e.short_name, e.name
            );
        }
    }
    for (n, level) in plan.levels.iter().enumerate() {
        let _ = writeln!(
            out,
            "\nlevel {} — starts {}",
            n + 1,
            if n == 0 {
                "first".to_string()
            } else {
                format!("once level {n} is healthy where needed")
            }
        );
        let last = level.len().saturating_sub(1);
        for (i, short) in level.iter().enumerate() {
            let Some(s) = config.service(short) else {
                continue;
            };
            let branch = if i == last { "└─" } else { "├─" };
            let needs = if s.dependencies.is_empty() {
                String::new()
            } else {
                format!("  ← needs {}", s.dependencies.join(", "))
            };
            let off = if s.enabled { "" } else { "  (disabled)" };
            let _ = writeln!(
                out,
                "  {branch} ● {:width$}  {:names$}{needs}{off}",
                s.short_name, s.name
            );
        }
    }
    out
}

/// The graph in Graphviz DOT: one rank per level, externals dashed, edges from what is
/// needed to who needs it (the order things start in).
pub fn dot(config: &Config) -> String {
    let plan = config.plan();
    let mut out =
        String::from("digraph mdw {\n  rankdir=LR;\n  node [shape=box, style=rounded];\n");
    for e in &config.externals {
        let kind = if e.optional { "optional" } else { "required" };
        let _ = writeln!(
            out,
            "  {} [label={}, shape=ellipse, style=dashed];",
            quote(&e.short_name),
            quote(&format!("{}\n(external, {kind})", e.name))
        );
    }
    for (n, level) in plan.levels.iter().enumerate() {
        let _ = writeln!(out, "  subgraph level_{} {{\n    rank=same;", n + 1);
        for short in level {
            let label = config.service(short).map_or(short.clone(), |s| {
                if s.enabled {
                    s.name.clone()
                } else {
                    format!("{}\n(disabled)", s.name)
                }
            });
            let _ = writeln!(out, "    {} [label={}];", quote(short), quote(&label));
        }
        out.push_str("  }\n");
    }
    for s in &config.services {
        for d in &s.dependencies {
            let _ = writeln!(out, "  {} -> {};", quote(d), quote(&s.short_name));
        }
    }
    out.push_str("}\n");
    out
}

/// A DOT string literal.
fn quote(text: &str) -> String {
    let mut q = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}
