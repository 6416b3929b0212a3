//! Services that no state file names. Russell records a spawned process in its state file
//! a few milliseconds after the spawn; a Russell killed inside that window leaves a
//! running service that the next Russell would start a second time (the copy then fights
//! the first for its port). Every spawned service therefore carries two environment
//! variables, and a Russell that adopts looks for processes that carry them.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::Path;

use crate::state_file::ProcessRecord;

/// Set in every spawned service: its short name.
pub const SERVICE_ENV: &str = "RUSSELL_SERVICE";
/// Set in every spawned service: the state directory of the Russell that spawned it.
pub const STATE_DIR_ENV: &str = "RUSSELL_STATE_DIR";

/// A service process found by its marks rather than by the state file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stray {
    /// The `RUSSELL_SERVICE` it carries.
    pub short: String,
    pub record: ProcessRecord,
}

/// Live process-group leaders marked with `state_dir` that are not in `recorded` (PIDs)
/// and whose parent is not a marked process of the same service (a service's own child
/// in a group of its own is not a stray). Processes of other users cannot be read and are
/// not found; they could not have been started by this Russell either.
pub(crate) fn find(state_dir: &Path, recorded: &[u32]) -> Vec<Stray> {
    let Ok(all) = procfs::process::all_processes() else {
        return Vec::new();
    };
    let mut leaders = Vec::new();
    for process in all.filter_map(Result::ok) {
        let Ok(stat) = process.stat() else { continue };
        if stat.pid != stat.pgrp || !super::is_live(&stat) {
            continue;
        }
        let Ok(pid) = u32::try_from(stat.pid) else {
            continue;
        };
        if recorded.contains(&pid) {
            continue;
        }
        if let Some(short) = mark(pid, state_dir) {
            leaders.push((pid, stat.ppid, stat.starttime, short));
        }
    }
    leaders
        .into_iter()
        .filter(|(_, ppid, _, short)| {
            u32::try_from(*ppid)
                .ok()
                .and_then(|p| mark(p, state_dir))
                .is_none_or(|parent| parent != *short)
        })
        .map(|(pid, _, start_time, short)| Stray {
            short,
            record: ProcessRecord {
                pid,
                pgid: Some(pid),
                start_time,
            },
        })
        .collect()
}

/// Live processes marked as one of the services `shorts` of `state_dir`, in any process
/// group. Once those services' own groups are gone, this is what is left of them:
/// descendants that left the group (setsid, setpgid) and would otherwise keep running,
/// and keep their ports, after a stop. Russell itself never counts.
pub(crate) fn escapees(state_dir: &Path, shorts: &[String]) -> Vec<Stray> {
    let Ok(all) = procfs::process::all_processes() else {
        return Vec::new();
    };
    let me = std::process::id();
    all.filter_map(Result::ok)
        .filter_map(|process| {
            let pid = u32::try_from(process.pid()).ok().filter(|p| *p != me)?;
            // The environment first: most processes are not marked (kernel threads and
            // other users' processes fail at once).
            let short = mark(pid, state_dir).filter(|s| shorts.contains(s))?;
            let stat = process.stat().ok()?;
            if !super::is_live(&stat) {
                return None;
            }
            Some(Stray {
                short,
                record: ProcessRecord {
                    pid,
                    pgid: (stat.pgrp == stat.pid).then_some(pid),
                    start_time: stat.starttime,
                },
            })
        })
        .collect()
}

/// The service name `pid` is marked with, if it is marked with `state_dir`.
pub(crate) fn mark(pid: u32, state_dir: &Path) -> Option<String> {
    let env: HashMap<_, _> = procfs::process::Process::new(i32::try_from(pid).ok()?)
        .ok()?
        .environ()
        .ok()?;
    if env.get(OsStr::new(STATE_DIR_ENV))? != state_dir.as_os_str() {
        return None;
    }
    env.get(OsStr::new(SERVICE_ENV))?
        .to_str()
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use std::process::{Command, Stdio};

    use std::os::unix::process::CommandExt;

    use super::*;

    /// Kills a test child on every path out of the test.
    struct Group(std::process::Child);

    impl Drop for Group {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn marked(short: &str, dir: &Path, group: bool) -> Group {
        let mut cmd = Command::new("sleep");
        cmd.arg("1000")
            .env(SERVICE_ENV, short)
            .env(STATE_DIR_ENV, dir)
            .stdin(Stdio::null());
        if group {
            cmd.process_group(0);
        }
        let child = Group(cmd.spawn().expect("spawn sleep"));
        // spawn returns once the exec began; the new environment shows a moment later.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while mark(child.0.id(), dir).is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "no marks on {}",
                child.0.id()
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        child
    }

    #[test]
    fn escapees_are_marked_processes_of_the_named_services_in_any_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let leader = marked("api", dir.path(), true);
        let in_our_group = marked("api", dir.path(), false);
        let _other_service = marked("db", dir.path(), true);
        let found = escapees(dir.path(), &["api".to_string()]);
        let mut pids: Vec<u32> = found.iter().map(|s| s.record.pid).collect();
        pids.sort_unstable();
        let mut want = vec![leader.0.id(), in_our_group.0.id()];
        want.sort_unstable();
        assert_eq!(pids, want, "{found:?}");
        let led = found.iter().find(|s| s.record.pid == leader.0.id());
        assert_eq!(led.and_then(|s| s.record.pgid), Some(leader.0.id()));
        let member = found.iter().find(|s| s.record.pid == in_our_group.0.id());
        assert_eq!(member.and_then(|s| s.record.pgid), None);
    }

    #[test]
    fn finds_marked_group_leaders_of_this_state_dir_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let other = tempfile::tempdir().expect("tempdir");
        let ours = marked("api", dir.path(), true);
        let recorded = marked("db", dir.path(), true);
        let _foreign = marked("api", other.path(), true);
        let _not_a_leader = marked("api", dir.path(), false);
        let found = find(dir.path(), &[recorded.0.id()]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].short, "api");
        assert_eq!(found[0].record.pid, ours.0.id());
        assert_eq!(found[0].record.pgid, Some(ours.0.id()));
        assert_eq!(
            Some(found[0].record.start_time),
            crate::proc::process_start_time(ours.0.id())
        );
    }
}
