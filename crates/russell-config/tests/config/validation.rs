//! One test per validation error: each asserts the message names the right service, field
//! and (where the problem has a place) line. Plus what valid files turn into.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use russell_config::{ConfigError, PortConflictPolicy, Probe, parse};

const MDW: &str = "/opt/mdw/bin/mdw";

fn source() -> PathBuf {
    PathBuf::from("/srv/mdw/configs/services.toml")
}

fn ok(text: &str) -> russell_config::Config {
    match parse(text, &source(), Path::new(MDW)) {
        Ok(config) => config,
        Err(errors) => panic!("expected a valid config, got:\n{errors}"),
    }
}

fn errors(text: &str) -> Vec<ConfigError> {
    match parse(text, &source(), Path::new(MDW)) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(errors) => errors.0,
    }
}

/// The single error of `text`, checked for service, field, line and a message fragment.
#[track_caller]
fn one(
    text: &str,
    service: Option<&str>,
    field: &str,
    line: Option<usize>,
    message: &str,
) -> ConfigError {
    let errs = errors(text);
    assert_eq!(
        errs.len(),
        1,
        "expected exactly one error, got:\n{}",
        errs.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let e = errs.into_iter().next().unwrap();
    assert_eq!(e.service.as_deref(), service, "service of: {e}");
    assert_eq!(
        e.field.as_deref(),
        (!field.is_empty()).then_some(field),
        "field of: {e}"
    );
    assert_eq!(e.line, line, "line of: {e}");
    assert!(
        e.message.contains(message),
        "message of: {e}\nexpected to contain: {message}"
    );
    assert!(!e.hint.is_empty(), "every error says what to do: {e}");
    let shown = e.to_string();
    assert!(
        shown.starts_with("/srv/mdw/configs/services.toml"),
        "{shown}"
    );
    if let Some(service) = service {
        assert!(shown.contains(&format!("'{service}'")), "{shown}");
    }
    e
}

/// A minimal valid service entry, used as the base of most cases (lines 1–4).
const KANT: &str = r#"[[services]]
name = "Kant"
http_port = 8080
command = ["./bin/kant"]
"#;

// ---------------------------------------------------------------- valid files

#[test]
fn the_plans_file_parses_exactly_as_written() {
    let text = r#"
[[services]]
name = "Kant"
short_name = "kant"
description = "API Gateway"
http_port = 8080
command = ["./bin/mdw", "serve", "kant"]
dependencies = ["turing"]
start_order = 10
max_retries = 3

[services.health_check]
type = "http"
endpoint = "/api/v1/health"
interval = "10s"
timeout = "3s"

[[services]]
name = "Turing"
short_name = "turing"
description = "LLM Management"
grpc_port = 9200
http_port = 9201
command = ["./bin/mdw", "serve", "turing"]
dependencies = []
start_order = 1
max_retries = 3

[services.health_check]
type = "grpc"
interval = "10s"
timeout = "3s"
"#;
    let config = ok(text);
    assert_eq!(config.services.len(), 2);
    let kant = config.service("KANT").unwrap();
    assert_eq!(kant.command[0], "/srv/mdw/configs/bin/mdw");
    assert_eq!(kant.command[1..], ["serve", "kant"]);
    assert_eq!(kant.dependencies, ["turing"]);
    assert_eq!(
        kant.health_check.probe,
        Probe::Http {
            url: "http://127.0.0.1:8080/api/v1/health".into(),
            expect_body: None
        }
    );
    assert_eq!(kant.health_check.interval, Duration::from_secs(10));
    assert_eq!(kant.health_check.timeout, Duration::from_secs(3));
    let turing = config.service("Turing").unwrap();
    assert_eq!(
        turing.health_check.probe,
        Probe::Grpc {
            addr: "127.0.0.1:9200".into(),
            service: String::new()
        }
    );
    assert_eq!(config.plan().levels, vec![vec!["turing"], vec!["kant"]]);
}

#[test]
fn the_shipped_services_file_validates() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/services.toml");
    let config = russell_config::load_with(&path, Path::new(MDW)).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = config
        .services
        .iter()
        .map(|s| s.short_name.as_str())
        .collect();
    for name in ["kant", "turing", "hypatia", "babbage", "leibniz", "bayes"] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    let externals: Vec<&str> = config
        .externals
        .iter()
        .map(|e| e.short_name.as_str())
        .collect();
    assert_eq!(externals, ["go", "ollama", "models"]);
    assert!(config.externals.iter().all(|e| e.optional));
    let kant = config.service("kant").unwrap();
    assert_eq!(kant.command[0], MDW, "{{mdw}} is replaced");
    assert_eq!(kant.http_port, Some(8080));
    assert_eq!(config.service("turing").unwrap().dependencies, ["ollama"]);
    assert_eq!(
        kant.dependencies,
        ["turing", "hypatia", "babbage", "leibniz"]
    );
    assert_eq!(
        config.service("leibniz").unwrap().dependencies,
        ["turing", "hypatia", "ollama"]
    );
    assert!(config.service("bayes").unwrap().dependencies.is_empty());
    assert_eq!(kant.version, "0.1.0");
    let models = &config.externals[2];
    assert_eq!(
        models.health_check.probe,
        Probe::Ollama {
            url: "http://127.0.0.1:11434/api/tags".into(),
            models: vec!["mistral:7b".into(), "nomic-embed-text".into()],
        }
    );
}

