//! What the three targets share: the `mdw probe` command line of a check, image names,
//! durations in each engine's notation, target addresses, ordered YAML maps.

use std::collections::BTreeMap;
use std::time::Duration;

use russell_config::{Config, External, HealthCheck, Probe, Service};
use serde::Serialize;

use crate::{ExportError, Warning};

/// Default image name of a service: `mdw-<short_name>:<version, or latest>`.
pub const DEFAULT_IMAGE_TEMPLATE: &str = "mdw-{short_name}:{version}";

/// Where images are expected to carry the mdw binary (for `mdw probe`).
pub const DEFAULT_MDW_IN_IMAGE: &str = "/usr/local/bin/mdw";

/// How service images are named: a template with `{short_name}`, `{name}` and `{version}`
/// (`latest` when the service states none), and whole names per service that win.
#[derive(Debug, Clone)]
pub struct ImageTemplate {
    pub template: String,
    /// short_name → image.
    pub overrides: BTreeMap<String, String>,
}

impl Default for ImageTemplate {
    fn default() -> Self {
        ImageTemplate {
            template: DEFAULT_IMAGE_TEMPLATE.to_string(),
            overrides: BTreeMap::new(),
        }
    }
}

impl ImageTemplate {
    /// Checks the template's placeholders and that every override names a service.
    pub fn check(&self, config: &Config) -> Result<(), ExportError> {
        let mut rest = self.template.as_str();
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else {
                return Err(ExportError(format!(
                    "image template '{}': '{{' without '}}'; use {{short_name}}, {{name}} or {{version}}",
                    self.template
                )));
            };
            let key = &after[..close];
            if !matches!(key, "short_name" | "name" | "version") {
                return Err(ExportError(format!(
                    "image template '{}': unknown placeholder {{{key}}}; use {{short_name}}, {{name}} or {{version}}",
                    self.template
                )));
            }
            rest = &after[close + 1..];
        }
        for short in self.overrides.keys() {
            if !config.services.iter().any(|s| &s.short_name == short) {
                return Err(ExportError(format!(
                    "--image {short}=…: no service has short_name '{short}' in {}",
                    config.source.display()
                )));
            }
        }
        Ok(())
    }

    /// The image of `service`.
    pub fn image(&self, service: &Service) -> String {
        if let Some(image) = self.overrides.get(&service.short_name) {
            return image.clone();
        }
        let version = if service.version.is_empty() {
            "latest"
        } else {
            service.version.as_str()
        };
        self.template
            .replace("{short_name}", &service.short_name)
            .replace("{name}", &service.name)
            .replace("{version}", version)
    }
}

/// The arguments after `mdw probe` that run `probe` once within `timeout`: e.g.
/// `["--timeout", "1s", "http", "http://127.0.0.1:8080/health"]`. `None` for no check.
pub fn probe_args(probe: &Probe, timeout: Duration) -> Option<Vec<String>> {
    let mut args = vec!["--timeout".to_string(), duration(timeout)];
    args.extend(probe_words(probe)?);
    Some(args)
}

/// The kind and target of a check as `mdw probe` takes them: `["grpc", "127.0.0.1:9200",
/// "--service", "x"]`, `["exec", "--", "cmd", …]`. `None` for no check.
pub fn probe_words(probe: &Probe) -> Option<Vec<String>> {
    let mut words = Vec::new();
    match probe {
        Probe::None => return None,
        Probe::Grpc { addr, service } => {
            words.extend(["grpc".to_string(), addr.clone()]);
            if !service.is_empty() {
                words.extend(["--service".to_string(), service.clone()]);
            }
        }
        Probe::Http { url, expect_body } => {
            words.extend(["http".to_string(), url.clone()]);
            if let Some(body) = expect_body {
                words.extend(["--expect-body".to_string(), body.clone()]);
            }
        }
        Probe::Tcp { addr } => words.extend(["tcp".to_string(), addr.clone()]),
        Probe::Exec { command } => {
            words.extend(["exec".to_string(), "--".to_string()]);
            words.extend(command.iter().cloned());
        }
        Probe::Ollama { url, models } => {
            words.extend(["ollama".to_string(), url.clone()]);
            for model in models {
                words.extend(["--model".to_string(), model.clone()]);
            }
        }
    }
    Some(words)
}

