//! The CLI verbs against a real Russell: output, exit codes, JSON parsed back, and the
//! `up -d` / `down` cycle.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::Duration;

use test_support::{Fixture, Svc, alive, free_port, mdw_bin};

fn text(out: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn client_verbs_without_russell_say_so_in_one_line() {
    let addr = format!("127.0.0.1:{}", free_port());
    for verb in [
        vec!["status"],
        vec!["status", "--json"],
        vec!["start-all"],
        vec!["stop-all"],
        vec!["start", "kant"],
        vec!["restart", "kant"],
        vec!["logs", "kant"],
        vec!["events"],
        vec!["wait", "--timeout", "1s"],
    ] {
        let out = Command::new(mdw_bin())
            .args(["--russell", &addr])
            .args(&verb)
            .output()
            .unwrap();
        let (stdout, stderr) = text(&out);
        assert!(!out.status.success(), "{verb:?} succeeded");
        assert_eq!(stderr.trim().lines().count(), 1, "{verb:?}: {stderr}");
        assert!(
            stderr.contains(&addr) && stderr.contains("mdw up"),
            "{verb:?}: {stderr}"
        );
        assert!(stdout.is_empty(), "{verb:?}: {stdout}");
    }
    // The address also comes from the environment, and the flag may follow the verb.
    let out = Command::new(mdw_bin())
        .args(["status"])
        .env("MDW_RUSSELL_ADDR", &addr)
        .output()
        .unwrap();
    assert!(text(&out).1.contains(&addr));
    let out = Command::new(mdw_bin())
        .args(["status", "--russell", &addr])
        .output()
        .unwrap();
    assert!(text(&out).1.contains(&addr));
    // down is idempotent.
    let out = Command::new(mdw_bin())
        .args(["--russell", &addr, "down"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(text(&out).0.contains("not running"));
}

#[test]
fn status_control_logs_and_wait() {
    let f = Fixture::new(
        &[
            Svc::demo("turing").args(&["--log-rate", "10"]),
            Svc::demo("kant").deps(&["turing"]),
        ],
        "autostart = false",
    );
    let _d = f.start();

    // Nothing started yet: wait fails, naming both.
    let out = f.mdw(&["wait", "--timeout", "1s"]);
    let (stdout, _) = text(&out);
    assert!(!out.status.success());
    assert!(
        stdout.contains("kant (stopped)") && stdout.contains("turing (stopped)"),
        "{stdout}"
    );

    let out = f.mdw(&["start-all"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("Kant") && stdout.contains("Turing"),
        "{stdout}"
    );

    let out = f.mdw(&["wait", "--timeout", "20s"]);
    assert!(out.status.success(), "{:?}", text(&out));

    // JSON mirrors OrchestratorStatus.
    let st = f.status();
    for key in [
        "status",
        "total_services",
        "running_services",
        "healthy_services",
        "failed_services",
        "started_at",
        "services",
        "externals",
    ] {
        assert!(st.get(key).is_some(), "missing {key}: {st:#}");
    }
    assert_eq!(st["total_services"], 2);
    assert_eq!(st["healthy_services"], 2);
    let kant = Fixture::service(&st, "kant");
    for key in [
        "name",
        "short_name",
        "state",
        "healthy",
        "pid",
        "restart_count",
        "last_error",
        "grpc_port",
        "http_port",
        "adopted",
        "uptime_seconds",
    ] {
        assert!(kant.get(key).is_some(), "missing {key}: {kant:#}");
    }
    assert_eq!(kant["state"], "running");
    assert_eq!(kant["name"], "Kant");
    assert_eq!(kant["grpc_port"], serde_json::Value::Null);

    // The table.
    let out = f.mdw(&["status"]);
    let (table, _) = text(&out);
    assert!(out.status.success());
    for needle in [
        "SERVICE",
        "PORT",
        "STATUS",
        "HEALTH",
        "UPTIME",
        "RESTARTS",
        "PID",
        "Kant",
        "Turing",
        "● running",
        "✓ ok",
    ] {
        assert!(table.contains(needle), "missing {needle:?}:\n{table}");
    }

    // One service, any case; unknown names fail with the name in the message.
    let old = kant["pid"].as_u64().unwrap() as u32;
    let out = f.mdw(&["restart", "KANT"]);
    assert!(out.status.success(), "{:?}", text(&out));
    let st = f.status();
    assert_ne!(
        Fixture::service(&st, "kant")["pid"].as_u64().unwrap() as u32,
        old
    );
    assert!(!alive(old));

    let out = f.mdw(&["stop", "Kant"]);
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(Fixture::service(&f.status(), "kant")["state"], "stopped");
    let out = f.mdw(&["wait", "--timeout", "500ms"]);
    assert!(!out.status.success());
    assert!(text(&out).0.contains("kant (stopped)"));
    let out = f.mdw(&["start", "kant"]);
    assert!(out.status.success(), "{:?}", text(&out));

    let out = f.mdw(&["restart", "nosuch"]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("nosuch"), "{stderr}");

    // Logs of one service: bare lines; of all: prefixed with the short_name.
    let out = f.mdw(&["logs", "turing", "-n", "5"]);
    let (stdout, _) = text(&out);
    assert!(out.status.success());
    assert_eq!(stdout.lines().count(), 5, "{stdout}");
    assert!(stdout.lines().all(|l| !l.contains(" | ")), "{stdout}");
    let out = f.mdw(&["logs", "-n", "5"]);
    let (stdout, _) = text(&out);
    assert_eq!(stdout.lines().count(), 5, "{stdout}");
    assert!(
        stdout
            .lines()
            .all(|l| l.starts_with("turing     | ") || l.starts_with("kant       | ")),
        "{stdout}"
    );

    let out = f.mdw(&["stop-all"]);
    let (stdout, _) = text(&out);
    assert!(out.status.success());
    assert!(
        stdout.contains("kant, turing"),
        "dependents first: {stdout}"
    );
}

#[test]
fn events_follow_prints_lines() {
    let f = Fixture::new(&[Svc::demo("solo")], "autostart = false");
    let _d = f.start();
    let events = Command::new(mdw_bin())
        .args(["--russell", &f.addr, "events", "--json"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let out = f.mdw(&["start", "solo"]);
    assert!(out.status.success(), "{:?}", text(&out));
    f.status();
    test_support::signal(events.id(), rustix::process::Signal::KILL);
    let out = events.wait_with_output().unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = lines.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert!(
        kinds.contains(&"started") && kinds.contains(&"healthy"),
        "{kinds:?}"
    );
    assert!(lines.iter().all(|e| e["service"] == "solo"));
}

#[test]
fn up_detached_then_down() {
    let f = Fixture::new(&[Svc::demo("kant")], "");
    let out = Command::new(mdw_bin())
        .args(["--russell", &f.addr, "up", "-d", "--config"])
        .arg(&f.config)
        .env("XDG_RUNTIME_DIR", f.dir.path())
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    // Whatever happens next, remember Russell for cleanup.
    let pid = test_support::wait_for(Duration::from_secs(1), || {
        f.state_dir.join("russell.pid").exists()
    })
    .then(|| {
        std::fs::read_to_string(f.state_dir.join("russell.pid"))
            .unwrap()
            .trim()
            .parse::<u32>()
            .unwrap()
    });
    let _guard = pid.map(KillOnDrop);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("SERVICE") && stdout.contains("Kant"),
        "{stdout}"
    );
    assert!(f.state_dir.join("russell.log").exists());
    let st = f.status();
    assert_eq!(Fixture::service(&st, "kant")["healthy"], true);
    let svc_pid = Fixture::service(&st, "kant")["pid"].as_u64().unwrap() as u32;

    // A second up finds it running and starts nothing new.
    let out = f.mdw(&["up", "-d"]);
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(text(&out).0.contains("already"));
    assert_eq!(
        Fixture::service(&f.status(), "kant")["pid"]
            .as_u64()
            .unwrap() as u32,
        svc_pid
    );

    let out = f.mdw(&["down"]);
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(!alive(svc_pid));
    assert!(!alive(pid.unwrap()));
    assert!(!f.serving());
}

/// SIGKILLs a detached Russell's group if a test ends early.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if alive(self.0) {
            test_support::signal(self.0, rustix::process::Signal::TERM);
            if !test_support::wait_for(Duration::from_secs(15), || !alive(self.0)) {
                test_support::kill_group(self.0);
            }
        }
    }
}

#[test]
fn logs_follow_streams_new_lines() {
    use std::io::BufRead;
    let f = Fixture::new(&[Svc::demo("chatty").args(&["--log-rate", "20"])], "");
    let _d = f.start();
    f.wait_all_healthy(Duration::from_secs(20));
    let mut logs = Command::new(mdw_bin())
        .args(["--russell", &f.addr, "logs", "-f", "-n", "0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = logs.id();
    let stdout = logs.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        std::io::BufReader::new(stdout)
            .lines()
            .take(10)
            .map(|l| l.unwrap())
            .collect::<Vec<_>>()
    });
    let ok = test_support::wait_for(Duration::from_secs(15), || reader.is_finished());
    test_support::signal(pid, rustix::process::Signal::KILL);
    let _ = logs.wait();
    assert!(ok, "fewer than 10 lines followed in 15s");
    let lines = reader.join().unwrap();
    assert!(
        lines.iter().all(|l| l.starts_with("chatty     | ")),
        "{lines:?}"
    );
}

/// Tab in a real bash: the registration script from `mdw completions bash`, then the
/// completion function as bash calls it, completes verbs and the services of the file.
#[test]
fn bash_completes_verbs_and_service_names_from_the_services_file() {
    let f = Fixture::new(&[Svc::demo("alpha"), Svc::demo("beta")], "");
    let script = Command::new(mdw_bin())
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(script.status.success());
    let script_path = f.path("mdw.bash");
    std::fs::write(&script_path, &script.stdout).unwrap();
    let complete = |words: &str| {
        let program = format!(
            "source {script}; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); \
             COMP_TYPE=9; _clap_complete_mdw mdw \"${{COMP_WORDS[COMP_CWORD]}}\"; \
             printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script = test_support::s(&script_path)
        );
        let out = Command::new("bash")
            .args(["--norc", "-c", &program])
            .env("MDW_CONFIG", &f.config)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out).1);
        text(&out).0.lines().map(str::to_string).collect::<Vec<_>>()
    };
    let restart = complete("mdw restart ''");
    assert!(
        restart.contains(&"alpha".to_string()) && restart.contains(&"beta".to_string()),
        "{restart:?}"
    );
    assert_eq!(complete("mdw logs al"), ["alpha"]);
    let verbs = complete("mdw sta");
    for verb in ["start", "start-all", "status"] {
        assert!(verbs.contains(&verb.to_string()), "{verbs:?}");
    }
    // No services file: verbs still complete, service names are simply absent.
    let out = Command::new(mdw_bin())
        .args(["--", "mdw", "restart", ""])
        .env("COMPLETE", "fish")
        .env("MDW_CONFIG", f.path("missing.toml"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(!text(&out).0.contains("alpha"));
}

#[test]
fn completions_for_every_shell_and_a_man_page_that_man_reads() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = Command::new(mdw_bin())
            .args(["completions", shell])
            .output()
            .unwrap();
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{shell}: {stderr}");
        assert!(
            stdout.contains("COMPLETE") && stdout.contains("mdw"),
            "{shell}: {stdout}"
        );
    }
    let bad = Command::new(mdw_bin())
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(text(&bad).1.contains("possible values"), "{}", text(&bad).1);

    // The page, rendered by groff (what `man` uses), names the verbs.
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(mdw_bin())
        .args(["man", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out).1);
    for page in ["mdw.1", "mdw-restart.1", "mdw-completions.1"] {
        assert!(dir.path().join(page).is_file(), "{page} missing");
    }
    let rendered = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-P-cbou"])
        .arg(dir.path().join("mdw.1"))
        .output()
        .unwrap();
    let (page, warnings) = text(&rendered);
    assert!(
        rendered.status.success() && warnings.is_empty(),
        "{warnings}"
    );
    for word in ["NAME", "SUBCOMMANDS", "restart", "completions"] {
        assert!(page.contains(word), "{word} not in the page:\n{page}");
    }
}