#[test]
fn documented_defaults_apply() {
    let config = ok(KANT);
    let s = &config.services[0];
    assert_eq!(s.short_name, "kant");
    assert_eq!(s.description, "");
    assert_eq!(s.max_retries, 3);
    assert_eq!(s.start_order, 0);
    assert_eq!(s.stop_signal.number, 15);
    assert_eq!(s.stop_signal.name, "SIGTERM");
    assert_eq!(s.stop_timeout, Duration::from_secs(10));
    assert_eq!(s.on_port_conflict, PortConflictPolicy::Adopt);
    assert_eq!(s.restart_backoff, Duration::from_secs(1));
    assert_eq!(s.restart_backoff_max, Duration::from_secs(30));
    assert_eq!(s.restart_reset_after, Duration::from_secs(60));
    assert!(!s.restart_dependents);
    assert_eq!(s.working_dir, Path::new("/srv/mdw/configs"));
    assert_eq!(s.health_check.probe, Probe::None);
    assert_eq!(s.health_check.interval, Duration::from_secs(10));
    assert_eq!(s.health_check.timeout, Duration::from_secs(3));
    assert_eq!(s.health_check.failure_threshold, 3);
    assert_eq!(s.health_check.success_threshold, 1);
    assert_eq!(s.health_check.start_timeout, Duration::from_secs(30));
    assert_eq!(config.russell.listen.to_string(), "127.0.0.1:9100");
    assert_eq!(
        config.russell.state_dir,
        Path::new("/srv/mdw/configs/.russell")
    );
    assert_eq!(config.russell.token_file, None);
    assert!(config.russell.autostart);
    assert_eq!(config.logs.max_file_size, 10 * 1024 * 1024);
    assert_eq!(config.logs.max_files, 5);
    assert_eq!(config.logs.tail_lines, 1000);
    assert_eq!(config.source, source());
}

#[test]
fn every_key_is_read() {
    let text = r#"
[russell]
listen = "127.0.0.1:9999"
state_dir = "state"
token_file = "/etc/mdw/token"
autostart = false

[logs]
max_file_size = "1MiB"
max_files = 2
tail_lines = 50

[[services]]
name = "Worker One"
short_name = "worker-1"
description = "does work"
grpc_port = 7001
http_port = 7002
command = ["{mdw}", "demo", "--config", "./x.toml", "{mdw}"]
working_dir = "run"
env = { RUST_LOG = "debug" }
env_file = ".env"
stop_signal = "INT"
stop_timeout = "2s"
on_port_conflict = "kill"
restart_backoff = "0s"
restart_backoff_max = "5s"
restart_reset_after = "2m"
restart_dependents = true
max_retries = 1000
start_order = -5

[services.health_check]
type = "grpc"
service = "mdw.Worker"
interval = "500ms"
timeout = "100ms"
failure_threshold = 5
success_threshold = 2
start_timeout = "1m"
"#;
    let config = ok(text);
    assert_eq!(config.russell.listen.to_string(), "127.0.0.1:9999");
    assert_eq!(
        config.russell.state_dir,
        Path::new("/srv/mdw/configs/state")
    );
    assert_eq!(
        config.russell.token_file.as_deref(),
        Some(Path::new("/etc/mdw/token"))
    );
    assert!(!config.russell.autostart);
    assert_eq!(config.logs.max_file_size, 1 << 20);
    assert_eq!(config.logs.max_files, 2);
    assert_eq!(config.logs.tail_lines, 50);
    let s = config.service("worker one").unwrap();
    assert_eq!(s.short_name, "worker-1");
    assert_eq!(
        s.command,
        [MDW, "demo", "--config", "./x.toml", MDW],
        "only the program is resolved"
    );
    assert_eq!(s.working_dir, Path::new("/srv/mdw/configs/run"));
    assert_eq!(s.env.get("RUST_LOG").map(String::as_str), Some("debug"));
    assert_eq!(
        s.env_file.as_deref(),
        Some(Path::new("/srv/mdw/configs/.env"))
    );
    assert_eq!((s.stop_signal.number, s.stop_signal.name), (2, "SIGINT"));
    assert_eq!(s.stop_timeout, Duration::from_secs(2));
    assert_eq!(s.on_port_conflict, PortConflictPolicy::Kill);
    assert_eq!(s.restart_backoff, Duration::ZERO);
    assert_eq!(s.restart_backoff_max, Duration::from_secs(5));
    assert_eq!(s.restart_reset_after, Duration::from_secs(120));
    assert!(s.restart_dependents);
    assert_eq!(s.max_retries, 1000);
    assert_eq!(s.start_order, -5);
    assert_eq!(
        s.health_check.probe,
        Probe::Grpc {
            addr: "127.0.0.1:7001".into(),
            service: "mdw.Worker".into()
        }
    );
    assert_eq!(s.health_check.interval, Duration::from_millis(500));
    assert_eq!(s.health_check.timeout, Duration::from_millis(100));
    assert_eq!(s.health_check.failure_threshold, 5);
    assert_eq!(s.health_check.success_threshold, 2);
    assert_eq!(s.health_check.start_timeout, Duration::from_secs(60));
    assert_eq!(s.ports(), [7001, 7002]);
}

