//! `mdw demo` is the stand-in service (crate mdw-demo) behind the mdw binary: same flags,
//! same behaviour. The flags themselves are tested one by one in crates/mdw-demo/tests.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process, kill_process_group};
use test_support::mdw_bin;

/// SIGKILLs the child's process group on drop.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(pgid) = Pid::from_raw(self.0.id() as i32) {
            let _ = kill_process_group(pgid, Signal::KILL);
        }
        let _ = self.0.wait();
    }
}

#[test]
fn help_lists_every_contract_flag() {
    let output = Command::new(mdw_bin())
        .args(["demo", "--help"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for flag in [
        "--name",
        "--http-port",
        "--health-path",
        "--grpc-port",
        "--ready-after",
        "--exit-after",
        "--exit-code",
        "--unhealthy-after",
        "--ignore-sigterm",
        "--spawn-grandchild",
        "--log-rate",
        "--body",
    ] {
        assert!(help.contains(flag), "{flag} missing in:\n{help}");
    }
}

#[test]
fn mdw_demo_serves_http_and_exits_0_on_sigterm() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(mdw_bin())
        .args(["demo", "--name", "viamdw", "--http-port", &port.to_string()])
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut guard = Guard(child);

    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line == "ready" {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("mdw demo printed ready");

    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(stream, "GET /health HTTP/1.0\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200"));
    assert!(response.ends_with("ok viamdw"), "{response}");

    kill_process(Pid::from_raw(guard.0.id() as i32).unwrap(), Signal::TERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = guard.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "mdw demo ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
}
