//! Bounded waits: every wait in a test ends, with a message that says what it waited for.

use std::time::{Duration, Instant};

/// Generous bound for things that should happen "soon" (startup, exit, signal delivery).
pub const WAIT: Duration = Duration::from_secs(10);

/// Polls `cond` every 20 ms until it holds or `timeout` passes; whether it held.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `cond` every 20 ms until it holds; panics naming `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, cond: impl FnMut() -> bool) {
    assert!(
        wait_for(timeout, cond),
        "timed out after {timeout:?} waiting for {what}"
    );
}

/// Async [`wait_until`]: polls `cond` every 20 ms without blocking the runtime.
pub async fn wait_until_async(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
