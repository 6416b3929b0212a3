//! `mdw export` end to end: the real binary exports the default line-up and a file that
//! uses every key, and real validators judge the result: kubernetes-validate (Kubernetes'
//! schemas), docker-compose's own `config`, and `systemd-analyze verify`. They are installed
//! by .ci/validators.sh; a missing one fails the test when CI=true (else it is skipped with
//! a note).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use test_support::ci::{missing, repo};
use test_support::mdw_bin;

/// A validator: from `var`, else the given candidates (a path under the repository, or a
/// name in PATH). `None` (skip) outside CI; a panic in CI.
fn tool(var: &str, candidates: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(var) {
        return Some(PathBuf::from(path));
    }
    for c in candidates {
        let in_repo = repo().join(c);
        if c.contains('/') && in_repo.is_file() {
            return Some(in_repo);
        }
        let found = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(c))
                .find(|p| p.is_file())
        });
        if !c.contains('/') && found.is_some() {
            return found;
        }
    }
    missing(&format!(
        "validator missing: none of {candidates:?} (or ${var}); run .ci/validators.sh"
    ))
}

fn kubernetes_validate() -> Option<PathBuf> {
    tool(
        "MDW_KUBERNETES_VALIDATE",
        &[".ci/.venv/bin/kubernetes-validate", "kubernetes-validate"],
    )
}

fn docker_compose() -> Option<PathBuf> {
    tool("MDW_DOCKER_COMPOSE", &["docker-compose"])
}

fn systemd_analyze() -> Option<PathBuf> {
    tool("MDW_SYSTEMD_ANALYZE", &["systemd-analyze"])
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `mdw export TARGET --config CONFIG --out DIR EXTRA…`, which must succeed.
fn export(target: &str, config: &Path, dir: &Path, extra: &[&str]) -> Output {
    let out = Command::new(mdw_bin())
        .args(["export", target, "--config"])
        .arg(config)
        .arg("--out")
        .arg(dir)
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "mdw export {target}: {}", text(&out));
    out
}

/// The every-key fixture with its env_file, in a fresh folder.
fn every_key() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = repo().join("crates/mdw-export/tests/fixtures");
    for name in ["every-key.toml", "gateway.env"] {
        std::fs::copy(fixtures.join(name), dir.path().join(name)).unwrap();
    }
    let config = dir.path().join("every-key.toml");
    (dir, config)
}

fn default_lineup() -> PathBuf {
    repo().join("configs/services.toml")
}

fn check_compose(validator: &Path, dir: &Path) {
    let out = Command::new(validator)
        .current_dir(dir)
        .args(["-f", "compose.yaml", "config", "-q"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker-compose config: {}",
        text(&out)
    );
}

fn check_kubernetes(validator: &Path, dir: &Path) {
    let kustomization = std::fs::read_to_string(dir.join("kustomization.yaml")).unwrap();
    let mut manifests: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "kustomization.yaml")
        .collect();
    manifests.sort();
    for m in &manifests {
        assert!(
            kustomization.contains(&format!("- {m}\n")),
            "{m} not in:\n{kustomization}"
        );
    }
    let out = Command::new(validator)
        .current_dir(dir)
        .args(["--strict", "--quiet"])
        .args(&manifests)
        .output()
        .unwrap();
    assert!(out.status.success(), "kubernetes-validate: {}", text(&out));
}

/// `systemd-analyze verify` of every unit in `dir`; `--user` ones with a runtime folder of
/// their own (the user manager it starts needs one).
fn check_systemd(validator: &Path, dir: &Path, user: bool) {
    let units: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let runtime = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(validator);
    if user {
        cmd.arg("--user").env("XDG_RUNTIME_DIR", runtime.path());
    }
    let out = cmd
        .args(["verify", "--man=no"])
        .args(&units)
        .output()
        .unwrap();
    let said = text(&out);
    assert!(out.status.success(), "systemd-analyze verify: {said}");
    assert!(
        said.trim().is_empty(),
        "systemd-analyze verify complained: {said}"
    );
}

#[test]
fn compose_of_the_default_lineup_and_of_every_key_is_valid() {
    let Some(validator) = docker_compose() else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    export("compose", &default_lineup(), out.path(), &[]);
    check_compose(&validator, out.path());

    let (_keep, config) = every_key();
    let out = tempfile::tempdir().unwrap();
    export(
        "compose",
        &config,
        out.path(),
        &["--image", "llm=registry.example/llm:1"],
    );
    check_compose(&validator, out.path());
}