#[test]
fn stop_signal_forms() {
    for (written, number) in [
        ("\"SIGTERM\"", 15),
        ("\"TERM\"", 15),
        ("\"sigint\"", 2),
        ("15", 15),
        ("9", 9),
        ("\"SIGHUP\"", 1),
    ] {
        let config = ok(&format!("{KANT}stop_signal = {written}\n"));
        assert_eq!(config.services[0].stop_signal.number, number, "{written}");
    }
}

#[test]
fn sizes_in_bytes_or_units() {
    for (written, bytes) in [
        ("1048576", 1 << 20),
        ("\"10MiB\"", 10 << 20),
        ("\"512KiB\"", 512 << 10),
        ("\"1GB\"", 1_000_000_000),
        ("\"2 M\"", 2 << 20),
    ] {
        let config = ok(&format!("[logs]\nmax_file_size = {written}\n{KANT}"));
        assert_eq!(config.logs.max_file_size, bytes, "{written}");
    }
}

#[test]
fn defaults_fill_in_and_merge_health_checks_key_by_key() {
    let text = r#"
[defaults]
max_retries = 7
stop_timeout = "3s"
env = { A = "1", B = "1" }

[defaults.health_check]
type = "tcp"
interval = "5s"
timeout = "1s"

[[services]]
name = "A"
grpc_port = 7001
command = ["a"]
env = { B = "2" }

[services.health_check]
type = "grpc"
timeout = "2s"

[[services]]
name = "B"
http_port = 7002
command = ["b"]
max_retries = 0

[[services]]
name = "C"
http_port = 7003
command = ["c"]

[services.health_check]
type = "none"
"#;
    let config = ok(text);
    let a = config.service("a").unwrap();
    assert_eq!(a.max_retries, 7);
    assert_eq!(a.stop_timeout, Duration::from_secs(3));
    assert_eq!(a.env.get("A").map(String::as_str), Some("1"));
    assert_eq!(
        a.env.get("B").map(String::as_str),
        Some("2"),
        "own env wins"
    );
    assert!(matches!(a.health_check.probe, Probe::Grpc { .. }));
    assert_eq!(
        a.health_check.interval,
        Duration::from_secs(5),
        "from [defaults]"
    );
    assert_eq!(
        a.health_check.timeout,
        Duration::from_secs(2),
        "own key wins"
    );
    let b = config.service("b").unwrap();
    assert_eq!(b.max_retries, 0);
    assert_eq!(
        b.health_check.probe,
        Probe::Tcp {
            addr: "127.0.0.1:7002".into()
        }
    );
    assert_eq!(config.service("c").unwrap().health_check.probe, Probe::None);
}

#[test]
fn tcp_check_port_defaults_to_grpc_then_http() {
    let text = r#"
[[services]]
name = "A"
grpc_port = 7001
http_port = 7002
command = ["a"]
health_check = { type = "tcp" }

[[services]]
name = "B"
grpc_port = 7003
command = ["b"]
health_check = { type = "tcp", port = 7004 }
"#;
    let config = ok(text);
    assert_eq!(
        config.services[0].health_check.probe,
        Probe::Tcp {
            addr: "127.0.0.1:7001".into()
        }
    );
    assert_eq!(
        config.services[1].health_check.probe,
        Probe::Tcp {
            addr: "127.0.0.1:7004".into()
        }
    );
}

#[test]
fn dependencies_resolve_by_name_or_short_name_in_any_case() {
    let text = r#"
[[services]]
name = "Kant"
command = ["k"]
dependencies = ["TURING", "Ollama", "db"]

[[services]]
name = "Turing"
short_name = "llm"
command = ["t"]

[[externals]]
name = "Ollama"
health_check = { type = "http", url = "http://127.0.0.1:11434/" }

[[externals]]
name = "PostgreSQL"
short_name = "db"
health_check = { type = "tcp", address = "localhost:5432" }
"#;
    let config = ok(text);
    assert_eq!(
        config.service("kant").unwrap().dependencies,
        ["llm", "ollama", "db"]
    );
    assert_eq!(config.service("llm").unwrap().name, "Turing");
    assert_eq!(
        config.plan().levels,
        vec![vec!["llm"], vec!["kant"]],
        "externals do not count"
    );
}