/// `args` of [`probe_args`] plus `--wait <wait>`, as a full command line of `mdw`.
pub fn probe_command(
    mdw: &str,
    probe: &Probe,
    check: &HealthCheck,
    wait: Duration,
) -> Option<Vec<String>> {
    let mut args = probe_args(probe, check.timeout)?;
    // `--wait` belongs before the kind, with the other options of `mdw probe`.
    args.splice(2..2, ["--wait".to_string(), duration(wait)]);
    let mut cmd = vec![mdw.to_string(), "probe".to_string()];
    cmd.extend(args);
    Some(cmd)
}

/// `probe` with its host replaced by `host` (services probe 127.0.0.1; from another
/// container or pod the same check goes to the service's name). Exec checks stay as they are.
pub fn probe_at(probe: &Probe, host: &str) -> Probe {
    match probe {
        Probe::Grpc { addr, service } => Probe::Grpc {
            addr: with_host(addr, host),
            service: service.clone(),
        },
        Probe::Http { url, expect_body } => Probe::Http {
            url: url_with_host(url, host),
            expect_body: expect_body.clone(),
        },
        Probe::Tcp { addr } => Probe::Tcp {
            addr: with_host(addr, host),
        },
        Probe::Ollama { url, models } => Probe::Ollama {
            url: url_with_host(url, host),
            models: models.clone(),
        },
        other => other.clone(),
    }
}

/// Host and port of a probe's target (`None` for exec and none).
pub fn target(probe: &Probe) -> Option<(String, u16)> {
    match probe {
        Probe::Grpc { addr, .. } | Probe::Tcp { addr } => split_host_port(addr),
        Probe::Http { url, .. } | Probe::Ollama { url, .. } => {
            let (authority, _) = url_parts(url)?;
            split_host_port(authority).or_else(|| Some((authority.to_string(), 80)))
        }
        Probe::None | Probe::Exec { .. } => None,
    }
}

/// The path (with query) of an http check's URL, `/` when it has none.
pub fn url_path(url: &str) -> String {
    url_parts(url).map_or_else(|| "/".to_string(), |(_, path)| path.to_string())
}

/// `http://authority/path` → (authority, "/path").
fn url_parts(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("http://")?;
    Some(match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    })
}

fn url_with_host(url: &str, host: &str) -> String {
    match url_parts(url) {
        Some((authority, path)) => format!("http://{}{path}", with_host(authority, host)),
        None => url.to_string(),
    }
}

fn with_host(addr: &str, host: &str) -> String {
    match split_host_port(addr) {
        Some((_, port)) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// "host:port" or "[v6]:port" → (host without brackets, port).
fn split_host_port(addr: &str) -> Option<(String, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    let port = port.parse().ok()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_string(), port))
}

/// `path` as text with `.` and `..` resolved lexically (`/a/b/../c` → `/a/c`): systemd
/// refuses paths that are not normalized, and engines show them to people.
pub fn path_text(path: &std::path::Path) -> String {
    use std::path::Component;
    let mut out = std::path::PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                if !out.pop() {
                    out.push(c);
                }
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out.display().to_string()
}

/// Whether `host` means "this machine" (which, inside a container, is the container).
pub fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A duration as Compose and systemd write it: `2s`, `1500ms`, `0s`.
pub fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// Whole seconds, rounded up (Kubernetes counts probe times in seconds).
pub fn seconds_up(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000) as u64
}

/// Whether an environment variable's name looks like it holds a secret (one rule for
/// mdw: russell-config's).
pub use russell_config::vars::looks_secret;

/// The external a dependency names, if it is one.
pub fn external<'a>(config: &'a Config, short_name: &str) -> Option<&'a External> {
    config.externals.iter().find(|e| e.short_name == short_name)
}

/// The service a dependency names, if it is one.
pub fn service<'a>(config: &'a Config, short_name: &str) -> Option<&'a Service> {
    config.services.iter().find(|s| s.short_name == short_name)
}

/// Collects warnings of one service.
pub struct Lost<'a> {
    /// "service" or "external".
    pub subject: &'static str,
    pub service: &'a str,
    pub warnings: &'a mut Vec<Warning>,
}

