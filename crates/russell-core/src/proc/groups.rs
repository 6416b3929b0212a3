//! CPU and memory of whole process groups, read from /proc (Linux only).
//!
//! A service is a process group (its leader's PID is the group ID), so its usage is the sum
//! over every process whose /proc/\<pid\>/stat `pgrp` is that group. One [`GroupSampler`] per
//! orchestrator scans /proc once per round for all groups it is asked about and keeps the
//! previous round's CPU totals to turn them into a percentage.
//!
//! Zombies (state Z, and X) are excluded everywhere: they have exited, hold no memory or
//! ports, and only wait for their parent to reap them. So [`group_members`] being empty
//! means "nothing of the group is left running".
//!
//! All functions do blocking /proc reads; call them from `spawn_blocking` in async code.

use std::collections::HashMap;
use std::time::Instant;

use procfs::WithCurrentSystemInfo;
use procfs::process::Stat;

/// Usage of one process group at one sample.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Usage {
    /// CPU time used since the previous sample, in percent of one core (may exceed 100 on
    /// several cores). 0 on the first sample of a group.
    pub cpu_percent: f64,
    /// Sum of the resident set sizes of the group's processes.
    pub rss_bytes: u64,
    /// Live (non-zombie) processes in the group.
    pub processes: u32,
    /// CPU time the group's live processes (and the children they reaped) used in all,
    /// in seconds; drops when a member that used CPU leaves the group.
    pub cpu_seconds: f64,
}

/// Samples many process groups per /proc scan; keeps CPU totals between calls.
#[derive(Debug)]
pub struct GroupSampler {
    /// Per group: CPU ticks (own + reaped children) and when they were read.
    previous: HashMap<u32, (u64, Instant)>,
    ticks_per_second: f64,
}

impl Default for GroupSampler {
    fn default() -> Self {
        Self::new()
    }
}

impl GroupSampler {
    /// A sampler with no history.
    pub fn new() -> Self {
        GroupSampler {
            previous: HashMap::new(),
            ticks_per_second: procfs::ticks_per_second() as f64,
        }
    }

    /// Usage of each group in `pgids` that has a live process; groups without one are left
    /// out of the map (and forgotten, as are groups no longer asked about).
    ///
    /// CPU counts utime + stime of the members plus the CPU of children they reaped, so
    /// short-lived helpers a service runs and waits for are included. A member that exits
    /// between samples takes its ticks with it; the delta is then clamped at 0.
    pub fn sample(&mut self, pgids: &[u32]) -> HashMap<u32, Usage> {
        let now = Instant::now();
        let mut totals: HashMap<u32, (Usage, u64)> = HashMap::with_capacity(pgids.len());
        for &pgid in pgids {
            totals.insert(pgid, (Usage::default(), 0));
        }
        for_each_live_stat(|stat| {
            let Ok(pgrp) = u32::try_from(stat.pgrp) else {
                return;
            };
            if let Some((usage, ticks)) = totals.get_mut(&pgrp) {
                usage.processes += 1;
                usage.rss_bytes += stat.rss_bytes().get();
                *ticks += stat.utime
                    + stat.stime
                    + u64::try_from(stat.cutime).unwrap_or(0)
                    + u64::try_from(stat.cstime).unwrap_or(0);
            }
        });

        let mut result = HashMap::with_capacity(totals.len());
        let mut previous = HashMap::with_capacity(totals.len());
        for (pgid, (mut usage, ticks)) in totals {
            if usage.processes == 0 {
                continue;
            }
            if let Some(&(before, at)) = self.previous.get(&pgid) {
                let seconds = now.duration_since(at).as_secs_f64();
                if seconds > 0.0 {
                    let used = ticks.saturating_sub(before) as f64 / self.ticks_per_second;
                    usage.cpu_percent = used / seconds * 100.0;
                }
            }
            usage.cpu_seconds = ticks as f64 / self.ticks_per_second;
            previous.insert(pgid, (ticks, now));
            result.insert(pgid, usage);
        }
        self.previous = previous;
        result
    }
}

/// PIDs of the live (non-zombie) processes in process group `pgid`, sorted.
pub fn group_members(pgid: u32) -> Vec<u32> {
    let mut members = Vec::new();
    for_each_live_stat(|stat| {
        if u32::try_from(stat.pgrp) == Ok(pgid)
            && let Ok(pid) = u32::try_from(stat.pid)
        {
            members.push(pid);
        }
    });
    members.sort_unstable();
    members
}

/// Calls `f` with the stat of every process that is not a zombie. Processes that exit
/// mid-scan are skipped.
fn for_each_live_stat(mut f: impl FnMut(&Stat)) {
    let Ok(processes) = procfs::process::all_processes() else {
        return;
    };
    for process in processes.filter_map(Result::ok) {
        if let Ok(stat) = process.stat()
            && super::is_live(&stat)
        {
            f(&stat);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_group_has_us_and_memory() {
        let pgid = rustix::process::getpgrp().as_raw_pid() as u32;
        assert!(group_members(pgid).contains(&std::process::id()));
        let mut sampler = GroupSampler::new();
        let first = sampler.sample(&[pgid]);
        assert!(first[&pgid].rss_bytes > 0);
        assert!(first[&pgid].processes >= 1);
        assert_eq!(first[&pgid].cpu_percent, 0.0);
        let second = sampler.sample(&[pgid]);
        assert!(second[&pgid].cpu_percent >= 0.0);
    }

    #[test]
    fn unknown_group_is_absent() {
        let mut sampler = GroupSampler::new();
        assert!(sampler.sample(&[u32::MAX - 1]).is_empty());
        assert!(group_members(u32::MAX - 1).is_empty());
    }
}
