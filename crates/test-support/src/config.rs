//! `Config` values built in Rust for the orchestrator tests (the loader is not under test
//! there): a service with quick test timings, the stand-in on a port, an external.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use russell_config::{
    Config, External, HealthCheck, LogSettings, PortConflictPolicy, Probe, RussellSettings,
    Service, StopSignal,
};

use crate::bins::demo_bin;

/// A service with quick test timings and no health check.
pub fn service(short: &str, command: &[&str]) -> Service {
    Service {
        name: short.to_uppercase(),
        short_name: short.into(),
        description: format!("test service {short}"),
        grpc_port: None,
        http_port: None,
        command: command.iter().map(|s| s.to_string()).collect(),
        working_dir: std::env::temp_dir(),
        env: BTreeMap::new(),
        env_file: None,
        dependencies: Vec::new(),
        start_order: 0,
        max_retries: 3,
        stop_signal: StopSignal {
            number: 15,
            name: "SIGTERM",
        },
        stop_timeout: Duration::from_secs(3),
        on_port_conflict: PortConflictPolicy::Adopt,
        restart_backoff: Duration::from_millis(200),
        restart_backoff_max: Duration::from_secs(1),
        restart_reset_after: Duration::from_secs(60),
        restart_dependents: false,
        version: String::new(),
        enabled: true,
        kind: russell_config::ServiceKind::Service,
        restart: russell_config::RestartPolicy::Always,
        success_exit_codes: vec![0],
        health_check: HealthCheck {
            probe: Probe::None,
            interval: Duration::from_millis(200),
            timeout: Duration::from_millis(500),
            failure_threshold: 3,
            success_threshold: 1,
            start_timeout: Duration::from_secs(10),
        },
        watch: Vec::new(),
        watch_debounce: Duration::from_millis(500),
    }
}

/// The stand-in service on `port` with an HTTP health check, plus extra flags.
pub fn demo(short: &str, port: u16, extra: &[&str]) -> Service {
    let bin = demo_bin();
    let port_s = port.to_string();
    let mut cmd = vec![
        bin.to_str().unwrap(),
        "--name",
        short,
        "--http-port",
        &port_s,
    ];
    cmd.extend_from_slice(extra);
    let mut s = service(short, &cmd);
    s.http_port = Some(port);
    s.health_check.probe = Probe::Http {
        url: format!("http://127.0.0.1:{port}/health"),
        expect_body: None,
    };
    s
}

/// An external with a TCP check.
pub fn external(short: &str, addr: &str, optional: bool) -> External {
    External {
        name: short.to_uppercase(),
        short_name: short.into(),
        description: String::new(),
        optional,
        health_check: HealthCheck {
            probe: Probe::Tcp { addr: addr.into() },
            interval: Duration::from_millis(200),
            timeout: Duration::from_millis(300),
            failure_threshold: 3,
            success_threshold: 1,
            start_timeout: Duration::from_millis(800),
        },
    }
}

/// A config of these services and externals with its state dir in `dir`.
pub fn config(dir: &Path, services: Vec<Service>, externals: Vec<External>) -> Config {
    Config {
        source: dir.join("services.toml"),
        russell: RussellSettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            state_dir: dir.join("state"),
            token_file: None,
            autostart: true,
            watch_config: false,
            http_listen: None,
        },
        logs: LogSettings {
            dir: None,
            max_file_size: 1 << 20,
            max_files: 2,
            tail_lines: 1000,
        },
        services,
        externals,
        paths: Default::default(),
    }
}
