//! Health probes, port holder lookup and process group sampling against real processes
//! (the `mdw-demo` stand-in and small shell commands) on free loopback ports.
#![allow(clippy::unwrap_used)]

use std::io::ErrorKind;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use russell_config::Probe;
use russell_core::health::{ProbeError, probe};
use russell_core::proc::groups::{GroupSampler, group_members};
use russell_core::proc::ports::{is_listening, listening_holders};
use russell_core::proc::{command_line, process_start_time};
use rustix::process::Signal;
use test_support::{Demo, WAIT, free_port, wait_until, wait_until_async};

const TIMEOUT: Duration = Duration::from_secs(3);

fn http(port: u16, path: &str, expect_body: Option<&str>) -> Probe {
    Probe::Http {
        url: format!("http://127.0.0.1:{port}{path}"),
        expect_body: expect_body.map(str::to_string),
    }
}

fn grpc(port: u16, service: &str) -> Probe {
    Probe::Grpc {
        addr: format!("127.0.0.1:{port}"),
        service: service.to_string(),
    }
}

fn tcp(port: u16) -> Probe {
    Probe::Tcp {
        addr: format!("127.0.0.1:{port}"),
    }
}

fn exec(args: &[&str]) -> Probe {
    Probe::Exec {
        command: args.iter().map(|s| s.to_string()).collect(),
    }
}

