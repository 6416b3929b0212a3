//! A pseudo-terminal for a TUI under measurement (rustix's pty calls): the bench keeps the
//! master side, the child gets the slave side as its terminal. A reader thread drains the
//! child's output (a full pty would block its writes), answers cursor-position requests as
//! a terminal does, and keeps the last few KiB so a caller can see what is on the screen.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
use rustix::termios::{Winsize, tcsetwinsize};

/// Bytes of output kept for [`Pty::recent`].
const KEEP: usize = 64 * 1024;

/// The master side and the child's terminal (the slave side) of one pseudo-terminal.
pub struct Pty {
    /// Write keys here.
    pub master: File,
    /// Give this to the child as stdin/stdout/stderr, then drop it.
    pub slave: File,
}

/// The output a [`Pty`]'s reader thread has seen: total bytes and the last [`KEEP`].
#[derive(Debug, Default)]
pub struct Output {
    pub total: usize,
    pub recent: Vec<u8>,
}

impl Pty {
    /// Opens a pseudo-terminal of `rows` × `cols`.
    pub fn open(rows: u16, cols: u16) -> anyhow::Result<Pty> {
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
            .context("cannot open a pseudo-terminal")?;
        grantpt(&master).context("grantpt failed")?;
        unlockpt(&master).context("unlockpt failed")?;
        let name = ptsname(&master, Vec::new()).context("ptsname failed")?;
        let path = std::path::PathBuf::from(std::ffi::OsStr::from_bytes(name.as_bytes()));
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(rustix::fs::OFlags::NOCTTY.bits() as i32)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        tcsetwinsize(
            &slave,
            Winsize {
                ws_row: rows,
                ws_col: cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            },
        )
        .context("cannot set the terminal size")?;
        Ok(Pty {
            master: File::from(master),
            slave,
        })
    }

    /// Starts the reader thread on the master side; it ends when every slave descriptor
    /// is closed (the read fails with EIO).
    pub fn drain(&self) -> anyhow::Result<Arc<Mutex<Output>>> {
        let mut reader = self.master.try_clone()?;
        let mut answer = self.master.try_clone()?;
        let seen = Arc::new(Mutex::new(Output::default()));
        let out = seen.clone();
        std::thread::Builder::new()
            .name("pty-reader".into())
            .spawn(move || {
                let mut buf = [0u8; 16384];
                while let Ok(n) = reader.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if buf[..n].windows(4).any(|w| w == b"\x1b[6n") {
                        let _ = answer.write_all(b"\x1b[1;1R");
                    }
                    let Ok(mut o) = out.lock() else { break };
                    o.total += n;
                    o.recent.extend_from_slice(&buf[..n]);
                    let extra = o.recent.len().saturating_sub(KEEP);
                    o.recent.drain(..extra);
                }
            })
            .context("cannot start the pty reader thread")?;
        Ok(seen)
    }
}

/// True when `hay` contains `needle`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn a_child_writes_to_the_terminal_and_the_reader_sees_it() {
        let pty = Pty::open(24, 80).unwrap();
        let seen = pty.drain().unwrap();
        let mut child = std::process::Command::new("sh")
            .args(["-c", "stty size; echo hello-pty"])
            .stdin(pty.slave.try_clone().unwrap())
            .stdout(pty.slave.try_clone().unwrap())
            .stderr(pty.slave.try_clone().unwrap())
            .spawn()
            .unwrap();
        drop(pty.slave);
        child.wait().unwrap();
        let t = Instant::now();
        loop {
            let o = seen.lock().unwrap();
            if contains(&o.recent, b"hello-pty") {
                assert!(contains(&o.recent, b"24 80"), "{:?}", o.recent);
                break;
            }
            drop(o);
            assert!(t.elapsed() < Duration::from_secs(5), "no output");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
