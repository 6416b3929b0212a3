//! The raw serde model: mirrors the TOML file key for key (`deny_unknown_fields`), every value
//! `Spanned` so that validation can point at it. [`read`] fills it from the parsed document
//! one entry and one key at a time, so an unknown key or a wrongly typed value is reported
//! and skipped without hiding the problems after it.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Deserialize;
use serde::de::{DeserializeOwned, Visitor};
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use crate::error::{Collector, Subject};

/// A `[[services]]` entry, and also the `[defaults]` table (which may not set the keys that
/// identify a service: see [`crate::validate`]).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawService {
    pub name: Option<Spanned<String>>,
    pub short_name: Option<Spanned<String>>,
    pub description: Option<Spanned<String>>,
    pub grpc_port: Option<Spanned<i64>>,
    pub http_port: Option<Spanned<i64>>,
    pub command: Option<Spanned<Vec<Spanned<String>>>>,
    pub dependencies: Option<Spanned<Vec<Spanned<String>>>>,
    pub start_order: Option<Spanned<i64>>,
    pub max_retries: Option<Spanned<i64>>,
    pub working_dir: Option<Spanned<String>>,
    pub env: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    pub env_file: Option<Spanned<String>>,
    pub stop_signal: Option<Spanned<NumOrText>>,
    pub stop_timeout: Option<Spanned<String>>,
    pub on_port_conflict: Option<Spanned<String>>,
    pub restart_backoff: Option<Spanned<String>>,
    pub restart_backoff_max: Option<Spanned<String>>,
    pub restart_reset_after: Option<Spanned<String>>,
    pub restart_dependents: Option<Spanned<bool>>,
    pub version: Option<Spanned<String>>,
    pub enabled: Option<Spanned<bool>>,
    pub health_check: Option<Spanned<RawServiceCheck>>,
}

/// `[services.health_check]` (and `[defaults.health_check]`).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServiceCheck {
    #[serde(rename = "type")]
    pub kind: Option<Spanned<String>>,
    pub endpoint: Option<Spanned<String>>,
    pub port: Option<Spanned<i64>>,
    pub service: Option<Spanned<String>>,
    pub command: Option<Spanned<Vec<Spanned<String>>>>,
    pub expect_body: Option<Spanned<String>>,
    pub interval: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
    pub failure_threshold: Option<Spanned<i64>>,
    pub success_threshold: Option<Spanned<i64>>,
    pub start_timeout: Option<Spanned<String>>,
}

/// An `[[externals]]` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExternal {
    pub name: Option<Spanned<String>>,
    pub short_name: Option<Spanned<String>>,
    pub description: Option<Spanned<String>>,
    pub optional: Option<Spanned<bool>>,
    pub health_check: Option<Spanned<RawExternalCheck>>,
}

/// `[externals.health_check]`: says where to probe.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExternalCheck {
    #[serde(rename = "type")]
    pub kind: Option<Spanned<String>>,
    pub url: Option<Spanned<String>>,
    pub address: Option<Spanned<String>>,
    pub service: Option<Spanned<String>>,
    pub command: Option<Spanned<Vec<Spanned<String>>>>,
    pub expect_body: Option<Spanned<String>>,
    pub interval: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
    pub failure_threshold: Option<Spanned<i64>>,
    pub success_threshold: Option<Spanned<i64>>,
    pub start_timeout: Option<Spanned<String>>,
}

/// `[russell]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRussell {
    pub listen: Option<Spanned<String>>,
    pub state_dir: Option<Spanned<String>>,
    pub token_file: Option<Spanned<String>>,
    pub autostart: Option<Spanned<bool>>,
}

/// `[logs]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLogs {
    pub max_file_size: Option<Spanned<NumOrText>>,
    pub max_files: Option<Spanned<i64>>,
    pub tail_lines: Option<Spanned<i64>>,
}

/// A value written either as a number or as text (`stop_signal = 15` / `"SIGTERM"`,
/// `max_file_size = 1048576` / `"1MiB"`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NumOrText {
    Num(i64),
    Text(String),
}

