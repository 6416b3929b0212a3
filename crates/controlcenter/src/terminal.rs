//! The terminal guard: raw mode and the alternate screen while it lives; restored when it is
//! dropped and, through ratatui's panic hook, when anything panics.

use ratatui::DefaultTerminal;

use crate::Error;

/// Owns the terminal for the UI's lifetime.
pub struct TerminalGuard {
    pub terminal: DefaultTerminal,
}

impl TerminalGuard {
    /// Enters raw mode and the alternate screen; installs the restoring panic hook.
    pub fn new() -> Result<Self, Error> {
        let terminal = ratatui::try_init().map_err(Error::Terminal)?;
        Ok(Self { terminal })
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        ratatui::restore();
    }
}
