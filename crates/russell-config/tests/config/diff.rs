//! The reload diff as a table: a base file, one edit, and exactly which services and
//! externals change with which action.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use russell_config::{Action, Config, diff, parse};

const BASE: &str = r#"
[[externals]]
name = "db"
health_check = { type = "tcp", address = "127.0.0.1:5432" }

[[services]]
name = "a"
command = ["bin/a", "--x"]
grpc_port = 9001
health_check = { type = "grpc", interval = "10s" }

[[services]]
name = "b"
command = ["bin/b"]
dependencies = ["a", "db"]

[[services]]
name = "c"
command = ["bin/c"]
"#;

fn config(text: &str) -> Config {
    parse(text, Path::new("/tmp/services.toml"), Path::new("/bin/mdw"))
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// `BASE` with `from` replaced by `to` (which must occur).
fn edit(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "{from}");
    BASE.replacen(from, to, 1)
}

type Expect<'a> = &'a [(&'a str, Action)];

#[test]
fn table() {
    let cases: Vec<(&str, String, Expect<'_>, Expect<'_>)> = vec![
        ("nothing", BASE.to_string(), &[], &[]),
        (
            "add",
            format!("{BASE}\n[[services]]\nname = \"d\"\ncommand = [\"bin/d\"]\n"),
            &[("d", Action::Add)],
            &[],
        ),
        (
            "remove",
            edit("[[services]]\nname = \"c\"\ncommand = [\"bin/c\"]\n", ""),
            &[("c", Action::Remove)],
            &[],
        ),
        (
            "rename is remove + add",
            edit("name = \"c\"", "name = \"c2\""),
            &[("c2", Action::Add), ("c", Action::Remove)],
            &[],
        ),
        ("command", edit("\"--x\"", "\"--y\""), &[("a", Action::Restart)], &[]),
        ("port", edit("9001", "9002"), &[("a", Action::Restart)], &[]),
        (
            "env",
            edit("command = [\"bin/c\"]", "command = [\"bin/c\"]\nenv = { K = \"v\" }"),
            &[("c", Action::Restart)],
            &[],
        ),
        (
            "working_dir",
            edit("command = [\"bin/c\"]", "command = [\"bin/c\"]\nworking_dir = \"/srv\""),
            &[("c", Action::Restart)],
            &[],
        ),
        (
            "dependency added",
            edit("command = [\"bin/c\"]", "command = [\"bin/c\"]\ndependencies = [\"a\"]"),
            &[("c", Action::Restart)],
            &[],
        ),
        (
            "dependency removed",
            edit("dependencies = [\"a\", \"db\"]", "dependencies = [\"db\"]"),
            &[("b", Action::Restart)],
            &[],
        ),
        (
            "health check target",
            edit("type = \"grpc\"", "type = \"tcp\""),
            &[("a", Action::Restart)],
            &[],
        ),
        (
            "health check timing only",
            edit("interval = \"10s\"", "interval = \"5s\""),
            &[("a", Action::Apply)],
            &[],
        ),
        (
            "description and version",
            edit(
                "command = [\"bin/c\"]",
                "command = [\"bin/c\"]\ndescription = \"C\"\nversion = \"1.2.0\"",
            ),
            &[("c", Action::Apply)],
            &[],
        ),
        (
            "restart budget",
            edit("command = [\"bin/c\"]", "command = [\"bin/c\"]\nmax_retries = 7"),
            &[("c", Action::Apply)],
            &[],
        ),
        (
            "watch",
            edit(
                "command = [\"bin/c\"]",
                "command = [\"bin/c\"]\nwatch = [\"bin/c\"]\nwatch_debounce = \"1s\"",
            ),
            &[("c", Action::Apply)],
            &[],
        ),
        (
            "disabled",
            edit("command = [\"bin/c\"]", "command = [\"bin/c\"]\nenabled = false"),
            &[("c", Action::Disable)],
            &[],
        ),
        (
            "external probe",
            edit("5432", "5433"),
            &[],
            &[("db", Action::Restart)],
        ),
        (
            "external optional",
            edit("name = \"db\"", "name = \"db\"\noptional = true"),
            &[],
            &[("db", Action::Apply)],
        ),
        (
            "external removed with its dependent edge",
            edit(
                "[[externals]]\nname = \"db\"\nhealth_check = { type = \"tcp\", address = \"127.0.0.1:5432\" }\n",
                "",
            )
            .replace("[\"a\", \"db\"]", "[\"a\"]"),
            &[("b", Action::Restart)],
            &[("db", Action::Remove)],
        ),
    ];
    let base = config(BASE);
    for (what, text, services, externals) in cases {
        let d = diff(&base, &config(&text));
        let got: Vec<(&str, Action)> = d
            .services
            .iter()
            .map(|c| (c.short_name.as_str(), c.action))
            .collect();
        assert_eq!(got, services, "{what}: services {d:?}");
        let got: Vec<(&str, Action)> = d
            .externals
            .iter()
            .map(|c| (c.short_name.as_str(), c.action))
            .collect();
        assert_eq!(got, externals, "{what}: externals {d:?}");
        assert!(d.needs_russell_restart.is_empty(), "{what}");
    }
}

#[test]
fn enabling_again_is_its_own_action() {
    let off = config(&edit(
        "command = [\"bin/c\"]",
        "command = [\"bin/c\"]\nenabled = false",
    ));
    let d = diff(&off, &config(BASE));
    assert_eq!(d.service("c").map(|c| c.action), Some(Action::Enable));
}

#[test]
fn listen_and_state_dir_need_a_russell_restart_and_the_rest_still_diffs() {
    let text = format!(
        "[russell]\nlisten = \"127.0.0.1:9200\"\nstate_dir = \"/tmp/elsewhere\"\n{}",
        edit("\"--x\"", "\"--y\"")
    );
    let d = diff(&config(BASE), &config(&text));
    assert_eq!(
        d.needs_russell_restart,
        vec!["[russell] listen", "[russell] state_dir"]
    );
    assert_eq!(d.service("a").map(|c| c.action), Some(Action::Restart));
    assert_eq!(
        d.service("a").map(|c| c.keys.clone()),
        Some(vec!["command"])
    );
}

#[test]
fn watch_patterns_resolve_against_the_paths_base_and_a_bad_glob_is_an_error() {
    let c = config(&edit(
        "command = [\"bin/c\"]",
        "command = [\"bin/c\"]\nwatch = [\"bin/c\", \"conf/*.toml\"]",
    ));
    let s = c.services.iter().find(|s| s.short_name == "c").unwrap();
    assert_eq!(
        s.watch,
        [Path::new("/tmp/bin/c"), Path::new("/tmp/conf/*.toml")]
    );
    assert_eq!(s.watch_debounce, std::time::Duration::from_millis(500));
    let bad = edit(
        "command = [\"bin/c\"]",
        "command = [\"bin/c\"]\nwatch = [\"conf/[.toml\"]",
    );
    let err = parse(&bad, Path::new("/tmp/services.toml"), Path::new("/bin/mdw")).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("watch") && text.contains("conf/[.toml"),
        "{text}"
    );
}
