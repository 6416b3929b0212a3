//! `mdw demo` is the stand-in service (crate mdw-demo) behind the mdw binary: same flags,
//! same behaviour. The flags themselves are tested one by one in crates/mdw-demo/tests.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

use rustix::process::Signal;
use std::path::Path;
use test_support::{Demo, free_port, mdw_bin};

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
    let port = free_port();
    let mut demo = Demo::start_bin(
        Path::new(mdw_bin()),
        &["demo", "--name", "viamdw", "--http-port", &port.to_string()],
    );
    demo.wait_line("ready");

    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(stream, "GET /health HTTP/1.0\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200"));
    assert!(response.ends_with("ok viamdw"), "{response}");

    demo.signal(Signal::TERM);
    let status = demo.wait_exit();
    assert_eq!(status.code(), Some(0));
}
