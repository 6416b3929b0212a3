//! The dependency graph pane (`g`): Russell's services by start level, each with its live
//! state and what it needs, the externals first. Levels come from the dependencies each
//! service's status carries (ControlCenter knows only the API); a service's level is one
//! more than the highest level among the services it needs, as in `mdw graph`.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::{external_mark, state_style};
use crate::state::State;

/// Draws the pane.
pub fn render(state: &State, area: Rect, buf: &mut Buffer) {
    let services = state.services();
    let externals = state
        .status
        .as_ref()
        .map(|s| s.externals.as_slice())
        .unwrap_or_default();
    let mut lines = vec![Line::from(
        "START GRAPH (a level starts once what it needs is healthy)".bold(),
    )];
    if services.is_empty() {
        lines.push(Line::from("no services known yet").dim());
        Paragraph::new(lines).render(area, buf);
        return;
    }
    let deps: Vec<Vec<&str>> = services
        .iter()
        .map(|s| s.dependencies.iter().map(String::as_str).collect())
        .collect();
    let shorts: Vec<&str> = services.iter().map(|s| s.short_name.as_str()).collect();
    let width = shorts.iter().map(|s| s.len()).max().unwrap_or(0);
    if !externals.is_empty() {
        let mut spans = vec![Span::raw("externals  ")];
        for e in externals {
            let (mark, style) = external_mark(e);
            spans.push(Span::raw(format!("◇ {} ", e.short_name)));
            spans.push(Span::styled(format!("{mark}  "), style));
        }
        lines.push(Line::from(spans));
    }
    for (n, level) in levels(&shorts, &deps).iter().enumerate() {
        lines.push(Line::from(format!("level {}", n + 1)).fg(Color::Cyan));
        let last = level.len().saturating_sub(1);
        for (i, &idx) in level.iter().enumerate() {
            let s = &services[idx];
            let branch = if i == last { "└─" } else { "├─" };
            let mut spans = vec![
                Span::raw(format!("  {branch} ")),
                Span::styled(
                    format!("● {:width$}  {:11}", s.short_name, s.service_state()),
                    state_style(s.service_state()),
                ),
            ];
            if !s.dependencies.is_empty() {
                spans.push(Span::raw(format!("← needs {}", s.dependencies.join(", "))).dim());
            }
            lines.push(Line::from(spans));
        }
    }
    Paragraph::new(lines).render(area, buf);
}

/// Indices of `shorts` per level; names in `deps` that are not services (externals) do not
/// count. Services caught in a cycle (which a valid config never has) land in a last level.
pub fn levels(shorts: &[&str], deps: &[Vec<&str>]) -> Vec<Vec<usize>> {
    let mut level: Vec<Option<usize>> = vec![None; shorts.len()];
    // Relax until nothing changes: at most one pass per level.
    for _ in 0..=shorts.len() {
        let mut changed = false;
        for i in 0..shorts.len() {
            if level[i].is_some() {
                continue;
            }
            let needed: Vec<Option<usize>> = deps[i]
                .iter()
                .filter_map(|d| shorts.iter().position(|s| s == d))
                .map(|j| level[j])
                .collect();
            if needed.iter().all(Option::is_some) {
                level[i] = Some(needed.iter().flatten().max().map_or(0, |m| m + 1));
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let last = level.iter().flatten().max().map_or(0, |m| m + 1);
    let mut out: Vec<Vec<usize>> = Vec::new();
    for (i, l) in level.iter().enumerate() {
        let l = l.unwrap_or(last);
        if out.len() <= l {
            out.resize_with(l + 1, Vec::new);
        }
        out[l].push(i);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_dependencies_and_ignore_externals() {
        let shorts = ["kant", "turing", "hypatia", "bayes"];
        let deps = vec![
            vec!["turing", "hypatia"],
            vec!["ollama"],
            vec!["turing"],
            vec![],
        ];
        assert_eq!(levels(&shorts, &deps), vec![vec![1, 3], vec![2], vec![0]]);
        let cycle = levels(&["a", "b"], &[vec!["b"], vec!["a"]]);
        assert_eq!(cycle, vec![vec![0, 1]]);
    }
}
