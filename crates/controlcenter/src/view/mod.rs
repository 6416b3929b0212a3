//! Drawing only: every function here reads the state and writes to the frame.
//!
//! Layout (as in the user's plan; docs/CONTROLCENTER.md): title · RUSSELL ORCHESTRATOR block · service table (or the log,
//! events or timing pane) · selected service · dependencies · status line · keys. Below 20
//! rows the header shrinks to one line; narrow terminals drop table columns.

mod format;
mod graph;

pub use format::uptime;
mod panes;
mod table;

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Widget, Wrap};
use russell_api::pb::{self, ExternalState, ServiceState};

use crate::state::{Connection, Overlay, State, reason};

/// Rows below which the compact layout is used.
const FULL_HEIGHT: u16 = 20;

/// The title line, with this crate's version.
pub fn title() -> String {
    format!("mDW Control Center v{}", env!("CARGO_PKG_VERSION"))
}

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, state: &State) {
    let area = frame.area();
    render(area, frame.buffer_mut(), state);
}

/// Renders the screen into `buf` (separate from `Frame` so tests can reuse it).
pub fn render(area: Rect, buf: &mut Buffer, state: &State) {
    if area.width < 3 || area.height < 3 {
        Paragraph::new(title()).render(area, buf);
        return;
    }
    let full = area.height >= FULL_HEIGHT;
    let mut block = Block::bordered();
    if !full {
        let text = if usize::from(area.width) >= title().chars().count() + 4 {
            format!(" {} ", title())
        } else {
            " mDW CC ".to_string()
        };
        block = block.title(Line::from(text).bold().centered());
    }
    let inner = block.inner(area);
    block.render(area, buf);
    // One column of padding on each side when there is room.
    let content = if inner.width > 10 {
        Rect {
            x: inner.x + 1,
            width: inner.width - 2,
            ..inner
        }
    } else {
        inner
    };
    let keys = key_lines(state, content.width);
    if full {
        let key_rows = u16::try_from(keys.len()).unwrap_or(1);
        let rows = Layout::vertical([
            Constraint::Length(1), // title
            Constraint::Length(1), // separator
            Constraint::Length(4), // orchestrator
            Constraint::Length(1), // separator
            Constraint::Min(3),    // table / pane
            Constraint::Length(1), // separator
            Constraint::Length(1), // selected service
            Constraint::Length(1), // dependencies
            Constraint::Length(1), // status line
            Constraint::Length(key_rows),
        ])
        .split(content);
        Paragraph::new(title())
            .bold()
            .centered()
            .render(rows[0], buf);
        separator(buf, area, rows[1]);
        orchestrator(state, rows[2], buf);
        separator(buf, area, rows[3]);
        body(state, rows[4], buf);
        separator(buf, area, rows[5]);
        Paragraph::new(selected_line(state)).render(rows[6], buf);
        Paragraph::new(dependencies_line(state)).render(rows[7], buf);
        Paragraph::new(status_line(state)).render(rows[8], buf);
        Paragraph::new(keys).render(rows[9], buf);
    } else {
        let rows = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(0),
            Constraint::Length(1),
            Constraint::Length(1),
        ])
        .split(content);
        Paragraph::new(orchestrator_compact(state)).render(rows[0], buf);
        body(state, rows[1], buf);
        Paragraph::new(status_line(state)).render(rows[2], buf);
        Paragraph::new(keys.into_iter().next().unwrap_or_default()).render(rows[3], buf);
    }
}

/// `├────┤` across the whole outer width at the row of `row`.
fn separator(buf: &mut Buffer, outer: Rect, row: Rect) {
    if row.height == 0 || outer.width < 2 {
        return;
    }
    let y = row.y;
    let line = format!(
        "├{}┤",
        "─".repeat(usize::from(outer.width.saturating_sub(2)))
    );
    buf.set_string(outer.x, y, line, Style::default());
}

fn body(state: &State, area: Rect, buf: &mut Buffer) {
    match state.overlay {
        Overlay::None => table::render(state, area, buf),
        Overlay::Logs => panes::logs(state, area, buf),
        Overlay::Events => panes::events(state, area, buf),
        Overlay::Timing => panes::timing(state, area, buf),
        Overlay::Graph => graph::render(state, area, buf),
    }
}

/// Colour of a service state.
pub fn state_style(state: ServiceState) -> Style {
    match state {
        ServiceState::Running => Style::default().fg(Color::Green),
        ServiceState::Starting
        | ServiceState::Unhealthy
        | ServiceState::Restarting
        | ServiceState::Waiting
        | ServiceState::Stopping => Style::default().fg(Color::Yellow),
        ServiceState::Failed => Style::default().fg(Color::Red),
        // Ran to completion: done, not running.
        ServiceState::Completed => Style::default().fg(Color::Cyan),
        ServiceState::Stopped | ServiceState::Unspecified => {
            Style::default().add_modifier(Modifier::DIM)
        }
    }
}

