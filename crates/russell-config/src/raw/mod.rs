//! The raw serde model: mirrors the TOML file key for key (`deny_unknown_fields`), every value
//! `Spanned` so that validation can point at it. [`read`] fills it from the parsed document
//! one entry and one key at a time, so an unknown key or a wrongly typed value is reported
//! and skipped without hiding the problems after it.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Deserialize;
use serde::de::Visitor;
use toml::Spanned;

mod hints;
mod read;

pub(crate) use hints::{closest, example};
pub(crate) use read::read;

/// A `[[services]]` entry, and also the `[defaults]` table (which may not set the keys that
/// identify a service: see [`crate::validate`]).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawService {
    pub name: Option<Spanned<String>>,
    pub short_name: Option<Spanned<String>>,
    pub description: Option<Spanned<String>>,
    pub grpc_port: Option<Spanned<i64>>,
    pub http_port: Option<Spanned<i64>>,
    pub command: Option<Spanned<Vec<Spanned<String>>>>,
    pub dependencies: Option<Spanned<Vec<Spanned<String>>>>,
    pub external_dependencies: Option<Spanned<Vec<Spanned<String>>>>,
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
    pub kind: Option<Spanned<String>>,
    pub restart: Option<Spanned<String>>,
    pub success_exit_codes: Option<Spanned<Vec<Spanned<i64>>>>,
    pub watch: Option<Spanned<Vec<Spanned<String>>>>,
    pub watch_debounce: Option<Spanned<String>>,
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
    pub models: Option<Spanned<Vec<Spanned<String>>>>,
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
    pub watch_config: Option<Spanned<bool>>,
    pub http_listen: Option<Spanned<String>>,
}

/// `[logs]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLogs {
    pub dir: Option<Spanned<String>>,
    pub max_file_size: Option<Spanned<NumOrText>>,
    pub max_files: Option<Spanned<i64>>,
    pub tail_lines: Option<Spanned<i64>>,
}

/// `[orchestrator]` (mDW's shape): defaults for every service, the log folder, and the
/// program a service without `command` runs.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOrchestrator {
    pub binary_path: Option<Spanned<String>>,
    pub log_dir: Option<Spanned<String>>,
    pub startup_timeout: Option<Spanned<String>>,
    pub shutdown_timeout: Option<Spanned<String>>,
    pub health_check_interval: Option<Spanned<String>>,
}

/// One `[dependencies.<id>]` table (mDW's shape): an external, checked, never started.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDependency {
    pub name: Option<Spanned<String>>,
    pub description: Option<Spanned<String>>,
    #[serde(rename = "type")]
    pub kind: Option<Spanned<String>>,
    pub url: Option<Spanned<String>>,
    pub required: Option<Spanned<bool>>,
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
    /// `[orchestrator]`, with the span of its header.
    pub orchestrator: Option<Located<RawOrchestrator>>,
    /// `[dependencies]`, with the span of its header, when the file has one.
    pub dependencies_table: Option<std::ops::Range<usize>>,
    /// Each `[dependencies.<id>]`: its id as written, and the table.
    pub dependencies: Vec<(Spanned<String>, Located<RawDependency>)>,
}

impl RawFile {
    /// mDW's shape: the file has an `[orchestrator]` or a `[dependencies]` table.
    pub fn is_mdw_shaped(&self) -> bool {
        self.orchestrator.is_some() || self.dependencies_table.is_some()
    }
}
