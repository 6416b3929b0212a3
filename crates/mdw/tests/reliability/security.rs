//! Reliability 7 — security. Default bind is loopback only and a non-loopback bind needs
//! `--allow-remote`; with a token file every call but grpc.health needs
//! `authorization: Bearer <token>`; RestartService/StopService/StartService of a
//! registry-only entry kill nothing; state_dir is 0700 and every file in it (logs, state,
//! FIFOs) is private; a short_name that is a path is rejected by config validation and no
//! file lands outside the log folder.
//!
//! `cargo test -p mdw --test reliability security::`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use russell_api::pb;
use russell_config::Probe;
use test_support::prelude::*;
use tonic::Code;

/// A stand-in started by the test itself (not by Russell), killed by group in Drop.
struct Stranger {
    child: std::process::Child,
    port: u16,
}

impl Stranger {
    fn start(marker: &str) -> Self {
        let port = free_port();
        let child = Command::new(mdw_bin())
            .args([
                "demo",
                "--name",
                "stranger",
                "--http-port",
                &port.to_string(),
            ])
            .env(MARKER_VAR, marker)
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        assert!(
            wait_for(Duration::from_secs(10), || http_get(port, "/health")
                .is_some_and(|(s, _)| s == 200)),
            "stranger did not come up"
        );
        Self { child, port }
    }
}

