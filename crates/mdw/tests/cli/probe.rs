//! `mdw probe` against real listeners: the stand-in service (`mdw demo`) for http and gRPC
//! health, plain sockets for tcp and timeouts. Exit status 0 healthy, 1 unhealthy, 2 usage.
#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use rustix::process::Signal;
use std::path::Path;
use test_support::{Demo, free_port, mdw_bin};

/// Starts `mdw demo ARGS` (killed with its process group on drop) and waits until it
/// prints "ready".
fn start_demo(args: &[&str]) -> Demo {
    let mut argv = vec!["demo"];
    argv.extend_from_slice(args);
    let demo = Demo::start_bin(Path::new(mdw_bin()), &argv);
    demo.wait_line("ready");
    demo
}

fn probe(args: &[&str]) -> Output {
    Command::new(mdw_bin())
        .arg("probe")
        .args(args)
        .output()
        .unwrap()
}

/// Exit code and the stderr line.
fn run(args: &[&str]) -> (i32, String) {
    let out = probe(args);
    let stderr = String::from_utf8(out.stderr).unwrap();
    (out.status.code().unwrap(), stderr)
}

#[test]
fn http_healthy_unhealthy_and_body() {
    let port = free_port().to_string();
    let _demo = start_demo(&["--name", "web", "--http-port", &port, "--body", "all good"]);
    let url = format!("http://127.0.0.1:{port}/health");
    let (code, err) = run(&["http", &url]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    let (code, err) = run(&["http", &url, "--expect-body", "all good"]);
    assert_eq!(code, 0, "{err}");
    let (code, err) = run(&["http", &url, "--expect-body", "nope"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("body does not contain \"nope\""), "{err}");

    let missing = format!("http://127.0.0.1:{port}/missing");
    let (code, err) = run(&["http", &missing]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("status 404"), "{err}");
}

#[test]
fn http_unhealthy_after_sigusr1() {
    let port = free_port().to_string();
    let demo = start_demo(&["--name", "web", "--http-port", &port]);
    let url = format!("http://127.0.0.1:{port}/health");
    assert_eq!(run(&["http", &url]).0, 0);
    demo.signal(Signal::USR1);
    assert!(test_support::wait_for(Duration::from_secs(5), || run(&[
        "http", &url
    ])
    .0 == 1));
    let (_, err) = run(&["http", &url]);
    assert!(err.starts_with("unhealthy: "), "{err}");
}

#[test]
fn grpc_serving_not_serving_and_unknown_service() {
    let port = free_port().to_string();
    let demo = start_demo(&["--name", "rpc", "--grpc-port", &port]);
    let addr = format!("127.0.0.1:{port}");
    let (code, err) = run(&["grpc", &addr]);
    assert_eq!(code, 0, "{err}");

    let (code, err) = run(&["grpc", &addr, "--service", "no.such.Service"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("NotFound"), "{err}");

    demo.signal(Signal::USR1);
    assert!(test_support::wait_for(Duration::from_secs(5), || run(&[
        "grpc", &addr
    ])
    .0 == 1));
    let (_, err) = run(&["grpc", &addr]);
    assert!(err.contains("NOT_SERVING"), "{err}");
}

#[test]
fn tcp_open_and_closed() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (code, err) = run(&["tcp", &addr]);
    assert_eq!(code, 0, "{err}");
    drop(listener);
    let (code, err) = run(&["tcp", &addr]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("refused"), "{err}");
}

#[test]
fn a_silent_listener_times_out_within_the_timeout() {
    // Accepts connections (the kernel does, from the backlog) but never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/health", listener.local_addr().unwrap());
    let started = Instant::now();
    let (code, err) = run(&["--timeout", "300ms", "http", &url]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("timed out after 300ms"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    drop(listener);
}

#[test]
fn wait_retries_until_the_service_comes_up() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let waiter = Command::new(mdw_bin())
        .args(["probe", "--wait", "10s", "tcp", &addr])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let _listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let out = waiter.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn wait_gives_up_after_its_time() {
    let addr = format!("127.0.0.1:{}", free_port());
    let started = Instant::now();
    let (code, err) = run(&["--wait", "700ms", "tcp", &addr]);
    assert_eq!(code, 1, "{err}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_secs(5),
        "{took:?}"
    );
}

#[test]
fn exec_uses_the_exit_status() {
    assert_eq!(run(&["exec", "--", "true"]).0, 0);
    let (code, err) = run(&["exec", "--", "sh", "-c", "echo broken >&2; exit 3"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("exit status 3") && err.contains("broken"),
        "{err}"
    );
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["http", "ftp://x/health"][..],
        &["grpc", "no-port"][..],
        &["tcp", "127.0.0.1:0"][..],
        &["exec"][..],
        &["--timeout", "soon", "tcp", "127.0.0.1:1"][..],
        &["udp", "127.0.0.1:1"][..],
    ] {
        let (code, err) = run(args);
        assert_eq!(code, 2, "{args:?}: {err}");
    }
}