#[test]
fn externals_probe_what_they_say() {
    let text = r#"
[[externals]]
name = "Go"
optional = true
health_check = { type = "exec", command = ["go", "version"] }

[[externals]]
name = "Grpc"
health_check = { type = "grpc", address = "10.0.0.5:50051", service = "x" }

[[externals]]
name = "Nothing"
"#;
    let config = ok(text);
    assert!(config.externals[0].optional);
    assert!(!config.externals[1].optional);
    assert_eq!(
        config.externals[0].health_check.probe,
        Probe::Exec {
            command: vec!["go".into(), "version".into()]
        }
    );
    assert_eq!(
        config.externals[1].health_check.probe,
        Probe::Grpc {
            addr: "10.0.0.5:50051".into(),
            service: "x".into()
        }
    );
    assert_eq!(config.externals[2].health_check.probe, Probe::None);
}

#[test]
fn exec_checks_resolve_paths_and_mdw_too() {
    let config = ok(&format!(
        "{KANT}health_check = {{ type = \"exec\", command = [\"./check.sh\", \"{{mdw}}\"] }}\n"
    ));
    assert_eq!(
        config.services[0].health_check.probe,
        Probe::Exec {
            command: vec!["/srv/mdw/configs/check.sh".into(), MDW.into()]
        }
    );
}

#[test]
fn relative_source_paths_become_absolute() {
    let config = parse(KANT, Path::new("services.toml"), Path::new(MDW)).unwrap();
    assert!(config.source.is_absolute());
    assert!(config.services[0].command[0].starts_with('/'));
    assert!(config.services[0].command[0].ends_with("/bin/kant"));
    assert!(config.services[0].working_dir.is_absolute());
}

#[test]
fn service_lookup_is_case_insensitive() {
    let config = ok(KANT);
    assert!(config.service("Kant").is_some());
    assert!(config.service(" kant ").is_some());
    assert!(config.service("KANT").is_some());
    assert!(config.service("turing").is_none());
}

// ---------------------------------------------------------------- file-level errors

#[test]
fn unreadable_file() {
    let errs = russell_config::load_with(Path::new("/nonexistent/services.toml"), Path::new(MDW))
        .unwrap_err()
        .0;
    assert_eq!(errs.len(), 1);
    assert!(errs[0].message.contains("cannot read"), "{}", errs[0]);
    assert_eq!(errs[0].file, Path::new("/nonexistent/services.toml"));
    assert_eq!(errs[0].line, None);
}

#[test]
fn a_directory_is_unreadable_too() {
    let dir = tempfile::tempdir().unwrap();
    let errs = russell_config::load_with(dir.path(), Path::new(MDW))
        .unwrap_err()
        .0;
    assert!(errs[0].message.contains("cannot read"), "{}", errs[0]);
}

#[test]
fn not_toml() {
    let e = one(
        "[[services]]\nname = \"Kant\ncommand = []\n",
        None,
        "",
        Some(2),
        "not valid TOML",
    );
    assert!(e.column.is_some());
}

#[test]
fn unknown_top_level_key() {
    let e = one(
        &format!("servces = 1\n{KANT}"),
        None,
        "servces",
        Some(1),
        "unknown key 'servces'",
    );
    assert!(e.hint.contains("'services'"), "{e}");
}

#[test]
fn services_written_as_a_single_table() {
    let e = one(
        "[services]\nname = \"Kant\"\n",
        None,
        "services",
        Some(1),
        "must be an array of tables",
    );
    assert!(e.hint.contains("[[services]]"), "{e}");
}

// ---------------------------------------------------------------- keys and types

#[test]
fn typo_in_a_key_suggests_the_right_one() {
    let e = one(
        &format!("{KANT}dependancies = [\"x\"]\n"),
        Some("kant"),
        "dependancies",
        Some(5),
        "unknown key 'dependancies'",
    );
    assert!(e.hint.contains("did you mean 'dependencies'?"), "{e}");
    assert_eq!(e.column, Some(1));
}

#[test]
fn unknown_health_check_key() {
    let e = one(
        &format!(
            "{KANT}[services.health_check]\ntype = \"http\"\nendpoint = \"/h\"\nintervall = \"2s\"\n"
        ),
        Some("kant"),
        "health_check.intervall",
        Some(8),
        "unknown key 'intervall'",
    );
    assert!(e.hint.contains("'interval'"), "{e}");
}

#[test]
fn health_check_key_at_service_level() {
    let e = one(
        &format!("{KANT}endpoint = \"/health\"\n"),
        Some("kant"),
        "endpoint",
        Some(5),
        "unknown key",
    );
    assert!(e.hint.contains("[services.health_check]"), "{e}");
}

