//! `parse` never panics: mutated copies of real services files and random text either
//! validate (and then plan) or fail with errors that have a message, a hint and a place
//! inside the text.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use test_support::Rng;

const SHIPPED: &str = include_str!("../../../../configs/services.toml");

const PLAN_FILE: &str = r#"
[[services]]
name = "Kant"
short_name = "kant"
description = "API Gateway"
http_port = 8080
command = ["./bin/mdw", "serve", "kant"]
dependencies = ["turing"]
start_order = 10
max_retries = 3

[services.health_check]
type = "http"
endpoint = "/api/v1/health"
interval = "10s"
timeout = "3s"

[[services]]
name = "Turing"
short_name = "turing"
grpc_port = 9200
http_port = 9201
command = ["./bin/mdw", "serve", "turing"]
dependencies = []
start_order = 1

[services.health_check]
type = "grpc"
interval = "10s"
timeout = "3s"
"#;

/// Pieces that make mutations likely to stay TOML-ish and reach validation.
const TOKENS: &[&str] = &[
    "[",
    "]",
    "[[",
    "]]",
    "{",
    "}",
    "=",
    "\"",
    "'",
    ",",
    "\n",
    " ",
    "#",
    ".",
    "0",
    "-1",
    "65536",
    "99999999999999999999",
    "\"\"",
    "[]",
    "true",
    "\"0s\"",
    "\"1ms\"",
    "\"x\"",
    "{mdw}",
    "\u{0}",
    "é",
    "→",
    "\\",
    "\"\\u0000\"",
    "services",
    "externals",
    "defaults",
    "health_check",
    "type",
    "\"exec\"",
    "\"grpc\"",
    "\"http\"",
    "\"tcp\"",
    "dependencies",
    "kant",
    "turing",
    "port",
    "name",
    "short_name",
    "command",
    "1e400",
    "inf",
    "nan",
    "1979-05-27T07:32:00Z",
];

fn char_boundary(text: &str, mut i: usize) -> usize {
    i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn mutate(text: &str, rng: &mut Rng) -> String {
    let mut out = text.to_owned();
    for _ in 0..1 + rng.pick(4) {
        let at = char_boundary(&out, rng.pick(out.len() + 1));
        match rng.pick(6) {
            0 => out.insert_str(at, TOKENS[rng.pick(TOKENS.len())]),
            1 => {
                let end = char_boundary(&out, at + rng.pick(12));
                out.replace_range(at..end, "");
            }
            2 => {
                let end = char_boundary(&out, at + rng.pick(30));
                let copy = out[at..end].to_owned();
                let to = char_boundary(&out, rng.pick(out.len() + 1));
                out.insert_str(to, &copy);
            }
            3 => {
                let mut lines: Vec<&str> = out.lines().collect();
                if lines.len() > 1 {
                    let a = rng.pick(lines.len());
                    let b = rng.pick(lines.len());
                    lines.swap(a, b);
                }
                out = lines.join("\n");
            }
            4 => out.truncate(at),
            _ => {
                let end = char_boundary(&out, at + rng.pick(8));
                out.replace_range(at..end, TOKENS[rng.pick(TOKENS.len())]);
            }
        }
    }
    out
}

fn check(text: &str, what: &str) -> bool {
    let lines = text.split('\n').count();
    match russell_config::parse(
        text,
        Path::new("/tmp/fuzz/services.toml"),
        Path::new("/bin/mdw"),
    ) {
        Ok(config) => {
            let planned: usize = config.plan().levels.iter().map(Vec::len).sum();
            assert_eq!(planned, config.services.len(), "{what}");
            true
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "{what}: Err without errors");
            for e in &errors {
                assert!(!e.message.is_empty() && !e.hint.is_empty(), "{what}: {e}");
                if let Some(line) = e.line {
                    assert!(
                        line >= 1 && line <= lines,
                        "{what}: line {line} of {lines}: {e}"
                    );
                }
                let _ = e.to_string();
            }
            false
        }
    }
}

#[test]
fn mutated_files_never_panic() {
    let mut valid = 0;
    let mut invalid = 0;
    for (base_name, base) in [("shipped", SHIPPED), ("plan", PLAN_FILE)] {
        for seed in 1..=1500u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let text = mutate(base, &mut rng);
            if check(&text, &format!("{base_name} seed {seed}:\n{text}")) {
                valid += 1;
            } else {
                invalid += 1;
            }
        }
    }
    // Both outcomes occur, so the mutations reach validation and not only the parser.
    assert!(valid > 0 && invalid > 0, "valid {valid}, invalid {invalid}");
}

#[test]
fn random_text_never_panics() {
    for seed in 1..=1000u64 {
        let mut rng = Rng(seed | 1);
        let len = rng.pick(300);
        let text: String = (0..len)
            .map(|_| {
                if rng.pick(3) == 0 {
                    TOKENS[rng.pick(TOKENS.len())].to_owned()
                } else {
                    char::from_u32(rng.pick(0x3000) as u32)
                        .unwrap_or('?')
                        .to_string()
                }
            })
            .collect();
        check(&text, &format!("random seed {seed}"));
    }
}

#[test]
fn deep_nesting_and_huge_values_do_not_overflow() {
    let deep_array = format!("x = {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    check(&deep_array, "deep array");
    let deep_table = format!("x = {}{}\n", "{ a = ".repeat(50_000), "}".repeat(50_000));
    check(&deep_table, "deep inline table");
    let deep_command = format!(
        "[[services]]\nname = \"a\"\ncommand = {}\"x\"{}\n",
        "[".repeat(5_000),
        "]".repeat(5_000)
    );
    check(&deep_command, "deep command");
    let many = "[[services]]\nname = \"a\"\ncommand = [\"x\"]\n".repeat(2_000);
    check(&many, "2000 duplicate services");
    let long_name = format!(
        "[[services]]\nname = \"{}\"\ncommand = [\"x\"]\n",
        "k".repeat(1_000_000)
    );
    check(&long_name, "long name");
}
