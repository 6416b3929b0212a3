//! The service table: SERVICE · PORT · STATUS · HEALTH · UPTIME (+ RESTARTS · PID · CPU · MEM
//! when wide enough), with the `→` cursor. Columns are dropped, least important first, when
//! the terminal is narrow.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};
use russell_api::pb::{self, ServiceState};

use super::{format, state_style};
use crate::state::{Connection, State};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Service,
    Port,
    Status,
    Health,
    Uptime,
    Restarts,
    Pid,
    Cpu,
    Mem,
}

const ALL: [Col; 9] = [
    Col::Service,
    Col::Port,
    Col::Status,
    Col::Health,
    Col::Uptime,
    Col::Restarts,
    Col::Pid,
    Col::Cpu,
    Col::Mem,
];

/// Dropped first to last when the table does not fit.
const DROP_ORDER: [Col; 7] = [
    Col::Mem,
    Col::Cpu,
    Col::Pid,
    Col::Restarts,
    Col::Uptime,
    Col::Port,
    Col::Health,
];

/// Width of the `→ ` cursor column.
const CURSOR: usize = 2;

impl Col {
    fn title(self) -> &'static str {
        match self {
            Col::Service => "SERVICE",
            Col::Port => "PORT",
            Col::Status => "STATUS",
            Col::Health => "HEALTH",
            Col::Uptime => "UPTIME",
            Col::Restarts => "RESTARTS",
            Col::Pid => "PID",
            Col::Cpu => "CPU",
            Col::Mem => "MEM",
        }
    }

    fn width(self, name_width: usize) -> usize {
        match self {
            Col::Service => name_width,
            Col::Port => 8,
            Col::Status => 13,
            Col::Health => 11,
            Col::Uptime => 9,
            Col::Restarts => 9,
            Col::Pid => 8,
            Col::Cpu => 7,
            Col::Mem => 7,
        }
    }
}

/// The columns that fit into `width`, with the SERVICE column's width.
fn columns(width: usize, name_width: usize) -> (Vec<Col>, usize) {
    let mut cols = ALL.to_vec();
    let total = |cols: &[Col]| CURSOR + cols.iter().map(|c| c.width(name_width)).sum::<usize>();
    for drop in DROP_ORDER {
        if total(&cols) <= width {
            break;
        }
        cols.retain(|c| *c != drop);
    }
    let others: usize = cols
        .iter()
        .filter(|c| **c != Col::Service)
        .map(|c| c.width(name_width))
        .sum();
    let service = name_width.min(width.saturating_sub(CURSOR + others)).max(4);
    (cols, service)
}

/// Draws the table (header, rule, rows scrolled to keep the cursor visible) into `area`.
pub fn render(state: &State, area: Rect, buf: &mut Buffer) {
    let services = state.services();
    if services.is_empty() {
        let text = if state.status.is_some() {
            "no services configured"
        } else {
            "no status from Russell yet"
        };
        Paragraph::new(Line::from(text).dim()).render(area, buf);
        return;
    }
    let longest = services
        .iter()
        .map(|s| s.name.chars().count())
        .max()
        .unwrap_or(0);
    let name_width = (longest.max(7) + 2).min(22);
    let width = usize::from(area.width);
    let (cols, service_width) = columns(width, name_width);
    let col_width = |c: Col| {
        if c == Col::Service {
            service_width
        } else {
            c.width(name_width)
        }
    };

    let mut lines = Vec::new();
    let mut header = vec![Span::raw(" ".repeat(CURSOR))];
    header.extend(
        cols.iter()
            .map(|c| Span::raw(format::fit(c.title(), col_width(*c))).bold()),
    );
    lines.push(Line::from(header));
    lines.push(Line::from("─".repeat(width.saturating_sub(1))).dim());

    // Scroll so that the cursor stays visible.
    let visible = usize::from(area.height).saturating_sub(2).max(1);
    let first = state.selected.saturating_sub(visible - 1);
    for (index, service) in services.iter().enumerate().skip(first).take(visible) {
        let selected = index == state.selected;
        let mut spans = vec![Span::raw(if selected { "→ " } else { "  " })];
        for col in &cols {
            let (text, style) = cell(state, service, *col);
            spans.push(Span::styled(format::fit(&text, col_width(*col)), style));
        }
        let mut line = Line::from(spans);
        if selected {
            line = line.add_modifier(Modifier::BOLD);
        }
        if service.service_state() == ServiceState::Stopped
            || state.connection != Connection::Connected
        {
            // Stopped rows, and every row while Russell is unreachable (last known state).
            line = line.add_modifier(Modifier::DIM);
        }
        lines.push(line);
    }
    Paragraph::new(lines).render(area, buf);
}

fn cell(state: &State, service: &pb::ServiceStatus, col: Col) -> (String, Style) {
    let plain = Style::default();
    let has_process = service.pid != 0;
    match col {
        Col::Service => (service.name.clone(), plain),
        Col::Port => {
            let port = if service.grpc_port != 0 {
                service.grpc_port
            } else {
                service.http_port
            };
            let text = if port == 0 {
                "—".into()
            } else {
                format!(":{port}")
            };
            (text, plain)
        }
        Col::Status => {
            let now = service.service_state();
            let dot = match now {
                ServiceState::Stopped => "○",
                ServiceState::Completed => "✓",
                _ => "●",
            };
            if service.disabled && now == ServiceState::Stopped {
                (format!("{dot} disabled"), state_style(now))
            } else {
                (format!("{dot} {now}"), state_style(now))
            }
        }
        Col::Health => health(service),
        Col::Uptime => (
            state
                .service_uptime(service)
                .map_or_else(|| "—".into(), format::uptime),
            plain,
        ),
        Col::Restarts => (service.restart_count.to_string(), plain),
        Col::Pid if has_process => (service.pid.to_string(), plain),
        Col::Cpu if has_process => (format!("{:.1}%", service.cpu_percent), plain),
        Col::Mem if has_process && service.rss_bytes > 0 => {
            (format::bytes(service.rss_bytes), plain)
        }
        Col::Pid | Col::Cpu | Col::Mem => ("—".into(), plain),
    }
}

fn health(service: &pb::ServiceStatus) -> (String, Style) {
    let yellow = Style::default().fg(Color::Yellow);
    match service.service_state() {
        ServiceState::Running if service.healthy => {
            ("✓ ok".into(), state_style(ServiceState::Running))
        }
        ServiceState::Running | ServiceState::Unhealthy => ("✗ failing".into(), yellow),
        ServiceState::Starting | ServiceState::Waiting | ServiceState::Restarting => {
            ("… pending".into(), yellow)
        }
        _ => ("— n/a".into(), state_style(ServiceState::Stopped)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_drop_least_important_first() {
        let names = |w| {
            columns(w, 10)
                .0
                .iter()
                .map(|c| c.title())
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(
            names(200),
            "SERVICE PORT STATUS HEALTH UPTIME RESTARTS PID CPU MEM"
        );
        assert_eq!(names(76), "SERVICE PORT STATUS HEALTH UPTIME RESTARTS PID");
        assert_eq!(names(36), "SERVICE STATUS HEALTH");
        assert_eq!(names(16), "SERVICE STATUS");
    }
}
