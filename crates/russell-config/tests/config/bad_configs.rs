//! Every file under tests/bad/ is a malformed services file whose first line says
//! `# expect: <text>`: loading it must fail with an error containing that text, and every
//! error must say what to do and point inside the file.
#![allow(clippy::unwrap_used)]

use std::path::Path;

#[test]
fn every_bad_config_is_rejected_with_the_expected_message() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 40, "only {} bad configs", files.len());
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{}: first line must be `# expect: …`", file.display()));
        let lines = text.lines().count();
        match russell_config::load_with(file, Path::new("/usr/bin/mdw")) {
            Ok(_) => failures.push(format!("{}: accepted", file.display())),
            Err(errors) => {
                let shown = errors.to_string();
                if !shown.contains(expect) {
                    failures.push(format!(
                        "{}: expected `{expect}` in:\n{shown}",
                        file.display()
                    ));
                }
                for e in &errors {
                    if e.hint.is_empty() || e.message.is_empty() {
                        failures.push(format!("{}: no message or hint: {e}", file.display()));
                    }
                    if e.line.is_some_and(|l| l == 0 || l > lines + 1) {
                        failures.push(format!("{}: line outside the file: {e}", file.display()));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
