//! `--register`: the standalone `mdw-demo` against a real Russell served in-process (empty
//! line-up) on a free port. It registers with its version and port, re-registers when the
//! Russell it registered with is replaced by a new one (the heartbeat is not acknowledged),
//! and deregisters on SIGTERM before it exits 0.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};
use test_support::Logged;
use test_support::compat::list_services;
use test_support::inproc::InProcess;
use tokio::net::TcpListener;

/// A Russell in this process with no services, its state in `state`.
async fn russell(listener: TcpListener, state: &Path) -> InProcess {
    let text = format!("[russell]\nstate_dir = {:?}\n", state.display().to_string());
    InProcess::serve(&text, &state.join("services.toml"), listener).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_reregisters_with_a_new_russell_and_deregisters_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let first = russell(listener, &dir.path().join("a")).await;

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = dir.path().join("demo.log");
    let mut demo = Logged::spawn(
        Command::new(env!("CARGO_BIN_EXE_mdw-demo"))
            .args(["--name", "ext", "--http-port", &port.to_string()])
            .args(["--register", &addr.to_string(), "--version", "3.1.4"])
            .args(["--heartbeat-every", "100ms"]),
        log,
    );
    demo.wait_log(1, "ext: registered with Russell").await;
    let l = list_services(&addr.to_string()).await;
    assert_eq!(l.len(), 1, "{l:?}");
    assert_eq!(
        (l[0].name.as_str(), l[0].version.as_str(), l[0].port),
        ("ext", "3.1.4", i32::from(port))
    );
    assert_eq!(l[0].address, "localhost");
    let old_id = l[0].id.clone();

    // Another Russell on the same address knows nothing of the id.
    first.stop().await;
    let listener = TcpListener::bind(addr).await.unwrap();
    let second = russell(listener, &dir.path().join("b")).await;
    demo.wait_log(1, "not acknowledged; registering again")
        .await;
    demo.wait_log(2, "ext: registered with Russell").await;
    let l = list_services(&addr.to_string()).await;
    assert_eq!(l.len(), 1, "{l:?}");
    assert_ne!(l[0].id, old_id);

    kill_process(Pid::from_raw(demo.child.id() as i32).unwrap(), Signal::TERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = demo.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "mdw-demo did not exit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status:?}");
    assert!(demo.log().contains("ext: deregistered"), "{}", demo.log());
    assert!(list_services(&addr.to_string()).await.is_empty());
    second.stop().await;
}