/// Probes until the result is an error (e.g. after a SIGUSR1 toggle lands); returns it.
async fn until_err(target: &Probe) -> ProbeError {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Err(err) = probe(target, TIMEOUT).await {
            return err;
        }
        assert!(Instant::now() < deadline, "{target:?} stayed ok");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Probes until the result is ok.
async fn until_ok(target: &Probe) {
    let deadline = Instant::now() + WAIT;
    while let Err(err) = probe(target, TIMEOUT).await {
        assert!(
            Instant::now() < deadline,
            "{target:?} stayed failing: {err}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn none_is_ok() {
    probe(&Probe::None, TIMEOUT).await.unwrap();
}

#[tokio::test]
async fn http_ok_and_expected_body() {
    let port = free_port();
    let _demo = Demo::start_ready(&["--http-port", &port.to_string(), "--body", "build=7"]);
    probe(&http(port, "/health", None), TIMEOUT).await.unwrap();
    probe(&http(port, "/health", Some("build=7")), TIMEOUT)
        .await
        .unwrap();
    // Many probes in a row, each on a connection of its own.
    for _ in 0..20 {
        probe(&http(port, "/health", None), TIMEOUT).await.unwrap();
    }
}

#[tokio::test]
async fn http_body_mismatch() {
    let port = free_port();
    let _demo = Demo::start_ready(&["--http-port", &port.to_string(), "--body", "build=7"]);
    let err = probe(&http(port, "/health", Some("build=8")), TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(err, ProbeError::BodyMismatch { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("http://127.0.0.1:{port}/health: body does not contain \"build=8\"")
    );
}

#[tokio::test]
async fn http_503_when_unhealthy_404_on_wrong_path() {
    let port = free_port();
    let demo = Demo::start_ready(&["--http-port", &port.to_string()]);
    let err = probe(&http(port, "/nope", None), TIMEOUT)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProbeError::HttpStatus { status: 404, .. }),
        "{err:?}"
    );

    demo.signal(Signal::USR1);
    let err = until_err(&http(port, "/health", None)).await;
    assert_eq!(
        err.to_string(),
        format!("http://127.0.0.1:{port}/health: status 503: unhealthy demo")
    );
    demo.signal(Signal::USR1);
    until_ok(&http(port, "/health", None)).await;
}

#[tokio::test]
async fn http_refused_port() {
    let port = free_port();
    let err = probe(&http(port, "/health", None), TIMEOUT)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ProbeError::Io {
                kind: ErrorKind::ConnectionRefused,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("http://127.0.0.1:{port}/health: connection refused")
    );
}

#[tokio::test]
async fn http_that_never_answers_times_out() {
    // Bound but never accepted: the kernel completes the handshake, nobody answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let started = Instant::now();
    let err = probe(&http(port, "/health", None), Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(started.elapsed() < WAIT);
    assert_eq!(
        err.to_string(),
        format!("http://127.0.0.1:{port}/health: timed out after 300ms")
    );
}

#[tokio::test]
async fn http_2xx_with_a_big_body_left_unread_is_ok_at_once() {
    // A server that answers 200 with a 4 MiB body and then keeps the connection open: the
    // probe needs only the status, and must not wait for the body or the close.
    use std::io::{Read, Write};
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let serving = std::thread::spawn(move || {
        let (mut conn, _) = server.accept().unwrap();
        let mut request = [0u8; 1024];
        let _ = conn.read(&mut request).unwrap();
        let body = vec![b'x'; 4 << 20];
        let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
        let _ = conn.write_all(head.as_bytes());
        let _ = conn.write_all(&body);
        std::thread::sleep(Duration::from_secs(2));
    });
    let started = Instant::now();
    probe(&http(port, "/health", None), TIMEOUT).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    serving.join().unwrap();
}

#[tokio::test]
async fn http_bad_url_is_named() {
    let target = Probe::Http {
        url: "https://127.0.0.1:1/x".into(),
        expect_body: None,
    };
    let err = probe(&target, TIMEOUT).await.unwrap_err();
    assert!(matches!(err, ProbeError::InvalidTarget { .. }), "{err:?}");
}

#[tokio::test]
async fn tcp_ok_and_refused() {
    let port = free_port();
    let demo = Demo::start_ready(&["--http-port", &port.to_string()]);
    probe(&tcp(port), TIMEOUT).await.unwrap();
    drop(demo);
    let err = until_err(&tcp(port)).await;
    assert_eq!(
        err.to_string(),
        format!("tcp 127.0.0.1:{port}: connection refused")
    );
}

#[tokio::test]
async fn grpc_serving_not_serving_and_back() {
    let port = free_port();
    let demo = Demo::start_ready(&["--grpc-port", &port.to_string()]);
    probe(&grpc(port, ""), TIMEOUT).await.unwrap();

    demo.signal(Signal::USR1);
    let err = until_err(&grpc(port, "")).await;
    assert!(
        matches!(
            err,
            ProbeError::NotServing {
                status: "NOT_SERVING",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("grpc 127.0.0.1:{port}: NOT_SERVING")
    );

    demo.signal(Signal::USR1);
    until_ok(&grpc(port, "")).await;
}

#[tokio::test]
async fn grpc_unknown_service_and_refused_port() {
    let port = free_port();
    let _demo = Demo::start_ready(&["--grpc-port", &port.to_string()]);
    let err = probe(&grpc(port, "no.such.Service"), TIMEOUT)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ProbeError::Grpc {
                code: tonic::Code::NotFound,
                ..
            }
        ),
        "{err:?}"
    );

    let closed = free_port();
    let err = probe(&grpc(closed, ""), TIMEOUT).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("grpc 127.0.0.1:{closed}: connection refused")
    );
}

#[tokio::test]
async fn grpc_against_http_server_fails_without_hanging() {
    let port = free_port();
    let _demo = Demo::start_ready(&["--http-port", &port.to_string()]);
    let started = Instant::now();
    let err = probe(&grpc(port, ""), Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(started.elapsed() < WAIT, "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("grpc 127.0.0.1:{port}: ")),
        "{err}"
    );
}

#[tokio::test]
async fn exec_ok_exit_1_and_missing_program() {
    probe(&exec(&["true"]), TIMEOUT).await.unwrap();

    let err = probe(
        &exec(&[
            "sh",
            "-c",
            "echo; echo 'db not ready' >&2; echo more >&2; exit 1",
        ]),
        TIMEOUT,
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "exec sh -c echo; echo 'db not ready' >&2; echo more >&2; exit 1: exit status 1: db not ready"
    );

    let err = probe(&exec(&["/no/such/probe"]), TIMEOUT)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ProbeError::Spawn {
                kind: ErrorKind::NotFound,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "exec /no/such/probe: cannot run: entity not found"
    );

    let err = probe(&Probe::Exec { command: vec![] }, TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(err, ProbeError::InvalidTarget { .. }), "{err:?}");
}

#[tokio::test]
async fn exec_that_hangs_times_out_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pgid");
    // The shell records its PID (= the probe's process group), backgrounds a sleep that
    // would outlive it, then hangs.
    let script = format!("echo $$ > {}; sleep 1000 & sleep 1000", pid_file.display());
    let err = probe(&exec(&["sh", "-c", &script]), Duration::from_millis(500))
        .await
        .unwrap_err();
    assert!(matches!(err, ProbeError::TimedOut { .. }), "{err:?}");
    assert!(
        err.to_string().ends_with(": timed out after 500ms"),
        "{err}"
    );

    let pgid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    wait_until_async("the probe's group to be gone", WAIT, || {
        group_members(pgid).is_empty()
    })
    .await;
}

#[test]
fn port_holder_is_the_stand_in_with_its_command_line() {
    let port = free_port();
    let demo = Demo::start_ready(&["--name", "holder", "--http-port", &port.to_string()]);
    assert!(is_listening(port));
    let holders = listening_holders(port);
    assert_eq!(holders.len(), 1, "{holders:?}");
    let holder = &holders[0];
    assert_eq!(holder.pid, demo.pid());
    assert!(holder.command_line[0].ends_with("mdw-demo"), "{holder:?}");
    assert_eq!(
        holder.command_line[1..],
        ["--name", "holder", "--http-port", &port.to_string()]
    );
    assert_eq!(Some(holder.start_time), process_start_time(demo.pid()));
    assert_eq!(
        command_line(demo.pid()).as_ref(),
        Some(&holder.command_line)
    );

    drop(demo);
    wait_until("the port to be free", WAIT, || !is_listening(port));
    assert!(listening_holders(port).is_empty());
}

#[test]
fn group_sampler_and_members_cover_the_grandchild() {
    let demo = Demo::start_ready(&["--spawn-grandchild"]);
    let pgid = demo.pid();
    let grandchild = demo.grandchild();
    let members = group_members(pgid);
    assert!(members.contains(&pgid), "{members:?}");
    assert!(members.contains(&grandchild), "{members:?}");

    let mut sampler = GroupSampler::new();
    let usage = sampler.sample(&[pgid]);
    assert!(usage[&pgid].rss_bytes > 0, "{usage:?}");
    assert_eq!(usage[&pgid].processes, 2, "{usage:?}");

    drop(demo);
    wait_until("the whole group to be gone", WAIT, || {
        group_members(pgid).is_empty()
    });
    assert!(sampler.sample(&[pgid]).is_empty());
}

#[test]
fn group_sampler_measures_a_busy_group() {
    // A shell spinning in its own group; killed as a group by the guard.
    let child = std::process::Command::new("sh")
        .args(["-c", "while :; do :; done"])
        .process_group(0)
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            if let Some(pid) = rustix::process::Pid::from_raw(self.0.id() as i32) {
                let _ = rustix::process::kill_process_group(pid, Signal::KILL);
            }
            let _ = self.0.wait();
        }
    }
    let busy = Kill(child);
    let pgid = busy.0.id();

    let mut sampler = GroupSampler::new();
    assert_eq!(sampler.sample(&[pgid])[&pgid].cpu_percent, 0.0);
    std::thread::sleep(Duration::from_millis(500));
    let usage = sampler.sample(&[pgid]);
    // Generous: a spinning shell gets far more than 5% of a core even on a busy machine.
    assert!(usage[&pgid].cpu_percent > 5.0, "{usage:?}");
}
