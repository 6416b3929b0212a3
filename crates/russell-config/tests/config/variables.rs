//! `${NAME}`, `${NAME:-default}` and `$$` in a services file: resolved from Russell's
//! environment and the service's env_file, an unset name is an error naming it.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use russell_config::{ConfigError, Probe, parse};

fn parsed(text: &str, source: &Path) -> Result<russell_config::Config, Vec<ConfigError>> {
    parse(text, source, Path::new("/opt/mdw/bin/mdw")).map_err(|e| e.0)
}

#[test]
fn set_defaulted_and_escaped_variables_resolve() {
    let home = std::env::var("HOME").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
[[services]]
name = "api"
command = ["${MDW_TEST_SURELY_UNSET_1:-/bin/server}", "--home=${HOME}", "cost $$5", "$HOME"]
working_dir = "${HOME}"
env = { GREETING = "${MDW_TEST_SURELY_UNSET_2:-hello} world", LITERAL = "$${HOME}" }
http_port = 8080
[services.health_check]
type = "http"
endpoint = "/${MDW_TEST_SURELY_UNSET_3:-health}"

[[externals]]
name = "db"
[externals.health_check]
type = "tcp"
address = "${MDW_TEST_SURELY_UNSET_4:-127.0.0.1}:5432"
"#;
    let c = parsed(text, &dir.path().join("services.toml")).unwrap();
    let s = &c.services[0];
    assert_eq!(
        s.command,
        ["/bin/server", &format!("--home={home}"), "cost $5", "$HOME"]
    );
    assert_eq!(s.working_dir, Path::new(&home));
    assert_eq!(s.env["GREETING"], "hello world");
    assert_eq!(s.env["LITERAL"], "${HOME}");
    assert_eq!(
        s.health_check.probe,
        Probe::Http {
            url: "http://127.0.0.1:8080/health".into(),
            expect_body: None
        }
    );
    assert_eq!(
        c.externals[0].health_check.probe,
        Probe::Tcp {
            addr: "127.0.0.1:5432".into()
        }
    );
}

#[test]
fn an_unset_variable_is_an_error_naming_it_with_service_field_and_line() {
    let text = "[[services]]\nname = \"turing\"\ncommand = [\"x\"]\n\
                env = { OPENAI = \"${MDW_TEST_NOT_SET_OPENAI_API_KEY}\" }\n";
    let errs = parsed(text, Path::new("/srv/services.toml")).unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:#?}");
    let e = &errs[0];
    assert_eq!(e.service.as_deref(), Some("turing"));
    assert_eq!(e.field.as_deref(), Some("env.OPENAI"));
    assert_eq!(e.line, Some(4));
    assert!(
        e.message
            .contains("${MDW_TEST_NOT_SET_OPENAI_API_KEY} is not set"),
        "{e}"
    );
    assert!(e.to_string().contains("/srv/services.toml:4"), "{e}");
    assert!(
        e.hint.contains("${MDW_TEST_NOT_SET_OPENAI_API_KEY:-value}"),
        "{e}"
    );

    let bad = "[[services]]\nname = \"a\"\ncommand = [\"${oops\"]\n";
    let errs = parsed(bad, Path::new("/srv/services.toml")).unwrap_err();
    assert!(errs[0].message.contains("without its closing"), "{errs:#?}");
}

#[test]
fn env_file_values_are_variables_too() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "BASE=/opt/app\nexport API_URL=\"${BASE}/v1\"\n",
    )
    .unwrap();
    let text = "[[services]]\nname = \"a\"\nenv_file = \".env\"\n\
                command = [\"${BASE}/bin/a\", \"--api=${API_URL}\"]\n";
    let c = parsed(text, &dir.path().join("services.toml")).unwrap();
    assert_eq!(
        c.services[0].command,
        ["/opt/app/bin/a", "--api=/opt/app/v1"]
    );

    std::fs::write(dir.path().join(".env"), "TOKEN=${MDW_TEST_NOT_SET_T}\n").unwrap();
    let text = "[[services]]\nname = \"a\"\nenv_file = \".env\"\ncommand = [\"x\"]\n";
    let errs = parsed(text, &dir.path().join("services.toml")).unwrap_err();
    assert_eq!(errs[0].field.as_deref(), Some("env_file"), "{errs:#?}");
    assert_eq!(errs[0].line, Some(3));
    assert!(
        errs[0]
            .message
            .contains("the value of TOKEN: ${MDW_TEST_NOT_SET_T} is not set"),
        "{errs:#?}"
    );
}
