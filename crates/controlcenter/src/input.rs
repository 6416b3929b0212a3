//! Key → [`Action`]. Pure: the same key in the same mode always gives the same action.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::action::Action;

/// What the keyboard is talking to right now (derived from the state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputMode {
    /// The service table (or the events / timing pane).
    Normal,
    /// The log pane is open.
    Logs,
    /// Typing a log filter after `/`.
    Search,
}

/// Maps one key event to an action; `None` for keys that mean nothing here.
pub fn map_key(key: KeyEvent, mode: InputMode) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return matches!(key.code, KeyCode::Char('c' | 'C')).then_some(Action::Quit);
    }
    if mode == InputMode::Search {
        return match key.code {
            KeyCode::Esc => Some(Action::SearchCancel),
            KeyCode::Enter => Some(Action::SearchSubmit),
            KeyCode::Backspace => Some(Action::SearchBackspace),
            KeyCode::Char(c) => Some(Action::SearchInput(c)),
            _ => None,
        };
    }
    let action = match key.code {
        KeyCode::Char('q') => Action::Quit,
        KeyCode::Esc => Action::Close,
        KeyCode::Char('a') => Action::StartAll,
        KeyCode::Char('s') => Action::StopAll,
        KeyCode::Enter => Action::ToggleSelected,
        KeyCode::Char('r') => Action::RestartSelected,
        KeyCode::Char('l') => Action::ToggleLogs,
        KeyCode::Char('e') => Action::ToggleEvents,
        KeyCode::Char('t') => Action::ToggleTiming,
        KeyCode::Char('u') => Action::StartRussell,
        KeyCode::Char('g') => Action::ToggleGraph,
        KeyCode::Up | KeyCode::Char('k') => Action::Up,
        KeyCode::Down | KeyCode::Char('j') => Action::Down,
        KeyCode::PageUp if mode == InputMode::Logs => Action::PageUp,
        KeyCode::PageDown if mode == InputMode::Logs => Action::PageDown,
        KeyCode::Char('f') if mode == InputMode::Logs => Action::Follow,
        KeyCode::Char('/') if mode == InputMode::Logs => Action::SearchStart,
        _ => return None,
    };
    Some(action)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn table_of_keys() {
        use InputMode::*;
        let rows: &[(KeyEvent, InputMode, Option<Action>)] = &[
            (key(KeyCode::Char('a')), Normal, Some(Action::StartAll)),
            (key(KeyCode::Char('s')), Normal, Some(Action::StopAll)),
            (key(KeyCode::Enter), Normal, Some(Action::ToggleSelected)),
            (
                key(KeyCode::Char('r')),
                Normal,
                Some(Action::RestartSelected),
            ),
            (key(KeyCode::Char('l')), Normal, Some(Action::ToggleLogs)),
            (key(KeyCode::Char('e')), Normal, Some(Action::ToggleEvents)),
            (key(KeyCode::Char('t')), Normal, Some(Action::ToggleTiming)),
            (key(KeyCode::Char('u')), Normal, Some(Action::StartRussell)),
            (key(KeyCode::Char('g')), Normal, Some(Action::ToggleGraph)),
            (key(KeyCode::Up), Normal, Some(Action::Up)),
            (key(KeyCode::Char('k')), Normal, Some(Action::Up)),
            (key(KeyCode::Down), Normal, Some(Action::Down)),
            (key(KeyCode::Char('j')), Normal, Some(Action::Down)),
            (key(KeyCode::Char('q')), Normal, Some(Action::Quit)),
            (key(KeyCode::Esc), Normal, Some(Action::Close)),
            (
                KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL),
                Normal,
                Some(Action::Quit),
            ),
            (
                KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL),
                Search,
                Some(Action::Quit),
            ),
            (key(KeyCode::PageUp), Normal, None),
            (key(KeyCode::PageUp), Logs, Some(Action::PageUp)),
            (key(KeyCode::PageDown), Logs, Some(Action::PageDown)),
            (key(KeyCode::Char('f')), Normal, None),
            (key(KeyCode::Char('f')), Logs, Some(Action::Follow)),
            (key(KeyCode::Char('/')), Logs, Some(Action::SearchStart)),
            (
                key(KeyCode::Char('q')),
                Search,
                Some(Action::SearchInput('q')),
            ),
            (key(KeyCode::Enter), Search, Some(Action::SearchSubmit)),
            (key(KeyCode::Esc), Search, Some(Action::SearchCancel)),
            (
                key(KeyCode::Backspace),
                Search,
                Some(Action::SearchBackspace),
            ),
            (key(KeyCode::Char('x')), Normal, None),
        ];
        for (k, mode, want) in rows {
            assert_eq!(map_key(*k, *mode), *want, "{k:?} in {mode:?}");
        }
    }
}
