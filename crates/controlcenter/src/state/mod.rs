//! The application state. It is fed only by Russell's answers and streams ([`Update`]) and
//! by the user's actions (`app::handle`); the view only reads it. Time comes in as `now`, so a
//! state built with fixed times always renders the same screen.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use russell_api::pb;
use russell_api::pb::ServiceState;

use crate::api::Update;
use crate::input::InputMode;

mod service;

pub use service::{api_name, reason, same_name, to_duration, to_system_time};
use service::{display_name, is_healthy};

/// Events kept for the events pane.
const MAX_EVENTS: usize = 500;
/// Log lines kept in the log pane.
const MAX_LOG_LINES: usize = 5000;

/// Whether Russell answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connection {
    /// First attempt still running.
    Connecting,
    Connected,
    /// Not reachable; retrying in the background.
    Unreachable {
        error: String,
        attempt: u32,
    },
}

/// Which pane replaces the service table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overlay {
    #[default]
    None,
    Logs,
    Events,
    Timing,
    /// The dependency graph with live states (`g`).
    Graph,
}

/// An action that runs in the background.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionKind {
    StartAll,
    StopAll,
    Start(String),
    Stop(String),
    Restart(String),
    /// Starting Russell itself (`u` while it is not reachable).
    StartRussell,
}

/// An action waiting for Russell's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub id: u64,
    pub kind: ActionKind,
}

/// The last result or error shown in the status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub text: String,
    pub is_error: bool,
}

/// The live log pane of one service.
#[derive(Debug, Clone, Default)]
pub struct LogPane {
    /// Service whose log is shown (short_name).
    pub service: String,
    /// Stream generation; lines of older streams are ignored.
    pub generation: u64,
    pub lines: VecDeque<pb::LogLine>,
    /// Lines scrolled back from the end; 0 = following.
    pub scroll: usize,
    /// Only lines containing this (case-insensitive) are shown; empty = all.
    pub filter: String,
    /// `Some` while the user types a filter after `/`.
    pub search_input: Option<String>,
    /// Why the stream ended, if it did.
    pub ended: Option<String>,
}

impl LogPane {
    /// The lines that pass the filter, oldest first.
    pub fn visible(&self) -> Vec<&pb::LogLine> {
        let needle = self.filter.to_lowercase();
        self.lines
            .iter()
            .filter(|l| needle.is_empty() || l.line.to_lowercase().contains(&needle))
            .collect()
    }

    /// Whether the pane shows the end of the log (and keeps showing it).
    pub fn following(&self) -> bool {
        self.scroll == 0
    }
}

/// Everything the screen shows.
#[derive(Debug, Clone)]
pub struct State {
    /// Russell's address, for the banner.
    pub addr: String,
    /// Whether `u` can start Russell (the binary gave ControlCenter a launcher).
    pub can_launch: bool,
    /// The current time, set by the event loop (fixed in tests).
    pub now: SystemTime,
    pub connection: Connection,
    /// Russell's last status, with pushed events applied on top.
    pub status: Option<pb::OrchestratorStatus>,
    /// Index of the selected row in `status.services`.
    pub selected: usize,
    pub overlay: Overlay,
    pub logs: LogPane,
    /// Recent events, oldest first.
    pub events: VecDeque<pb::Event>,
    /// Actions waiting for an answer, oldest first.
    pub pending: Vec<Pending>,
    pub message: Option<Message>,
    /// Events applied since the last status. Russell may publish an event a moment before
    /// its status shows it, so they are applied again on top of the next status.
    unconfirmed: Vec<pb::Event>,
    next_id: u64,
}

impl State {
    /// An empty state for Russell at `addr`, before the first answer.
    pub fn new(addr: impl Into<String>, now: SystemTime) -> Self {
        Self {
            addr: addr.into(),
            can_launch: false,
            now,
            connection: Connection::Connecting,
            status: None,
            selected: 0,
            overlay: Overlay::None,
            logs: LogPane::default(),
            events: VecDeque::new(),
            pending: Vec::new(),
            message: None,
            unconfirmed: Vec::new(),
            next_id: 0,
        }
    }

