//! Exec probe: run a command; healthy when it exits 0.
//!
//! The command runs in its own process group. Whatever ends the probe (exit, timeout,
//! cancellation), the guard kills that whole group, so a hanging probe or anything it
//! started in the background is gone afterwards.

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;

use rustix::process::{Pid, Signal, kill_process_group};

use super::{ProbeError, first_line};

/// SIGKILLs the probe's process group when dropped.
struct GroupGuard(Option<Pid>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            // ESRCH (group already empty) is the normal case after a clean exit.
            let _ = kill_process_group(pgid, Signal::KILL);
        }
    }
}

/// Runs `command` (program + arguments, no shell) with stdout and stderr captured.
pub(super) async fn probe(target: &str, command: &[String]) -> Result<(), ProbeError> {
    let Some((program, args)) = command.split_first() else {
        return Err(ProbeError::InvalidTarget {
            target: target.to_string(),
            what: "empty command",
        });
    };
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|err| ProbeError::Spawn {
            target: target.to_string(),
            kind: err.kind(),
        })?;
    // Declared before the wait so that it drops (kills the group) on every path out.
    let _guard = GroupGuard(child.id().and_then(|id| Pid::from_raw(id as i32)));
    let output = child
        .wait_with_output()
        .await
        .map_err(|err| ProbeError::Io {
            target: target.to_string(),
            kind: err.kind(),
        })?;
    if output.status.success() {
        return Ok(());
    }
    let status = match (output.status.code(), output.status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => output.status.to_string(),
    };
    Err(ProbeError::Exit {
        target: target.to_string(),
        status,
        stderr: first_line(&output.stderr),
    })
}
