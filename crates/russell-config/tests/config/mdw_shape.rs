//! mDW's own services file (tests/mdw/services.toml, a byte-for-byte copy of mDW's
//! `configs/services.toml`) and the rest of mDW's file shape: what each key means, where
//! relative paths point, and the errors for mixing it with mdw's own keys.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use russell_config::{Config, ConfigError, FileShape, Probe, parse_in};

/// Where Russell is started: mDW's checkout, where `./bin/mdw` lives.
const CWD: &str = "/srv/mdw";
const MDW: &str = "/usr/bin/mdw";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mdw/services.toml")
}

fn load(text: &str) -> Result<Config, Vec<ConfigError>> {
    parse_in(
        text,
        Path::new("/srv/mdw/configs/services.toml"),
        Path::new(MDW),
        Path::new(CWD),
    )
    .map_err(|e| e.0)
}

fn ok(text: &str) -> Config {
    load(text).unwrap_or_else(|e| panic!("expected valid, got {e:#?}"))
}

fn only_error(text: &str) -> ConfigError {
    let errors = load(text).expect_err("expected errors");
    assert_eq!(errors.len(), 1, "{errors:#?}");
    errors.into_iter().next().unwrap()
}

#[test]
fn mdws_own_file_means_what_mdws_russell_means() {
    let text = std::fs::read_to_string(fixture()).unwrap();
    let c = ok(&text);
    assert_eq!(c.paths.shape, FileShape::Mdw);
    assert_eq!(c.paths.base, Path::new(CWD));
    let shorts: Vec<_> = c.services.iter().map(|s| s.short_name.as_str()).collect();
    assert_eq!(
        shorts,
        ["turing", "hypatia", "babbage", "leibniz", "bayes", "kant"]
    );
    let svc = |short: &str| c.service(short).unwrap();
    assert_eq!(
        svc("kant").dependencies,
        ["turing", "hypatia", "babbage", "leibniz"]
    );
    assert_eq!(svc("turing").dependencies, ["ollama"]);
    assert_eq!(svc("hypatia").dependencies, ["turing", "ollama"]);
    assert_eq!(svc("leibniz").dependencies, ["turing", "hypatia", "ollama"]);
    assert!(svc("bayes").dependencies.is_empty());
    assert_eq!(c.plan().levels.last().unwrap(), &["kant"]);

    assert_eq!(c.externals.len(), 1);
    let ollama = &c.externals[0];
    assert_eq!(
        (ollama.short_name.as_str(), ollama.name.as_str()),
        ("ollama", "Ollama")
    );
    assert!(!ollama.optional, "required = true");
    assert_eq!(
        ollama.health_check.probe,
        Probe::Http {
            url: "http://localhost:11434/api/version".into(),
            expect_body: None
        }
    );
    assert_eq!(ollama.health_check.start_timeout, Duration::from_secs(30));

    let kant = svc("kant");
    assert_eq!(kant.grpc_port, None, "grpc_port = 0 is no gRPC port");
    assert_eq!(kant.http_port, Some(8080));
    assert_eq!(
        kant.health_check.probe,
        Probe::Http {
            url: "http://127.0.0.1:8080/api/v1/health".into(),
            expect_body: None
        }
    );
    // A tcp check without a port probes the primary port: grpc_port.
    assert_eq!(
        svc("turing").health_check.probe,
        Probe::Tcp {
            addr: "127.0.0.1:9200".into()
        }
    );
    for s in &c.services {
        assert_eq!(
            s.command,
            ["/srv/mdw/bin/mdw", "serve", s.short_name.as_str()],
            "{}",
            s.short_name
        );
        assert_eq!(s.working_dir, Path::new(CWD));
        assert_eq!(s.version, "0.1.0");
        assert!(s.enabled);
        assert_eq!(s.max_retries, 3);
        assert_eq!(s.health_check.start_timeout, Duration::from_secs(30));
        assert_eq!(s.health_check.interval, Duration::from_secs(10));
        assert_eq!(s.health_check.timeout, Duration::from_secs(3));
        assert_eq!(s.stop_timeout, Duration::from_secs(10));
    }
    assert_eq!(c.log_dir(), Path::new("/srv/mdw/logs"));
    // The state directory stays next to the file.
    assert_eq!(c.russell.state_dir, Path::new("/srv/mdw/configs/.russell"));
}

