//! Reading `env_file`: `KEY=VALUE` lines, re-read at every spawn.
//!
//! Blank lines and lines starting with `#` are skipped, an `export ` prefix is allowed, and
//! a value wrapped in matching single or double quotes is unwrapped (no escapes);
//! `${NAME}`, `${NAME:-default}` and `$$` in values expand (see `russell_config::vars`). The result is applied after Russell's own environment and before
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
    #[error("{path}: the value of {key} cannot be expanded")]
    Var {
        path: PathBuf,
        key: String,
        #[source]
        source: russell_config::vars::VarError,
    },
}

/// The variables in `path`, in file order.
pub fn read_env_file(path: &Path) -> Result<Vec<(String, String)>, EnvFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| EnvFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let entries = parse(&text).map_err(|line| EnvFileError::Syntax {
        path: path.to_path_buf(),
        line,
    })?;
    // `${NAME}` in values: from Russell's environment, then from earlier lines.
    russell_config::vars::expand_env_file(entries, &|name| std::env::var(name).ok()).map_err(
        |(key, source)| EnvFileError::Var {
            path: path.to_path_buf(),
            key,
            source,
        },
    )
}

/// Parses env_file text; on error the 1-based line number (one parser for Russell and
/// `mdw config check`: [`russell_config::vars::parse_env_file`]).
fn parse(text: &str) -> Result<Vec<(String, String)>, usize> {
    russell_config::vars::parse_env_file(text)
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
