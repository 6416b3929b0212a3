//! The stand-in's CLI contract, flag by flag, against the real `mdw-demo` process on free
//! loopback ports. Every process is started in its own process group and the whole group is
//! SIGKILLed when its guard drops.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use rustix::process::{Pid, Signal};
use std::os::unix::process::ExitStatusExt;
use test_support::{Demo, WAIT, free_port, wait_until};

/// GET `path` on 127.0.0.1:`port` over HTTP/1.0; returns (status, body).
fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad response {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// grpc.health.v1 Check for service "" on 127.0.0.1:`port`.
fn grpc_status(port: u16) -> tonic_health::pb::health_check_response::ServingStatus {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
        let response = client
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await
            .unwrap();
        response.into_inner().status()
    })
}

fn listening(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

#[test]
fn http_health_with_name_body_and_path() {
    let port = free_port();
    let p = port.to_string();
    let _demo = Demo::start_ready(&["--name", "alpha", "--http-port", &p, "--body", "v=42"]);
    assert_eq!(http_get(port, "/health"), (200, "ok alpha v=42".into()));
    assert_eq!(http_get(port, "/other").0, 404);

    let port = free_port();
    let p = port.to_string();
    let _demo = Demo::start_ready(&["--http-port", &p, "--health-path", "/ready"]);
    assert_eq!(http_get(port, "/ready"), (200, "ok demo".into()));
    assert_eq!(http_get(port, "/health").0, 404);
}

#[test]
fn sigusr1_toggles_http_and_grpc_health() {
    use tonic_health::pb::health_check_response::ServingStatus;
    let (hp, gp) = (free_port(), free_port());
    let demo = Demo::start_ready(&[
        "--http-port",
        &hp.to_string(),
        "--grpc-port",
        &gp.to_string(),
    ]);
    assert_eq!(http_get(hp, "/health").0, 200);
    assert_eq!(grpc_status(gp), ServingStatus::Serving);

    demo.signal(Signal::USR1);
    wait_until("http 503", WAIT, || http_get(hp, "/health").0 == 503);
    assert_eq!(grpc_status(gp), ServingStatus::NotServing);
    assert!(http_get(hp, "/health").1.starts_with("unhealthy demo"));

    demo.signal(Signal::USR1);
    wait_until("http 200", WAIT, || http_get(hp, "/health").0 == 200);
    assert_eq!(grpc_status(gp), ServingStatus::Serving);
}

#[test]
fn ready_after_delays_the_ports() {
    let (hp, gp) = (free_port(), free_port());
    let demo = Demo::start(&[
        "--http-port",
        &hp.to_string(),
        "--grpc-port",
        &gp.to_string(),
        "--ready-after",
        "800ms",
    ]);
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !listening(hp) && !listening(gp),
        "ports bound before --ready-after"
    );
    assert!(!demo.stdout().iter().any(|l| l == "ready"));
    demo.wait_line("ready");
    assert!(listening(hp) && listening(gp));
}

#[test]
fn exit_after_uses_exit_code_default_1() {
    let mut demo = Demo::start(&["--exit-after", "300ms", "--exit-code", "7"]);
    assert_eq!(demo.wait_exit().code(), Some(7));
    let mut demo = Demo::start(&["--exit-after", "300ms"]);
    assert_eq!(demo.wait_exit().code(), Some(1));
}

#[test]
fn unhealthy_after_turns_http_503() {
    let port = free_port();
    let _demo = Demo::start_ready(&[
        "--http-port",
        &port.to_string(),
        "--unhealthy-after",
        "500ms",
    ]);
    wait_until("http 503", WAIT, || http_get(port, "/health").0 == 503);
}

#[test]
fn sigterm_and_sigint_exit_0() {
    let mut demo = Demo::start_ready(&[]);
    demo.signal(Signal::TERM);
    assert_eq!(demo.wait_exit().code(), Some(0));
    let mut demo = Demo::start_ready(&[]);
    demo.signal(Signal::INT);
    assert_eq!(demo.wait_exit().code(), Some(0));
}

#[test]
fn ignore_sigterm_needs_sigkill() {
    let mut demo = Demo::start_ready(&["--ignore-sigterm"]);
    demo.signal(Signal::TERM);
    wait_until("the ignoring line", WAIT, || {
        demo.stdout().iter().any(|l| l.contains("ignoring SIGTERM"))
    });
    assert!(demo.child.try_wait().unwrap().is_none());
    demo.signal(Signal::KILL);
    assert_eq!(demo.wait_exit().signal(), Some(9));
}

#[test]
fn spawn_grandchild_shares_the_group() {
    let demo = Demo::start_ready(&["--spawn-grandchild"]);
    let line = demo
        .stdout()
        .into_iter()
        .find(|l| l.starts_with("grandchild "))
        .expect("a grandchild line");
    let pid: i32 = line["grandchild ".len()..].parse().unwrap();
    let pgid = rustix::process::getpgid(Pid::from_raw(pid)).unwrap();
    assert_eq!(
        pgid,
        Pid::from_raw(demo.pid() as i32).unwrap(),
        "grandchild must stay in the stand-in's group"
    );
    drop(demo);
    // The guard killed the group, so the grandchild is gone (or a zombie awaiting init).
    wait_until("the grandchild to die", WAIT, || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.contains(") Z "))
            .unwrap_or(true)
    });
}

#[test]
fn log_rate_alternates_stdout_and_stderr() {
    let demo = Demo::start_ready(&["--name", "chatty", "--log-rate", "50"]);
    wait_until("10 log lines", WAIT, || {
        demo.stdout()
            .iter()
            .filter(|l| l.contains(" line "))
            .count()
            >= 5
            && demo.stderr().len() >= 5
    });
    let out = demo.stdout();
    assert!(out.contains(&"chatty line 1 stdout".to_string()), "{out:?}");
    assert!(out.contains(&"chatty line 3 stdout".to_string()), "{out:?}");
    let err = demo.stderr();
    assert_eq!(err[0], "chatty line 2 stderr");
    assert_eq!(err[1], "chatty line 4 stderr");
}

#[test]
fn taken_port_is_a_readable_error() {
    let holder = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let mut demo = Demo::start(&["--http-port", &port.to_string()]);
    assert_eq!(demo.wait_exit().code(), Some(1));
    wait_until("the error on stderr", WAIT, || {
        demo.stderr()
            .iter()
            .any(|l| l.contains(&format!("127.0.0.1:{port}")))
    });
}
