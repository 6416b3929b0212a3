//! End to end: the real `mdw cc` in a pseudo-terminal against a real `mdw serve russell`
//! running stand-in services (`mdw demo`) on free ports. The screen is parsed with vt100.
//!
//! `s` → every row stopped; `a` → every row reaches running; Enter toggles the selected row
//! off and on; `q` exits 0, leaves the alternate screen and restores the terminal modes.
#![allow(clippy::unwrap_used)]

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::termios::{LocalModes, Winsize, tcgetattr, tcsetwinsize};
use test_support::{Fixture, Svc, mdw_bin, wait_for};

const ROWS: u16 = 30;
const COLS: u16 = 100;
/// Generous: starting means spawning processes and passing health checks.
const LONG: Duration = Duration::from_secs(60);

/// A pseudo-terminal: the master side (ours) and the slave side (the child's terminal).
fn open_pty() -> (File, File) {
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC).unwrap();
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    let name = ptsname(&master, Vec::new()).unwrap();
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(rustix::fs::OFlags::NOCTTY.bits() as i32)
        .open(name.to_str().unwrap())
        .unwrap();
    tcsetwinsize(
        &slave,
        Winsize {
            ws_row: ROWS,
            ws_col: COLS,
            ws_xpixel: 0,
            ws_ypixel: 0,
        },
    )
    .unwrap();
    (File::from(master), slave)
}

/// `mdw cc` running in a pty; its output is fed into a vt100 screen by a reader thread.
struct Cc {
    child: Child,
    keys: File,
    screen: Arc<Mutex<vt100::Parser>>,
    /// Kept open to read the terminal modes after the child exits.
    slave: Option<File>,
}

impl Cc {
    fn start(addr: &str) -> Self {
        Self::start_with(addr, &[])
    }

    /// `mdw cc` with extra arguments (e.g. `--config` for the `u` key).
    fn start_with(addr: &str, extra: &[&str]) -> Self {
        let (master, slave) = open_pty();
        let child = Command::new(mdw_bin())
            .args(["--russell", addr, "cc"])
            .args(extra)
            .env("TERM", "xterm-256color")
            .env_remove("MDW_RUSSELL_TOKEN")
            .stdin(slave.try_clone().unwrap())
            .stdout(slave.try_clone().unwrap())
            .stderr(slave.try_clone().unwrap())
            .process_group(0)
            .spawn()
            .unwrap();
        let screen = Arc::new(Mutex::new(vt100::Parser::new(
            ROWS.try_into().unwrap(),
            COLS.try_into().unwrap(),
            0,
        )));
        let mut reader = master.try_clone().unwrap();
        let mut answer = master.try_clone().unwrap();
        let parser = screen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            // Ends with EIO once every slave fd is closed.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                // Answer a cursor position request like a terminal would.
                if buf[..n].windows(4).any(|w| w == b"\x1b[6n") {
                    let _ = answer.write_all(b"\x1b[1;1R");
                }
                parser.lock().unwrap().process(&buf[..n]);
            }
        });
        Self {
            child,
            keys: master,
            screen,
            slave: Some(slave),
        }
    }

    fn press(&mut self, key: &[u8]) {
        self.keys.write_all(key).unwrap();
        self.keys.flush().unwrap();
    }

    fn text(&self) -> String {
        self.screen.lock().unwrap().screen().contents()
    }

    /// The table row of the service called `name` (e.g. "Alpha").
    fn row(&self, name: &str) -> String {
        self.text()
            .lines()
            .find(|l| l.contains(&format!(" {name} ")) && l.contains(':'))
            .unwrap_or_default()
            .to_string()
    }

    /// Waits until every named row shows `status`; panics with the screen if not.
    fn wait_rows(&self, names: &[&str], status: &str, why: &str) {
        let ok = wait_for(LONG, || names.iter().all(|n| self.row(n).contains(status)));
        assert!(
            ok,
            "{why}: not every row shows {status:?}; screen:\n{}",
            self.text()
        );
    }
}

impl Drop for Cc {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            test_support::kill_group(self.child.id());
            let _ = self.child.wait();
        }
    }
}

