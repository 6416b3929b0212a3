//! `kind`, `restart` and `success_exit_codes`: defaults, values, and each error naming the
//! service, field and line.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use russell_config::{ConfigError, RestartPolicy, ServiceKind, parse};

fn source() -> PathBuf {
    PathBuf::from("/srv/mdw/configs/services.toml")
}

fn parsed(text: &str) -> Result<russell_config::Config, Vec<ConfigError>> {
    parse(text, &source(), Path::new("/opt/mdw/bin/mdw")).map_err(|e| e.0)
}

#[track_caller]
fn one_error(text: &str, field: &str, line: usize, message: &str) {
    let errs = parsed(text).expect_err("expected an error");
    assert_eq!(errs.len(), 1, "{errs:#?}");
    let e = &errs[0];
    assert_eq!(e.service.as_deref(), Some("a"), "{e}");
    assert_eq!(e.field.as_deref(), Some(field), "{e}");
    assert_eq!(e.line, Some(line), "{e}");
    assert!(e.message.contains(message), "{e}");
}

#[test]
fn defaults_keep_todays_behaviour() {
    let c = parsed("[[services]]\nname = \"a\"\ncommand = [\"x\"]\n").unwrap();
    let s = &c.services[0];
    assert_eq!(s.kind, ServiceKind::Service);
    assert_eq!(s.restart, RestartPolicy::Always);
    assert_eq!(s.success_exit_codes, [0]);
}

#[test]
fn a_task_defaults_to_never_and_values_are_read() {
    let c = parsed(
        "[defaults]\nsuccess_exit_codes = [0, 3]\n\
         [[services]]\nname = \"a\"\ncommand = [\"x\"]\nkind = \"task\"\n\
         [[services]]\nname = \"b\"\ncommand = [\"x\"]\nrestart = \"on-failure\"\n",
    )
    .unwrap();
    assert_eq!(c.services[0].kind, ServiceKind::Task);
    assert_eq!(c.services[0].restart, RestartPolicy::Never);
    assert_eq!(c.services[0].success_exit_codes, [0, 3]);
    assert_eq!(c.services[1].restart, RestartPolicy::OnFailure);
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["services"][0]["kind"], "task");
    assert_eq!(json["services"][1]["restart"], "on-failure");
    assert_eq!(json["services"][0]["success_exit_codes"][1], 3);
}

#[test]
fn bad_values_name_service_field_and_line() {
    let head = "[[services]]\nname = \"a\"\ncommand = [\"x\"]\n";
    one_error(
        &format!("{head}kind = \"job\"\n"),
        "kind",
        4,
        "unknown kind 'job'",
    );
    one_error(
        &format!("{head}restart = \"sometimes\"\n"),
        "restart",
        4,
        "unknown restart policy",
    );
    one_error(
        &format!("{head}success_exit_codes = [0, 300]\n"),
        "success_exit_codes",
        4,
        "exit code 300 is out of range",
    );
    one_error(
        &format!("{head}success_exit_codes = []\n"),
        "success_exit_codes",
        4,
        "empty",
    );
    one_error(
        &format!("{head}kind = \"task\"\nrestart = \"always\"\n"),
        "restart",
        5,
        "would run this task forever",
    );
    one_error(
        &format!("{head}kind = \"task\"\nhttp_port = 8080\n"),
        "http_port",
        5,
        "a task has no http_port",
    );
}

#[test]
fn kind_is_not_a_default() {
    let errs =
        parsed("[defaults]\nkind = \"task\"\n[[services]]\nname = \"a\"\ncommand = [\"x\"]\n")
            .err()
            .unwrap();
    assert!(
        errs[0].message.contains("'kind' identifies one service"),
        "{errs:#?}"
    );
}
