//! Properties over many generated services files: on every target, every dependency edge
//! becomes a gate (or a warning that names it), and every check becomes a probe with the
//! same timings. The files come from a fixed-seed generator, so a failure repeats.
#![allow(clippy::unwrap_used)]

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use mdw_export::{Export, Options, Target, duration};
use russell_config::{Config, Probe};
use test_support::Rng;
use yaml_serde::Value;

/// A random valid services file: services depend only on earlier ones (no cycles).
fn generate(rng: &mut Rng) -> String {
    let mut t = String::new();
    let externals = rng.below(3) as usize;
    let services = 1 + rng.below(6) as usize;
    let mut names: Vec<String> = Vec::new();
    for e in 0..externals {
        let name = format!("ext{e}");
        let optional = rng.chance(30);
        let (kind, target) = match rng.below(3) {
            0 => ("tcp", format!("address = \"db{e}.internal:{}\"", 5000 + e)),
            1 => ("http", format!("url = \"http://10.1.0.{e}:80/health\"")),
            _ => ("exec", "command = [\"true\"]".to_string()),
        };
        let _ = write!(
            t,
            "[[externals]]\nname = \"{name}\"\nshort_name = \"{name}\"\noptional = {optional}\n\
             [externals.health_check]\ntype = \"{kind}\"\n{target}\nstart_timeout = \"{}s\"\n\n",
            1 + rng.below(60)
        );
        names.push(name);
    }
    for i in 0..services {
        let name = format!("svc{i}");
        let grpc = 20000 + 2 * i as u16;
        let http = grpc + 1;
        let deps: Vec<String> = names
            .iter()
            .filter(|_| rng.chance(40))
            .map(|n| format!("\"{n}\""))
            .collect();
        let interval_ms = 1000 * (1 + rng.below(10)) + if rng.chance(20) { 500 } else { 0 };
        let timeout_ms = 100 * (1 + rng.below(interval_ms / 100 - 1));
        let check = match rng.below(5) {
            0 => "type = \"grpc\"\nservice = \"x.v1.X\"".to_string(),
            1 => "type = \"http\"\nendpoint = \"/health\"".to_string(),
            2 => "type = \"tcp\"".to_string(),
            3 => "type = \"exec\"\ncommand = [\"true\"]".to_string(),
            _ => "type = \"none\"".to_string(),
        };
        let _ = write!(
            t,
            "[[services]]\nname = \"{name}\"\nshort_name = \"{name}\"\ngrpc_port = {grpc}\n\
             http_port = {http}\ncommand = [\"/bin/sleep\", \"1000\"]\ndependencies = [{}]\n\
             max_retries = {}\n[services.health_check]\n{check}\ninterval = \"{interval_ms}ms\"\n\
             timeout = \"{timeout_ms}ms\"\nfailure_threshold = {}\nsuccess_threshold = {}\n\
             start_timeout = \"{}s\"\n\n",
            deps.join(", "),
            rng.below(5),
            1 + rng.below(5),
            1 + rng.below(3),
            1 + rng.below(90),
        );
        names.push(name);
    }
    t
}

fn configs() -> Vec<Config> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    (0..150)
        .map(|_| {
            let text = generate(&mut rng);
            russell_config::parse(&text, Path::new("/srv/gen.toml"), Path::new("/usr/bin/mdw"))
                .unwrap_or_else(|e| panic!("generated file invalid: {e}\n{text}"))
        })
        .collect()
}

fn warned(export: &Export, service: &str, key: &str, mentions: &str) -> bool {
    export
        .warnings
        .iter()
        .any(|w| w.service == service && w.key == key && w.message.contains(mentions))
}

fn secs_up(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000) as u64
}

fn is_external(config: &Config, name: &str) -> bool {
    config.externals.iter().any(|e| e.short_name == name)
}