#[test]
fn cc_starts_stops_toggles_and_quits_cleanly() {
    let names = ["Alpha", "Beta", "Gamma"];
    let fixture = Fixture::new(
        &[
            Svc::demo("alpha"),
            Svc::demo("beta").deps(&["alpha"]),
            Svc::demo("gamma"),
        ],
        "",
    );
    let _russell = fixture.start();
    let mut cc = Cc::start(&fixture.addr);

    // The plan's screen appears with a row per service (Russell may already be starting them).
    assert!(
        wait_for(LONG, || {
            let t = cc.text();
            t.contains("mDW Control Center v")
                && t.contains("RUSSELL ORCHESTRATOR")
                && names.iter().all(|n| !cc.row(n).is_empty())
        }),
        "no ControlCenter screen:\n{}",
        cc.text()
    );
    let modes = tcgetattr(cc.slave.as_ref().unwrap()).unwrap().local_modes;
    assert!(
        !modes.contains(LocalModes::ICANON),
        "ControlCenter should run in raw mode"
    );

    // s → all stopped.
    cc.press(b"s");
    cc.wait_rows(&names, "○ stopped", "after s (stop all)");
    assert!(cc.text().contains("Services: 0/3 running"), "{}", cc.text());

    // a → all running.
    cc.press(b"a");
    cc.wait_rows(&names, "● running", "after a (start all)");
    assert!(cc.text().contains("Services: 3/3 running"), "{}", cc.text());
    fixture.status(); // records the PIDs for cleanup

    // Enter toggles the selected (first) row: off, then on; the others stay running.
    assert!(
        cc.row("Alpha").contains('→'),
        "cursor not on Alpha:\n{}",
        cc.text()
    );
    cc.press(b"\r");
    cc.wait_rows(&["Alpha"], "○ stopped", "after Enter on a running row");
    assert!(cc.row("Gamma").contains("● running"), "{}", cc.text());
    cc.press(b"\r");
    cc.wait_rows(&["Alpha"], "● running", "after Enter on a stopped row");
    fixture.status();

    // Push latency (measured, not asserted): the CLI's StopService returns once gamma is
    // stopped, and the "stopped" event is out by then; the time until the screen shows it is
    // the event → fetch → redraw path. The safety-net refresh alone would take up to 2 s.
    let out = fixture.mdw(&["stop", "gamma"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stopped_at = Instant::now();
    while !cc.row("Gamma").contains("○ stopped") && stopped_at.elapsed() < LONG {
        std::thread::sleep(Duration::from_millis(2));
    }
    eprintln!(
        "measured: StopService reply → row shows stopped in {:?}",
        stopped_at.elapsed()
    );
    assert!(cc.row("Gamma").contains("○ stopped"), "{}", cc.text());

    quit(&mut cc);
}

/// Started before Russell: the banner shows and retries; when Russell comes up, the table
/// appears by itself.
#[test]
fn cc_waits_for_russell_and_recovers_by_itself() {
    let fixture = Fixture::new(&[Svc::demo("alpha")], "");
    let mut cc = Cc::start(&fixture.addr);
    let banner = format!("Russell not reachable at {} — retrying", fixture.addr);
    assert!(
        wait_for(LONG, || cc.text().contains(&banner)),
        "no banner:\n{}",
        cc.text()
    );
    let _russell = fixture.start();
    assert!(
        wait_for(LONG, || !cc.row("Alpha").is_empty()
            && !cc.text().contains(&banner)),
        "did not recover after Russell came up:\n{}",
        cc.text()
    );
    fixture.status();
    quit(&mut cc);
}

/// A Russell that `mdw cc` started: stopped by the PID in its state directory's PID file
/// (SIGTERM stops its services too), its group killed if it does not go.
struct StartedRussell(std::path::PathBuf);

impl StartedRussell {
    fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.0.join("russell.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for StartedRussell {
    fn drop(&mut self) {
        if let Some(pid) = self.pid().filter(|p| test_support::alive(*p)) {
            test_support::signal(pid, rustix::process::Signal::TERM);
            if !wait_for(Duration::from_secs(20), || !test_support::alive(pid)) {
                test_support::kill_group(pid);
            }
        }
    }
}

/// Started with no Russell: the banner offers `u`; `u` starts Russell in the background as
/// `mdw up` does (its services come up by autostart); a second `u` starts no second one.
#[test]
fn cc_starts_russell_with_u_and_never_a_second_one() {
    let fixture = Fixture::new(&[Svc::demo("alpha")], "");
    let config = test_support::s(&fixture.config);
    let mut cc = Cc::start_with(&fixture.addr, &["--config", &config]);
    let started = StartedRussell(fixture.state_dir.clone());
    assert!(
        wait_for(LONG, || cc.text().contains("press u to start it")),
        "no offer to start Russell:\n{}",
        cc.text()
    );
    cc.press(b"u");
    cc.wait_rows(&["Alpha"], "● running", "after u (start Russell)");
    let pid = started.pid().expect("Russell's PID file");
    assert!(test_support::alive(pid));
    fixture.status(); // records the service PIDs for cleanup
    assert!(
        wait_for(LONG, || cc.text().contains("started Russell (PID")),
        "no result line:\n{}",
        cc.text()
    );

    // Once reachable, `u` starts nothing: same Russell, one PID file, a plain message.
    cc.press(b"u");
    assert!(
        wait_for(LONG, || cc
            .text()
            .contains("Russell is running; nothing to start")),
        "{}",
        cc.text()
    );
    assert_eq!(started.pid(), Some(pid));
    let russells = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            std::fs::read(e.path().join("cmdline")).is_ok_and(|c| {
                let c = String::from_utf8_lossy(&c);
                c.contains("serve\0russell") && c.contains(&config)
            })
        })
        .count();
    assert_eq!(russells, 1, "exactly one Russell for this services file");
    quit(&mut cc);
    // Quitting ControlCenter leaves Russell running.
    assert!(test_support::alive(pid));
}

/// `q` → exit 0, normal screen, cooked terminal modes again.
fn quit(cc: &mut Cc) {
    cc.press(b"q");
    let mut status = None;
    assert!(
        wait_for(Duration::from_secs(10), || {
            status = cc.child.try_wait().ok().flatten();
            status.is_some()
        }),
        "mdw cc did not exit after q:\n{}",
        cc.text()
    );
    assert!(status.unwrap().success(), "exit status {status:?}");
    // Let the reader thread take in the last bytes.
    assert!(
        wait_for(Duration::from_secs(5), || !cc
            .screen
            .lock()
            .unwrap()
            .screen()
            .alternate_screen()),
        "still on the alternate screen after exit"
    );
    let modes = tcgetattr(cc.slave.take().unwrap()).unwrap().local_modes;
    assert!(
        modes.contains(LocalModes::ICANON | LocalModes::ECHO),
        "terminal modes not restored: {modes:?}"
    );
}