impl<'de> Deserialize<'de> for NumOrText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = NumOrText;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number or a string")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<NumOrText, E> {
                Ok(NumOrText::Num(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<NumOrText, E> {
                i64::try_from(v)
                    .map(NumOrText::Num)
                    .map_err(|_| E::custom("number too large"))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<NumOrText, E> {
                Ok(NumOrText::Text(v.to_owned()))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// An entry with the span of its table in the text.
#[derive(Debug)]
pub(crate) struct Located<T> {
    pub span: Range<usize>,
    pub raw: T,
}

/// The whole file, raw.
#[derive(Debug, Default)]
pub(crate) struct RawFile {
    pub russell: Option<RawRussell>,
    pub logs: Option<RawLogs>,
    pub defaults: Option<Located<RawService>>,
    pub services: Vec<Located<RawService>>,
    pub externals: Vec<Located<RawExternal>>,
}

/// Which table a key sits in, for hints about misplaced keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Service,
    ServiceCheck,
    External,
    ExternalCheck,
    Other,
}

const TOP_LEVEL: &[&str] = &["russell", "logs", "defaults", "services", "externals"];

/// Reads a parsed document into the raw model, reporting unknown keys and wrongly typed
/// values (each one, with its place) into `c`.
pub(crate) fn read(doc: &Spanned<DeTable<'_>>, c: &mut Collector<'_>) -> RawFile {
    let mut file = RawFile::default();
    for (key, value) in doc.get_ref() {
        let name: &str = key.get_ref();
        match name {
            "russell" | "logs" | "defaults" => {
                let Some(table) = value.get_ref().as_table() else {
                    c.push(
                        Some(key.span()),
                        &Subject::File,
                        name,
                        format!("'{name}' must be a table"),
                        format!("write it as a [{name}] section"),
                    );
                    continue;
                };
                let prefix = format!("{name}.");
                match name {
                    "russell" => {
                        file.russell = Some(sift(
                            table,
                            value.span(),
                            c,
                            &Subject::File,
                            &prefix,
                            Kind::Other,
                        ));
                    }
                    "logs" => {
                        file.logs = Some(sift(
                            table,
                            value.span(),
                            c,
                            &Subject::File,
                            &prefix,
                            Kind::Other,
                        ));
                    }
                    _ => {
                        file.defaults = Some(Located {
                            span: value.span(),
                            raw: sift_service(table, value.span(), c, &Subject::File, &prefix),
                        });
                    }
                }
            }
            "services" | "externals" => {
                let Some(items) = value.get_ref().as_array() else {
                    c.push(
                        Some(key.span()),
                        &Subject::File,
                        name,
                        format!("'{name}' must be an array of tables"),
                        format!("start each entry with [[{name}]] (double brackets)"),
                    );
                    continue;
                };
                for (index, item) in items.iter().enumerate() {
                    let Some(table) = item.get_ref().as_table() else {
                        c.push(
                            Some(item.span()),
                            &Subject::File,
                            name,
                            format!("entry #{} of '{name}' is not a table", index + 1),
                            format!("start each entry with [[{name}]] (double brackets)"),
                        );
                        continue;
                    };
                    let label = entry_label(table, index);
                    if name == "services" {
                        let subject = Subject::Service(label);
                        let raw = sift_service(table, item.span(), c, &subject, "");
                        file.services.push(Located {
                            span: item.span(),
                            raw,
                        });
                    } else {
                        let subject = Subject::External(label);
                        let raw = sift_external(table, item.span(), c, &subject);
                        file.externals.push(Located {
                            span: item.span(),
                            raw,
                        });
                    }
                }
            }
            _ => {
                let hint = match closest(name, TOP_LEVEL) {
                    Some(best) => format!("did you mean '{best}'?"),
                    None => format!("top-level keys are: {}", TOP_LEVEL.join(", ")),
                };
                let hint = if fields_of::<RawService>().contains(&name) {
                    format!(
                        "'{name}' belongs to a service: put it after a [[services]] line, or \
                         under [defaults] for every service"
                    )
                } else {
                    hint
                };
                c.push(
                    Some(key.span()),
                    &Subject::File,
                    name,
                    format!("unknown key '{name}'"),
                    hint,
                );
            }
        }
    }
    file
}

/// What an entry is called in messages before it is validated: its short_name, else its
/// lowercased name, else its position.
fn entry_label(table: &DeTable<'_>, index: usize) -> String {
    let text = |key: &str| {
        table
            .iter()
            .find(|(k, _)| k.get_ref() == key)
            .and_then(|(_, v)| v.get_ref().as_str().map(str::to_owned))
            .filter(|s| !s.trim().is_empty())
    };
    text("short_name")
        .or_else(|| text("name").map(|n| n.trim().to_lowercase()))
        .unwrap_or_else(|| format!("#{}", index + 1))
}

fn sift_service(
    table: &DeTable<'_>,
    span: Range<usize>,
    c: &mut Collector<'_>,
    subject: &Subject,
    prefix: &str,
) -> RawService {
    let mut table = table.clone();
    for (key, value) in table.iter_mut() {
        if key.get_ref() == "health_check"
            && let Some(check) = value.get_ref().as_table()
        {
            let check_prefix = format!("{prefix}health_check.");
            let kept = filter::<RawServiceCheck>(
                check,
                value.span(),
                c,
                subject,
                &check_prefix,
                Kind::ServiceCheck,
            );
            *value = Spanned::new(value.span(), DeValue::Table(kept));
        }
    }
    sift(&table, span, c, subject, prefix, Kind::Service)
}

fn sift_external(
    table: &DeTable<'_>,
    span: Range<usize>,
    c: &mut Collector<'_>,
    subject: &Subject,
) -> RawExternal {
    let mut table = table.clone();
    for (key, value) in table.iter_mut() {
        if key.get_ref() == "health_check"
            && let Some(check) = value.get_ref().as_table()
        {
            let kept = filter::<RawExternalCheck>(
                check,
                value.span(),
                c,
                subject,
                "health_check.",
                Kind::ExternalCheck,
            );
            *value = Spanned::new(value.span(), DeValue::Table(kept));
        }
    }
    sift(&table, span, c, subject, "", Kind::External)
}

/// Filters `table` down to the keys `T` knows with values of the right type (reporting the
/// rest), then deserializes it.
fn sift<T: DeserializeOwned + Default>(
    table: &DeTable<'_>,
    span: Range<usize>,
    c: &mut Collector<'_>,
    subject: &Subject,
    prefix: &str,
    kind: Kind,
) -> T {
    let kept = filter::<T>(table, span.clone(), c, subject, prefix, kind);
    match T::deserialize(ValueDeserializer::from(Spanned::new(
        span.clone(),
        DeValue::Table(kept),
    ))) {
        Ok(value) => value,
        Err(err) => {
            // Not expected: every key was tried on its own above.
            c.push(
                err.span().or(Some(span)),
                subject,
                prefix.trim_end_matches('.'),
                err.message().to_owned(),
                "fix this table",
            );
            T::default()
        }
    }
}

fn filter<'i, T: DeserializeOwned>(
    table: &DeTable<'i>,
    span: Range<usize>,
    c: &mut Collector<'_>,
    subject: &Subject,
    prefix: &str,
    kind: Kind,
) -> DeTable<'i> {
    let fields = fields_of::<T>();
    let mut kept = DeTable::new();
    for (key, value) in table {
        let name: &str = key.get_ref();
        if !fields.contains(&name) {
            let hint = misplaced_hint(kind, name).unwrap_or_else(|| match closest(name, fields) {
                Some(best) => format!("did you mean '{best}'?"),
                None => format!("known keys here: {}", fields.join(", ")),
            });
            c.push(
                Some(key.span()),
                subject,
                format!("{prefix}{name}"),
                format!("unknown key '{name}'"),
                hint,
            );
            continue;
        }
        let mut one = DeTable::new();
        one.insert(key.clone(), value.clone());
        let trial = T::deserialize(ValueDeserializer::from(Spanned::new(
            span.clone(),
            DeValue::Table(one),
        )));
        match trial {
            Ok(_) => {
                kept.insert(key.clone(), value.clone());
            }
            Err(err) => c.push(
                err.span().or(Some(value.span())),
                subject,
                format!("{prefix}{name}"),
                type_message(err.message()),
                match example(name) {
                    Some(example) => format!("write it like {example}"),
                    None => "see the configuration reference in README.md".to_owned(),
                },
            ),
        }
    }
    kept
}

/// Keys that are valid somewhere else, with where they belong.
fn misplaced_hint(kind: Kind, name: &str) -> Option<String> {
    match kind {
        Kind::Service if fields_of::<RawServiceCheck>().contains(&name) && name != "command" => {
            Some(format!(
                "'{name}' is a health-check key: put it under [services.health_check]"
            ))
        }
        Kind::External
            if matches!(
                name,
                "command" | "grpc_port" | "http_port" | "dependencies" | "working_dir" | "env"
            ) =>
        {
            Some(format!(
                "externals are only checked, never started, so they have no '{name}': \
                 make it a [[services]] entry if mdw should run it"
            ))
        }
        Kind::External if fields_of::<RawExternalCheck>().contains(&name) => Some(format!(
            "'{name}' is a health-check key: put it under [externals.health_check]"
        )),
        Kind::ServiceCheck if matches!(name, "url" | "address") => Some(format!(
            "a service is probed on 127.0.0.1 at its own port: use endpoint = \"/health\" \
             (http) or port = … ('{name}' is for [[externals]])"
        )),
        Kind::ExternalCheck if matches!(name, "endpoint" | "port") => Some(
            "an external says where to probe: url = \"http://host:port/path\" for http, \
             address = \"host:port\" for tcp and grpc"
                .to_owned(),
        ),
        _ => None,
    }
}

/// Makes serde's type messages read like TOML.
fn type_message(message: &str) -> String {
    let message = message
        .trim_start_matches("invalid type: ")
        .replace("expected i64", "expected a whole number")
        .replace("expected a boolean", "expected true or false")
        .replace("expected a sequence", "expected an array")
        .replace("expected a map", "expected a table");
    format!("wrong type: {message}")
}

/// An example line for a key, used in hints.
pub(crate) fn example(key: &str) -> Option<&'static str> {
    Some(match key {
        "name" => "name = \"Kant\"",
        "short_name" => "short_name = \"kant\"",
        "description" => "description = \"API gateway\"",
        "grpc_port" => "grpc_port = 9200",
        "http_port" => "http_port = 8080",
        "command" => "command = [\"./bin/server\", \"--port\", \"8080\"]",
        "dependencies" => "dependencies = [\"turing\"]",
        "start_order" => "start_order = 10",
        "max_retries" => "max_retries = 3",
        "working_dir" => "working_dir = \"./run\"",
        "env" => "env = { RUST_LOG = \"info\" }",
        "env_file" => "env_file = \".env\"",
        "stop_signal" => "stop_signal = \"SIGTERM\"",
        "stop_timeout" => "stop_timeout = \"10s\"",
        "on_port_conflict" => "on_port_conflict = \"adopt\"",
        "restart_backoff" => "restart_backoff = \"1s\"",
        "restart_backoff_max" => "restart_backoff_max = \"30s\"",
        "restart_reset_after" => "restart_reset_after = \"60s\"",
        "restart_dependents" => "restart_dependents = true",
        "version" => "version = \"0.1.0\"",
        "enabled" => "enabled = false",
        "health_check" => "[services.health_check] with type = \"http\"",
        "type" => "type = \"http\"",
        "endpoint" => "endpoint = \"/health\"",
        "port" => "port = 9200",
        "service" => "service = \"\"",
        "expect_body" => "expect_body = \"llama\"",
        "interval" => "interval = \"10s\"",
        "timeout" => "timeout = \"3s\"",
        "failure_threshold" => "failure_threshold = 3",
        "success_threshold" => "success_threshold = 1",
        "start_timeout" => "start_timeout = \"30s\"",
        "url" => "url = \"http://127.0.0.1:11434/api/version\"",
        "address" => "address = \"127.0.0.1:5432\"",
        "optional" => "optional = true",
        "listen" => "listen = \"127.0.0.1:9100\"",
        "state_dir" => "state_dir = \".russell\"",
        "token_file" => "token_file = \"russell.token\"",
        "autostart" => "autostart = true",
        "max_file_size" => "max_file_size = \"10MiB\"",
        "max_files" => "max_files = 5",
        "tail_lines" => "tail_lines = 1000",
        _ => return None,
    })
}

