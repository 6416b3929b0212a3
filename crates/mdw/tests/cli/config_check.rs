//! `mdw config check` against the real binary: the shipped file, good and bad files, exit
//! codes, and `--json` parsed back.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::prelude::*;
use predicates::prelude::*;
use serde_json::Value;
use test_support::ci::repo;

fn mdw() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin!("mdw"))
}

/// `mdw config check --json PATH`, run in `cwd`: the exit code and the parsed document.
fn check_json(cwd: &Path, path: &Path) -> (Option<i32>, Value) {
    let out = mdw()
        .current_dir(cwd)
        .args(["config", "check", "--json"])
        .arg(path)
        .output()
        .unwrap();
    (
        out.status.code(),
        serde_json::from_slice(&out.stdout).unwrap(),
    )
}

fn write(dir: &tempfile::TempDir, text: &str) -> PathBuf {
    let path = dir.path().join("services.toml");
    std::fs::write(&path, text).unwrap();
    path
}

const BAD: &str = r#"[[services]]
name = "Kant"
http_port = 8080
command = ["{mdw}", "demo"]
dependancies = ["turing"]

[services.health_check]
type = "http"

[[services]]
name = "Turing"
grpc_port = 8080
command = []
"#;

#[test]
fn default_path_is_the_shipped_line_up_and_valid() {
    mdw()
        .current_dir(repo())
        .args(["config", "check"])
        .assert()
        .success()
        .stdout(predicate::str::contains("valid — 6 services, 3 externals"))
        .stdout(predicate::str::contains("level 1: turing, bayes"))
        .stdout(predicate::str::contains("kant (Kant 0.1.0) — API gateway"))
        .stdout(predicate::str::contains(
            "http http://127.0.0.1:8080/api/v1/health",
        ))
        .stdout(predicate::str::contains("models (Models)"));
}

#[test]
fn mdw_placeholder_becomes_this_executable() {
    let exe = assert_cmd::cargo::cargo_bin!("mdw");
    mdw()
        .current_dir(repo())
        .args(["config", "check"])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "command: {} demo --name kant",
            exe.display()
        )));
}

#[test]
fn valid_file_as_json() {
    let (code, v) = check_json(&repo(), &repo().join("configs/services.toml"));
    assert_eq!(code, Some(0));
    assert_eq!(v["valid"], true);
    assert_eq!(v["levels"][0], serde_json::json!(["turing", "bayes"]));
    let services = v["services"].as_array().unwrap();
    assert_eq!(services.len(), 6);
    let kant = services.iter().find(|s| s["short_name"] == "kant").unwrap();
    assert_eq!(kant["http_port"], 8080);
    assert_eq!(
        kant["dependencies"],
        serde_json::json!(["turing", "hypatia", "babbage", "leibniz"])
    );
    assert_eq!(kant["version"], "0.1.0");
    assert_eq!(kant["health_check"]["type"], "http");
    assert_eq!(
        kant["health_check"]["url"],
        "http://127.0.0.1:8080/api/v1/health"
    );
    assert_eq!(kant["level"], 3);
    assert_eq!(
        v["levels"],
        serde_json::json!([
            ["turing", "bayes"],
            ["hypatia", "babbage"],
            ["leibniz"],
            ["kant"]
        ])
    );
    let externals = v["externals"].as_array().unwrap();
    assert_eq!(externals.len(), 3);
    assert!(externals.iter().all(|e| e["optional"] == true));
    let models = externals
        .iter()
        .find(|e| e["short_name"] == "models")
        .unwrap();
    assert_eq!(models["health_check"]["type"], "ollama");
    assert_eq!(
        models["health_check"]["models"],
        serde_json::json!(["mistral:7b", "nomic-embed-text"])
    );
    assert_eq!(v["paths"]["shape"], "native");
}

#[test]
fn invalid_file_lists_every_error_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, BAD);
    let shown = path.display().to_string();
    mdw()
        .args(["config", "check"])
        .arg(&path)
        .assert()
        .code(1)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains(format!(
            "{shown}:5:1: service 'kant', field 'dependancies': unknown key 'dependancies' — did you mean 'dependencies'?"
        )))
        .stderr(predicate::str::contains(format!(
            "{shown}:7:1: service 'kant', field 'health_check.endpoint': an http check needs an endpoint"
        )))
        .stderr(predicate::str::contains(format!(
            "{shown}:12:13: service 'turing', field 'grpc_port': port 8080 is already used by service 'kant'"
        )))
        .stderr(predicate::str::contains(format!(
            "{shown}:13:11: service 'turing', field 'command': the command is empty"
        )))
        .stderr(predicate::str::contains("4 problems found"));
}

#[test]
fn invalid_file_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, BAD);
    let (code, v) = check_json(dir.path(), &path);
    assert_eq!(code, Some(1));
    assert_eq!(v["valid"], false);
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 4);
    assert_eq!(errors[0]["line"], 5);
    assert_eq!(errors[0]["column"], 1);
    assert_eq!(errors[0]["service"], "kant");
    assert_eq!(errors[0]["field"], "dependancies");
    assert!(errors[0]["hint"].as_str().unwrap().contains("dependencies"));
    assert_eq!(errors[2]["service"], "turing");
    assert_eq!(errors[2]["field"], "grpc_port");
}

