//! The panes that replace the table: live log, recent events, startup timing.

use std::time::SystemTime;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};
use russell_api::pb::ServiceState;

use super::{format, state_style};
use crate::state::{State, same_name, to_system_time};

/// The live log of one service: newest at the bottom, scrollable, filterable.
pub fn logs(state: &State, area: Rect, buf: &mut Buffer) {
    let pane = &state.logs;
    let name = state
        .services()
        .iter()
        .find(|s| same_name(s, &pane.service))
        .map_or(pane.service.as_str(), |s| s.name.as_str());
    let visible = pane.visible();
    let mut title = vec![Span::raw(format!("LOGS · {name} · ")).bold()];
    if pane.following() {
        title.push(Span::raw("following").fg(Color::Green));
    } else {
        title.push(Span::raw(format!("{} lines back", pane.scroll)).fg(Color::Yellow));
    }
    if !pane.filter.is_empty() {
        title.push(Span::raw(format!(" · filter: {}", pane.filter)));
    }
    if let Some(ended) = &pane.ended {
        title.push(Span::raw(format!(" · {ended}")).fg(Color::Red));
    }
    let mut lines = vec![Line::from(title)];

    let search_rows = usize::from(pane.search_input.is_some());
    let rows = usize::from(area.height).saturating_sub(1 + search_rows);
    let end = visible.len().saturating_sub(pane.scroll);
    let start = end.saturating_sub(rows);
    if visible.is_empty() {
        lines.push(Line::from("no log lines yet").dim());
    }
    for line in &visible[start..end] {
        let time = line
            .timestamp
            .as_ref()
            .map_or_else(|| "        ".into(), |t| format::clock(to_system_time(t)));
        let text_style = if line.stream == "stderr" {
            Style::default().fg(Color::Yellow)
        } else {
            Style::default()
        };
        lines.push(Line::from(vec![
            Span::raw(format!("{time} ")).dim(),
            Span::styled(line.line.clone(), text_style),
        ]));
    }
    if let Some(input) = &pane.search_input {
        // Keep the prompt on the last row of the pane.
        while lines.len() < usize::from(area.height).saturating_sub(1) {
            lines.push(Line::from(""));
        }
        lines.push(Line::from(format!("/{input}▏")).fg(Color::Cyan));
    }
    Paragraph::new(lines).render(area, buf);
}

/// Recent events, newest last.
pub fn events(state: &State, area: Rect, buf: &mut Buffer) {
    let mut lines = vec![Line::from("RECENT EVENTS (newest last)").bold()];
    let rows = usize::from(area.height).saturating_sub(1);
    let skip = state.events.len().saturating_sub(rows);
    if state.events.is_empty() {
        lines.push(Line::from("no events since ControlCenter started").dim());
    }
    for event in state.events.iter().skip(skip) {
        let time = event
            .timestamp
            .as_ref()
            .map_or_else(|| "        ".into(), |t| format::clock(to_system_time(t)));
        let style = match event.kind.as_str() {
            "failed" | "exited" | "port_conflict" => Style::default().fg(Color::Red),
            "unhealthy" | "health_check_failed" | "restarting" => {
                Style::default().fg(Color::Yellow)
            }
            "healthy" => Style::default().fg(Color::Green),
            _ => Style::default(),
        };
        lines.push(Line::from(vec![
            Span::raw(format!("{time} ")).dim(),
            Span::raw(format!("{} ", format::fit(&event.service, 12))).bold(),
            Span::styled(format!("{} ", format::fit(&event.kind, 19)), style),
            Span::raw(event.message.clone()),
        ]));
    }
    Paragraph::new(lines).render(area, buf);
}

