//! What `/proc` says about processes and listening sockets.

use std::collections::BTreeSet;

/// What `/proc/<pid>/stat` says about a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: u32,
    /// R, S, D, Z, T, X, ...
    pub state: char,
    pub ppid: u32,
    pub pgrp: u32,
}

/// Reads `/proc/<pid>/stat`; None when the process is gone.
pub fn proc_stat(pid: u32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    let pgrp = f.next()?.parse().ok()?;
    Some(ProcStat {
        pid,
        state,
        ppid,
        pgrp,
    })
}

/// Every process visible in `/proc`.
pub fn all_procs() -> Vec<ProcStat> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(proc_stat)
        .collect()
}

/// True when `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    pid != 0 && proc_stat(pid).is_some_and(|s| s.state != 'Z' && s.state != 'X')
}

/// Whether any live (non-zombie) process is left in process group `pgid`.
pub fn group_alive(pgid: u32) -> bool {
    !procs_in_group(pgid).is_empty()
}

/// Live (non-zombie) processes whose process group is `pgid`.
pub fn procs_in_group(pgid: u32) -> Vec<u32> {
    all_procs()
        .into_iter()
        .filter(|p| p.pgrp == pgid && p.state != 'Z' && p.state != 'X')
        .map(|p| p.pid)
        .collect()
}

/// Zombie children of `ppid` (children it has not reaped).
pub fn zombie_children(ppid: u32) -> Vec<u32> {
    all_procs()
        .into_iter()
        .filter(|p| p.ppid == ppid && p.state == 'Z')
        .map(|p| p.pid)
        .collect()
}

/// Resident set size of `pid` in bytes (VmRSS), None when gone.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Bytes `pid` has written so far (`wchar` of `/proc/<pid>/io`), None when gone.
pub fn wchar(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let line = text.lines().find(|l| l.starts_with("wchar:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Number of open file descriptors of `pid` (entries of `/proc/<pid>/fd`).
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

/// The command line of `pid`, arguments joined by spaces.
pub fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .split('\0')
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// Live processes whose environment holds `<var>=<marker>`.
pub fn marked_procs(var: &str, marker: &str) -> Vec<u32> {
    let needle = format!("{var}={marker}");
    all_procs()
        .into_iter()
        .filter(|p| p.state != 'Z' && p.state != 'X')
        .filter(|p| {
            std::fs::read(format!("/proc/{}/environ", p.pid))
                .map(|env| env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()))
                .unwrap_or(false)
        })
        .map(|p| p.pid)
        .collect()
}

/// A LISTEN row of `/proc/net/tcp{,6}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Local address as hex from the kernel (e.g. `0100007F` = 127.0.0.1).
    pub addr_hex: String,
    pub port: u16,
    pub inode: u64,
    pub v6: bool,
}

impl Listener {
    /// True for 127.0.0.0/8 and ::1 (and ::ffff:127.x).
    pub fn is_loopback(&self) -> bool {
        if self.v6 {
            self.addr_hex == "00000000000000000000000001000000"
                || (self.addr_hex.starts_with("0000000000000000FFFF0000")
                    && self.addr_hex.ends_with("7F"))
        } else {
            self.addr_hex.ends_with("7F")
        }
    }
}

/// Every TCP socket in LISTEN state (IPv4 and IPv6) in this network namespace.
pub fn tcp_listeners() -> Vec<Listener> {
    let mut out = Vec::new();
    for (file, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || f[3] != "0A" {
                continue;
            }
            let Some((addr, port)) = f[1].split_once(':') else {
                continue;
            };
            out.push(Listener {
                addr_hex: addr.to_owned(),
                port: u16::from_str_radix(port, 16).unwrap_or(0),
                inode: f[9].parse().unwrap_or(0),
                v6,
            });
        }
    }
    out
}

/// Number of LISTEN sockets on `port` (any address, v4 and v6).
pub fn listeners_on_port(port: u16) -> usize {
    tcp_listeners().iter().filter(|l| l.port == port).count()
}

/// Socket inodes held open by `pid`.
pub fn socket_inodes(pid: u32) -> BTreeSet<u64> {
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return BTreeSet::new();
    };
    rd.filter_map(|e| {
        let link = std::fs::read_link(e.ok()?.path()).ok()?;
        let s = link.to_str()?;
        s.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
    })
    .collect()
}

/// LISTEN sockets owned by `pid`.
pub fn listeners_of(pid: u32) -> Vec<Listener> {
    let inodes = socket_inodes(pid);
    tcp_listeners()
        .into_iter()
        .filter(|l| inodes.contains(&l.inode))
        .collect()
}
