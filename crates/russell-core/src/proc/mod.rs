//! Everything Russell reads from /proc (Linux only), and nothing else: this module depends
//! on no other part of the crate, so process control, the sampler and the port check all
//! read through it.
//!
//! - here: one process by PID (start time, command line, alive or a zombie);
//! - `ports.rs`: who listens on a TCP port;
//! - `groups.rs`: the members of a process group, and CPU and RSS per group;
//! - `strays.rs`: processes marked as a service of this Russell (by their environment).
//!
//! PID plus /proc start time identifies a process across PID reuse. Every function does
//! blocking reads; call them from `spawn_blocking` in async code.

pub mod groups;
pub mod ports;
pub mod strays;

use procfs::process::Process;

/// The process's start time in clock ticks after boot, or None when it does not exist.
pub fn process_start_time(pid: u32) -> Option<u64> {
    let process = Process::new(i32::try_from(pid).ok()?).ok()?;
    Some(process.stat().ok()?.starttime)
}

/// The process's argv, or None when it does not exist (or cannot be read).
pub fn command_line(pid: u32) -> Option<Vec<String>> {
    let process = Process::new(i32::try_from(pid).ok()?).ok()?;
    process.cmdline().ok()
}

/// `pid` runs (not a zombie) and is the same process (same /proc start time).
pub(crate) fn alive(pid: u32, start_time: u64) -> bool {
    live_stat(pid).is_some_and(|s| s.starttime == start_time)
}

/// Whether a process with this PID exists and has not exited (a zombie counts as gone).
pub fn running(pid: u32) -> bool {
    live_stat(pid).is_some()
}

/// The process's stat, unless it is gone or a zombie.
fn live_stat(pid: u32) -> Option<procfs::process::Stat> {
    let stat = procfs::process::Process::new(i32::try_from(pid).ok()?)
        .ok()?
        .stat()
        .ok()?;
    is_live(&stat).then_some(stat)
}

/// Whether a process in this state runs (not a zombie, not dead).
pub(crate) fn is_live(stat: &procfs::process::Stat) -> bool {
    stat.state != 'Z' && stat.state != 'X'
}
