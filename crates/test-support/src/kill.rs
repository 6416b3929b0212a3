//! Signals and cleanup, always by PID or process group, never by name.

use std::path::Path;

use rustix::process::{Pid, Signal, kill_process, kill_process_group};

/// Sends `sig` to one process; "no such process" and the like are ignored.
pub fn signal(pid: u32, sig: Signal) {
    if let Some(p) = Pid::from_raw(pid as i32) {
        let _ = kill_process(p, sig);
    }
}

/// Kills a process by PID with SIGKILL, ignoring "no such process".
pub fn kill9(pid: u32) {
    signal(pid, Signal::KILL);
}

/// Sends SIGKILL to a whole process group, ignoring errors.
pub fn kill_group(pgid: u32) {
    if let Some(p) = Pid::from_raw(pgid as i32) {
        let _ = kill_process_group(p, Signal::KILL);
    }
}

/// SIGKILLs every process (and the group of every group leader) marked as a service of
/// the Russell with this state directory (`RUSSELL_STATE_DIR`, which every descendant of
/// a service inherits).
pub fn kill_marked(state_dir: &Path) {
    let Ok(dir) = std::fs::canonicalize(state_dir) else {
        return;
    };
    let Ok(all) = procfs::process::all_processes() else {
        return;
    };
    for process in all.flatten() {
        let marked = process.environ().is_ok_and(|env| {
            env.get(std::ffi::OsStr::new("RUSSELL_STATE_DIR"))
                .is_some_and(|v| v.as_os_str() == dir.as_os_str())
        });
        if let (true, Some(p)) = (marked, Pid::from_raw(process.pid())) {
            let _ = kill_process_group(p, Signal::KILL);
            let _ = kill_process(p, Signal::KILL);
        }
    }
}