    /// The keyboard mode for `input::map_key`.
    pub fn input_mode(&self) -> InputMode {
        match self.overlay {
            Overlay::Logs if self.logs.search_input.is_some() => InputMode::Search,
            Overlay::Logs => InputMode::Logs,
            _ => InputMode::Normal,
        }
    }

    /// Russell's services in config order (none before the first status).
    pub fn services(&self) -> &[pb::ServiceStatus] {
        self.status.as_ref().map_or(&[], |s| s.services.as_slice())
    }

    /// The service under the cursor.
    pub fn selected_service(&self) -> Option<&pb::ServiceStatus> {
        self.services().get(self.selected)
    }

    /// A fresh id for an action or a log stream.
    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Records an action as running; returns its id.
    pub fn begin(&mut self, kind: ActionKind) -> u64 {
        let id = self.next_id();
        self.pending.push(Pending { id, kind });
        id
    }

    /// Shows `text` in the status line.
    pub fn say(&mut self, text: impl Into<String>, is_error: bool) {
        self.message = Some(Message {
            text: text.into(),
            is_error,
        });
    }

    /// Applies one update from the background task.
    pub fn apply(&mut self, update: Update) {
        match update {
            Update::Connected => self.connection = Connection::Connected,
            Update::Unreachable { error, attempt } => {
                self.connection = Connection::Unreachable { error, attempt };
                self.unconfirmed.clear();
            }
            Update::Status(status) => {
                self.connection = Connection::Connected;
                self.status = Some(*status);
                for event in std::mem::take(&mut self.unconfirmed) {
                    self.apply_event(&event);
                }
                self.clamp_selection();
            }
            Update::Event(event) => {
                self.apply_event(&event);
                if self.unconfirmed.len() < MAX_EVENTS {
                    self.unconfirmed.push(event.clone());
                }
                if self.events.len() == MAX_EVENTS {
                    self.events.pop_front();
                }
                self.events.push_back(event);
            }
            Update::LogReset { generation } if generation == self.logs.generation => {
                self.logs.lines.clear();
                self.logs.ended = None;
            }
            Update::Log { generation, line } if generation == self.logs.generation => {
                if self.logs.lines.len() == MAX_LOG_LINES {
                    self.logs.lines.pop_front();
                }
                self.logs.lines.push_back(line);
                if self.logs.scroll > 0 {
                    // Keep the view still while the user reads back.
                    self.logs.scroll += 1;
                }
            }
            Update::LogEnded { generation, error } if generation == self.logs.generation => {
                self.logs.ended = Some(error.unwrap_or_else(|| "log stream ended".into()));
            }
            Update::LogReset { .. } | Update::Log { .. } | Update::LogEnded { .. } => {}
            Update::Done { id, outcome } => {
                self.pending.retain(|p| p.id != id);
                match outcome {
                    Ok(text) => self.say(text, false),
                    Err(text) => self.say(text, true),
                }
            }
        }
    }

    /// Applies what an event says at once, before the fresh status arrives.
    fn apply_event(&mut self, event: &pb::Event) {
        let Some(status) = self.status.as_mut() else {
            return;
        };
        let Some(service) = status
            .services
            .iter_mut()
            .find(|s| same_name(s, &event.service))
        else {
            return;
        };
        if event.service_state() != ServiceState::Unspecified {
            service.service_state = event.service_state;
            service.state = event.state.clone();
        }
        let now = service.service_state();
        // A running task is not healthy yet; a completed one is (for its dependents).
        service.healthy = match now {
            ServiceState::Running => service.kind != "task",
            ServiceState::Completed => service.kind == "task",
            _ => false,
        };
        match now {
            ServiceState::Stopped
            | ServiceState::Failed
            | ServiceState::Waiting
            | ServiceState::Completed => service.pid = 0,
            _ if event.pid != 0 => service.pid = event.pid,
            _ => {}
        }
        if event.kind == "failed" && !event.message.is_empty() {
            service.last_error = event.message.clone();
        }
    }

    fn clamp_selection(&mut self) {
        let len = self.services().len();
        self.selected = self.selected.min(len.saturating_sub(1));
    }

