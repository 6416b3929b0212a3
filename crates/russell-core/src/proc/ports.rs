//! Who holds a TCP port: LISTEN sockets from /proc/net/tcp{,6}, mapped to processes through
//! their socket inodes in /proc/\<pid\>/fd (Linux only).
//!
//! Used before a spawn (is the port taken, and by whom?) and to adopt or replace a holder.
//! PID plus /proc start time identifies a process across PID reuse.
//!
//! These functions do blocking /proc reads; call them from `spawn_blocking` in async code.
//! Processes of other users are only visible with root or CAP_SYS_PTRACE: then
//! [`is_listening`] is true while [`listening_holders`] comes back empty.

use std::collections::HashSet;

use procfs::FromBufReadSI;
use procfs::net::{TcpNetEntries, TcpNetEntry, TcpState};
use procfs::process::{FDTarget, Process};

/// A process holding a listening socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortHolder {
    /// Process ID.
    pub pid: u32,
    /// argv as in /proc/\<pid\>/cmdline (empty for kernel threads).
    pub command_line: Vec<String>,
    /// Start time in clock ticks after boot (/proc/\<pid\>/stat field 22); with `pid` it
    /// identifies the process across PID reuse.
    pub start_time: u64,
}

/// Socket inodes of every LISTEN row (IPv4 and IPv6, any local address) on `port`.
fn listening_inodes(port: u16) -> HashSet<u64> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .into_iter()
        .flat_map(|path| listen_rows(path, port))
        .filter(|row| row.state == TcpState::Listen && row.local_address.port() == port)
        .map(|row| row.inode)
        .filter(|&inode| inode != 0)
        .collect()
}

/// The rows of one /proc/net table that are LISTEN on `port`, parsed by procfs.
///
/// A busy host has thousands of rows (mostly TIME_WAIT); only the few candidate lines are
/// handed to the parser: state field `0A` (LISTEN) and local address ending in `:PORT` (hex).
fn listen_rows(path: &str, port: u16) -> Vec<TcpNetEntry> {
    let Ok(table) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let mut lines = table.lines();
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let port_suffix = format!(":{port:04X}");
    let mut candidates = format!("{header}\n");
    for line in lines {
        let mut fields = line.split_whitespace();
        let local = fields.nth(1);
        let state = fields.nth(1);
        if state == Some("0A") && local.is_some_and(|l| l.ends_with(&port_suffix)) {
            candidates.push_str(line);
            candidates.push('\n');
        }
    }
    TcpNetEntries::from_buf_read(candidates.as_bytes(), procfs::current_system_info())
        .map(|entries| entries.0)
        .unwrap_or_default()
}

/// True when some socket listens on `port` (any address). Reads only /proc/net/tcp{,6}.
pub fn is_listening(port: u16) -> bool {
    !listening_inodes(port).is_empty()
}

/// Every process with a LISTEN socket on `port`, sorted by PID. Several processes can share
/// one socket (a forking server); processes that exit mid-scan or cannot be read are skipped.
pub fn listening_holders(port: u16) -> Vec<PortHolder> {
    let inodes = listening_inodes(port);
    if inodes.is_empty() {
        return Vec::new();
    }
    let Ok(processes) = procfs::process::all_processes() else {
        return Vec::new();
    };
    let mut holders: Vec<PortHolder> = processes
        .filter_map(Result::ok)
        .filter(|process| holds_any(process, &inodes))
        .filter_map(|process| {
            let pid = u32::try_from(process.pid).ok()?;
            let start_time = process.stat().ok()?.starttime;
            let command_line = process.cmdline().unwrap_or_default();
            Some(PortHolder {
                pid,
                command_line,
                start_time,
            })
        })
        .collect();
    holders.sort_by_key(|holder| holder.pid);
    holders
}

/// True when one of `process`'s file descriptors is a socket in `inodes`.
fn holds_any(process: &Process, inodes: &HashSet<u64>) -> bool {
    let Ok(fds) = process.fd() else {
        return false;
    };
    fds.filter_map(Result::ok)
        .any(|fd| matches!(fd.target, FDTarget::Socket(inode) if inodes.contains(&inode)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proc::{command_line, process_start_time};

    #[test]
    fn own_listener_is_found_with_our_pid_and_start_time() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        assert!(is_listening(port));
        let holders = listening_holders(port);
        let me = std::process::id();
        // (A process another test forks just now may show up too, briefly.)
        let mine = holders.iter().find(|h| h.pid == me);
        let mine = mine.unwrap_or_else(|| panic!("we are not among {holders:?}"));
        assert_eq!(Some(mine.start_time), process_start_time(me));
        assert_eq!(Some(mine.command_line.clone()), command_line(me));
        drop(listener);
        // A process that another test forks at this moment holds a copy of the socket
        // until its exec closes it: allow that moment.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while is_listening(port) || !listening_holders(port).is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "port {port} still listening"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    #[test]
    fn ipv6_listener_is_found() {
        // Hosts without IPv6 cannot bind [::1]; nothing to check there.
        let Ok(listener) = std::net::TcpListener::bind("[::1]:0") else {
            return;
        };
        let port = listener.local_addr().expect("addr").port();
        assert!(is_listening(port));
        let holders = listening_holders(port);
        assert!(
            holders.iter().any(|h| h.pid == std::process::id()),
            "{holders:?}"
        );
    }

    #[test]
    fn missing_process_is_none() {
        // PIDs are below 2^22 on Linux.
        assert_eq!(process_start_time(u32::MAX - 1), None);
        assert_eq!(command_line(u32::MAX - 1), None);
    }
}
