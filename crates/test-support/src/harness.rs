//! One orchestrator under test in this process: records every event, cleans up every
//! process group it saw, and checks /proc for leftovers and zombies.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use russell_config::Config;
use russell_core::{Event, EventKind, Orchestrator, ServiceStatus, SpawnOptions};
use rustix::process::{Pid, Signal};

use crate::kill::kill_marked;

/// One orchestrator under test: records every event; on drop SIGKILLs every process
/// group it ever saw and every process marked with its state directory (a safety net —
/// tests end with [`Harness::finish`]).
pub struct Harness {
    pub orch: Orchestrator,
    pub join: Option<tokio::task::JoinHandle<()>>,
    state_dir: std::path::PathBuf,
    /// Every event so far; filled from `rx` whenever a test looks (events are sent
    /// before a command's answer, so after an answer they are all there).
    events: Mutex<Vec<Event>>,
    rx: Mutex<tokio::sync::broadcast::Receiver<Event>>,
}

impl Harness {
    pub async fn new(config: Config, adopt: bool) -> Self {
        let state_dir = config.russell.state_dir.clone();
        let (orch, join) = Orchestrator::spawn(config, SpawnOptions { adopt })
            .await
            .expect("spawn orchestrator");
        let rx = Mutex::new(orch.events());
        Self {
            orch,
            join: Some(join),
            state_dir,
            events: Mutex::new(Vec::new()),
            rx,
        }
    }

    /// Starts every service and asserts that each start succeeded.
    pub async fn start_all_ok(&self) {
        let results = self.orch.start_all(false).await.expect("start_all");
        assert!(results.iter().all(|r| r.success), "{results:?}");
    }

    /// All events so far, in order.
    pub fn events(&self) -> Vec<Event> {
        let mut events = self.events.lock().unwrap();
        let mut rx = self.rx.lock().unwrap();
        loop {
            match rx.try_recv() {
                Ok(e) => events.push(e),
                Err(tokio::sync::broadcast::error::TryRecvError::Lagged(n)) => {
                    panic!("the test fell {n} events behind")
                }
                Err(_) => break,
            }
        }
        events.clone()
    }

    pub fn status(&self, short: &str) -> ServiceStatus {
        self.orch
            .snapshot()
            .services
            .iter()
            .find(|s| s.short_name == short)
            .map(|s| ServiceStatus::clone(s))
            .unwrap_or_else(|| panic!("no service {short}"))
    }

    pub fn events_of(&self, short: &str, kind: EventKind) -> Vec<Event> {
        self.events()
            .into_iter()
            .filter(|e| e.service == short && e.kind == kind)
            .collect()
    }

    /// Every PID seen in an event or a snapshot so far.
    pub fn seen_pids(&self) -> BTreeSet<u32> {
        let mut all: BTreeSet<u32> = self.events().iter().filter_map(|e| e.pid).collect();
        all.extend(self.orch.snapshot().services.iter().filter_map(|s| s.pid));
        all
    }

    pub async fn wait_until(&self, what: &str, timeout: Duration, cond: impl Fn(&Self) -> bool) {
        let deadline = tokio::time::Instant::now() + timeout;
        while !cond(self) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}; snapshot: {:#?}",
                self.orch.snapshot().services
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Shuts the orchestrator down (every service stopped) and checks that no process it
    /// ever ran is left, zombie or not.
    pub async fn finish(mut self) {
        let pids = self.seen_pids();
        self.orch.shutdown().await.expect("shutdown");
        if let Some(j) = self.join.take() {
            j.await.expect("actor join");
        }
        assert_gone(&pids).await;
    }
}

impl Drop for Harness {
    /// Runs while a failed test unwinds, too: no panic here (a poisoned lock or a lagging
    /// receiver would abort the whole test binary), only what can still be collected.
    fn drop(&mut self) {
        let mut pids: BTreeSet<u32> = self
            .orch
            .snapshot()
            .services
            .iter()
            .filter_map(|s| s.pid)
            .collect();
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        let mut rx = self.rx.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match rx.try_recv() {
                Ok(e) => events.push(e),
                Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {}
                Err(_) => break,
            }
        }
        pids.extend(events.iter().filter_map(|e| e.pid));
        for pid in pids {
            if let Some(p) = Pid::from_raw(pid as i32) {
                let _ = rustix::process::kill_process_group(p, Signal::KILL);
            }
        }
        // What no snapshot or event named: processes that left their group, services a
        // test left behind on purpose.
        kill_marked(&self.state_dir);
    }
}

/// The PID the state file in `state_dir` records for service `short`, if any.
pub fn recorded_pid(state_dir: &Path, short: &str) -> Option<u32> {
    let text = std::fs::read_to_string(state_dir.join("state.json")).ok()?;
    let state: serde_json::Value = serde_json::from_str(&text).ok()?;
    u32::try_from(state["services"][short]["process"]["pid"].as_u64()?).ok()
}

/// Waits (bounded) until none of `pids` has a /proc entry: not running, not a zombie.
pub async fn assert_gone(pids: &BTreeSet<u32>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let left: Vec<(u32, String)> = pids
            .iter()
            .filter_map(|p| {
                let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
                Some((*p, stat))
            })
            .collect();
        if left.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "processes left behind (pid, /proc stat): {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