    /// `(running, healthy, total)`: processes up, of those healthy, services configured.
    pub fn counts(&self) -> (usize, usize, usize) {
        let services = self.services();
        let running = services
            .iter()
            .filter(|s| s.service_state().is_up())
            .count();
        let healthy = services.iter().filter(|s| is_healthy(s)).count();
        (running, healthy, services.len())
    }

    /// The progress or result line: `starting all… 3/6`, or the last message.
    pub fn status_line(&self) -> Option<Message> {
        let Some(last) = self.pending.last() else {
            return self.message.clone();
        };
        let (_, healthy, total) = self.counts();
        let stopped = self
            .services()
            .iter()
            .filter(|s| s.service_state().is_down())
            .count();
        let name = |n: &str| display_name(self.services(), n);
        let mut text = match &last.kind {
            ActionKind::StartAll => format!("starting all… {healthy}/{total}"),
            ActionKind::StopAll => format!("stopping all… {stopped}/{total}"),
            ActionKind::Start(n) => format!("starting {}…", name(n)),
            ActionKind::Stop(n) => format!("stopping {}…", name(n)),
            ActionKind::Restart(n) => format!("restarting {}…", name(n)),
            ActionKind::StartRussell => "starting Russell…".to_string(),
        };
        if self.pending.len() > 1 {
            text.push_str(&format!(" (+{} more)", self.pending.len() - 1));
        }
        Some(Message {
            text,
            is_error: false,
        })
    }

    /// Russell's uptime, from its `started_at`.
    pub fn russell_uptime(&self) -> Option<Duration> {
        let started = self.status.as_ref()?.started_at.as_ref()?;
        self.now.duration_since(to_system_time(started)).ok()
    }

    /// How long the process of `service` has been up, when it has one.
    pub fn service_uptime(&self, service: &pb::ServiceStatus) -> Option<Duration> {
        if !service.service_state().has_process() {
            return None;
        }
        if let Some(started) = &service.started_at {
            return self.now.duration_since(to_system_time(started)).ok();
        }
        service.uptime.as_ref().map(to_duration)
    }