#[test]
fn kubernetes_of_the_default_lineup_and_of_every_key_is_valid() {
    let Some(validator) = kubernetes_validate() else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    export("kubernetes", &default_lineup(), out.path(), &[]);
    check_kubernetes(&validator, out.path());

    let (_keep, config) = every_key();
    let out = tempfile::tempdir().unwrap();
    export(
        "kubernetes",
        &config,
        out.path(),
        &["--namespace", "mdw-test"],
    );
    check_kubernetes(&validator, out.path());
    let gateway = std::fs::read_to_string(out.path().join("gateway.yaml")).unwrap();
    assert!(
        !gateway.contains("do-not-print-me"),
        "a secret value leaked:\n{gateway}"
    );
}

#[test]
fn systemd_units_of_the_default_lineup_and_of_every_key_verify() {
    let Some(validator) = systemd_analyze() else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    export("systemd", &default_lineup(), out.path(), &[]);
    check_systemd(&validator, out.path(), false);

    let (_keep, config) = every_key();
    let out = tempfile::tempdir().unwrap();
    export("systemd", &config, out.path(), &[]);
    check_systemd(&validator, out.path(), false);
    let user = tempfile::tempdir().unwrap();
    export("systemd", &config, user.path(), &["--user"]);
    check_systemd(&validator, user.path(), true);
    let unit = std::fs::read_to_string(out.path().join("mdw-gateway.service")).unwrap();
    assert!(
        unit.contains(&format!("ExecStart={} demo", mdw_bin())),
        "{unit}"
    );
}

/// The validators are real judges: each one rejects a broken file.
#[test]
fn the_validators_reject_broken_output() {
    let (_keep, config) = every_key();
    if let Some(validator) = docker_compose() {
        let out = tempfile::tempdir().unwrap();
        export("compose", &config, out.path(), &[]);
        let file = out.path().join("compose.yaml");
        let broken = std::fs::read_to_string(&file)
            .unwrap()
            .replace("stop_grace_period:", "stop_grace_periods:");
        std::fs::write(&file, broken).unwrap();
        let res = Command::new(&validator)
            .current_dir(out.path())
            .args(["-f", "compose.yaml", "config", "-q"])
            .output()
            .unwrap();
        assert!(!res.status.success(), "docker-compose accepted a bad key");
    }
    if let Some(validator) = kubernetes_validate() {
        let out = tempfile::tempdir().unwrap();
        export("kubernetes", &config, out.path(), &[]);
        let file = out.path().join("llm.yaml");
        let broken = std::fs::read_to_string(&file)
            .unwrap()
            .replace("periodSeconds:", "periodSecond:");
        std::fs::write(&file, broken).unwrap();
        let res = Command::new(&validator)
            .args(["--strict", "--quiet"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            !res.status.success(),
            "kubernetes-validate accepted a bad key"
        );
    }
    if let Some(validator) = systemd_analyze() {
        let out = tempfile::tempdir().unwrap();
        export("systemd", &config, out.path(), &[]);
        let file = out.path().join("mdw-llm.service");
        let broken = std::fs::read_to_string(&file)
            .unwrap()
            .replace("KillMode=control-group", "KillMode=everything");
        std::fs::write(&file, broken).unwrap();
        let res = Command::new(&validator)
            .args(["verify", "--man=no"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            !text(&res).trim().is_empty(),
            "systemd-analyze said nothing"
        );
    }
}

#[test]
fn strict_turns_warnings_into_exit_1_and_writes_nothing() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("k8s");
    let res = Command::new(mdw_bin())
        .args(["export", "kubernetes", "--strict", "--config"])
        .arg(default_lineup())
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(1), "{}", text(&res));
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(
        stderr.contains("warning: service 'kant', max_retries:"),
        "{stderr}"
    );
    assert!(stderr.contains("--strict: nothing written"), "{stderr}");
    assert!(!dir.exists());
}

