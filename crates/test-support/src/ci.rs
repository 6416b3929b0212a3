//! The repository and the checkers that `.ci/validators.sh` installs: the tests that judge
//! our output with other projects' parsers find them here. A missing checker skips the
//! check with a note, except when `CI=true`, where it fails the test.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository's root (test-support lives in crates/test-support).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// True when running in CI (`CI=true`), where a missing checker is a failure.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Skips (returns `None`, with a note) outside CI; panics with `msg` in CI.
pub fn missing(msg: &str) -> Option<PathBuf> {
    assert!(!in_ci(), "{msg}");
    eprintln!("skipped: {msg}");
    None
}

/// The Python of `.ci/.venv` when it can `import` every module in `modules`.
pub fn venv_python(modules: &[&str]) -> Option<PathBuf> {
    let py = repo().join(".ci/.venv/bin/python");
    let ok = py.is_file()
        && Command::new(&py)
            .args(["-c", &format!("import {}", modules.join(", "))])
            .status()
            .is_ok_and(|s| s.success());
    if ok {
        return Some(py);
    }
    missing(&format!(
        "{} missing in .ci/.venv; run .ci/validators.sh",
        modules.join(", ")
    ))
}

/// Runs `.ci/<script>` with `py` and `args`; its stdout. Panics with both outputs when it
/// fails.
pub fn run_script(py: &Path, script: &str, args: &[&str]) -> String {
    let out = Command::new(py)
        .arg(repo().join(".ci").join(script))
        .args(args)
        .output()
        .expect("run the Python of .ci/.venv");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{script} {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
