//! Reading `env_file`: `KEY=VALUE` lines, re-read at every spawn.
//!
//! Blank lines and lines starting with `#` are skipped, an `export ` prefix is allowed, and
//! a value wrapped in matching single or double quotes is unwrapped (no escapes, no
//! variable expansion). The result is applied after Russell's own environment and before
//! the service's `env` table, so `env` wins.

use std::path::{Path, PathBuf};

/// An env_file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum EnvFileError {
    #[error("cannot read env_file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: expected KEY=VALUE")]
    Syntax { path: PathBuf, line: usize },
}

/// The variables in `path`, in file order.
pub fn read_env_file(path: &Path) -> Result<Vec<(String, String)>, EnvFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| EnvFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text).map_err(|line| EnvFileError::Syntax {
        path: path.to_path_buf(),
        line,
    })
}

/// Parses env_file text; on error the 1-based line number.
fn parse(text: &str) -> Result<Vec<(String, String)>, usize> {
    let mut vars = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (key, value) = line.split_once('=').ok_or(i + 1)?;
        let key = key.trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(i + 1);
        }
        let value = value.trim();
        let value = [('"', '"'), ('\'', '\'')]
            .iter()
            .find_map(|(a, b)| {
                value
                    .strip_prefix(*a)
                    .and_then(|v| v.strip_suffix(*b))
                    .filter(|_| value.len() >= 2)
            })
            .unwrap_or(value);
        vars.push((key.to_string(), value.to_string()));
    }
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_forms() {
        let text =
            "# comment\n\nA=1\nexport B = two words \nC=\"quoted # not comment\"\nD='x'\nE=\n";
        let got = parse(text).expect("valid");
        let want: Vec<(String, String)> = [
            ("A", "1"),
            ("B", "two words"),
            ("C", "quoted # not comment"),
            ("D", "x"),
            ("E", ""),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn names_the_bad_line() {
        assert_eq!(parse("A=1\nnonsense\n"), Err(2));
        assert_eq!(parse("=1\n"), Err(1));
    }
}
