//! Reliability 5 — bad input. Over gRPC: empty, huge (1 MiB), unicode and control-character
//! names, unknown services and out-of-range numbers get INVALID_ARGUMENT / NOT_FOUND (or
//! the documented ALREADY_EXISTS), never a crash: Russell still answers afterwards with the
//! same PID and every service untouched. On the command line: every malformed config under
//! `crates/russell-config/tests/bad/` (written by the config suite) is refused by
//! `mdw config check` and `mdw serve russell` with a message and without a panic.
//!
//! `cargo test -p mdw --test reliability bad_input::`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use russell_api::pb;
use test_support::prelude::*;
use tonic::Code;

/// Names no service has, with what a correct server answers.
fn bad_names() -> Vec<(String, &'static str, &'static [Code])> {
    const INVALID: &[Code] = &[Code::InvalidArgument];
    const NOT_FOUND: &[Code] = &[Code::NotFound];
    const EITHER: &[Code] = &[Code::NotFound, Code::InvalidArgument];
    vec![
        (String::new(), "empty", INVALID),
        ("   ".into(), "blank", INVALID),
        ("x".repeat(1 << 20), "1 MiB", INVALID),
        ("s".repeat(300), "300 chars", EITHER),
        ("サービス🚀".into(), "unicode", NOT_FOUND),
        ("e\u{301}\u{202e}rtl".into(), "combining + bidi", EITHER),
        ("a\0b".into(), "NUL", INVALID),
        ("line\nbreak".into(), "newline", INVALID),
        ("\u{7}\u{1b}[31m".into(), "bell + escape", INVALID),
        ("../../etc/passwd".into(), "path", EITHER),
        ("%s%n%x".into(), "format string", NOT_FOUND),
        ("nope".into(), "unknown", NOT_FOUND),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_bad_input_gets_proper_codes_and_no_crash() {
    let mut env = Env::new();
    let svc = Svc::quick("good");
    env.write_services(std::slice::from_ref(&svc));
    let mut c = env.start_russell().await;
    let _ = c
        .start_all_services(env.req(pb::StartAllRequest { force: false }))
        .await;
    let before = env.wait_all_running(&mut c, Duration::from_secs(30)).await;
    let russell = env.russell_pid().unwrap();
    let mut wrong = Vec::new();
    let mut tried = 0;
    let mut check = |what: String, got: Code, want: &[Code]| {
        tried += 1;
        if !want.contains(&got) {
            wrong.push(format!("{what}: got {got:?}, want one of {want:?}"));
        }
    };
    fn code<T>(r: Result<tonic::Response<T>, tonic::Status>) -> Code {
        r.map_or_else(|s| s.code(), |_| Code::Ok)
    }

    for (name, label, want) in bad_names() {
        let n = || pb::ServiceRequest { name: name.clone() };
        check(
            format!("StartService({label})"),
            code(c.start_service(env.req(n())).await),
            want,
        );
        check(
            format!("StopService({label})"),
            code(c.stop_service(env.req(n())).await),
            want,
        );
        check(
            format!("RestartService({label})"),
            code(c.restart_service(env.req(n())).await),
            want,
        );
        check(
            format!("Deregister({label})"),
            code(c.deregister(env.req(n())).await),
            want,
        );
        check(
            format!("Heartbeat({label})"),
            code(
                c.heartbeat(env.req(pb::HeartbeatRequest { name: name.clone() }))
                    .await,
            ),
            want,
        );
        check(
            format!("Discover({label})"),
            code(
                c.discover(env.req(pb::DiscoverRequest { name: name.clone() }))
                    .await,
            ),
            want,
        );
        if !name.trim().is_empty() {
            // Empty = all services for logs; every other bad name is refused up front.
            let r = c
                .stream_logs(env.req(pb::StreamLogsRequest {
                    name: name.clone(),
                    tail: 1,
                    follow: false,
                    ..Default::default()
                }))
                .await;
            check(format!("StreamLogs({label})"), code(r), want);
            let r = c
                .watch_events(env.req(pb::WatchEventsRequest {
                    names: vec![name.clone()],
                }))
                .await;
            check(format!("WatchEvents({label})"), code(r), want);
        }
        let reg = pb::RegisterRequest {
            name: name.clone(),
            address: "127.0.0.1".into(),
            ports: HashMap::from([("http".to_string(), 1234)]),
            metadata: HashMap::new(),
            ttl: None,
        };
        // Register of a plain unknown name is fine; a malformed one is not.
        let want_reg: &[Code] = if want == [Code::NotFound] {
            &[Code::Ok]
        } else {
            &[Code::InvalidArgument, Code::Ok]
        };
        check(
            format!("Register({label})"),
            code(c.register(env.req(reg)).await),
            want_reg,
        );
    }

    // Numbers out of range.
    let reg = |ports: Vec<(&str, u32)>, ttl: Option<(i64, i32)>| {
        let mut r = pb::RegisterRequest {
            name: "ranged".into(),
            address: "127.0.0.1".into(),
            ports: ports.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            metadata: HashMap::new(),
            ttl: ttl.map(|_| Default::default()),
        };
        if let (Some(d), Some((secs, nanos))) = (r.ttl.as_mut(), ttl) {
            d.seconds = secs;
            d.nanos = nanos;
        }
        r
    };
    let inv = &[Code::InvalidArgument][..];
    for (label, r) in [
        ("port 0", reg(vec![("http", 0)], None)),
        ("port 65536", reg(vec![("http", 65536)], None)),
        ("port u32::MAX", reg(vec![("http", u32::MAX)], None)),
        ("ttl -5s", reg(vec![("http", 80)], Some((-5, 0)))),
        (
            "ttl i64::MAX s",
            reg(vec![("http", 80)], Some((i64::MAX, 0))),
        ),
        (
            "ttl 100 years",
            reg(vec![("http", 80)], Some((100 * 365 * 86400, 0))),
        ),
    ] {
        check(
            format!("Register({label})"),
            code(c.register(env.req(r)).await),
            inv,
        );
    }
    let many: HashMap<String, String> = (0..20_000)
        .map(|i| (format!("k{i}"), "v".to_string()))
        .collect();
    let r = pb::RegisterRequest {
        name: "many".into(),
        address: "127.0.0.1".into(),
        ports: HashMap::new(),
        metadata: many,
        ttl: None,
    };
    check(
        "Register(20000 metadata pairs)".into(),
        code(c.register(env.req(r)).await),
        inv,
    );
    let r = pb::RegisterRequest {
        name: "noaddr".into(),
        address: String::new(),
        ports: HashMap::new(),
        metadata: HashMap::new(),
        ttl: None,
    };
    check(
        "Register(empty address)".into(),
        code(c.register(env.req(r)).await),
        inv,
    );
    let r = pb::RegisterRequest {
        name: "good".into(),
        address: "127.0.0.1".into(),
        ports: HashMap::new(),
        metadata: HashMap::new(),
        ttl: None,
    };
    check(
        "Register(name of a managed service)".into(),
        code(c.register(env.req(r)).await),
        &[Code::AlreadyExists, Code::FailedPrecondition],
    );
    let r = c
        .stream_logs(env.req(pb::StreamLogsRequest {
            name: "good".into(),
            tail: u32::MAX,
            follow: false,
            ..Default::default()
        }))
        .await;
    check("StreamLogs(tail u32::MAX)".into(), code(r), inv);
    let r = c
        .watch_events(env.req(pb::WatchEventsRequest {
            names: (0..100_000).map(|i| format!("n{i}")).collect(),
        }))
        .await;
    check(
        "WatchEvents(100000 names)".into(),
        code(r),
        &[Code::InvalidArgument, Code::NotFound],
    );
    // Deregister / Heartbeat of a managed service: not a registry entry.
    let r = c
        .deregister(env.req(pb::ServiceRequest {
            name: "good".into(),
        }))
        .await;
    check(
        "Deregister(managed)".into(),
        code(r),
        &[Code::FailedPrecondition],
    );

    // Russell survived all of it and nothing changed.
    assert!(
        env.russell_running(),
        "Russell died:\n{}",
        env.russell_log()
    );
    let after = env.status(&mut c).await;
    assert_eq!(after.pid, russell);
    assert_eq!(
        before
            .services
            .iter()
            .map(|s| (s.pid, s.restart_count))
            .collect::<Vec<_>>(),
        after
            .services
            .iter()
            .map(|s| (s.pid, s.restart_count))
            .collect::<Vec<_>>(),
        "bad input touched a service: {}",
        summary(&after)
    );
    assert_status_matches_reality(&after);
    eprintln!("bad input: {tried} calls tried, {} wrong", wrong.len());
    assert!(wrong.is_empty(), "wrong codes:\n{}", wrong.join("\n"));
}

/// A google.protobuf.Duration with nanos outside ±999,999,999 is malformed by the proto's
/// own definition; Russell normalizes it (1 s + 2e9 ns = 3 s) and accepts the Register.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_rejects_out_of_range_duration_nanos() {
    let mut env = Env::new();
    env.write_services(&[Svc::quick("good")]);
    let mut c = env.start_russell().await;
    let mut r = pb::RegisterRequest {
        name: "ranged".into(),
        address: "127.0.0.1".into(),
        ports: HashMap::from([("http".to_string(), 80)]),
        metadata: HashMap::new(),
        ttl: Some(Default::default()),
    };
    if let Some(d) = r.ttl.as_mut() {
        d.seconds = 1;
        d.nanos = 2_000_000_000;
    }
    let code = c
        .register(env.req(r))
        .await
        .map_or_else(|s| s.code(), |_| Code::Ok);
    assert_eq!(code, Code::InvalidArgument);
}

/// The malformed configs written by the config suite.
fn bad_configs() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../russell-config/tests/bad");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn every_bad_config_is_refused_without_panic() {
    let files = bad_configs();
    eprintln!("bad configs: {} files", files.len());
    for f in &files {
        let out = mdw(&["config", "check", f.to_str().unwrap()]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{} accepted:\n{text}", f.display());
        assert!(
            !text.contains("panicked"),
            "{} panicked:\n{text}",
            f.display()
        );
        assert!(text.trim().len() > 10, "{}: no message", f.display());
    }
}

#[test]
fn serve_refuses_bad_configs_without_panic() {
    let files = bad_configs();
    for f in files.iter().take(10) {
        let mut env = Env::new();
        env.config_path = f.clone();
        env.spawn_russell();
        let code = env.wait_russell_exit(Duration::from_secs(20));
        let text = env.russell_log();
        assert!(
            code.is_some_and(|c| c != 0),
            "serve ran with {} (exit {code:?}):\n{text}",
            f.display()
        );
        assert!(
            !text.contains("panicked"),
            "{} panicked:\n{text}",
            f.display()
        );
    }
}