#[test]
fn command_in_an_external() {
    let e = one(
        "[[externals]]\nname = \"Ollama\"\ncommand = [\"ollama\", \"serve\"]\n",
        Some("ollama"),
        "command",
        Some(3),
        "unknown key 'command'",
    );
    assert!(e.external);
    assert!(e.to_string().contains("external 'ollama'"), "{e}");
    assert!(e.hint.contains("[[services]]"), "{e}");
}

#[test]
fn wrong_type() {
    one(
        &format!("{KANT}max_retries = \"three\"\n"),
        Some("kant"),
        "max_retries",
        Some(5),
        "expected a whole number",
    );
}

#[test]
fn every_unknown_key_and_bad_value_in_one_pass() {
    let text = format!(
        "{KANT}dependancies = []\nmax_retries = \"x\"\n[[services]]\nname = \"B\"\ncommand = []\nhttp_port = 70000\nfoo = 1\n"
    );
    let errs = errors(&text);
    let fields: Vec<_> = errs
        .iter()
        .map(|e| e.field.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        fields,
        ["dependancies", "max_retries", "command", "http_port", "foo"],
        "{errs:#?}"
    );
    let lines: Vec<_> = errs.iter().map(|e| e.line.unwrap()).collect();
    assert_eq!(lines, [5, 6, 9, 10, 11]);
}

// ---------------------------------------------------------------- names

#[test]
fn missing_name() {
    one(
        "[[services]]\ncommand = [\"x\"]\n",
        Some("#1"),
        "name",
        Some(1),
        "has no name",
    );
}

#[test]
fn duplicate_name() {
    let text = format!(
        "{KANT}\n[[services]]\nname = \"kant\"\nshort_name = \"kant2\"\ncommand = [\"y\"]\n"
    );
    let e = one(
        &text,
        Some("kant2"),
        "name",
        Some(7),
        "duplicate name 'kant'",
    );
    assert!(e.message.contains("line 2"), "{e}");
}

#[test]
fn duplicate_short_name() {
    let text = format!(
        "{KANT}\n[[services]]\nname = \"Other\"\nshort_name = \"kant\"\ncommand = [\"y\"]\n"
    );
    one(
        &text,
        Some("kant"),
        "short_name",
        Some(8),
        "duplicate short_name 'kant'",
    );
}

#[test]
fn duplicate_between_service_and_external() {
    let text = format!("{KANT}\n[[externals]]\nname = \"Kant\"\n");
    let e = one(
        &text,
        Some("kant"),
        "short_name",
        Some(6),
        "duplicate short_name 'kant'",
    );
    assert!(e.external);
}

#[test]
fn short_name_outside_the_allowed_characters() {
    let e = one(
        &format!("{KANT}short_name = \"../Kant\"\n"),
        Some("../Kant"),
        "short_name",
        Some(5),
        "not usable as an identifier",
    );
    assert!(e.hint.contains("a-z"), "{e}");
}

#[test]
fn name_that_gives_no_short_name() {
    let e = one(
        "[[services]]\nname = \"API Gateway\"\ncommand = [\"x\"]\n",
        Some("api gateway"),
        "short_name",
        Some(2),
        "does not make one",
    );
    assert!(e.hint.contains("short_name = \"api-gateway\""), "{e}");
}

// ---------------------------------------------------------------- ports

#[test]
fn port_zero_means_no_port() {
    let c = ok(
        "[[services]]\nname = \"A\"\ncommand = [\"a\"]\ngrpc_port = 0\nhttp_port = 8080\n\n\
         [services.health_check]\ntype = \"tcp\"\n",
    );
    assert_eq!(c.services[0].grpc_port, None);
    assert_eq!(c.services[0].ports(), [8080]);
    assert_eq!(
        c.services[0].health_check.probe,
        Probe::Tcp {
            addr: "127.0.0.1:8080".into()
        }
    );
}

#[test]
fn health_check_port_zero() {
    one(
        "[[services]]\nname = \"A\"\ncommand = [\"a\"]\nhttp_port = 80\n\n[services.health_check]\ntype = \"tcp\"\nport = 0\n",
        Some("a"),
        "health_check.port",
        Some(8),
        "port 0",
    );
}

#[test]
fn port_above_65535() {
    one(
        "[[services]]\nname = \"A\"\ncommand = [\"a\"]\nhttp_port = 70000\n",
        Some("a"),
        "http_port",
        Some(4),
        "70000 is out of range",
    );
}

#[test]
fn negative_port() {
    one(
        "[[services]]\nname = \"A\"\ncommand = [\"a\"]\nhttp_port = -1\n",
        Some("a"),
        "http_port",
        Some(4),
        "out of range",
    );
}