/// Colour of Russell's phase (`OrchestratorStatus.status`: starting, running, stopping,
/// stopped).
fn phase_style(phase: &str) -> Style {
    match phase {
        "running" => Style::default().fg(Color::Green),
        "starting" | "stopping" => Style::default().fg(Color::Yellow),
        _ => Style::default().add_modifier(Modifier::DIM),
    }
}

/// Mark and colour of an external's state: ✓ healthy, ✗ unhealthy (yellow when optional),
/// ? not probed yet.
pub fn external_mark(external: &pb::ExternalStatus) -> (&'static str, Style) {
    match external.external_state() {
        ExternalState::Healthy => ("✓", Style::default().fg(Color::Green)),
        ExternalState::Unhealthy if external.optional => ("✗", Style::default().fg(Color::Yellow)),
        ExternalState::Unhealthy => ("✗", Style::default().fg(Color::Red)),
        ExternalState::Unknown | ExternalState::Unspecified => {
            ("?", Style::default().add_modifier(Modifier::DIM))
        }
    }
}

fn banner(state: &State) -> Option<(String, String)> {
    match &state.connection {
        Connection::Unreachable { error, attempt } => Some((
            if state.can_launch {
                format!(
                    "Russell not reachable at {} — retrying; press u to start it",
                    state.addr
                )
            } else {
                format!(
                    "Russell not reachable at {} — retrying (start it with: mdw up)",
                    state.addr
                )
            },
            format!("attempt {attempt}: {error}"),
        )),
        Connection::Connecting if state.status.is_none() => Some((
            format!("connecting to Russell at {}…", state.addr),
            String::new(),
        )),
        _ => None,
    }
}

fn orchestrator(state: &State, area: Rect, buf: &mut Buffer) {
    let mut lines = vec![
        Line::from("RUSSELL ORCHESTRATOR").bold(),
        Line::from("═".repeat(20)),
    ];
    if let Some((headline, detail)) = banner(state) {
        let style = if matches!(state.connection, Connection::Unreachable { .. }) {
            Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)
        } else {
            Style::default().fg(Color::Yellow)
        };
        lines.push(Line::styled(headline, style));
        lines.push(Line::from(detail).dim());
    } else {
        let (phase, uptime) = russell_phase(state);
        let (running, healthy, total) = state.counts();
        lines.push(Line::from(vec![
            Span::raw("Status: "),
            Span::styled(
                format::fit(&format!("● {}", phase.to_uppercase()), 19),
                phase_style(&phase).add_modifier(Modifier::BOLD),
            ),
            Span::raw(format!("Uptime: {uptime}")),
        ]));
        lines.push(Line::from(vec![
            Span::raw(format::fit(
                &format!("Services: {running}/{total} running"),
                27,
            )),
            Span::raw(format!("Healthy: {healthy}/{running}")),
        ]));
    }
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .render(area, buf);
}

/// Russell's phase (lowercase) and uptime text.
fn russell_phase(state: &State) -> (String, String) {
    let phase = state
        .status
        .as_ref()
        .map(|s| s.status.clone())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into());
    let uptime = state
        .russell_uptime()
        .map_or_else(|| "—".into(), format::uptime);
    (phase, uptime)
}

fn orchestrator_compact(state: &State) -> Line<'static> {
    if let Some((headline, _)) = banner(state) {
        return Line::styled(headline, Style::default().fg(Color::Red).bold());
    }
    let (phase, uptime) = russell_phase(state);
    let (running, healthy, total) = state.counts();
    Line::from(vec![
        Span::styled(
            format!("● {}", phase.to_uppercase()),
            phase_style(&phase).add_modifier(Modifier::BOLD),
        ),
        Span::raw(format!(
            "  up {uptime}  {running}/{total} running  {healthy}/{running} healthy"
        )),
    ])
}

/// `Kant  restarts 1/3  PID 4242  health check failing: …`
fn selected_line(state: &State) -> Line<'static> {
    let Some(service) = state.selected_service() else {
        return Line::from("no service selected").dim();
    };
    let pid = if service.pid == 0 {
        "—".to_string()
    } else {
        service.pid.to_string()
    };
    let restarts = if service.max_retries > 0 {
        format!("{}/{}", service.restart_count, service.max_retries)
    } else {
        service.restart_count.to_string()
    };
    Line::from(vec![
        Span::raw(format!("{}: ", service.name)).bold(),
        Span::raw(format!("restarts {restarts}  PID {pid}  ")),
        Span::styled(
            reason(service, state.services()),
            state_style(service.service_state()),
        ),
    ])
}