impl Drop for Stranger {
    fn drop(&mut self) {
        kill_group(self.child.id());
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_bind_is_loopback_and_remote_needs_a_flag() {
    // The default address is 127.0.0.1:9100; only test it when that port is free here.
    let env = Env::new();
    env.write_config(&format!(
        "[russell]\nstate_dir = {}\nautostart = false\n",
        q(env.state_dir.to_str().unwrap())
    ));
    if std::net::TcpListener::bind("127.0.0.1:9100").is_ok() {
        let mut child = Command::new(mdw_bin())
            .args(["serve", "russell", "--config"])
            .arg(&env.config_path)
            .env(MARKER_VAR, &env.marker)
            .env("XDG_RUNTIME_DIR", env.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        let up = wait_for(Duration::from_secs(20), || !listeners_of(pid).is_empty());
        let ls = listeners_of(pid);
        kill9(pid);
        let _ = child.wait();
        let raced = !up && listeners_on_port(9100) > 0;
        if raced {
            eprintln!(
                "security: 127.0.0.1:9100 was taken meanwhile, default-address check skipped"
            );
        }
        assert!(
            up || raced,
            "Russell did not listen with the default config"
        );
        assert!(
            ls.iter().all(|l| l.is_loopback() && l.port == 9100),
            "default bind is not loopback-only 9100: {ls:?}"
        );
    } else {
        eprintln!("security: 127.0.0.1:9100 busy here, default-address check skipped");
    }

    // 0.0.0.0 without --allow-remote is refused, from the flag and from the file.
    let port = free_port();
    let out = refused_run(
        Command::new(mdw_bin())
            .args(["serve", "russell", "--config"])
            .arg(&env.config_path)
            .args(["--listen", &format!("0.0.0.0:{port}"), "--state-dir"])
            .arg(env.dir.path().join("s2"))
            .env(MARKER_VAR, &env.marker),
    );
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "0.0.0.0 bind accepted without --allow-remote"
    );
    assert!(
        text.contains("allow-remote"),
        "message does not name the flag: {text}"
    );
    env.write_config(&format!(
        "[russell]\nlisten = \"0.0.0.0:{port}\"\nstate_dir = {}\nautostart = false\n",
        q(env.dir.path().join("s3").to_str().unwrap())
    ));
    let out = refused_run(
        Command::new(mdw_bin())
            .args(["serve", "russell", "--config"])
            .arg(&env.config_path)
            .env(MARKER_VAR, &env.marker),
    );
    assert!(
        !out.status.success(),
        "listen = 0.0.0.0 in the file accepted without --allow-remote"
    );
}

/// Runs a Russell that is expected to refuse and exit; one that serves instead is killed
/// after 10 s (the test then fails on its exit status instead of hanging).
fn refused_run(cmd: &mut Command) -> std::process::Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    child.wait_with_output().unwrap()
}

/// Every RPC but health, called with `token` (None = no header); returns (rpc, code).
async fn call_all(c: &mut Client, token: Option<&str>) -> Vec<(&'static str, Code)> {
    fn code<T>(r: Result<tonic::Response<T>, tonic::Status>) -> Code {
        r.map_or_else(|s| s.code(), |_| Code::Ok)
    }
    let svc = || pb::ServiceRequest {
        name: "guarded".into(),
    };
    let reg = pb::RegisterRequest {
        name: "probe-entry".into(),
        address: "127.0.0.1".into(),
        ports: HashMap::from([("http".into(), 1)]),
        metadata: HashMap::new(),
        ttl: None,
    };
    vec![
        (
            "GetOrchestratorStatus",
            code(
                c.get_orchestrator_status(authed(pb::StatusRequest {}, token))
                    .await,
            ),
        ),
        (
            "StartService",
            code(c.start_service(authed(svc(), token)).await),
        ),
        (
            "RestartService",
            code(c.restart_service(authed(svc(), token)).await),
        ),
        (
            "StartAllServices",
            code(
                c.start_all_services(authed(pb::StartAllRequest { force: false }, token))
                    .await,
            ),
        ),
        (
            "StreamLogs",
            code(
                c.stream_logs(authed(
                    pb::StreamLogsRequest {
                        name: String::new(),
                        tail: 1,
                        follow: false,
                        ..Default::default()
                    },
                    token,
                ))
                .await,
            ),
        ),
        (
            "WatchEvents",
            code(
                c.watch_events(authed(pb::WatchEventsRequest { names: vec![] }, token))
                    .await,
            ),
        ),
        ("Register", code(c.register(authed(reg, token)).await)),
        (
            "Heartbeat",
            code(
                c.heartbeat(authed(
                    pb::HeartbeatRequest {
                        name: "probe-entry".into(),
                    },
                    token,
                ))
                .await,
            ),
        ),
        (
            "Discover",
            code(
                c.discover(authed(
                    pb::DiscoverRequest {
                        name: "probe-entry".into(),
                    },
                    token,
                ))
                .await,
            ),
        ),
        (
            "ListServices",
            code(c.list_services(authed(pb::Empty {}, token)).await),
        ),
        (
            "Deregister",
            code(
                c.deregister(authed(
                    pb::ServiceRequest {
                        name: "probe-entry".into(),
                    },
                    token,
                ))
                .await,
            ),
        ),
        (
            "StopService",
            code(c.stop_service(authed(svc(), token)).await),
        ),
        (
            "StopAllServices",
            code(c.stop_all_services(authed(pb::Empty {}, token)).await),
        ),
        (
            "Shutdown",
            code(c.shutdown(authed(pb::Empty {}, token)).await),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_guards_every_call_but_health() {
    let mut env = Env::new();
    let token = "s3cr3t-reliability-token-0123456789";
    let token_file = env.dir.path().join("russell.token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let svc = Svc::quick("guarded");
    let mut toml = env.header(
        &format!("token_file = {}", q(token_file.to_str().unwrap())),
        "",
    );
    toml.push_str(&svc.toml());
    env.write_config(&toml);
    env.token = Some(token.into());
    let mut c = env.start_russell().await;
    let _ = c
        .start_all_services(env.req(pb::StartAllRequest { force: false }))
        .await;
    let st = env.wait_all_running(&mut c, Duration::from_secs(30)).await;
    let pid = by_name(&st)["guarded"].pid;

    let raw_token = token.to_string();
    for (label, bad) in [
        ("no token", None),
        ("wrong token", Some("wrong")),
        ("token prefix", Some(&token[..token.len() - 1])),
        ("token + suffix", Some(&format!("{token}x")[..])),
        ("empty token", Some("")),
    ] {
        for (rpc, code) in call_all(&mut c, bad).await {
            assert_eq!(code, Code::Unauthenticated, "{rpc} with {label}");
        }
    }
    // No "Bearer " scheme: the raw token in the header is refused too.
    let mut r = tonic::Request::new(pb::StatusRequest {});
    r.metadata_mut()
        .insert("authorization", raw_token.parse().unwrap());
    let code = c
        .get_orchestrator_status(r)
        .await
        .map_or_else(|s| s.code(), |_| Code::Ok);
    assert_eq!(code, Code::Unauthenticated, "raw token without Bearer");

    // Nothing happened: the service runs with the same PID, Russell still answers.
    let st = env.status(&mut c).await;
    assert_eq!(
        by_name(&st)["guarded"].pid,
        pid,
        "an unauthenticated call touched the service"
    );
    assert!(alive(pid));
    assert!(
        env.russell_running(),
        "an unauthenticated Shutdown stopped Russell"
    );

    // grpc.health answers without a token.
    let health = Probe::Grpc {
        addr: env.addr(),
        service: String::new(),
    };
    russell_core::health::probe(&health, Duration::from_secs(3))
        .await
        .expect("grpc.health without a token");

    // With the token every call goes through (Shutdown last: Russell exits 0).
    let got = call_all(&mut c, Some(token)).await;
    for (rpc, code) in &got {
        assert_ne!(*code, Code::Unauthenticated, "{rpc} with the right token");
    }
    assert_eq!(
        env.wait_russell_exit(Duration::from_secs(30)),
        Some(0),
        "Shutdown with the token"
    );
    // The token appears in no output of Russell and no file of its state dir.
    assert!(
        !env.russell_log().contains(token),
        "Russell printed the token"
    );
    for f in env.state_files() {
        // Regular files only: opening a FIFO for reading would block.
        if !std::fs::symlink_metadata(&f).is_ok_and(|m| m.is_file()) {
            continue;
        }
        let bytes = std::fs::read(&f).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(token),
            "{} contains the token",
            f.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_entries_are_never_signalled() {
    let mut env = Env::new();
    let svc = Svc::quick("managed");
    env.write_services(std::slice::from_ref(&svc));
    let stranger = Stranger::start(&env.marker);
    let spid = stranger.child.id();
    let mut c = env.start_russell().await;
    let _ = c
        .start_all_services(env.req(pb::StartAllRequest { force: false }))
        .await;
    env.wait_all_running(&mut c, Duration::from_secs(30)).await;
    // Register the stranger (and one that claims the managed service's port).
    for (name, port) in [("intruder", stranger.port), ("squatter", svc.http_port)] {
        let r = pb::RegisterRequest {
            name: name.into(),
            address: "127.0.0.1".into(),
            ports: HashMap::from([("http".into(), u32::from(port))]),
            metadata: HashMap::from([("command".into(), "kill -9 -1".into())]),
            ttl: None,
        };
        c.register(env.req(r)).await.expect("Register");
    }
    let managed_before = by_name(&env.status(&mut c).await)["managed"].pid;
    for name in ["intruder", "squatter", "INTRUDER"] {
        let n = || pb::ServiceRequest { name: name.into() };
        let codes = [
            c.restart_service(env.req(n()))
                .await
                .map_or_else(|s| s.code(), |_| Code::Ok),
            c.stop_service(env.req(n()))
                .await
                .map_or_else(|s| s.code(), |_| Code::Ok),
            c.start_service(env.req(n()))
                .await
                .map_or_else(|s| s.code(), |_| Code::Ok),
        ];
        for code in codes {
            assert!(
                matches!(code, Code::NotFound | Code::FailedPrecondition),
                "control call on registry entry {name}: {code:?}"
            );
        }
    }
    // Even a registry entry past its TTL is only dropped, never killed.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(alive(spid), "the registered stranger was killed");
    assert_eq!(listeners_on_port(stranger.port), 1);
    assert!(matches!(http_get(stranger.port, "/health"), Some((200, _))));
    let st = env.status(&mut c).await;
    assert_eq!(
        by_name(&st)["managed"].pid,
        managed_before,
        "{}",
        summary(&st)
    );
    assert!(
        st.services.iter().all(|s| s.short_name == "managed"),
        "registry entry became managed"
    );
    // StopAll stops the managed service only.
    c.stop_all_services(env.req(pb::Empty {}))
        .await
        .expect("StopAll");
    assert!(wait_for(Duration::from_secs(10), || !alive(managed_before)));
    assert!(alive(spid), "StopAll killed a registry entry's process");
}

/// Files in the state dir others may not read: logs, the state file, the FIFOs. The lock and
/// PID files hold nothing secret but must not be writable by others either.
fn open_files(env: &Env) -> Vec<String> {
    let mut open = Vec::new();
    for f in env.state_files() {
        let md = std::fs::symlink_metadata(&f).unwrap();
        let m = md.permissions().mode() & 0o777;
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let private =
            name.contains(".log") || name.starts_with("state") || md.file_type().is_fifo();
        let bad = if name.ends_with(".log") || name.contains(".log.") {
            m != 0o600
        } else if private {
            m & 0o077 != 0
        } else {
            m & 0o022 != 0
        };
        if bad {
            open.push(format!(
                "{} {m:o}{}",
                f.display(),
                if md.file_type().is_fifo() {
                    " (fifo)"
                } else {
                    ""
                }
            ));
        }
    }
    let logs = env.state_dir.join("logs");
    if let Ok(md) = std::fs::metadata(&logs) {
        let m = md.permissions().mode() & 0o777;
        if m & 0o077 != 0 {
            open.push(format!("{} {m:o} (dir)", logs.display()));
        }
    }
    open
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_dir_and_files_are_private() {
    for pre_existing in [false, true] {
        let mut env = Env::new();
        if pre_existing {
            // A state dir the user created with a lax umask is tightened, not trusted.
            std::fs::create_dir(&env.state_dir).unwrap();
            std::fs::set_permissions(&env.state_dir, std::fs::Permissions::from_mode(0o755))
                .unwrap();
        }
        let svc = Svc::quick("private");
        env.write_services(std::slice::from_ref(&svc));
        let mut c = env.start_russell().await;
        let _ = c
            .start_all_services(env.req(pb::StartAllRequest { force: false }))
            .await;
        env.wait_all_running(&mut c, Duration::from_secs(30)).await;
        let mode = std::fs::metadata(&env.state_dir)
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(
            mode, 0o700,
            "state_dir mode {mode:o} (pre-existing: {pre_existing})"
        );
        let logs = env.state_dir.join("logs");
        assert!(
            wait_for(Duration::from_secs(5), || logs.join("private.log").exists()),
            "no private.log in {}",
            logs.display()
        );
        let open = open_files(&env);
        assert!(
            open.is_empty(),
            "files open to others (pre-existing: {pre_existing}):\n{}",
            open.join("\n")
        );
    }
}

#[test]
fn short_name_cannot_escape_the_log_folder() {
    for bad in [
        "../x", "..", "a/b", "/tmp/x", ".hidden", "x\\..\\y", "a b", "Kant",
    ] {
        let mut env = Env::new();
        let mut s = Svc::quick("placeholder");
        s.short = bad.into();
        let mut toml = env.header("", "");
        toml.push_str(&s.toml());
        env.write_config(&toml);
        let out = mdw(&["config", "check", env.config_path.to_str().unwrap()]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !out.status.success(),
            "short_name {bad:?} accepted:\n{text}"
        );
        assert!(
            text.contains("short_name"),
            "message for {bad:?} does not name short_name: {text}"
        );
        assert!(!text.contains("panicked"), "{text}");
        // The daemon refuses it too, and writes nothing outside its state dir.
        env.spawn_russell();
        let code = env.wait_russell_exit(Duration::from_secs(20));
        assert!(
            code.is_some_and(|c| c != 0),
            "serve ran with short_name {bad:?} (exit {code:?})"
        );
        let stray: Vec<String> = std::fs::read_dir(env.dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != "services.toml" && n != "state" && !n.starts_with("russell-"))
            .collect();
        assert!(
            stray.is_empty(),
            "files next to the state dir for {bad:?}: {stray:?}"
        );
    }
}

/// A blank, missing or non-ASCII token file would weaken or break auth: Russell refuses
/// to start instead (an empty expected token would match `Bearer ` with nothing after it).
#[test]
fn unusable_token_files_are_refused() {
    for (label, content) in [
        ("blank", Some(" \n\t\n")),
        ("missing", None),
        ("control chars", Some("ab\u{1}cd\n")),
    ] {
        let mut env = Env::new();
        let token_file = env.dir.path().join("russell.token");
        if let Some(text) = content {
            std::fs::write(&token_file, text).unwrap();
        }
        let mut toml = env.header(
            &format!("token_file = {}", q(token_file.to_str().unwrap())),
            "",
        );
        toml.push_str(&Svc::quick("t").toml());
        env.write_config(&toml);
        env.spawn_russell();
        let code = env.wait_russell_exit(Duration::from_secs(20));
        let log = env.russell_log();
        assert!(
            code.is_some_and(|c| c != 0),
            "Russell ran with a {label} token file (exit {code:?}):\n{log}"
        );
        assert!(
            log.contains("token"),
            "{label}: message does not say token:\n{log}"
        );
        assert!(!log.contains("panicked"), "{log}");
        assert!(env.marked().is_empty(), "{label}: services started anyway");
    }
}

/// PID reuse: after a crash of Russell its service dies too and the PID in state.json now
/// belongs to a stranger (same PID and group, another start time). The next Russell must
/// neither adopt nor signal the stranger; it starts the service afresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reused_pid_in_state_file_is_not_touched() {
    let mut env = Env::new();
    let svc = Svc::quick("svc");
    env.write_services(std::slice::from_ref(&svc));
    let mut c = env.start_russell().await;
    let _ = c
        .start_all_services(env.req(pb::StartAllRequest { force: false }))
        .await;
    let st = env.wait_all_running(&mut c, Duration::from_secs(30)).await;
    let old = by_name(&st)["svc"].pid;
    // The state file is written by its own task just after the change: wait for the
    // record of this PID before the crash, or the crash may come first.
    let path = env.state_dir.join("state.json");
    let recorded = || {
        std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .is_some_and(|v| v["services"]["svc"]["process"]["pid"] == old)
    };
    assert!(
        wait_for(Duration::from_secs(10), recorded),
        "state.json never recorded PID {old}"
    );
    env.kill_russell();
    kill_group(proc_stat(old).unwrap().pgrp);
    assert!(wait_for(Duration::from_secs(5), || !alive(old)));

    let stranger = Stranger::start(&env.marker);
    let spid = stranger.child.id();
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let rec = &mut state["services"]["svc"]["process"];
    assert!(rec.is_object(), "no process record for svc: {state}");
    rec["pid"] = spid.into();
    rec["pgid"] = spid.into();
    std::fs::write(&path, serde_json::to_vec(&state).unwrap()).unwrap();

    let mut c = env.start_russell().await;
    let _ = c
        .start_all_services(env.req(pb::StartAllRequest { force: false }))
        .await;
    let st = env.wait_all_running(&mut c, Duration::from_secs(30)).await;
    let s = &by_name(&st)["svc"];
    assert_ne!(s.pid, spid, "the stranger was adopted: {}", summary(&st));
    assert!(!s.adopted, "{}", summary(&st));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(alive(spid), "the stranger with the reused PID was killed");
    assert!(matches!(http_get(stranger.port, "/health"), Some((200, _))));
    // And a stop of the service does not reach it either.
    c.stop_all_services(env.req(pb::Empty {}))
        .await
        .expect("StopAll");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        alive(spid),
        "StopAll killed the stranger with the reused PID"
    );
}

/// A state file cut short (an old crash mid-write, a full disk) never makes Russell panic:
/// it either starts, or refuses naming the file.
#[test]
fn truncated_state_file_is_handled() {
    let mut env = Env::new();
    env.write_services(&[Svc::quick("t")]);
    std::fs::create_dir_all(&env.state_dir).unwrap();
    std::fs::set_permissions(&env.state_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(
        env.state_dir.join("state.json"),
        "{\"version\":1,\"services\":{\"t\":{\"process\":{\"pid\":1,\"pg",
    )
    .unwrap();
    env.spawn_russell();
    let code = env.wait_russell_exit(Duration::from_secs(5));
    let log = env.russell_log();
    assert!(!log.contains("panicked"), "{log}");
    match code {
        Some(c) => {
            assert_ne!(c, 0, "{log}");
            assert!(
                log.contains("state.json"),
                "refusal does not name the file:\n{log}"
            );
        }
        None => {
            // Still running after 5 s: it started, answers, and took nothing from the cut
            // record (PID 1 was neither adopted nor signalled).
            let rt = tokio::runtime::Runtime::new().unwrap();
            let status = rt.block_on(async {
                let mut c = env.connect().await;
                env.status(&mut c).await
            });
            let t = status.services.iter().find(|s| s.short_name == "t");
            assert!(t.is_some_and(|t| t.pid != 1), "{status:?}");
        }
    }
    eprintln!("truncated state file: exit {code:?}\n{log}");
}