#[test]
fn one_warning_per_key_and_service() {
    let (_keep, config) = every_key();
    for target in ["compose", "kubernetes", "systemd"] {
        let out = tempfile::tempdir().unwrap();
        let res = export(target, &config, out.path(), &[]);
        let stderr = String::from_utf8_lossy(&res.stderr);
        let mut seen = std::collections::BTreeSet::new();
        for line in stderr.lines().filter(|l| l.contains(": warning: ")) {
            let subject = line.split(": warning: ").nth(1).unwrap();
            let key = subject.split(": ").next().unwrap().to_string();
            assert!(seen.insert(key.clone()), "{target}: twice: {key}\n{stderr}");
        }
        assert!(
            !seen.is_empty(),
            "{target}: no warnings for a file that uses every key"
        );
    }
}

#[test]
fn standard_output_by_default_and_a_clear_error_for_a_bad_file() {
    let res = Command::new(mdw_bin())
        .args(["export", "compose", "--config"])
        .arg(default_lineup())
        .output()
        .unwrap();
    assert!(res.status.success(), "{}", text(&res));
    let stdout = String::from_utf8_lossy(&res.stdout);
    assert!(stdout.starts_with("# compose.yaml\n"), "{stdout}");
    assert!(stdout.contains("condition: service_healthy"), "{stdout}");

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[services]]\nname = \"x\"\n").unwrap();
    let res = Command::new(mdw_bin())
        .args(["export", "systemd", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(stderr.contains("bad.toml"), "{stderr}");
}

/// The probe command lines the units run are calls the real `mdw probe` accepts: with
/// nothing listening they end unhealthy (1), never as a usage error (2).
#[test]
fn exported_probe_commands_are_valid_mdw_probe_calls() {
    let (_keep, config) = every_key();
    let out = tempfile::tempdir().unwrap();
    export("systemd", &config, out.path(), &[]);
    let mut checked = 0;
    for entry in std::fs::read_dir(out.path()).unwrap() {
        let unit = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for line in unit.lines() {
            let Some(cmd) = line
                .strip_prefix("ExecStartPost=")
                .or_else(|| line.strip_prefix("ExecStartPre="))
            else {
                continue;
            };
            // These lines hold no quoted words (checked here), so split on spaces.
            assert!(!cmd.contains('"'), "{cmd}");
            let mut words: Vec<&str> = cmd.trim_start_matches('-').split(' ').collect();
            let wait = words.iter().position(|w| *w == "--wait").unwrap();
            words[wait + 1] = "0s";
            assert_eq!(words[0], mdw_bin());
            let res = Command::new(words[0]).args(&words[1..]).output().unwrap();
            assert_ne!(res.status.code(), Some(2), "{cmd}: {}", text(&res));
            checked += 1;
        }
    }
    assert!(checked >= 5, "only {checked} probe lines");
}

/// mDW's own services file, unchanged (its relative paths resolve against the folder mdw
/// runs in, where mDW's `bin/mdw` lives), exports to all three targets and every validator
/// accepts the result.
#[test]
fn mdws_own_file_exports_valid_files_for_every_target() {
    let root = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo().join("crates/russell-config/tests/mdw/services.toml"),
        root.path().join("services.toml"),
    )
    .unwrap();
    std::fs::create_dir(root.path().join("bin")).unwrap();
    let bin = root.path().join("bin/mdw");
    std::fs::write(&bin, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let run = |target: &str| {
        let out_dir = root.path().join(format!("out-{target}"));
        let out = Command::new(mdw_bin())
            .current_dir(root.path())
            .args(["export", target, "--config", "services.toml", "--out"])
            .arg(&out_dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "mdw export {target}: {}", text(&out));
        out_dir
    };
    let compose = run("compose");
    let kubernetes = run("kubernetes");
    let systemd = run("systemd");
    let kant = std::fs::read_to_string(systemd.join("mdw-kant.service")).unwrap();
    assert!(
        kant.contains(&format!(
            "ExecStart={}/bin/mdw serve kant",
            root.path().display()
        )),
        "{kant}"
    );
    for dep in ["turing", "hypatia", "babbage", "leibniz"] {
        assert!(
            kant.contains(&format!("mdw-{dep}.service")),
            "{dep}: {kant}"
        );
    }
    if let Some(v) = docker_compose() {
        check_compose(&v, &compose);
    }
    if let Some(v) = kubernetes_validate() {
        check_kubernetes(&v, &kubernetes);
    }
    if let Some(v) = systemd_analyze() {
        check_systemd(&v, &systemd, false);
    }
}