#[test]
fn missing_file() {
    mdw()
        .args(["config", "check", "/nonexistent/services.toml"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "/nonexistent/services.toml: cannot read the file",
        ));
}

#[test]
fn not_toml() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "[[services]\nname = 1\n");
    mdw()
        .args(["config", "check"])
        .arg(&path)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("not valid TOML"));
}

#[test]
fn relative_paths_resolve_against_the_file_not_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "[[services]]\nname = \"A\"\ncommand = [\"./bin/a\", \"./arg\"]\nworking_dir = \"run\"\n",
    );
    let (code, v) = check_json(Path::new("/"), &path);
    assert_eq!(code, Some(0));
    let dir = dir.path().display().to_string();
    assert_eq!(v["services"][0]["command"][0], format!("{dir}/bin/a"));
    assert_eq!(v["services"][0]["command"][1], "./arg");
    assert_eq!(v["services"][0]["working_dir"], format!("{dir}/run"));
}

#[test]
fn a_port_in_the_ephemeral_range_gets_a_note_not_an_error() {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    let low: u16 = range.split_whitespace().next().unwrap().parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        &format!(
            "[[services]]\nname = \"Kant\"\nhttp_port = {}\ncommand = [\"sleep\", \"1\"]\n\n\
             [[services]]\nname = \"Turing\"\nhttp_port = {}\ncommand = [\"sleep\", \"1\"]\n",
            low + 1,
            low - 1
        ),
    );
    mdw()
        .args(["config", "check"])
        .arg(&path)
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "service 'kant', field 'http_port': port {} is in this machine's ephemeral range",
            low + 1
        )))
        .stdout(predicate::str::contains(format!("port {} is in", low - 1)).not());
    let (code, v) = check_json(dir.path(), &path);
    assert_eq!(code, Some(0));
    assert_eq!(v["notes"].as_array().unwrap().len(), 1, "{v}");
}

#[test]
fn json_carries_every_key_of_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "[[services]]\nname = \"A\"\ncommand = [\"sleep\", \"1\"]\ngrpc_port = 7001\n\
         env = { RUST_LOG = \"info\" }\nenv_file = \".env\"\non_port_conflict = \"fail\"\n\
         stop_signal = \"INT\"\nrestart_backoff = \"2s\"\nrestart_backoff_max = \"1m\"\n\
         restart_reset_after = \"90s\"\nrestart_dependents = true\nversion = \"1.2.3\"\n\
         enabled = false\n\n[services.health_check]\ntype = \"tcp\"\n",
    );
    let (code, v) = check_json(dir.path(), &path);
    assert_eq!(code, Some(0), "{v}");
    let a = &v["services"][0];
    assert_eq!(a["env"]["RUST_LOG"], "info");
    assert_eq!(
        a["env_file"],
        format!("{}/.env", dir.path().display()),
        "{a}"
    );
    assert_eq!(a["on_port_conflict"], "fail");
    assert_eq!(a["stop_signal"], "SIGINT");
    assert_eq!(a["stop_timeout"], "10s");
    assert_eq!(a["restart_backoff"], "2s");
    assert_eq!(a["restart_backoff_max"], "1m");
    assert_eq!(a["restart_reset_after"], "1m 30s");
    assert_eq!(a["restart_dependents"], true);
    assert_eq!(a["version"], "1.2.3");
    assert_eq!(a["enabled"], false);
    assert_eq!(a["health_check"]["type"], "tcp");
    assert_eq!(a["health_check"]["address"], "127.0.0.1:7001");
    assert_eq!(v["logs"]["max_file_size"], 10 * 1024 * 1024);
    assert_eq!(v["russell"]["listen"], "127.0.0.1:9100");
}

#[test]
fn mdws_own_file_is_accepted_unchanged_and_says_its_base() {
    let file = repo().join("crates/russell-config/tests/mdw/services.toml");
    let cwd = tempfile::tempdir().unwrap();
    let base = cwd.path().display().to_string();
    mdw()
        .current_dir(cwd.path())
        .args(["config", "check"])
        .arg(&file)
        .assert()
        .success()
        .stdout(predicate::str::contains("valid — 6 services, 1 externals"))
        .stdout(predicate::str::contains(format!(
            "mDW-shaped file ([orchestrator]/[dependencies]): relative paths resolve against {base}"
        )))
        .stdout(predicate::str::contains(format!(
            "command: {base}/bin/mdw serve kant"
        )))
        .stdout(predicate::str::contains("ollama (Ollama) [required]"));
    let (code, v) = check_json(cwd.path(), &file);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["paths"]["shape"], "mdw");
    assert_eq!(v["paths"]["base"], base);
    assert_eq!(v["logs"]["dir"], format!("{base}/logs"));
    let kant = v["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["short_name"] == "kant")
        .unwrap();
    assert_eq!(kant["grpc_port"], Value::Null);
    assert_eq!(kant["version"], "0.1.0");
    assert_eq!(kant["health_check"]["start_timeout"], "30s");
    assert_eq!(v["externals"][0]["optional"], false);
}
