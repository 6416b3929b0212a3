//! A pseudo-terminal for a TUI under measurement (rustix's pty calls): the bench keeps the
//! master side, the child gets the slave side as its terminal. A reader thread drains the
//! child's output (a full pty would block its writes), answers cursor-position requests as
//! a terminal does, and keeps the screen (vt100's parser) so a caller can see what is on it.

use std::fs::File;
use std::io::{Read, Write};
use std::num::NonZeroU16;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
use rustix::termios::{Winsize, tcsetwinsize};

/// The master side and the child's terminal (the slave side) of one pseudo-terminal.
pub struct Pty {
    rows: NonZeroU16,
    cols: NonZeroU16,
    /// Write keys here.
    pub master: File,
    /// Give this to the child as stdin/stdout/stderr, then drop it.
    pub slave: File,
}

/// What a [`Pty`]'s reader thread has seen: the bytes written and the screen they drew.
pub struct Output {
    pub total: usize,
    pub screen: vt100::Parser,
}

impl Output {
    /// The screen's text, row by row.
    pub fn text(&self) -> String {
        self.screen.screen().contents()
    }
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
            rows: NonZeroU16::new(rows).context("a terminal needs at least one row")?,
            cols: NonZeroU16::new(cols).context("a terminal needs at least one column")?,
            master: File::from(master),
            slave,
        })
    }

    /// Starts the reader thread on the master side; it ends when every slave descriptor
    /// is closed (the read fails with EIO).
    pub fn drain(&self) -> anyhow::Result<Arc<Mutex<Output>>> {
        let mut reader = self.master.try_clone()?;
        let mut answer = self.master.try_clone()?;
        let seen = Arc::new(Mutex::new(Output {
            total: 0,
            screen: vt100::Parser::new(self.rows, self.cols, 0),
        }));
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
                    o.screen.process(&buf[..n]);
                }
            })
            .context("cannot start the pty reader thread")?;
        Ok(seen)
    }
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
            if o.text().contains("hello-pty") {
                assert!(o.text().contains("24 80"), "{}", o.text());
                break;
            }
            drop(o);
            assert!(t.elapsed() < Duration::from_secs(5), "no output");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
