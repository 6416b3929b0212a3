//! Variables in the services file: `${NAME}`, `${NAME:-default}` (the default when NAME is
//! unset or empty) and `$$` for a literal `$`. A `$` before anything else stays as it is,
//! so `sh -c "echo $HOME"` keeps its shell variable. Pure: the caller says where values
//! come from (see `validate::vars`).

/// Why a text cannot be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VarError {
    #[error("${{{0}}} is not set")]
    Unset(String),
    #[error("'${{' without its closing '}}'")]
    Unclosed,
    #[error("'${{{0}}}' is not a variable name")]
    BadName(String),
}

/// `text` with every `${NAME}` / `${NAME:-default}` replaced by `lookup(NAME)` and every
/// `$$` by `$`. Fails on the first variable that is unset without a default.
pub fn expand(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, VarError> {
    if !text.contains('$') {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').ok_or(VarError::Unclosed)?;
            let inner = &body[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            if !is_name(name) {
                return Err(VarError::BadName(inner.to_string()));
            }
            match (
                lookup(name).filter(|v| default.is_none() || !v.is_empty()),
                default,
            ) {
                (Some(value), _) => out.push_str(&value),
                (None, Some(d)) => out.push_str(d),
                (None, None) => return Err(VarError::Unset(name.to_string())),
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The names of the variables `text` refers to (`${NAME}` and `${NAME:-…}`).
pub fn names(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{')
            && let Some(end) = body.find('}')
        {
            let inner = &body[..end];
            let name = inner.split_once(":-").map_or(inner, |(n, _)| n);
            if is_name(name) {
                found.push(name.to_string());
            }
            rest = &body[end + 1..];
        } else {
            rest = after;
        }
    }
    found
}

/// `[A-Za-z_][A-Za-z0-9_]*`.
fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether a variable's name looks like it holds a secret (`*KEY*`, `*TOKEN*`,
/// `*SECRET*`, `*PASSWORD*`, any case): its value is masked where mdw shows it.
pub fn looks_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["KEY", "TOKEN", "SECRET", "PASSWORD"]
        .iter()
        .any(|word| upper.contains(word))
}

/// `KEY=VALUE` lines of an env file, in order: blank lines and `#` comments skipped, an
/// `export ` prefix allowed, a value in matching single or double quotes unwrapped (no
/// escapes). On error the 1-based line number.
pub fn parse_env_file(text: &str) -> Result<Vec<(String, String)>, usize> {
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

/// An env file's entries with their values expanded: a name resolves from `outer`
/// (Russell's environment) first, then from the entries above it in the same file. On
/// error the key whose value failed.
pub fn expand_env_file(
    entries: Vec<(String, String)>,
    outer: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, (String, VarError)> {
    let mut done: Vec<(String, String)> = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        let lookup = |name: &str| {
            outer(name).or_else(|| {
                done.iter()
                    .rev()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            })
        };
        match expand(&value, &lookup) {
            Ok(v) => done.push((key, v)),
            Err(e) => return Err((key, e)),
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("db.local".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_row_by_row() {
        let rows: &[(&str, Result<&str, VarError>)] = &[
            ("plain", Ok("plain")),
            ("${HOST}:5432", Ok("db.local:5432")),
            ("${PORT:-8080}", Ok("8080")),
            ("${HOST:-x}", Ok("db.local")),
            ("${EMPTY:-fallback}", Ok("fallback")),
            ("${EMPTY}", Ok("")),
            ("${PORT:-}", Ok("")),
            ("$${HOST}", Ok("${HOST}")),
            ("cost $$5", Ok("cost $5")),
            ("echo $HOME $1", Ok("echo $HOME $1")),
            ("end$", Ok("end$")),
            ("${MISSING}", Err(VarError::Unset("MISSING".into()))),
            ("${HOST", Err(VarError::Unclosed)),
            ("${9X}", Err(VarError::BadName("9X".into()))),
            ("${}", Err(VarError::BadName(String::new()))),
        ];
        for (text, want) in rows {
            let got = expand(text, &env);
            assert_eq!(got.as_deref().map_err(Clone::clone), want.clone(), "{text}");
        }
    }

    #[test]
    fn env_file_values_see_the_environment_then_earlier_lines() {
        let entries = vec![
            ("A".to_string(), "${HOST}".to_string()),
            ("B".to_string(), "${A}/x".to_string()),
            ("C".to_string(), "${NOPE}".to_string()),
        ];
        let err = expand_env_file(entries.clone(), &env).unwrap_err();
        assert_eq!(err, ("C".to_string(), VarError::Unset("NOPE".into())));
        let ok = expand_env_file(entries[..2].to_vec(), &env).unwrap();
        assert_eq!(ok[1].1, "db.local/x");
    }

    #[test]
    fn names_skip_escapes() {
        assert_eq!(names("${A} $${B} ${C:-x} $D"), ["A", "C"]);
    }

    #[test]
    fn secret_names() {
        for n in ["OPENAI_API_KEY", "token", "DB_PASSWORD", "client_secret"] {
            assert!(looks_secret(n), "{n}");
        }
        assert!(!looks_secret("RUST_LOG"));
    }
}