#[test]
fn compose_gates_every_edge_and_keeps_every_check() {
    for config in configs() {
        let export = mdw_export::export(Target::Compose, &config, &Options::default()).unwrap();
        let doc: Value = yaml_serde::from_str(&export.files[0].text).unwrap();
        for s in &config.services {
            let svc = &doc["services"][s.short_name.as_str()];
            for dep in &s.dependencies {
                let gated = if is_external(&config, dep) {
                    svc["depends_on"][format!("wait-{dep}").as_str()]["condition"]
                        == "service_completed_successfully"
                } else {
                    svc["depends_on"][dep.as_str()]["condition"].is_string()
                };
                assert!(
                    gated || warned(&export, &s.short_name, "dependencies", dep),
                    "{} -> {dep} lost:\n{}",
                    s.short_name,
                    export.files[0].text
                );
            }
            let check = &s.health_check;
            let hc = &svc["healthcheck"];
            if matches!(check.probe, Probe::None) {
                assert!(hc.is_null());
                continue;
            }
            assert_eq!(hc["interval"], duration(check.interval).as_str());
            assert_eq!(hc["timeout"], duration(check.timeout).as_str());
            assert_eq!(hc["retries"], u64::from(check.failure_threshold));
            assert_eq!(hc["start_period"], duration(check.start_timeout).as_str());
        }
    }
}

#[test]
fn kubernetes_gates_every_edge_and_keeps_every_check() {
    for config in configs() {
        let export = mdw_export::export(Target::Kubernetes, &config, &Options::default()).unwrap();
        for s in &config.services {
            let file = export
                .files
                .iter()
                .find(|f| f.name == format!("{}.yaml", s.short_name))
                .unwrap();
            let deployment: Value = yaml_serde::Deserializer::from_str(&file.text)
                .map(|d| serde::Deserialize::deserialize(d).unwrap())
                .find(|v: &Value| v["kind"] == "Deployment")
                .unwrap();
            let pod = &deployment["spec"]["template"]["spec"];
            let inits: Vec<&str> = pod["initContainers"]
                .as_sequence()
                .map(|seq| seq.iter().filter_map(|c| c["name"].as_str()).collect())
                .unwrap_or_default();
            for dep in &s.dependencies {
                assert!(
                    inits.contains(&format!("wait-{dep}").as_str())
                        || warned(&export, &s.short_name, "dependencies", dep),
                    "{} -> {dep} lost:\n{}",
                    s.short_name,
                    file.text
                );
            }
            let check = &s.health_check;
            let container = &pod["containers"][0];
            if matches!(check.probe, Probe::None) {
                assert!(container["readinessProbe"].is_null());
                continue;
            }
            for (probe, success) in [
                ("readinessProbe", u64::from(check.success_threshold)),
                ("livenessProbe", 1),
            ] {
                let p = &container[probe];
                assert_eq!(p["periodSeconds"], secs_up(check.interval), "{probe}");
                assert_eq!(
                    p["timeoutSeconds"],
                    secs_up(check.timeout).max(1),
                    "{probe}"
                );
                assert_eq!(p["failureThreshold"], u64::from(check.failure_threshold));
                assert_eq!(p["successThreshold"], success);
            }
            let startup = &container["startupProbe"];
            let budget = startup["periodSeconds"].as_u64().unwrap()
                * startup["failureThreshold"].as_u64().unwrap();
            assert!(budget >= secs_up(check.start_timeout), "{}", file.text);
        }
    }
}

#[test]
fn systemd_gates_every_edge_and_keeps_every_check() {
    for config in configs() {
        let export = mdw_export::export(Target::Systemd, &config, &Options::default()).unwrap();
        for s in &config.services {
            let unit = &export
                .files
                .iter()
                .find(|f| f.name == format!("mdw-{}.service", s.short_name))
                .unwrap()
                .text;
            for dep in &s.dependencies {
                if let Some(e) = config.externals.iter().find(|e| &e.short_name == dep) {
                    let wait = format!("--wait {}", duration(e.health_check.start_timeout));
                    let prefix = if e.optional {
                        "ExecStartPre=-"
                    } else {
                        "ExecStartPre=/"
                    };
                    assert!(
                        unit.lines()
                            .any(|l| l.starts_with(prefix) && l.contains(&wait)),
                        "{} -> {dep} lost:\n{unit}",
                        s.short_name
                    );
                } else {
                    assert!(
                        unit.contains(&format!("Requires=mdw-{dep}.service\n")),
                        "{unit}"
                    );
                    assert!(
                        unit.contains(&format!("After=mdw-{dep}.service\n")),
                        "{unit}"
                    );
                }
            }
            let check = &s.health_check;
            if matches!(check.probe, Probe::None) {
                assert!(!unit.contains("ExecStartPost="), "{unit}");
                continue;
            }
            let timings = format!(
                "--timeout {} --wait {}",
                duration(check.timeout),
                duration(check.start_timeout)
            );
            assert!(
                unit.lines()
                    .any(|l| l.starts_with("ExecStartPost=") && l.contains(&timings)),
                "{unit}"
            );
        }
    }
}
