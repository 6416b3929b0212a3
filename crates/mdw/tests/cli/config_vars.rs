//! `mdw config check` with `${NAME}` variables, against the real binary: resolved values
//! shown, secret-looking values masked in text and JSON, an unset variable named.
#![allow(clippy::unwrap_used)]

use std::process::Command;

fn mdw() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin!("mdw"))
}

const FILE: &str = r#"
[[services]]
name = "turing"
command = ["/bin/turing", "--key=${MDW_T_OPENAI_API_KEY}", "--model=${MDW_T_MODEL:-mistral}"]
env_file = ".env"
env = { OPENAI_API_KEY = "${MDW_T_OPENAI_API_KEY}", RUST_LOG = "${MDW_T_LOG:-info}" }
"#;

#[test]
fn resolved_values_are_shown_and_secrets_masked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("services.toml");
    std::fs::write(&path, FILE).unwrap();
    std::fs::write(dir.path().join(".env"), "DB_PASSWORD=hunter2-long\n").unwrap();
    let secret = "sk-test-0123456789";

    let text = mdw()
        .args(["config", "check"])
        .arg(&path)
        .env("MDW_T_OPENAI_API_KEY", secret)
        .output()
        .unwrap();
    assert!(
        text.status.success(),
        "{}",
        String::from_utf8_lossy(&text.stderr)
    );
    let out = String::from_utf8(text.stdout).unwrap();
    assert!(!out.contains(secret), "{out}");
    assert!(out.contains("--key=********"), "{out}");
    assert!(out.contains("--model=mistral"), "{out}");
    assert!(out.contains("OPENAI_API_KEY=********"), "{out}");
    assert!(out.contains("RUST_LOG=info"), "{out}");

    let json = mdw()
        .args(["config", "check", "--json"])
        .arg(&path)
        .env("MDW_T_OPENAI_API_KEY", secret)
        .output()
        .unwrap();
    assert!(json.status.success());
    let raw = String::from_utf8(json.stdout).unwrap();
    assert!(!raw.contains(secret), "{raw}");
    let doc: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let s = &doc["services"][0];
    assert_eq!(s["env"]["OPENAI_API_KEY"], "********");
    assert_eq!(s["env"]["RUST_LOG"], "info");
    assert_eq!(s["command"][2], "--model=mistral");
}

#[test]
fn an_unset_variable_fails_the_check_naming_file_line_service_field_and_variable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("services.toml");
    std::fs::write(&path, FILE).unwrap();
    let out = mdw()
        .args(["config", "check"])
        .arg(&path)
        .env_remove("MDW_T_OPENAI_API_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("services.toml:4"), "{err}");
    assert!(err.contains("turing"), "{err}");
    assert!(err.contains("${MDW_T_OPENAI_API_KEY} is not set"), "{err}");
    assert!(err.contains("env.OPENAI_API_KEY"), "{err}");
}
