//! Process facts from /proc (identity, liveness, RSS, CPU time) and signals by PID or
//! process group — never by name.

use std::collections::HashMap;
use std::time::Instant;

use procfs::process::Process;
use rustix::process::{Pid, Signal};

/// A process by PID and start time (clock ticks after boot), so a reused PID is never
/// mistaken for the process we saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProcId {
    pub pid: i32,
    pub start_time: u64,
}

impl ProcId {
    /// The live process `pid` now is, if any.
    pub fn of(pid: i32) -> Option<ProcId> {
        let stat = Process::new(pid).ok()?.stat().ok()?;
        Some(ProcId {
            pid,
            start_time: stat.starttime,
        })
    }

    /// True once the process has exited: /proc has no such PID, the PID belongs to a
    /// newer process, or only its zombie is left (dead, not yet reaped by its parent).
    pub fn is_gone(&self) -> bool {
        match Process::new(self.pid).and_then(|p| p.stat()) {
            Ok(stat) => stat.starttime != self.start_time || matches!(stat.state, 'Z' | 'X'),
            Err(_) => true,
        }
    }

    /// SIGKILL to the process group led by this process and to the process itself, if it
    /// is still the process we recorded.
    pub fn kill_group(&self) {
        if !self.is_gone() {
            signal_group(self.pid, Signal::KILL);
            signal(self.pid, Signal::KILL);
        }
    }
}

/// The live direct children of `parent` (by the parent PID in /proc/<pid>/stat).
pub fn children_of(parent: i32) -> Vec<ProcId> {
    let Ok(all) = procfs::process::all_processes() else {
        return Vec::new();
    };
    all.flatten()
        .filter_map(|p| p.stat().ok())
        .filter(|s| s.ppid == parent && !matches!(s.state, 'Z' | 'X'))
        .map(|s| ProcId {
            pid: s.pid,
            start_time: s.starttime,
        })
        .collect()
}

/// Sends `sig` to `pid`; a process that is already gone is not an error.
pub fn signal(pid: i32, sig: Signal) -> bool {
    Pid::from_raw(pid).is_some_and(|p| rustix::process::kill_process(p, sig).is_ok())
}

/// Sends `sig` to the process group `pgid`; a group that is already gone is not an error.
pub fn signal_group(pgid: i32, sig: Signal) -> bool {
    Pid::from_raw(pgid).is_some_and(|p| rustix::process::kill_process_group(p, sig).is_ok())
}

/// Resident set size of `pid` in bytes (VmRSS).
pub fn rss_bytes(pid: i32) -> procfs::ProcResult<u64> {
    let status = Process::new(pid)?.status()?;
    Ok(status.vmrss.unwrap_or(0) * 1024)
}

/// CPU time consumed by a process at one moment, two ways: per-thread nanoseconds from
/// `schedstat` (precise, but a thread that exits takes its time with it) and the process
/// total `utime + stime` in clock ticks from `stat` (keeps exited threads, 10 ms grain).
#[derive(Debug, Clone)]
pub struct CpuSample {
    pub at: Instant,
    pub ticks: u64,
    pub thread_ns: HashMap<i32, u64>,
}

impl CpuSample {
    /// Samples `pid` now.
    pub fn take(pid: i32) -> procfs::ProcResult<CpuSample> {
        let p = Process::new(pid)?;
        let mut thread_ns = HashMap::new();
        for task in p.tasks()?.flatten() {
            if let Ok(s) = task.schedstat() {
                thread_ns.insert(task.tid, s.sum_exec_runtime);
            }
        }
        let stat = p.stat()?;
        Ok(CpuSample {
            at: Instant::now(),
            ticks: stat.utime + stat.stime,
            thread_ns,
        })
    }

    /// CPU seconds used between `self` and the later sample `end`: the per-thread sum,
    /// unless the tick counter proves more was used (by threads that exited). Both tick
    /// readings are truncated, so only `delta - 1` ticks are certain.
    pub fn cpu_seconds_until(&self, end: &CpuSample) -> f64 {
        let ns: u64 = end
            .thread_ns
            .iter()
            .map(|(tid, &e)| e.saturating_sub(self.thread_ns.get(tid).copied().unwrap_or(0)))
            .sum();
        let by_threads = ns as f64 / 1e9;
        let certain_ticks = end.ticks.saturating_sub(self.ticks).saturating_sub(1);
        let by_ticks = certain_ticks as f64 / procfs::ticks_per_second() as f64;
        by_threads.max(by_ticks)
    }

    /// Percent of one core used between `self` and the later sample `end`.
    pub fn percent_until(&self, end: &CpuSample) -> f64 {
        let wall = end.at.duration_since(self.at).as_secs_f64();
        if wall <= 0.0 {
            return 0.0;
        }
        100.0 * self.cpu_seconds_until(end) / wall
    }
}

/// Raises the soft RLIMIT_NOFILE to at least `want` (up to the hard limit); children
/// (Russell and its services) inherit it. Returns the soft limit now in force.
pub fn raise_nofile(want: u64) -> std::io::Result<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let cur = getrlimit(Resource::Nofile);
    let soft = cur.current.unwrap_or(u64::MAX);
    if soft >= want {
        return Ok(soft);
    }
    let new = cur.maximum.map_or(want, |hard| want.min(hard));
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(new),
            maximum: cur.maximum,
        },
    )?;
    Ok(new)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::time::Duration;

    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn a_killed_group_is_gone_and_its_zombie_counts_as_gone() {
        let child = std::process::Command::new("sleep")
            .arg("1000")
            .process_group(0)
            .spawn()
            .unwrap();
        let mut child = Reap(child);
        let id = ProcId::of(child.0.id() as i32).unwrap();
        assert!(!id.is_gone());
        assert!(rss_bytes(id.pid).unwrap() > 0);
        assert!(children_of(std::process::id() as i32).contains(&id));
        id.kill_group();
        let t = Instant::now();
        while !id.is_gone() {
            assert!(t.elapsed() < Duration::from_secs(5), "still alive");
            std::thread::sleep(Duration::from_millis(1));
        }
        // not reaped yet: a zombie, which counts as gone
        child.0.wait().unwrap();
        assert!(id.is_gone());
        assert!(ProcId::of(id.pid).is_none_or(|now| now != id));
    }

    #[test]
    fn cpu_time_counts_a_busy_thread() {
        // Spin until the samples show 100 ms of CPU (however loaded the machine is).
        let me = std::process::id() as i32;
        let a = CpuSample::take(me).unwrap();
        let t = Instant::now();
        let mut x = 0u64;
        loop {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_add(1));
            }
            let b = CpuSample::take(me).unwrap();
            let used = a.cpu_seconds_until(&b);
            if used >= 0.1 {
                let pct = a.percent_until(&b);
                let cores = std::thread::available_parallelism().map_or(1, usize::from) as f64;
                assert!(pct > 0.0 && pct <= 100.0 * cores + 5.0, "{pct}");
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "only {used} s of CPU counted"
            );
        }
    }

    #[test]
    fn nofile_limit_is_at_least_what_is_asked_within_the_hard_limit() {
        let got = raise_nofile(256).unwrap();
        assert!(got >= 256);
    }
}
