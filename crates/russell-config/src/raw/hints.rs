//! Hints for keys: where a misplaced key belongs, what a typo meant, an example line.

use serde::de::{DeserializeOwned, Visitor};

use super::{RawExternalCheck, RawServiceCheck};

/// Which table a key sits in, for hints about misplaced keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Service,
    ServiceCheck,
    External,
    ExternalCheck,
    Other,
}

/// Keys that are valid somewhere else, with where they belong.
pub(super) fn misplaced_hint(kind: Kind, name: &str) -> Option<String> {
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
        Kind::ServiceCheck if name == "models" => Some(
            "an ollama check belongs to an [[externals]] entry (type = \"ollama\", url, models)"
                .to_owned(),
        ),
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
pub(super) fn type_message(message: &str) -> String {
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
        "kind" => "kind = \"task\"",
        "restart" => "restart = \"on-failure\"",
        "success_exit_codes" => "success_exit_codes = [0]",
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
        "watch" => "watch = [\"bin/mdw\", \"configs/*.toml\"]",
        "watch_debounce" => "watch_debounce = \"500ms\"",
        "watch_config" => "watch_config = true",
        "http_listen" => "http_listen = \"127.0.0.1:9101\"",
        "max_file_size" => "max_file_size = \"10MiB\"",
        "max_files" => "max_files = 5",
        "tail_lines" => "tail_lines = 1000",
        "dir" => "dir = \"./logs\"",
        "external_dependencies" => "external_dependencies = [\"ollama\"]",
        "binary_path" => "binary_path = \"./bin/mdw\"",
        "log_dir" => "log_dir = \"./logs\"",
        "startup_timeout" => "startup_timeout = \"30s\"",
        "shutdown_timeout" => "shutdown_timeout = \"10s\"",
        "health_check_interval" => "health_check_interval = \"10s\"",
        "required" => "required = true",
        "models" => "models = [\"mistral:7b\", \"nomic-embed-text\"]",
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
    use crate::raw::RawService;

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
