//! Ollama probe: GET Ollama's model list (`/api/tags`, JSON
//! `{"models":[{"name":"mistral:7b",…},…]}`) and check that every needed model is listed by
//! name. A needed name with a tag (`mistral:7b`) must be listed exactly; one without a tag
//! (`nomic-embed-text`) is satisfied by any tag of that model (`nomic-embed-text:latest`).
//! Names are compared whole, never as substrings (`mistral:7b` is not `mistral:7b-instruct`).

use serde::Deserialize;

use super::ProbeError;
use super::http;

/// Read at most this much of the model list (a few hundred bytes per model).
const LIST_LIMIT: usize = 1024 * 1024;

#[derive(Deserialize)]
struct Tags {
    models: Vec<Model>,
}

#[derive(Deserialize)]
struct Model {
    #[serde(default)]
    name: String,
    /// Newer Ollama versions also give `model`, the same name.
    #[serde(default)]
    model: String,
}

/// GETs `url` and checks that it lists every name in `needed`.
pub(super) async fn probe(target: &str, url: &str, needed: &[String]) -> Result<(), ProbeError> {
    let body = http::get(target, url, LIST_LIMIT).await?;
    let tags: Tags = serde_json::from_slice(&body).map_err(|err| ProbeError::NotModelList {
        target: target.to_string(),
        what: err.to_string(),
    })?;
    let listed: Vec<&str> = tags
        .models
        .iter()
        .flat_map(|m| [m.name.as_str(), m.model.as_str()])
        .filter(|n| !n.is_empty())
        .collect();
    let missing: Vec<String> = needed
        .iter()
        .filter(|want| !listed.iter().any(|have| satisfies(have, want)))
        .cloned()
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ProbeError::MissingModels {
            target: target.to_string(),
            missing,
        })
    }
}

/// Whether the listed model `have` is the needed model `want`.
fn satisfies(have: &str, want: &str) -> bool {
    if want.contains(':') {
        have.eq_ignore_ascii_case(want)
    } else {
        let base = have.split_once(':').map_or(have, |(base, _)| base);
        base.eq_ignore_ascii_case(want)
    }
}

#[cfg(test)]
mod tests {
    use super::satisfies;

    #[test]
    fn names_match_whole_with_an_optional_tag() {
        assert!(satisfies("mistral:7b", "mistral:7b"));
        assert!(!satisfies("mistral:7b-instruct", "mistral:7b"));
        assert!(!satisfies("mistral:latest", "mistral:7b"));
        assert!(satisfies("nomic-embed-text:latest", "nomic-embed-text"));
        assert!(satisfies("nomic-embed-text", "nomic-embed-text"));
        assert!(!satisfies("nomic-embed-text-v2:latest", "nomic-embed-text"));
        assert!(!satisfies("my-nomic-embed-text:latest", "nomic-embed-text"));
    }
}
