//! Carrying out actions (`handle`) and the event loop that ties keys, Russell's updates and
//! the clock to the state and the screen.

use std::time::{Duration, SystemTime};

use crossterm::event::{Event as TermEvent, EventStream};
use futures_util::StreamExt;
use ratatui::DefaultTerminal;
use russell_api::pb::ServiceState;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use crate::Error;
use crate::action::Action;
use crate::api::{Api, Command, Update};
use crate::input;
use crate::state::{ActionKind, Connection, LogPane, Overlay, State, api_name};
use crate::view;

/// Lines one PgUp/PgDn moves the log pane.
const PAGE: usize = 10;

/// Whether the loop goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Quit,
}

/// Carries out one action: changes the state and sends commands to Russell through `api`.
pub fn handle(state: &mut State, action: Action, api: &mut dyn Api) -> Flow {
    match action {
        Action::Quit => return Flow::Quit,
        Action::Close => {
            if state.overlay == Overlay::None {
                return Flow::Quit;
            }
            close_overlay(state, api);
        }
        Action::StartAll => {
            let id = state.begin(ActionKind::StartAll);
            api.send(Command::StartAll { id });
        }
        Action::StopAll => {
            let id = state.begin(ActionKind::StopAll);
            api.send(Command::StopAll { id });
        }
        Action::ToggleSelected => toggle_selected(state, api),
        Action::StartRussell => {
            if matches!(state.connection, Connection::Unreachable { .. }) {
                let id = state.begin(ActionKind::StartRussell);
                api.send(Command::LaunchRussell { id });
            } else {
                state.say("Russell is running; nothing to start", false);
            }
        }
        Action::RestartSelected => {
            if let Some(name) = state.selected_service().map(api_name) {
                let id = state.begin(ActionKind::Restart(name.clone()));
                api.send(Command::Restart { id, name });
            } else {
                state.say("no service selected", true);
            }
        }
        Action::ToggleLogs => {
            if state.overlay == Overlay::Logs {
                close_overlay(state, api);
            } else {
                close_overlay(state, api);
                open_logs(state, api);
            }
        }
        Action::ToggleEvents => toggle_pane(state, api, Overlay::Events),
        Action::ToggleTiming => toggle_pane(state, api, Overlay::Timing),
        Action::ToggleGraph => toggle_pane(state, api, Overlay::Graph),
        Action::Up | Action::Down => {
            let before = state.selected;
            let last = state.services().len().saturating_sub(1);
            state.selected = if action == Action::Up {
                before.saturating_sub(1)
            } else {
                (before + 1).min(last)
            };
            // The log pane follows the cursor.
            if state.overlay == Overlay::Logs && state.selected != before {
                open_logs(state, api);
            }
        }
        Action::PageUp => {
            let max = state.logs.visible().len().saturating_sub(1);
            state.logs.scroll = (state.logs.scroll + PAGE).min(max);
        }
        Action::PageDown => state.logs.scroll = state.logs.scroll.saturating_sub(PAGE),
        Action::Follow => state.logs.scroll = 0,
        Action::SearchStart => state.logs.search_input = Some(state.logs.filter.clone()),
        Action::SearchInput(c) => {
            if let Some(input) = state.logs.search_input.as_mut() {
                input.push(c);
            }
        }
        Action::SearchBackspace => {
            if let Some(input) = state.logs.search_input.as_mut() {
                input.pop();
            }
        }
        Action::SearchSubmit => {
            if let Some(input) = state.logs.search_input.take() {
                state.logs.filter = input;
                state.logs.scroll = 0;
            }
        }
        Action::SearchCancel => state.logs.search_input = None,
    }
    Flow::Continue
}

/// Enter: start when stopped or failed, stop when active; say so when it is in between.
fn toggle_selected(state: &mut State, api: &mut dyn Api) {
    let Some(service) = state.selected_service() else {
        state.say("no service selected", true);
        return;
    };
    let name = api_name(service);
    match service.service_state() {
        ServiceState::Stopped | ServiceState::Failed => {
            let id = state.begin(ActionKind::Start(name.clone()));
            api.send(Command::Start { id, name });
        }
        // Ran to completion: run it again.
        ServiceState::Completed => {
            let id = state.begin(ActionKind::Restart(name.clone()));
            api.send(Command::Restart { id, name });
        }
        ServiceState::Running
        | ServiceState::Starting
        | ServiceState::Unhealthy
        | ServiceState::Waiting
        | ServiceState::Restarting => {
            let id = state.begin(ActionKind::Stop(name.clone()));
            api.send(Command::Stop { id, name });
        }
        other @ (ServiceState::Stopping | ServiceState::Unspecified) => {
            let text = format!("{} is {other}; wait a moment", service.name);
            state.say(text, false);
        }
    }
}

