//! Whole-screen snapshots with ratatui's TestBackend: the user's plan's screen for a fixed status,
//! the unreachable banner, the log, events and timing panes, narrow and tiny terminals.
//! Every time in the state is fixed, so nothing needs filtering.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, SystemTime};

use controlcenter::api::Update;
use controlcenter::state::{ActionKind, Overlay, State};
use controlcenter::view;
use prost_types::Timestamp;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::Color;
use russell_api::pb;

/// 2026-11-27 20:00:00 UTC: "now" in every test.
const NOW: u64 = 1_795_896_000;

fn ts(secs_before_now: u64) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: i64::try_from(NOW - secs_before_now).unwrap(),
        nanos: 0,
    })
}

fn ts_ms(ms_after_start: u64) -> Option<Timestamp> {
    let start = (NOW - 4980) * 1000 + ms_after_start;
    Some(Timestamp {
        seconds: i64::try_from(start / 1000).unwrap(),
        nanos: i32::try_from((start % 1000) * 1_000_000).unwrap(),
    })
}

struct Svc {
    name: &'static str,
    grpc: u32,
    http: u32,
    state: &'static str,
    up: u64,
    pid: u32,
    deps: &'static [&'static str],
    /// spawned, healthy (ms after the start request)
    timing: (u64, Option<u64>),
}

/// The wire enum for a readable state name ("running").
fn wire_state(name: &str) -> i32 {
    pb::ServiceState::from_str_name(&format!("SERVICE_STATE_{}", name.to_uppercase()))
        .expect("a known state")
        .into()
}

fn service(s: &Svc) -> pb::ServiceStatus {
    let running = matches!(s.state, "running" | "unhealthy" | "starting");
    pb::ServiceStatus {
        name: s.name.into(),
        short_name: s.name.to_lowercase(),
        grpc_port: s.grpc,
        http_port: s.http,
        state: s.state.into(),
        service_state: wire_state(s.state),
        healthy: s.state == "running",
        pid: if running { s.pid } else { 0 },
        started_at: if running { ts(s.up) } else { None },
        restart_count: u32::from(s.state == "failed") * 3,
        max_retries: 3,
        last_error: if s.state == "failed" {
            "exited with code 1 (3 restarts): listen tcp :9130: address already in use".into()
        } else {
            String::new()
        },
        dependencies: s.deps.iter().map(|d| (*d).to_string()).collect(),
        cpu_percent: if running { 1.5 } else { 0.0 },
        rss_bytes: if running { 12 * 1024 * 1024 } else { 0 },
        timing: Some(pb::StartTiming {
            requested_at: ts_ms(0),
            spawned_at: ts_ms(s.timing.0),
            healthy_at: s.timing.1.and_then(ts_ms),
        }),
        ..Default::default()
    }
}

/// The plan's line-up: 7 services, 5 running and healthy.
fn plan_status() -> pb::OrchestratorStatus {
    let rows = [
        Svc {
            name: "Kant",
            grpc: 0,
            http: 8080,
            state: "running",
            up: 4980,
            pid: 4101,
            deps: &["turing"],
            timing: (1400, Some(1900)),
        },
        Svc {
            name: "Turing",
            grpc: 9200,
            http: 9201,
            state: "running",
            up: 4980,
            pid: 4102,
            deps: &[],
            timing: (10, Some(700)),
        },
        Svc {
            name: "Hypatia",
            grpc: 9220,
            http: 0,
            state: "stopped",
            up: 0,
            pid: 0,
            deps: &["turing"],
            timing: (720, Some(1300)),
        },
        Svc {
            name: "Babbage",
            grpc: 9150,
            http: 0,
            state: "running",
            up: 2700,
            pid: 4104,
            deps: &["turing"],
            timing: (710, Some(1000)),
        },
        Svc {
            name: "Leibniz",
            grpc: 9140,
            http: 0,
            state: "running",
            up: 2700,
            pid: 4105,
            deps: &["turing", "hypatia"],
            timing: (1310, Some(1600)),
        },
        Svc {
            name: "Bayes",
            grpc: 9120,
            http: 0,
            state: "running",
            up: 2700,
            pid: 4106,
            deps: &[],
            timing: (5, Some(400)),
        },
        Svc {
            name: "Platon",
            grpc: 9130,
            http: 0,
            state: "failed",
            up: 0,
            pid: 0,
            deps: &[],
            timing: (6, None),
        },
    ];
    pb::OrchestratorStatus {
        status: "running".into(),
        total_services: 7,
        running_services: 5,
        healthy_services: 5,
        failed_services: 1,
        services: rows.iter().map(service).collect(),
        started_at: ts(8100),
        externals: ["Go", "Ollama", "Models"]
            .iter()
            .map(|n| pb::ExternalStatus {
                name: (*n).into(),
                short_name: n.to_lowercase(),
                state: "healthy".into(),
                external_state: pb::ExternalState::Healthy.into(),
                ..Default::default()
            })
            .collect(),
        version: "0.1.0".into(),
        pid: 4000,
    }
}

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(NOW)
}

fn connected() -> State {
    let mut state = State::new("127.0.0.1:9100", now());
    state.apply(Update::Connected);
    state.apply(Update::Status(Box::new(plan_status())));
    state
}

fn render(state: &State, width: u16, height: u16) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| view::draw(f, state)).unwrap();
    terminal
}

#[test]
fn plan_screen_80x24() {
    let state = connected();
    insta::assert_snapshot!(render(&state, 80, 24).backend());
}