/// `mdw graph`: levels and needs as text; `--dot` read back by Graphviz itself, every
/// dependency an edge from what is needed to who needs it.
#[test]
fn graph_prints_levels_and_dot_that_graphviz_reads() {
    let f = Fixture::new(
        &[
            Svc::demo("alpha"),
            Svc::demo("beta").deps(&["alpha"]),
            Svc::demo("gamma").deps(&["alpha", "beta"]),
        ],
        "",
    );
    let out = Command::new(mdw_bin())
        .arg("graph")
        .arg(&f.config)
        .output()
        .unwrap();
    let (tree, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(tree.contains("3 services, 0 externals, 3 levels"), "{tree}");
    let level_of = |short: &str| {
        let mut level = 0;
        for line in tree.lines() {
            if let Some(rest) = line.strip_prefix("level ") {
                level = rest.split_whitespace().next().unwrap().parse().unwrap();
            }
            if line.contains(&format!("● {short} ")) {
                return level;
            }
        }
        panic!("{short} not in\n{tree}")
    };
    assert_eq!(
        (level_of("alpha"), level_of("beta"), level_of("gamma")),
        (1, 2, 3)
    );
    assert!(tree.contains("← needs alpha, beta"), "{tree}");

    let out = Command::new(mdw_bin())
        .args(["graph", "--dot"])
        .arg(&f.config)
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut dot = Command::new("dot")
        .arg("-Tplain")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("Graphviz `dot` (apt-get install graphviz; .ci/run installs it)");
    use std::io::Write as _;
    dot.stdin.take().unwrap().write_all(&out.stdout).unwrap();
    let plain = dot.wait_with_output().unwrap();
    let (plain, warnings) = text(&plain);
    assert!(warnings.is_empty(), "{warnings}");
    let mut edges: Vec<String> = plain
        .lines()
        .filter_map(|l| l.strip_prefix("edge "))
        .map(|l| {
            l.split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" -> ")
        })
        .collect();
    edges.sort();
    assert_eq!(edges, ["alpha -> beta", "alpha -> gamma", "beta -> gamma"]);
    let nodes = plain.lines().filter(|l| l.starts_with("node ")).count();
    assert_eq!(nodes, 3, "{plain}");
}