impl Lost<'_> {
    /// Reports `key` as not reproduced; a second report for the same key of the same
    /// service is added to the first, so there is one warning per key and service.
    pub fn key(&mut self, key: &str, message: impl Into<String>) {
        let message = message.into();
        if let Some(w) = self
            .warnings
            .iter_mut()
            .find(|w| w.service == self.service && w.key == key)
        {
            w.message.push_str("; ");
            w.message.push_str(&message);
            return;
        }
        self.warnings.push(Warning {
            subject: self.subject,
            service: self.service.to_string(),
            key: key.to_string(),
            message,
        });
    }
}

/// A map that keeps insertion order when serialized (services in file order).
#[derive(Debug, Clone)]
pub struct Ordered<V>(pub Vec<(String, V)>);

impl<V> Default for Ordered<V> {
    fn default() -> Self {
        Ordered(Vec::new())
    }
}

impl<V> Ordered<V> {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn push(&mut self, key: impl Into<String>, value: V) {
        self.0.push((key.into(), value));
    }
}

impl<V: Serialize> Serialize for Ordered<V> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// `value` as YAML text that YAML 1.1 readers (PyYAML in docker-compose, the YAML reader
/// of kubectl) read the same way: see [`quote_yaml11_bools`].
pub fn yaml<T: Serialize>(value: &T) -> Result<String, ExportError> {
    yaml_serde::to_string(value)
        .map(|text| quote_yaml11_bools(&text))
        .map_err(|e| ExportError(format!("cannot write YAML: {e}")))
}

/// The serializer writes YAML 1.2, where `no`, `on`, `yes` and `y` are plain strings; YAML
/// 1.1 readers take them for booleans (`restart: no`, an env value `on`). Such plain
/// scalars are single-quoted here; block scalars (`|`) are left as they are.
pub fn quote_yaml11_bools(text: &str) -> String {
    const WORDS: [&str; 6] = ["y", "n", "yes", "no", "on", "off"];
    let mut out = String::with_capacity(text.len() + 16);
    let mut block_indent: Option<usize> = None;
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        if let Some(header) = block_indent {
            if line.trim().is_empty() || indent > header {
                out.push_str(line);
                out.push('\n');
                continue;
            }
            block_indent = None;
        }
        let mut rest = line.trim_start();
        while let Some(r) = rest.strip_prefix("- ") {
            rest = r;
        }
        let value = match rest.split_once(": ") {
            Some((key, value)) if !key.starts_with(['\'', '"']) => value,
            _ => rest,
        };
        if WORDS.iter().any(|w| value.eq_ignore_ascii_case(w)) {
            out.push_str(&line[..line.len() - value.len()]);
            out.push('\'');
            out.push_str(value);
            out.push('\'');
        } else {
            out.push_str(line);
        }
        out.push('\n');
        if value.starts_with(['|', '>']) {
            block_indent = Some(indent);
        }
    }
    out
}

/// The keys every target maps or reports, named one by one so that a key added to the
/// model stops the build here: map it (or warn) in compose.rs, kubernetes/mod.rs and
/// systemd.rs, add its row to the table in docs/DEPLOY.md, then name it here.
#[allow(dead_code)]
fn every_key_is_decided(s: &Service, e: &External, c: &HealthCheck) {
    let Service {
        name: _,
        short_name: _,
        description: _,
        grpc_port: _,
        http_port: _,
        command: _,
        working_dir: _,
        env: _,
        env_file: _,
        dependencies: _,
        start_order: _,
        max_retries: _,
        stop_signal: _,
        stop_timeout: _,
        on_port_conflict: _,
        restart_backoff: _,
        restart_backoff_max: _,
        restart_reset_after: _,
        restart_dependents: _,
        version: _,
        enabled: _,
        health_check: _,
        kind: _,
        restart: _,
        success_exit_codes: _,
        // Development only (restart on a rebuilt binary): no target has an equivalent,
        // and a deployment rolls out new images instead.
        watch: _,
        watch_debounce: _,
    } = s;
    let External {
        name: _,
        short_name: _,
        description: _,
        optional: _,
        health_check: _,
    } = e;
    let HealthCheck {
        probe: _,
        interval: _,
        timeout: _,
        failure_threshold: _,
        success_threshold: _,
        start_timeout: _,
    } = c;
}
