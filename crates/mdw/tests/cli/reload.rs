//! `mdw reload` and SIGHUP against a real Russell with real services: an edit of one
//! service restarts only it (the others keep their PIDs and restart counts), SIGHUP does
//! the same as the RPC, a dry run changes nothing, and an invalid file changes nothing and
//! says why.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use test_support::{Fixture, Svc, wait_for};

const T: Duration = Duration::from_secs(30);

/// (short_name, pid, restart_count) per service.
fn procs(st: &serde_json::Value) -> Vec<(String, u64, u64)> {
    st["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["short_name"].as_str().unwrap().to_string(),
                s["pid"].as_u64().unwrap_or(0),
                s["restart_count"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

fn edit(f: &Fixture, from: &str, to: &str) {
    let text = std::fs::read_to_string(&f.config).unwrap();
    assert!(text.contains(from), "{from} not in\n{text}");
    std::fs::write(&f.config, text.replacen(from, to, 1)).unwrap();
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Waits until `c` runs a process other than `old` and every service is healthy again.
fn wait_new_pid(f: &Fixture, short: &str, old: u64) -> Vec<(String, u64, u64)> {
    let mut last = Vec::new();
    let ok = wait_for(T, || {
        let st = f.status();
        last = procs(&st);
        let healthy = st["services"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["healthy"].as_bool() == Some(true));
        healthy
            && last
                .iter()
                .any(|(s, p, _)| s == short && *p != 0 && *p != old)
    });
    assert!(ok, "{short} did not get a new process: {last:?}");
    last
}

#[test]
fn reload_rpc_and_sighup_restart_only_the_edited_service() {
    let f = Fixture::new(
        &[Svc::demo("a"), Svc::demo("b").deps(&["a"]), Svc::demo("c")],
        "",
    );
    let d = f.start();
    let before = procs(&f.wait_all_healthy(T));
    let pid = |v: &[(String, u64, u64)], s: &str| v.iter().find(|p| p.0 == s).unwrap().1;

    // A dry run shows the change and applies nothing.
    edit(
        &f,
        "description = \"stand-in c\"",
        "description = \"stand-in c\"\nenv = { RELOAD = \"1\" }",
    );
    let out = f.mdw(&["reload", "--dry-run"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("restart  service c (env)"),
        "{}",
        text(&out)
    );
    assert_eq!(procs(&f.status()), before);

    // The RPC: only c restarts.
    let out = f.mdw(&["reload"]);
    assert!(out.status.success(), "{}", text(&out));
    let after_rpc = wait_new_pid(&f, "c", pid(&before, "c"));
    assert_eq!(after_rpc[0], before[0], "a untouched");
    assert_eq!(after_rpc[1], before[1], "b untouched");

    // SIGHUP: the same.
    edit(&f, "RELOAD = \"1\"", "RELOAD = \"2\"");
    test_support::signal(d.pid(), rustix::process::Signal::HUP);
    let after_hup = wait_new_pid(&f, "c", pid(&after_rpc, "c"));
    assert_eq!(after_hup[0], before[0], "a untouched by SIGHUP");
    assert_eq!(after_hup[1], before[1], "b untouched by SIGHUP");

    assert!(d.log().contains("SIGHUP: reloading"), "{}", d.log());

    // An invalid file: nothing applied, every problem reported with the file's name.
    edit(&f, "max_retries = 3", "max_retries = \"three\"");
    let out = f.mdw(&["reload"]);
    assert!(!out.status.success());
    let said = text(&out);
    assert!(said.contains("services.toml"), "{said}");
    assert!(said.contains("max_retries"), "{said}");
    assert!(said.contains("nothing was reloaded"), "{said}");
    test_support::signal(d.pid(), rustix::process::Signal::HUP);
    assert!(
        wait_for(T, || d.log().contains("reload refused")),
        "{}",
        d.log()
    );
    assert_eq!(
        procs(&f.status()),
        after_hup,
        "an invalid file changes nothing"
    );
}

#[test]
fn watch_config_reloads_the_services_file_by_itself() {
    let f = Fixture::new(&[Svc::demo("a"), Svc::demo("c")], "watch_config = true");
    let d = f.start();
    let before = procs(&f.wait_all_healthy(T));
    let c = before.iter().find(|p| p.0 == "c").unwrap().1;
    edit(
        &f,
        "description = \"stand-in c\"",
        "description = \"stand-in c\"\nenv = { RELOAD = \"1\" }",
    );
    let after = wait_new_pid(&f, "c", c);
    assert_eq!(after[0], before[0], "a untouched");
    assert!(d.log().contains("changed: reloading it"), "{}", d.log());
}

/// The short_names in a status, in its order.
fn shorts(st: &serde_json::Value) -> Vec<String> {
    procs(st).into_iter().map(|p| p.0).collect()
}

#[test]
fn reload_adds_and_removes_services_and_leaves_the_others_alone() {
    let (a, b, c) = (Svc::demo("a"), Svc::demo("b").deps(&["a"]), Svc::demo("c"));
    let f = Fixture::new(&[a.clone(), b.clone(), c.clone()], "");
    let _d = f.start();
    let before = procs(&f.wait_all_healthy(T));
    let header = {
        let text = std::fs::read_to_string(&f.config).unwrap();
        text[..text.find("[[services]]").unwrap()].to_string()
    };
    let write = |svcs: &[&Svc]| {
        let mut text = header.clone();
        for s in svcs {
            text.push_str(&s.toml());
        }
        std::fs::write(&f.config, text).unwrap();
    };

    // Added: d starts; a, b, c keep their processes.
    let d = Svc::demo("d");
    write(&[&a, &b, &c, &d]);
    let dry = f.mdw(&["reload", "--dry-run"]);
    assert!(dry.status.success(), "{}", text(&dry));
    assert!(text(&dry).contains("service d"), "{}", text(&dry));
    assert_eq!(
        shorts(&f.status()),
        ["a", "b", "c"],
        "a dry run adds nothing"
    );
    let out = f.mdw(&["reload"]);
    assert!(out.status.success(), "{}", text(&out));
    let st = f.wait_all_healthy(T);
    assert_eq!(shorts(&st), ["a", "b", "c", "d"]);
    let added = procs(&st);
    assert_eq!(added[..3], before[..], "a, b and c untouched");

    // Removed: c stops (its group is gone) and leaves the status; the others stay.
    let c_pid = added[2].1 as u32;
    write(&[&a, &b, &d]);
    let out = f.mdw(&["reload"]);
    assert!(out.status.success(), "{}", text(&out));
    let st = f.status();
    assert_eq!(shorts(&st), ["a", "b", "d"]);
    assert!(
        !test_support::procs::group_alive(c_pid),
        "c's group is gone"
    );
    let now = procs(&st);
    assert_eq!(now[..2], before[..2], "a and b untouched");
    assert_eq!(now[2], added[3], "d untouched");
    let out = f.mdw(&["start", "c"]);
    assert!(!out.status.success(), "c is unknown now: {}", text(&out));
    assert!(text(&out).contains("'c'"), "{}", text(&out));

    // Removing a service that another one keeps needing is an invalid file: refused whole.
    write(&[&b, &d]);
    let out = f.mdw(&["reload"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("unknown dependency 'a'"),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("nothing was reloaded"),
        "{}",
        text(&out)
    );
    assert_eq!(procs(&f.status()), now, "nothing changed");
}