#[test]
fn orchestrator_values_are_defaults_a_service_can_override() {
    let c = ok(r#"[orchestrator]
startup_timeout = "45s"
shutdown_timeout = "7s"
health_check_interval = "4s"

[[services]]
name = "A"
command = ["a"]
stop_timeout = "1s"

[services.health_check]
type = "none"
start_timeout = "5s"

[[services]]
name = "B"
command = ["b"]
"#);
    let a = &c.services[0];
    assert_eq!(a.stop_timeout, Duration::from_secs(1));
    assert_eq!(a.health_check.start_timeout, Duration::from_secs(5));
    assert_eq!(a.health_check.interval, Duration::from_secs(4));
    let b = &c.services[1];
    assert_eq!(b.stop_timeout, Duration::from_secs(7));
    assert_eq!(b.health_check.start_timeout, Duration::from_secs(45));
    assert_eq!(b.health_check.interval, Duration::from_secs(4));
    assert_eq!(b.health_check.probe, Probe::None);
}

#[test]
fn binary_path_runs_services_without_a_command() {
    let c = ok(r#"[orchestrator]
binary_path = "./bin/mdw"

[[services]]
name = "Turing"

[[services]]
name = "Own"
command = ["python3", "-m", "own"]

[[services]]
name = "Stand-in"
short_name = "standin"
command = ["{mdw}", "demo"]
"#);
    assert_eq!(
        c.services[0].command,
        ["/srv/mdw/bin/mdw", "serve", "turing"]
    );
    assert_eq!(c.services[1].command, ["python3", "-m", "own"]);
    assert_eq!(c.services[2].command, [MDW, "demo"]);
}

#[test]
fn dependencies_become_externals_required_unless_said_otherwise() {
    let c = ok(r#"[dependencies.ollama]
name = "Ollama"
type = "http"
url = "http://localhost:11434/api/version"
required = false

[dependencies.search]
url = "http://10.0.0.5:9200/"

[[services]]
name = "Turing"
command = ["t"]
external_dependencies = ["ollama", "Search"]
dependencies = []
"#);
    assert_eq!(c.paths.shape, FileShape::Mdw);
    assert!(c.externals[0].optional);
    assert!(!c.externals[1].optional);
    assert_eq!(c.externals[1].name, "search");
    assert_eq!(c.services[0].dependencies, ["ollama", "search"]);
}

#[test]
fn external_dependencies_work_in_the_native_shape_too() {
    let c = ok(r#"[[externals]]
name = "Ollama"

[externals.health_check]
type = "tcp"
address = "127.0.0.1:11434"

[[services]]
name = "Turing"
command = ["./t"]
external_dependencies = ["ollama"]
"#);
    assert_eq!(c.paths.shape, FileShape::Native);
    assert_eq!(c.services[0].dependencies, ["ollama"]);
    // Native shape: relative paths against the file's folder, not the current directory.
    assert_eq!(c.services[0].command, ["/srv/mdw/configs/t"]);
}

#[test]
fn an_external_dependency_that_is_a_service_is_reported_with_a_hint() {
    let e = only_error(
        "[dependencies.ollama]\nurl = \"http://localhost:11434/\"\n\n[[services]]\nname = \"A\"\n\
         command = [\"a\"]\n\n[[services]]\nname = \"B\"\ncommand = [\"b\"]\nexternal_dependencies = [\"a\"]\n",
    );
    assert_eq!(e.service.as_deref(), Some("b"));
    assert_eq!(e.field.as_deref(), Some("external_dependencies"));
    assert_eq!(e.line, Some(11));
    assert!(e.message.contains("unknown external dependency 'a'"), "{e}");
    assert!(
        e.hint.contains("ollama") && e.hint.contains("dependencies"),
        "{e}"
    );
}

#[test]
fn mixing_the_shapes_names_both_keys() {
    let e = only_error(
        "[orchestrator]\nstartup_timeout = \"30s\"\n\n[defaults.health_check]\nstart_timeout = \"20s\"\n",
    );
    assert_eq!(e.field.as_deref(), Some("orchestrator.startup_timeout"));
    assert_eq!(e.line, Some(2));
    assert!(
        e.message.contains(
            "[orchestrator] startup_timeout and [defaults.health_check] start_timeout (line 5)"
        ),
        "{e}"
    );
    let e = only_error(
        "[dependencies.ollama]\nurl = \"http://localhost:11434/\"\n\n[[externals]]\nname = \"Ollama\"\n",
    );
    assert_eq!(e.service.as_deref(), Some("ollama"));
    assert!(e.external);
    assert!(
        e.message
            .contains("[dependencies.ollama] and the [[externals]] entry"),
        "{e}"
    );
    let e = only_error("[orchestrator]\nlog_dir = \"./logs\"\n\n[logs]\ndir = \"/var/log/mdw\"\n");
    assert!(e.message.contains("log_dir and [logs] dir (line 5)"), "{e}");
}

#[test]
fn enabled_version_and_logs_dir_natively() {
    let c = ok(r#"[logs]
dir = "logs"

[defaults]
version = "0.2.0"

[[services]]
name = "A"
command = ["a"]
enabled = false

[[services]]
name = "B"
command = ["b"]
version = "1.0.0"
"#);
    assert_eq!(c.paths.shape, FileShape::Native);
    assert!(!c.services[0].enabled);
    assert_eq!(c.services[0].version, "0.2.0");
    assert!(c.services[1].enabled);
    assert_eq!(c.services[1].version, "1.0.0");
    assert_eq!(c.log_dir(), Path::new("/srv/mdw/configs/logs"));
}

#[test]
fn the_fixture_is_mdws_file_unchanged() {
    // Guard against an edit "fixing" the fixture: keys only mDW's shape has, as mDW wrote them.
    let text = std::fs::read_to_string(fixture()).unwrap();
    for line in [
        "binary_path = \"./bin/mdw\"",
        "[dependencies]",
        "grpc_port = 0  # Kant hat kein gRPC",
        "external_dependencies = [\"ollama\"]",
        "dependencies = []  # Keine internen Dependencies",
    ] {
        assert!(text.contains(line), "{line}");
    }
}