/// `Dependencies: Go ✓  Ollama ✓  Models ✗ (missing: mistral:7b)`
fn dependencies_line(state: &State) -> Line<'static> {
    let externals = state
        .status
        .as_ref()
        .map(|s| s.externals.as_slice())
        .unwrap_or_default();
    let mut spans = vec![Span::raw("Dependencies:")];
    if externals.is_empty() {
        spans.push(Span::raw(" none configured").dim());
    }
    for external in externals {
        let (mark, style) = external_mark(external);
        let name = if external.name.is_empty() {
            &external.short_name
        } else {
            &external.name
        };
        spans.push(Span::raw(format!(" {name} ")));
        spans.push(Span::styled(format!("{mark} "), style));
        if let Some(missing) = missing_models(&external.missing_models) {
            spans.push(Span::styled(missing, style));
        }
    }
    Line::from(spans)
}

/// `(missing: mistral:7b, nomic-embed-text) ` for an `ollama` check that lacks models; at
/// most two names, then how many more (the full list is in `mdw status`).
fn missing_models(models: &[String]) -> Option<String> {
    const SHOWN: usize = 2;
    if models.is_empty() {
        return None;
    }
    let mut text = models
        .iter()
        .take(SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if models.len() > SHOWN {
        text.push_str(&format!(" +{} more", models.len() - SHOWN));
    }
    Some(format!("(missing: {text}) "))
}

fn status_line(state: &State) -> Line<'static> {
    if let Some(message) = state.status_line() {
        let style = if message.is_error {
            Style::default().fg(Color::Red)
        } else if state.pending.is_empty() {
            Style::default().fg(Color::Green)
        } else {
            Style::default().fg(Color::Yellow)
        };
        return Line::styled(message.text, style);
    }
    match (&state.connection, &state.status) {
        (Connection::Connected, Some(status)) => Line::from(format!(
            "connected to Russell {}{} at {}",
            if status.version.is_empty() { "" } else { "v" },
            status.version,
            state.addr
        ))
        .dim(),
        _ => Line::from(""),
    }
}

/// The key help, flowed onto at most two lines of `width`.
fn key_lines(state: &State, width: u16) -> Vec<Line<'static>> {
    let items: Vec<(&str, &str)> = match state.overlay {
        Overlay::Logs if state.logs.search_input.is_some() => {
            vec![("Enter", "apply filter"), ("Esc", "cancel")]
        }
        Overlay::Logs => vec![
            ("PgUp/PgDn", "scroll"),
            ("f", "follow"),
            ("/", "filter"),
            ("l", "close"),
            ("r", "restart"),
            ("Enter", "toggle"),
            ("q", "quit"),
        ],
        Overlay::Events => vec![
            ("e", "close"),
            ("a", "start all"),
            ("s", "stop all"),
            ("q", "quit"),
        ],
        Overlay::Graph => vec![
            ("g", "close"),
            ("a", "start all"),
            ("s", "stop all"),
            ("q", "quit"),
        ],
        Overlay::Timing => vec![
            ("t", "close"),
            ("a", "start all"),
            ("s", "stop all"),
            ("q", "quit"),
        ],
        Overlay::None => vec![
            ("a", "start all"),
            ("s", "stop all"),
            ("Enter", "toggle"),
            ("r", "restart"),
            ("l", "logs"),
            ("e", "events"),
            ("t", "timing"),
            ("g", "graph"),
            ("↑↓", "move"),
            ("q", "quit"),
        ],
    };
    let width = usize::from(width);
    let mut lines: Vec<Vec<Span<'static>>> = vec![Vec::new()];
    let mut used = 0;
    for (key, label) in items {
        let len = key.chars().count() + label.chars().count() + 3;
        let sep = usize::from(used > 0) * 2;
        if used > 0 && used + sep + len > width {
            if lines.len() == 2 {
                break;
            }
            lines.push(Vec::new());
            used = 0;
        }
        let spans = lines.last_mut();
        if let Some(spans) = spans {
            if used > 0 {
                spans.push(Span::raw("  "));
                used += 2;
            }
            spans.push(Span::styled(
                format!("[{key}]"),
                Style::default()
                    .fg(Color::Cyan)
                    .add_modifier(Modifier::BOLD),
            ));
            spans.push(Span::raw(format!(" {label}")));
            used += len;
        }
    }
    lines.into_iter().map(Line::from).collect()
}