#[test]
fn port_used_twice_across_services() {
    let text = format!("{KANT}\n[[services]]\nname = \"B\"\ncommand = [\"b\"]\ngrpc_port = 8080\n");
    let e = one(
        &text,
        Some("b"),
        "grpc_port",
        Some(9),
        "port 8080 is already used by service 'kant'",
    );
    assert!(e.message.contains("line 3"), "{e}");
}

#[test]
fn port_used_twice_in_one_service() {
    one(
        "[[services]]\nname = \"A\"\ncommand = [\"a\"]\ngrpc_port = 7000\nhttp_port = 7000\n",
        Some("a"),
        "http_port",
        Some(5),
        "both 7000",
    );
}

#[test]
fn port_of_a_service_probed_as_an_external() {
    let text = format!(
        "{KANT}\n[[externals]]\nname = \"Web\"\nhealth_check = {{ type = \"http\", url = \"http://localhost:8080/\" }}\n"
    );
    let e = one(
        &text,
        Some("web"),
        "health_check",
        Some(8),
        "probes port 8080",
    );
    assert!(e.external);
}

#[test]
fn two_externals_may_probe_one_server() {
    ok(r#"
[[externals]]
name = "Ollama"
health_check = { type = "http", url = "http://127.0.0.1:11434/api/version" }
[[externals]]
name = "Models"
health_check = { type = "http", url = "http://127.0.0.1:11434/api/tags", expect_body = "llama" }
"#);
}

#[test]
fn russell_port_used_by_a_service() {
    one(
        "[[services]]\nname = \"A\"\ncommand = [\"a\"]\ngrpc_port = 9100\n",
        Some("a"),
        "grpc_port",
        Some(4),
        "Russell listens on port 9100",
    );
    one(
        "[russell]\nlisten = \"0.0.0.0:7000\"\n[[services]]\nname = \"A\"\ncommand = [\"a\"]\ngrpc_port = 7000\n",
        None,
        "russell.listen",
        Some(2),
        "Russell listens on port 7000",
    );
}

#[test]
fn a_wrongly_typed_value_is_not_also_reported_missing() {
    one(
        "[[services]]\nname = \"A\"\ncommand = \"./a --x\"\n",
        Some("a"),
        "command",
        Some(3),
        "expected an array",
    );
}

// ---------------------------------------------------------------- command

#[test]
fn missing_command() {
    one(
        "[[services]]\nname = \"A\"\n",
        Some("a"),
        "command",
        Some(1),
        "no command",
    );
}

#[test]
fn empty_command() {
    one(
        "[[services]]\nname = \"A\"\ncommand = []\n",
        Some("a"),
        "command",
        Some(3),
        "empty",
    );
}

#[test]
fn command_with_an_empty_program() {
    one(
        "[[services]]\nname = \"A\"\ncommand = [\"\", \"x\"]\n",
        Some("a"),
        "command",
        Some(3),
        "empty",
    );
}

#[test]
fn mdw_placeholder_inside_a_string() {
    one(
        "[[services]]\nname = \"A\"\ncommand = [\"{mdw} demo\"]\n",
        Some("a"),
        "command",
        Some(3),
        "inside a longer string",
    );
}

// ---------------------------------------------------------------- dependencies

#[test]
fn unknown_dependency() {
    let text = format!(
        "{KANT}dependencies = [\"turnig\"]\n[[services]]\nname = \"Turing\"\ncommand = [\"t\"]\n"
    );
    let e = one(
        &text,
        Some("kant"),
        "dependencies",
        Some(5),
        "unknown dependency 'turnig'",
    );
    assert!(e.hint.contains("did you mean 'turing'?"), "{e}");
    assert_eq!(e.column, Some(17));
}

#[test]
fn self_dependency() {
    one(
        &format!("{KANT}dependencies = [\"Kant\"]\n"),
        Some("kant"),
        "dependencies",
        Some(5),
        "depends on itself",
    );
}

#[test]
fn dependency_cycle_is_printed_as_a_path() {
    let text = r#"[[services]]
name = "a"
command = ["a"]
dependencies = ["b"]
[[services]]
name = "b"
command = ["b"]
dependencies = ["c"]
[[services]]
name = "c"
command = ["c"]
dependencies = ["a"]
"#;
    one(
        text,
        Some("a"),
        "dependencies",
        Some(4),
        "dependency cycle: a → b → c → a",
    );
}

#[test]
fn two_cycles_two_errors() {
    let text = r#"[[services]]
name = "a"
command = ["a"]
dependencies = ["b"]
[[services]]
name = "b"
command = ["b"]
dependencies = ["a"]
[[services]]
name = "c"
command = ["c"]
dependencies = ["d"]
[[services]]
name = "d"
command = ["d"]
dependencies = ["c"]
"#;
    let errs = errors(text);
    let messages: Vec<_> = errs.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages,
        ["dependency cycle: a → b → a", "dependency cycle: c → d → c"]
    );
}

// ---------------------------------------------------------------- health checks