/// Startup timing of the last start: per service spawned → healthy, relative to the first
/// request, with a bar; the critical chain marked ★ and highlighted.
pub fn timing(state: &State, area: Rect, buf: &mut Buffer) {
    let chain = state.critical_chain();
    let mut title = vec![Span::raw("STARTUP TIMING (last start)").bold()];
    if !chain.is_empty() {
        let names: Vec<&str> = chain.iter().map(String::as_str).collect();
        title
            .push(Span::raw(format!("   critical chain: {}", names.join(" ← "))).fg(Color::Yellow));
    }
    let mut lines = vec![Line::from(title)];

    struct Row<'a> {
        name: &'a str,
        short: &'a str,
        spawned: Option<SystemTime>,
        healthy: Option<SystemTime>,
    }
    let rows: Vec<Row<'_>> = state
        .services()
        .iter()
        .filter_map(|s| {
            let t = s.timing.as_ref()?;
            Some(Row {
                name: &s.name,
                short: &s.short_name,
                spawned: t.spawned_at.as_ref().map(to_system_time),
                healthy: t.healthy_at.as_ref().map(to_system_time),
            })
        })
        .filter(|r| r.spawned.is_some())
        .collect();
    let origin = state
        .services()
        .iter()
        .filter_map(|s| s.timing.as_ref())
        .flat_map(|t| [t.requested_at.as_ref(), t.spawned_at.as_ref()])
        .flatten()
        .map(to_system_time)
        .min();
    let Some(origin) = origin.filter(|_| !rows.is_empty()) else {
        lines.push(Line::from("no start recorded yet (press a to start all)").dim());
        Paragraph::new(lines).render(area, buf);
        return;
    };
    let since = |t: SystemTime| t.duration_since(origin).unwrap_or_default();
    let end = rows
        .iter()
        .filter_map(|r| r.healthy.or(r.spawned))
        .map(since)
        .max()
        .unwrap_or_default()
        .as_secs_f64()
        .max(0.001);
    let name_width = rows
        .iter()
        .map(|r| r.name.chars().count())
        .max()
        .unwrap_or(7)
        .max(7)
        + 2;
    let fixed = 2 + name_width + 10 + 10 + 9;
    let bar_width = usize::from(area.width).saturating_sub(fixed);
    lines.push(
        Line::from(format!(
            "  {}{}{}{}",
            format::fit("SERVICE", name_width),
            format::fit("SPAWNED", 10),
            format::fit("HEALTHY", 10),
            format::fit("TOOK", 9)
        ))
        .bold(),
    );
    for row in rows {
        let critical = chain.iter().any(|c| c == row.short);
        let spawned = row.spawned.map(since).unwrap_or_default();
        let healthy = row.healthy.map(since);
        let took = healthy.map(|h| h.saturating_sub(spawned));
        // Bar: blank until spawned, then ━ until healthy (or ┄ when it never became healthy).
        // Display only: rounding the scaled positions to whole cells is the point.
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let cells =
            |d: std::time::Duration| ((d.as_secs_f64() / end) * bar_width as f64).round() as usize;
        let from = cells(spawned).min(bar_width);
        let to = healthy.map_or(bar_width, cells).clamp(from, bar_width);
        let fill = if healthy.is_some() { "━" } else { "┄" };
        let bar = format!("{}{}", " ".repeat(from), fill.repeat((to - from).max(1)));
        let style = if critical {
            Style::default()
                .fg(Color::Yellow)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default()
        };
        let state_color = if healthy.is_some() {
            state_style(ServiceState::Running)
        } else {
            state_style(ServiceState::Starting)
        };
        lines.push(Line::from(vec![
            Span::styled(if critical { "★ " } else { "  " }, style),
            Span::styled(format::fit(row.name, name_width), style),
            Span::raw(format::fit(&format::offset(spawned), 10)),
            Span::raw(format::fit(
                &healthy.map_or_else(|| "—".into(), format::offset),
                10,
            )),
            Span::raw(format::fit(
                &took.map_or_else(|| "—".into(), |d| format::offset(d).replacen('+', "", 1)),
                9,
            )),
            Span::styled(bar, if critical { style } else { state_color }),
        ]));
    }
    Paragraph::new(lines).render(area, buf);
}