/// The closest of `candidates` to `word`, if it is close enough to be a likely typo.
pub(crate) fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let lower = word.to_lowercase();
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(&lower, &c.to_lowercase()), *c))
        .filter(|(d, c)| *d <= (c.chars().count() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// The TOML keys of a serde struct, as its derive declares them.
pub(crate) fn fields_of<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Capture<'a>(&'a mut &'static [&'static str]);

    impl<'de> serde::Deserializer<'de> for Capture<'_> {
        type Error = serde::de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
            Err(serde::de::Error::custom("not a struct"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(serde::de::Error::custom("fields captured"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }

    let mut fields: &'static [&'static str] = &[];
    // The error is the point: the derive hands over its field list, then stops.
    let _ = T::deserialize(Capture(&mut fields));
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_of_lists_the_toml_keys() {
        let fields = fields_of::<RawServiceCheck>();
        assert!(fields.contains(&"type"));
        assert!(fields.contains(&"endpoint"));
        assert!(fields_of::<RawService>().contains(&"dependencies"));
    }

    #[test]
    fn closest_finds_typos_only() {
        let keys = fields_of::<RawService>();
        assert_eq!(closest("dependancies", keys), Some("dependencies"));
        assert_eq!(closest("http-port", keys), Some("http_port"));
        assert_eq!(closest("Max_Retries", keys), Some("max_retries"));
        assert_eq!(closest("banana", keys), None);
    }
}