fn check(keys: &str) -> String {
    format!("{KANT}[services.health_check]\n{keys}\n")
}

#[test]
fn unknown_health_check_type() {
    let e = one(
        &check("type = \"htpp\""),
        Some("kant"),
        "health_check.type",
        Some(6),
        "unknown health-check type 'htpp'",
    );
    assert!(e.hint.contains("did you mean 'http'?"), "{e}");
}

#[test]
fn health_check_without_type() {
    one(
        &check("interval = \"5s\""),
        Some("kant"),
        "health_check.type",
        Some(5),
        "no type",
    );
}

#[test]
fn http_check_without_endpoint() {
    one(
        &check("type = \"http\""),
        Some("kant"),
        "health_check.endpoint",
        Some(5),
        "needs an endpoint",
    );
}

#[test]
fn http_endpoint_without_slash() {
    one(
        &check("type = \"http\"\nendpoint = \"health\""),
        Some("kant"),
        "health_check.endpoint",
        Some(7),
        "does not start with '/'",
    );
}

#[test]
fn http_check_without_http_port() {
    let text = "[[services]]\nname = \"A\"\ncommand = [\"a\"]\ngrpc_port = 7000\nhealth_check = { type = \"http\", endpoint = \"/h\" }\n";
    one(
        text,
        Some("a"),
        "health_check.type",
        Some(5),
        "needs an http_port",
    );
}

#[test]
fn grpc_check_without_grpc_port() {
    one(
        &check("type = \"grpc\""),
        Some("kant"),
        "health_check.type",
        Some(6),
        "needs a grpc_port",
    );
}

#[test]
fn grpc_check_from_defaults_without_grpc_port() {
    let text = format!("[defaults.health_check]\ntype = \"grpc\"\n{KANT}");
    one(
        &text,
        Some("kant"),
        "health_check.type",
        Some(2),
        "needs a grpc_port",
    );
}

#[test]
fn tcp_check_without_port() {
    let text = "[[services]]\nname = \"A\"\ncommand = [\"a\"]\nhealth_check = { type = \"tcp\" }\n";
    one(
        text,
        Some("a"),
        "health_check.type",
        Some(4),
        "needs a port",
    );
}

#[test]
fn exec_check_without_command() {
    one(
        &check("type = \"exec\""),
        Some("kant"),
        "health_check.command",
        Some(5),
        "needs a command",
    );
}

#[test]
fn zero_interval() {
    one(
        &check("type = \"none\"\ninterval = \"0s\""),
        Some("kant"),
        "health_check.interval",
        Some(7),
        "above zero",
    );
}

#[test]
fn zero_timeout() {
    one(
        &check("type = \"none\"\ntimeout = \"0ms\""),
        Some("kant"),
        "health_check.timeout",
        Some(7),
        "above zero",
    );
}

#[test]
fn timeout_not_below_interval() {
    one(
        &check("type = \"none\"\ninterval = \"2s\"\ntimeout = \"2s\""),
        Some("kant"),
        "health_check.timeout",
        Some(8),
        "timeout 2s is not below interval 2s",
    );
}

#[test]
fn bad_duration() {
    let e = one(
        &check("type = \"none\"\ninterval = \"ten seconds\""),
        Some("kant"),
        "health_check.interval",
        Some(7),
        "not a duration",
    );
    assert!(e.hint.contains("500ms"), "{e}");
}

#[test]
fn zero_failure_threshold() {
    one(
        &check("type = \"none\"\nfailure_threshold = 0"),
        Some("kant"),
        "health_check.failure_threshold",
        Some(7),
        "out of range",
    );
}

#[test]
fn external_ollama_check_lists_models() {
    let c = ok(
        "[[externals]]\nname = \"Models\"\n\n[externals.health_check]\ntype = \"ollama\"\n\
                url = \"http://127.0.0.1:11434/\"\nmodels = [\"mistral:7b\", \"nomic-embed-text\"]\n",
    );
    assert_eq!(
        c.externals[0].health_check.probe,
        Probe::Ollama {
            url: "http://127.0.0.1:11434/api/tags".into(),
            models: vec!["mistral:7b".into(), "nomic-embed-text".into()],
        }
    );
}

#[test]
fn external_http_without_url() {
    let e = one(
        "[[externals]]\nname = \"Ollama\"\n[externals.health_check]\ntype = \"http\"\n",
        Some("ollama"),
        "health_check.url",
        Some(3),
        "needs a url",
    );
    assert!(e.external);
}

#[test]
fn external_https_url() {
    one(
        "[[externals]]\nname = \"Api\"\nhealth_check = { type = \"http\", url = \"https://example.org/\" }\n",
        Some("api"),
        "health_check.url",
        Some(3),
        "not an http:// URL",
    );
}

#[test]
fn external_tcp_without_address() {
    one(
        "[[externals]]\nname = \"Db\"\nhealth_check = { type = \"tcp\" }\n",
        Some("db"),
        "health_check.address",
        Some(3),
        "needs an address",
    );
}

