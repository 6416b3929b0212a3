//! Golden tests: the three exports of a services file that uses every key
//! (tests/fixtures/every-key.toml), as if it lived in /srv/mdw, with the warnings.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use mdw_export::{Export, Options, Target};
use russell_config::Config;

const FIXTURE: &str = include_str!("fixtures/every-key.toml");
const ENV_FILE: &str = include_str!("fixtures/gateway.env");

fn config() -> Config {
    russell_config::parse(
        FIXTURE,
        Path::new("/srv/mdw/every-key.toml"),
        Path::new("/usr/local/bin/mdw"),
    )
    .unwrap()
}

/// The gateway's env_file as Russell reads it (KEY=VALUE, quotes unwrapped).
fn env_vars() -> Vec<(String, String)> {
    ENV_FILE
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_string(), v.trim_matches('"').to_string())
        })
        .collect()
}

fn options() -> Options {
    let mut options = Options::default();
    options
        .env_files
        .insert(PathBuf::from("/srv/mdw/gateway.env"), Ok(env_vars()));
    options.images.overrides.insert(
        "llm".to_string(),
        "registry.example/llm:0.9.1-gpu".to_string(),
    );
    options.namespace = Some("mdw-prod".to_string());
    options
}

fn render(target: Target, export: &Export) -> String {
    let warnings: Vec<String> = export.warnings.iter().map(|w| w.to_string()).collect();
    format!(
        "{}\n=== warnings ({}) ===\n{}\n",
        export.to_stream(target),
        warnings.len(),
        warnings.join("\n")
    )
}

#[test]
fn compose_of_every_key() {
    let export = mdw_export::export(Target::Compose, &config(), &options()).unwrap();
    insta::assert_snapshot!(render(Target::Compose, &export));
}

#[test]
fn kubernetes_of_every_key() {
    let export = mdw_export::export(Target::Kubernetes, &config(), &options()).unwrap();
    insta::assert_snapshot!(render(Target::Kubernetes, &export));
}

#[test]
fn systemd_of_every_key() {
    let mut options = options();
    options.systemd_user = true;
    let export = mdw_export::export(Target::Systemd, &config(), &options).unwrap();
    insta::assert_snapshot!(render(Target::Systemd, &export));
}

#[test]
fn secrets_never_reach_the_output() {
    for target in [Target::Compose, Target::Kubernetes, Target::Systemd] {
        let export = mdw_export::export(target, &config(), &options()).unwrap();
        let text = export.to_stream(target);
        assert!(!text.contains("do-not-print-me"), "{target}: {text}");
        assert!(!text.contains("also secret"), "{target}: {text}");
    }
}

#[test]
fn kubernetes_refers_to_secret_looking_env_file_entries_by_name() {
    let export = mdw_export::export(Target::Kubernetes, &config(), &options()).unwrap();
    let gateway = export
        .files
        .iter()
        .find(|f| f.name == "gateway.yaml")
        .unwrap();
    for key in ["API_TOKEN", "DB_PASSWORD"] {
        assert!(
            gateway.text.contains(&format!("key: {key}")),
            "{}",
            gateway.text
        );
    }
    // REGION is plain, LOG_LEVEL comes from `env`, which wins over env_file.
    assert!(gateway.text.contains("REGION: eu-1"), "{}", gateway.text);
    assert!(
        gateway.text.contains("LOG_LEVEL: debug"),
        "{}",
        gateway.text
    );
}

#[test]
fn a_bad_image_template_names_the_placeholder() {
    let mut options = options();
    options.images.template = "mdw-{shortname}:{version}".to_string();
    let err = mdw_export::export(Target::Compose, &config(), &options).unwrap_err();
    assert!(err.to_string().contains("{shortname}"), "{err}");
}

#[test]
fn an_image_override_for_an_unknown_service_is_an_error() {
    let mut options = options();
    options.images.overrides.insert("nope".into(), "x:1".into());
    let err = mdw_export::export(Target::Kubernetes, &config(), &options).unwrap_err();
    assert!(err.to_string().contains("'nope'"), "{err}");
}

#[test]
fn systemd_quotes_what_it_must() {
    use mdw_export::systemd::quote;
    assert_eq!(quote("/usr/bin/x"), "/usr/bin/x");
    assert_eq!(quote("hello world"), "\"hello world\"");
    assert_eq!(quote("100%"), "\"100%%\"");
    assert_eq!(quote("$HOME"), "\"$$HOME\"");
    assert_eq!(quote("say \"hi\"\\"), "\"say \\\"hi\\\"\\\\\"");
    assert_eq!(quote(""), "\"\"");
}
