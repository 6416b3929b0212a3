//! `mdw run NAME` against a real Russell: a task completes at start, runs again on
//! demand, reports a failing run with exit 1, and a service is refused.
#![allow(clippy::unwrap_used)]

use std::io::Write as _;
use std::time::Duration;

use test_support::{Fixture, Svc, s};

fn lines(path: &std::path::Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |t| t.lines().count())
}

#[test]
fn mdw_run_runs_a_task_again_and_refuses_a_service() {
    let f = Fixture::new(&[Svc::demo("api").deps(&["prep"])], "");
    let runs = f.path("runs");
    let code = f.path("code");
    let script = format!(
        "echo ran >> {}; exit $(cat {} 2>/dev/null || echo 0)",
        s(&runs),
        s(&code)
    );
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&f.config)
        .unwrap();
    write!(
        file,
        "\n[[services]]\nname = \"Prep\"\nkind = \"task\"\ncommand = [\"sh\", \"-c\", {script:?}]\n"
    )
    .unwrap();
    drop(file);
    let _d = f.start();

    let st = f.wait_all_healthy(Duration::from_secs(30));
    let prep = Fixture::service(&st, "prep");
    assert_eq!(prep["state"], "completed", "{prep:#}");
    assert_eq!(lines(&runs), 1);
    let text = String::from_utf8_lossy(&f.mdw(&["status"]).stdout).to_string();
    assert!(text.contains("completed"), "{text}");

    let out = f.mdw(&["run", "Prep"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("✓ prep completed"), "{stdout}");
    assert_eq!(lines(&runs), 2, "the answer came before the run ended");

    std::fs::write(&code, "3").unwrap();
    let out = f.mdw(&["run", "prep"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("✗ prep failed"), "{stdout}");
    assert!(stdout.contains("exited with code 3"), "{stdout}");
    assert_eq!(f.status()["services"][1]["state"], "failed");

    let out = f.mdw(&["run", "api"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("'api' is a service, not a task"),
        "{stderr}"
    );
    assert!(stderr.contains("mdw restart api"), "{stderr}");

    let out = f.mdw(&["run", "nosuch"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("'nosuch'"));
    // The service was never touched by any of it.
    assert_eq!(Fixture::service(&f.status(), "api")["restart_count"], 0);
}