#[test]
fn external_address_without_port() {
    one(
        "[[externals]]\nname = \"Db\"\nhealth_check = { type = \"grpc\", address = \"localhost\" }\n",
        Some("db"),
        "health_check.address",
        Some(3),
        "not host:port",
    );
}

#[test]
fn external_with_endpoint_gets_a_pointer_to_url() {
    let e = one(
        "[[externals]]\nname = \"Db\"\n[externals.health_check]\ntype = \"http\"\nurl = \"http://x:1/\"\nendpoint = \"/h\"\n",
        Some("db"),
        "health_check.endpoint",
        Some(6),
        "unknown key 'endpoint'",
    );
    assert!(e.hint.contains("url ="), "{e}");
}

// ---------------------------------------------------------------- other per-service keys

#[test]
fn max_retries_above_the_bound() {
    let e = one(
        &format!("{KANT}max_retries = 10001\n"),
        Some("kant"),
        "max_retries",
        Some(5),
        "out of range",
    );
    assert!(e.hint.contains("10000"), "{e}");
}

#[test]
fn negative_max_retries() {
    one(
        &format!("{KANT}max_retries = -1\n"),
        Some("kant"),
        "max_retries",
        Some(5),
        "out of range",
    );
}

#[test]
fn unknown_stop_signal() {
    one(
        &format!("{KANT}stop_signal = \"SIGSTOP\"\n"),
        Some("kant"),
        "stop_signal",
        Some(5),
        "unknown stop signal 'SIGSTOP'",
    );
}

#[test]
fn unknown_port_conflict_policy() {
    let e = one(
        &format!("{KANT}on_port_conflict = \"adpot\"\n"),
        Some("kant"),
        "on_port_conflict",
        Some(5),
        "unknown on_port_conflict",
    );
    assert!(e.hint.contains("did you mean 'adopt'?"), "{e}");
}

#[test]
fn backoff_cap_below_first_delay() {
    one(
        &format!("{KANT}restart_backoff = \"10s\"\nrestart_backoff_max = \"5s\"\n"),
        Some("kant"),
        "restart_backoff_max",
        Some(6),
        "below restart_backoff",
    );
}

#[test]
fn bad_env_name() {
    one(
        &format!("{KANT}env = {{ \"A=B\" = \"1\" }}\n"),
        Some("kant"),
        "env.A=B",
        Some(5),
        "not a valid environment variable",
    );
}

#[test]
fn identity_keys_in_defaults() {
    let e = one(
        &format!("[defaults]\ncommand = [\"x\"]\n{KANT}"),
        None,
        "defaults.command",
        Some(2),
        "cannot be set in [defaults]",
    );
    assert!(e.hint.contains("[[services]]"), "{e}");
}

// ---------------------------------------------------------------- [russell] and [logs]

#[test]
fn bad_listen_address() {
    one(
        &format!("[russell]\nlisten = \"localhost:9100\"\n{KANT}"),
        None,
        "russell.listen",
        Some(2),
        "not an IP address",
    );
}

#[test]
fn bad_log_size() {
    one(
        &format!("[logs]\nmax_file_size = \"10 parsecs\"\n{KANT}"),
        None,
        "logs.max_file_size",
        Some(2),
        "not a size",
    );
}

#[test]
fn tail_lines_out_of_range() {
    one(
        &format!("[logs]\ntail_lines = 0\n{KANT}"),
        None,
        "logs.tail_lines",
        Some(2),
        "out of range",
    );
}

// ---------------------------------------------------------------- output

#[test]
fn errors_list_all_in_the_documented_format_and_serialize() {
    let err = parse(
        &check("type = \"http\""),
        Path::new("configs/services.toml"),
        Path::new(MDW),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "configs/services.toml:5:1: service 'kant', field 'health_check.endpoint': an http check \
         needs an endpoint — add endpoint = \"/health\" (the path mdw GETs on http_port)"
    );
    let json = serde_json::to_value(&err).unwrap();
    assert_eq!(json[0]["line"], 5);
    assert_eq!(json[0]["service"], "kant");
    assert_eq!(json[0]["field"], "health_check.endpoint");
}

#[test]
fn toml_examples_in_the_readme_are_valid() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    let blocks: Vec<&str> = doc
        .split("```toml\n")
        .skip(1)
        .filter_map(|rest| rest.split("```").next())
        .collect();
    assert!(blocks.len() >= 5, "{} toml examples", blocks.len());
    for block in blocks {
        if let Err(errors) = parse(block, &source(), Path::new(MDW)) {
            // Examples are fragments: a dependency defined elsewhere is fine.
            for e in &errors {
                assert!(
                    e.message.starts_with("unknown dependency"),
                    "{e}\nin:\n{block}"
                );
            }
        }
    }
}
