//! What the user asked for. Keys map to these (see `input`); `app::handle` carries them out.

/// One user intent, independent of the key that produced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Leave ControlCenter (q, Ctrl-C).
    Quit,
    /// Esc: close the open pane, or quit when none is open.
    Close,
    /// `a`: StartAllServices.
    StartAll,
    /// `s`: StopAllServices.
    StopAll,
    /// Enter: start the selected service when stopped/failed, stop it when active.
    ToggleSelected,
    /// `r`: RestartService on the selected service.
    RestartSelected,
    /// `l`: open or close the live log pane of the selected service.
    ToggleLogs,
    /// `e`: open or close the recent events pane.
    ToggleEvents,
    /// `t`: open or close the startup timing pane.
    ToggleTiming,
    /// `g`: open or close the dependency graph pane.
    ToggleGraph,
    /// `u`: start Russell in the background when it is not reachable (as `mdw up -d`).
    StartRussell,
    /// ↑ / k.
    Up,
    /// ↓ / j.
    Down,
    /// PgUp: scroll the log pane back.
    PageUp,
    /// PgDn: scroll the log pane forward (to the end = follow again).
    PageDown,
    /// `f`: jump to the end of the log and follow it.
    Follow,
    /// `/`: start typing a log filter.
    SearchStart,
    /// A character typed into the filter.
    SearchInput(char),
    /// Backspace in the filter.
    SearchBackspace,
    /// Enter: apply the typed filter (empty clears it).
    SearchSubmit,
    /// Esc while typing: keep the previous filter.
    SearchCancel,
}