    /// The critical chain of the last start: the service that became healthy last, then
    /// (repeatedly) its dependency that became healthy last. First element = last to finish.
    pub fn critical_chain(&self) -> Vec<String> {
        let services = self.services();
        let healthy_at = |s: &pb::ServiceStatus| {
            s.timing
                .as_ref()
                .and_then(|t| t.healthy_at.as_ref())
                .map(to_system_time)
        };
        let mut chain = Vec::new();
        let mut current = services
            .iter()
            .filter_map(|s| healthy_at(s).map(|t| (t, s)))
            .max_by_key(|(t, _)| *t)
            .map(|(_, s)| s);
        while let Some(service) = current {
            if chain.contains(&service.short_name) {
                break;
            }
            chain.push(service.short_name.clone());
            current = service
                .dependencies
                .iter()
                .filter_map(|d| services.iter().find(|s| same_name(s, d)))
                .filter_map(|s| healthy_at(s).map(|t| (t, s)))
                .max_by_key(|(t, _)| *t)
                .map(|(_, s)| s);
        }
        chain
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use ServiceState::{Running, Starting, Stopped, Waiting};

    fn svc(
        name: &str,
        state: ServiceState,
        deps: &[&str],
        healthy_at: Option<i64>,
    ) -> pb::ServiceStatus {
        pb::ServiceStatus {
            name: name.to_uppercase(),
            short_name: name.into(),
            state: state.as_str().into(),
            service_state: state.into(),
            healthy: state == Running,
            dependencies: deps.iter().map(|d| d.to_string()).collect(),
            timing: Some(pb::StartTiming {
                requested_at: None,
                spawned_at: None,
                healthy_at: healthy_at.map(|s| prost_types::Timestamp {
                    seconds: s,
                    nanos: 0,
                }),
            }),
            ..Default::default()
        }
    }

    fn state_with(services: Vec<pb::ServiceStatus>) -> State {
        let mut state = State::new("x", SystemTime::UNIX_EPOCH);
        state.apply(Update::Status(Box::new(pb::OrchestratorStatus {
            services,
            ..Default::default()
        })));
        state
    }

    #[test]
    fn event_applies_at_once() {
        let mut state = state_with(vec![svc("kant", Stopped, &[], None)]);
        state.apply(Update::Event(pb::Event {
            kind: "healthy".into(),
            service: "kant".into(),
            state: "running".into(),
            service_state: Running.into(),
            pid: 42,
            ..Default::default()
        }));
        let s = &state.services()[0];
        assert_eq!((s.service_state(), s.healthy, s.pid), (Running, true, 42));
        assert_eq!(state.counts(), (1, 1, 1));
        assert_eq!(state.events.len(), 1);
    }

    #[test]
    fn a_status_older_than_an_event_does_not_undo_it() {
        let mut state = state_with(vec![svc("kant", Running, &[], None)]);
        state.apply(Update::Event(pb::Event {
            kind: "stopped".into(),
            service: "kant".into(),
            state: "stopped".into(),
            service_state: Stopped.into(),
            ..Default::default()
        }));
        // Russell's status still says running (published a moment later): the event wins.
        let stale = pb::OrchestratorStatus {
            services: vec![svc("kant", Running, &[], None)],
            ..Default::default()
        };
        state.apply(Update::Status(Box::new(stale.clone())));
        assert_eq!(state.services()[0].service_state(), Stopped);
        // The next status is taken as it is.
        state.apply(Update::Status(Box::new(stale)));
        assert_eq!(state.services()[0].service_state(), Running);
    }

    #[test]
    fn critical_chain_follows_latest_dependency() {
        let state = state_with(vec![
            svc("db", Running, &[], Some(10)),
            svc("cache", Running, &[], Some(12)),
            svc("api", Running, &["db", "cache"], Some(20)),
            svc("web", Running, &["api"], Some(30)),
            svc("side", Running, &[], Some(5)),
        ]);
        assert_eq!(state.critical_chain(), vec!["web", "api", "cache"]);
    }

    #[test]
    fn progress_counts_healthy_services() {
        let mut state = state_with(vec![
            svc("a", Running, &[], None),
            svc("b", Starting, &[], None),
            svc("c", Stopped, &[], None),
        ]);
        state.begin(ActionKind::StartAll);
        assert_eq!(
            state.status_line().map(|m| m.text),
            Some("starting all… 1/3".to_string())
        );
        let id = state.pending[0].id;
        state.apply(Update::Done {
            id,
            outcome: Err("start all failed: c: boom".into()),
        });
        assert_eq!(
            state.status_line(),
            Some(Message {
                text: "start all failed: c: boom".into(),
                is_error: true
            })
        );
    }

    #[test]
    fn stale_log_lines_are_ignored() {
        let mut state = State::new("x", SystemTime::UNIX_EPOCH);
        state.logs.generation = 2;
        state.apply(Update::Log {
            generation: 1,
            line: pb::LogLine::default(),
        });
        assert!(state.logs.lines.is_empty());
    }

    #[test]
    fn waiting_reason_names_blocking_dependencies() {
        let services = vec![
            svc("db", Starting, &[], None),
            svc("cache", Running, &[], None),
            svc("api", Waiting, &["db", "cache"], None),
        ];
        assert_eq!(reason(&services[2], &services), "waiting for db");
    }

    #[test]
    fn a_disabled_service_says_so() {
        let mut off = svc("off", Stopped, &[], None);
        off.disabled = true;
        assert_eq!(
            reason(&off, &[]),
            "disabled (enabled = false in the services file)"
        );
    }

    #[test]
    fn a_task_reads_as_running_then_done() {
        let mut t = svc("prep", Running, &[], None);
        t.kind = "task".into();
        assert_eq!(reason(&t, &[]), "running (a task: done when it exits)");
        t.service_state = ServiceState::Completed.into();
        assert_eq!(reason(&t, &[]), "completed (ran to the end)");
        let style = crate::view::state_style(ServiceState::Completed);
        assert_eq!(style.fg, Some(ratatui::style::Color::Cyan));
    }
}