/// `version` and `enabled = false` reach `mdw status`: the table says `disabled`, the JSON
/// carries both, and start-all leaves the disabled service alone.
#[test]
fn status_shows_version_and_disabled_services() {
    let web = Svc::demo("web").extra("version = \"1.2.3\"");
    let off = Svc::demo("off").extra("enabled = false\nversion = \"0.9.0\"");
    let f = Fixture::new(&[web, off], "");
    let _d = f.start();
    assert!(
        test_support::wait_for(Duration::from_secs(30), || {
            Fixture::service(&f.status(), "web")["healthy"] == true
        }),
        "web never became healthy: {:#}",
        f.status()
    );
    let status = f.status();
    let web = Fixture::service(&status, "web");
    let off = Fixture::service(&status, "off");
    assert_eq!(
        (web["version"].as_str(), web["enabled"].as_bool()),
        (Some("1.2.3"), Some(true))
    );
    assert_eq!(
        (off["version"].as_str(), off["enabled"].as_bool()),
        (Some("0.9.0"), Some(false))
    );
    assert_eq!(off["state"], "stopped");
    assert!(off["pid"].is_null());
    let (table, _) = text(&f.mdw(&["status"]));
    let line = table.lines().find(|l| l.starts_with("Off")).unwrap();
    assert!(line.contains("○ disabled"), "{table}");
}