/// Opens the log pane on the selected service (replacing any log stream).
fn open_logs(state: &mut State, api: &mut dyn Api) {
    let Some(name) = state.selected_service().map(api_name) else {
        state.say("no service selected", true);
        return;
    };
    let generation = state.next_id();
    state.logs = LogPane {
        service: name.clone(),
        generation,
        ..Default::default()
    };
    state.overlay = Overlay::Logs;
    api.send(Command::Logs {
        generation,
        name: Some(name),
    });
}

fn toggle_pane(state: &mut State, api: &mut dyn Api, pane: Overlay) {
    let open = state.overlay != pane;
    close_overlay(state, api);
    if open {
        state.overlay = pane;
    }
}

/// Closes the open pane; a log pane also ends its stream.
fn close_overlay(state: &mut State, api: &mut dyn Api) {
    if state.overlay == Overlay::Logs {
        api.send(Command::Logs {
            generation: state.logs.generation,
            name: None,
        });
        state.logs.search_input = None;
    }
    state.overlay = Overlay::None;
}

/// The event loop: draw, then wait for a key, an update from Russell or the clock tick.
pub async fn run_loop(
    terminal: &mut DefaultTerminal,
    state: &mut State,
    api: &mut dyn Api,
    updates: &mut mpsc::UnboundedReceiver<Update>,
) -> Result<(), Error> {
    let mut keys = EventStream::new();
    // SIGTERM, SIGHUP (terminal closed) and SIGINT end the loop like `q`, so the terminal
    // guard restores the terminal.
    let mut term = signal(SignalKind::terminate()).map_err(Error::Signals)?;
    let mut hup = signal(SignalKind::hangup()).map_err(Error::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(Error::Signals)?;
    // Uptimes tick once a second even when nothing else happens.
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        state.now = SystemTime::now();
        terminal
            .draw(|frame| view::draw(frame, state))
            .map_err(Error::Terminal)?;
        tokio::select! {
            key = keys.next() => match key {
                Some(Ok(TermEvent::Key(key))) => {
                    if let Some(action) = input::map_key(key, state.input_mode())
                        && handle(state, action, api) == Flow::Quit
                    {
                        return Ok(());
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(err)) => return Err(Error::Terminal(err)),
                None => return Ok(()),
            },
            update = updates.recv() => {
                let Some(update) = update else {
                    return Err(Error::BackgroundGone);
                };
                state.apply(update);
                // Apply everything already queued before drawing once.
                while let Ok(update) = updates.try_recv() {
                    state.apply(update);
                }
            }
            _ = tick.tick() => {}
            _ = term.recv() => return Ok(()),
            _ = hup.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use russell_api::pb;

    /// Records every command instead of talking to Russell.
    #[derive(Default)]
    struct FakeApi {
        sent: Vec<Command>,
    }

    impl Api for FakeApi {
        fn send(&mut self, command: Command) {
            self.sent.push(command);
        }
    }

    fn state() -> State {
        let services = [
            ("kant", ServiceState::Running),
            ("turing", ServiceState::Stopped),
            ("bayes", ServiceState::Failed),
        ]
        .into_iter()
        .map(|(n, s)| pb::ServiceStatus {
            name: n.to_uppercase(),
            short_name: n.into(),
            service_state: s.into(),
            ..Default::default()
        })
        .collect();
        let mut state = State::new("127.0.0.1:9100", SystemTime::UNIX_EPOCH);
        state.apply(Update::Status(Box::new(pb::OrchestratorStatus {
            services,
            ..Default::default()
        })));
        state
    }

    /// Presses `keys` in order; returns the commands sent and whether the last key quit.
    fn press(state: &mut State, keys: &[KeyCode]) -> (Vec<Command>, Flow) {
        let mut api = FakeApi::default();
        let mut flow = Flow::Continue;
        for code in keys {
            let key = KeyEvent::new(*code, KeyModifiers::NONE);
            if let Some(action) = input::map_key(key, state.input_mode()) {
                flow = handle(state, action, &mut api);
            }
        }
        (api.sent, flow)
    }

    #[test]
    fn a_starts_all_and_s_stops_all() {
        let mut s = state();
        let (sent, _) = press(&mut s, &[KeyCode::Char('a'), KeyCode::Char('s')]);
        assert_eq!(
            sent,
            vec![Command::StartAll { id: 1 }, Command::StopAll { id: 2 }]
        );
        assert_eq!(s.pending.len(), 2);
    }

    #[test]
    fn enter_stops_running_and_starts_stopped_or_failed() {
        let mut s = state();
        let (sent, _) = press(
            &mut s,
            &[
                KeyCode::Enter,
                KeyCode::Down,
                KeyCode::Enter,
                KeyCode::Char('j'),
                KeyCode::Enter,
                KeyCode::Char('j'),
                KeyCode::Char('k'),
                KeyCode::Up,
                KeyCode::Char('r'),
            ],
        );
        assert_eq!(
            sent,
            vec![
                Command::Stop {
                    id: 1,
                    name: "kant".into()
                },
                Command::Start {
                    id: 2,
                    name: "turing".into()
                },
                Command::Start {
                    id: 3,
                    name: "bayes".into()
                },
                Command::Restart {
                    id: 4,
                    name: "kant".into()
                },
            ]
        );
    }

    #[test]
    fn enter_while_stopping_sends_nothing() {
        let mut s = state();
        if let Some(st) = s.status.as_mut() {
            st.services[0].set_service_state(ServiceState::Stopping);
        }
        let (sent, _) = press(&mut s, &[KeyCode::Enter]);
        assert!(sent.is_empty());
        assert_eq!(
            s.message.map(|m| m.text),
            Some("KANT is stopping; wait a moment".into())
        );
    }

    #[test]
    fn l_opens_and_closes_the_log_stream() {
        let mut s = state();
        let (sent, _) = press(&mut s, &[KeyCode::Down, KeyCode::Char('l')]);
        assert_eq!(
            sent,
            vec![Command::Logs {
                generation: 1,
                name: Some("turing".into())
            }]
        );
        assert_eq!(s.overlay, Overlay::Logs);
        // Typing a filter: `q` is text, not quit.
        let (sent, flow) = press(
            &mut s,
            &[
                KeyCode::Char('/'),
                KeyCode::Char('q'),
                KeyCode::Enter,
                KeyCode::Char('l'),
            ],
        );
        assert_eq!(flow, Flow::Continue);
        assert_eq!(s.logs.filter, "q");
        assert_eq!(
            sent,
            vec![Command::Logs {
                generation: 1,
                name: None
            }]
        );
        assert_eq!(s.overlay, Overlay::None);
    }

    #[test]
    fn the_log_pane_follows_the_cursor() {
        let mut s = state();
        let (sent, _) = press(
            &mut s,
            &[KeyCode::Char('l'), KeyCode::Down, KeyCode::Up, KeyCode::Up],
        );
        let logs = |generation, name: &str| Command::Logs {
            generation,
            name: Some(name.to_string()),
        };
        assert_eq!(
            sent,
            vec![logs(1, "kant"), logs(2, "turing"), logs(3, "kant")]
        );
        assert_eq!(s.logs.service, "kant");
    }

    #[test]
    fn esc_closes_a_pane_then_quits() {
        let mut s = state();
        let (_, flow) = press(&mut s, &[KeyCode::Char('e'), KeyCode::Esc]);
        assert_eq!((flow, s.overlay), (Flow::Continue, Overlay::None));
        let (_, flow) = press(&mut s, &[KeyCode::Esc]);
        assert_eq!(flow, Flow::Quit);
        let (sent, flow) = press(&mut state(), &[KeyCode::Char('q')]);
        assert_eq!((sent.is_empty(), flow), (true, Flow::Quit));
    }

    #[test]
    fn ctrl_c_quits_even_while_typing() {
        let mut s = state();
        press(&mut s, &[KeyCode::Char('l'), KeyCode::Char('/')]);
        let mut api = FakeApi::default();
        let key = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        let action = input::map_key(key, s.input_mode());
        assert_eq!(action, Some(Action::Quit));
        assert_eq!(
            action.map(|a| handle(&mut s, a, &mut api)),
            Some(Flow::Quit)
        );
    }

    #[test]
    fn scrolling_back_stops_following() {
        let mut s = state();
        press(&mut s, &[KeyCode::Char('l')]);
        let generation = s.logs.generation;
        for i in 0..30 {
            s.apply(Update::Log {
                generation,
                line: pb::LogLine {
                    line: format!("line {i}"),
                    ..Default::default()
                },
            });
        }
        press(&mut s, &[KeyCode::PageUp]);
        assert_eq!(s.logs.scroll, 10);
        press(&mut s, &[KeyCode::Char('f')]);
        assert!(s.logs.following());
    }
}