#[test]
fn plan_screen_wide_shows_all_columns() {
    let mut state = connected();
    state.selected = 6;
    insta::assert_snapshot!(render(&state, 110, 26).backend());
}

#[test]
fn colours_follow_the_state() {
    let state = connected();
    let terminal = render(&state, 80, 24);
    let buf = terminal.backend().buffer();
    // Find the STATUS cell of a row by its text.
    let find = |needle: &str| {
        (0..buf.area.height)
            .find_map(|y| {
                let row: String = (0..buf.area.width)
                    .map(|x| buf[(x, y)].symbol().to_string())
                    .collect();
                row.find(needle).map(|byte| {
                    let x = row[..byte].chars().count();
                    buf[(u16::try_from(x).unwrap(), y)].fg
                })
            })
            .unwrap()
    };
    assert_eq!(find("● running"), Color::Green);
    assert_eq!(find("● failed"), Color::Red);
    assert_eq!(find("✓ ok"), Color::Green);
}

#[test]
fn progress_and_error_in_status_line() {
    let mut state = connected();
    state.begin(ActionKind::StartAll);
    let screen = render(&state, 80, 24).backend().to_string();
    assert!(screen.contains("starting all… 5/7"), "{screen}");
    let id = state.pending[0].id;
    state.apply(Update::Done {
        id,
        outcome: Err("start all failed: platon: port 9130 is held by PID 77 (nc -l 9130)".into()),
    });
    let screen = render(&state, 80, 24).backend().to_string();
    assert!(
        screen.contains("start all failed: platon: port 9130 is held by PID 77"),
        "{screen}"
    );
}

#[test]
fn missing_models_named_in_dependencies_line() {
    let mut status = plan_status();
    let models = &mut status.externals[2];
    models.state = "unhealthy".into();
    models.external_state = pb::ExternalState::Unhealthy.into();
    models.last_error = "http://127.0.0.1:11434/api/tags: model not pulled into Ollama: \
                         mistral:7b; get it with `ollama pull mistral:7b`"
        .into();
    models.missing_models = vec!["mistral:7b".into()];
    let mut state = connected();
    state.apply(Update::Status(Box::new(status)));
    let terminal = render(&state, 80, 24);
    let screen = format!("{}", terminal.backend());
    assert!(
        screen.contains("Models ✗ (missing: mistral:7b)"),
        "{screen}"
    );
    insta::assert_snapshot!(terminal.backend());
}

#[test]
fn unreachable_banner() {
    let mut state = State::new("127.0.0.1:9100", now());
    state.apply(Update::Unreachable {
        error: "tcp connect error: Connection refused (os error 111)".into(),
        attempt: 3,
    });
    insta::assert_snapshot!(render(&state, 80, 24).backend());
}

#[test]
fn log_pane() {
    let mut state = connected();
    state.overlay = Overlay::Logs;
    state.logs.service = "kant".into();
    state.logs.generation = 7;
    for i in 0..40u64 {
        state.apply(Update::Log {
            generation: 7,
            line: pb::LogLine {
                service: "kant".into(),
                timestamp: ts(100 - i),
                stream: if i % 2 == 0 { "stdout" } else { "stderr" }.into(),
                line: format!("kant line {i}: GET /api/v1/health 200"),
            },
        });
    }
    insta::assert_snapshot!("log_pane_following", render(&state, 80, 24).backend());
    state.logs.scroll = 10;
    state.logs.search_input = Some("line 2".into());
    insta::assert_snapshot!(
        "log_pane_scrolled_searching",
        render(&state, 80, 24).backend()
    );
}

#[test]
fn events_pane() {
    let mut state = connected();
    state.overlay = Overlay::Events;
    for (i, (kind, service, st, message)) in [
        ("starting", "platon", "starting", "spawned PID 4107"),
        ("exited", "platon", "restarting", "exited with code 1"),
        ("restarting", "platon", "restarting", "attempt 3 in 4s"),
        ("failed", "platon", "failed", "gave up after 3 restarts"),
        ("stopped", "hypatia", "stopped", "stopped by user"),
    ]
    .into_iter()
    .enumerate()
    {
        state.apply(Update::Event(pb::Event {
            kind: kind.into(),
            service: service.into(),
            state: st.into(),
            service_state: wire_state(st),
            message: message.into(),
            timestamp: ts(60 - 10 * i as u64),
            ..Default::default()
        }));
    }
    insta::assert_snapshot!(render(&state, 80, 24).backend());
}

#[test]
fn timing_pane() {
    let mut state = connected();
    state.overlay = Overlay::Timing;
    insta::assert_snapshot!(render(&state, 80, 24).backend());
}

#[test]
fn graph_pane() {
    let mut state = connected();
    state.overlay = Overlay::Graph;
    insta::assert_snapshot!(render(&state, 80, 24).backend());
}

#[test]
fn narrow_terminal_40x10() {
    let state = connected();
    insta::assert_snapshot!(render(&state, 40, 10).backend());
}

#[test]
fn tiny_terminals_do_not_panic() {
    let mut state = connected();
    for overlay in [
        Overlay::None,
        Overlay::Logs,
        Overlay::Events,
        Overlay::Timing,
        Overlay::Graph,
    ] {
        state.overlay = overlay;
        for (w, h) in [
            (20, 5),
            (1, 1),
            (3, 3),
            (12, 4),
            (40, 10),
            (79, 19),
            (80, 20),
            (200, 60),
        ] {
            render(&state, w, h);
        }
    }
    insta::assert_snapshot!(render(&connected(), 20, 5).backend());
}
