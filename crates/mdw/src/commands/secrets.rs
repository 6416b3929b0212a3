//! Masking for `mdw config check`: values of variables whose names look secret
//! (`*KEY*`, `*TOKEN*`, `*SECRET*`, `*PASSWORD*`) never reach its output, whether they
//! sit in `env`, came from the service's env_file, or were expanded from Russell's
//! environment into a command or a URL.

use russell_config::Config;
use russell_config::vars::{expand_env_file, looks_secret, parse_env_file};
use serde_json::Value;

/// What a masked value is shown as.
pub const MASK: &str = "********";

/// Values shorter than this are not searched for in other text (a secret "1" would mask
/// every digit); they are still masked where they stand as a secret key's value.
const MIN_SEARCHED: usize = 4;

/// The secret values `config` may show: secret-named entries of each service's `env` and
/// env_file, and secret-named variables of this process's environment.
pub fn secret_values(config: &Config) -> Vec<String> {
    let mut found: Vec<String> = std::env::vars()
        .filter(|(k, _)| looks_secret(k))
        .map(|(_, v)| v)
        .collect();
    for s in &config.services {
        found.extend(
            s.env
                .iter()
                .filter(|(k, _)| looks_secret(k))
                .map(|(_, v)| v.clone()),
        );
        let file = s
            .env_file
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|t| parse_env_file(&t).ok())
            .and_then(|e| expand_env_file(e, &|n| std::env::var(n).ok()).ok());
        found.extend(
            file.into_iter()
                .flatten()
                .filter(|(k, _)| looks_secret(k))
                .map(|(_, v)| v),
        );
    }
    found.retain(|v| v.len() >= MIN_SEARCHED);
    // Longest first, so that a secret containing another is masked whole.
    found.sort_by_key(|v| std::cmp::Reverse(v.len()));
    found.dedup();
    found
}

/// `text` with every secret value replaced by [`MASK`].
pub fn mask_text(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .fold(text.to_string(), |t, s| t.replace(s.as_str(), MASK))
}

/// The `config check --json` document with secret-named `env` values masked, and every
/// secret value masked in every other string.
pub fn mask_json(doc: &mut Value, secrets: &[String]) {
    match doc {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                if key == "env"
                    && let Value::Object(env) = value
                {
                    for (name, v) in env.iter_mut() {
                        if looks_secret(name) {
                            *v = Value::String(MASK.to_string());
                        }
                    }
                }
                mask_json(value, secrets);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| mask_json(v, secrets)),
        Value::String(s) => *s = mask_text(s, secrets),
        _ => {}
    }
}

/// One service's `env` for the text output, secret-named values masked.
pub fn env_text(env: &std::collections::BTreeMap<String, String>) -> String {
    env.iter()
        .map(|(k, v)| {
            if looks_secret(k) {
                format!("{k}={MASK}")
            } else {
                format!("{k}={v}")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_secret_keys_and_their_values_elsewhere() {
        let secrets = vec!["sk-abcdef".to_string()];
        let mut doc = serde_json::json!({
            "services": [{
                "env": {"OPENAI_API_KEY": "short", "RUST_LOG": "info"},
                "command": ["/bin/x", "--key=sk-abcdef"],
            }]
        });
        mask_json(&mut doc, &secrets);
        let s = &doc["services"][0];
        assert_eq!(s["env"]["OPENAI_API_KEY"], MASK);
        assert_eq!(s["env"]["RUST_LOG"], "info");
        assert_eq!(s["command"][1], format!("--key={MASK}"));
        assert_eq!(mask_text("a sk-abcdef b", &secrets), format!("a {MASK} b"));
    }
}
