//! The one builder of a stand-in service (`mdw demo`) for a services file.

use std::fmt::Write as _;

use crate::bins::mdw_bin;
use crate::ports::free_port;

/// Quotes a string as a TOML basic string.
pub fn q(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

/// One `mdw demo` service for a generated services file, with an HTTP check on a free
/// port. [`Svc::demo`] and [`Svc::quick`] are its two presets; fields and the chaining
/// methods change the rest.
#[derive(Debug, Clone)]
pub struct Svc {
    pub name: String,
    pub short: String,
    pub description: String,
    pub http_port: u16,
    /// The program of the default command: `{mdw}` (resolved by Russell) or a path.
    pub program: String,
    /// Extra `mdw demo` flags.
    pub demo_args: Vec<String>,
    /// Replaces the whole command when set.
    pub command: Option<Vec<String>>,
    pub deps: Vec<String>,
    pub max_retries: u32,
    pub restart_backoff: &'static str,
    /// Written only when set (else Russell's default).
    pub restart_backoff_max: Option<&'static str>,
    /// Written only when set (else Russell's default).
    pub restart_reset_after: Option<&'static str>,
    pub stop_timeout: &'static str,
    /// Extra `key = value` lines for the `[[services]]` table.
    pub extra: String,
    pub interval: &'static str,
    pub timeout: &'static str,
    pub failure_threshold: u32,
    pub start_timeout: &'static str,
}

impl Svc {
    /// A stand-in named like `Web` for `web`, run as `{mdw} demo`, checked every 300 ms.
    pub fn demo(short: &str) -> Self {
        let mut name = short.to_string();
        name[..1].make_ascii_uppercase();
        Self {
            name,
            short: short.to_string(),
            description: format!("stand-in {short}"),
            http_port: free_port(),
            program: "{mdw}".into(),
            demo_args: Vec::new(),
            command: None,
            deps: Vec::new(),
            max_retries: 3,
            restart_backoff: "200ms",
            restart_backoff_max: None,
            restart_reset_after: None,
            stop_timeout: "3s",
            extra: String::new(),
            interval: "300ms",
            timeout: "250ms",
            failure_threshold: 2,
            start_timeout: "15s",
        }
    }

    /// A healthy stand-in with an HTTP check every 200 ms and fast restarts, run by the
    /// path of the binary under test (the reliability suite's preset).
    pub fn quick(short: &str) -> Self {
        Self {
            name: short.to_uppercase(),
            description: "reliability stand-in".into(),
            program: mdw_bin().into(),
            restart_backoff: "100ms",
            restart_backoff_max: Some("400ms"),
            restart_reset_after: Some("1h"),
            interval: "200ms",
            timeout: "150ms",
            failure_threshold: 3,
            ..Self::demo(short)
        }
    }

    pub fn deps(mut self, deps: &[&str]) -> Self {
        self.deps = deps.iter().map(|d| d.to_string()).collect();
        self
    }

    pub fn args(mut self, args: &[&str]) -> Self {
        self.demo_args = args.iter().map(|a| a.to_string()).collect();
        self
    }

    /// Extra `key = value` lines for the `[[services]]` table.
    pub fn extra(mut self, lines: &str) -> Self {
        self.extra = lines.to_string();
        self
    }

    /// The command line Russell runs.
    pub fn argv(&self) -> Vec<String> {
        if let Some(c) = &self.command {
            return c.clone();
        }
        let mut v: Vec<String> = [
            &self.program,
            "demo",
            "--name",
            &self.short,
            "--http-port",
            &self.http_port.to_string(),
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        v.extend(self.demo_args.iter().cloned());
        v
    }

    /// The `[[services]]` table.
    pub fn toml(&self) -> String {
        let list = |v: &[String]| v.iter().map(|a| q(a)).collect::<Vec<_>>().join(", ");
        let mut t = String::new();
        let _ = writeln!(t, "\n[[services]]");
        let _ = writeln!(t, "name = {}", q(&self.name));
        let _ = writeln!(t, "short_name = {}", q(&self.short));
        let _ = writeln!(t, "description = {}", q(&self.description));
        let _ = writeln!(t, "http_port = {}", self.http_port);
        let _ = writeln!(t, "command = [{}]", list(&self.argv()));
        let _ = writeln!(t, "dependencies = [{}]", list(&self.deps));
        let _ = writeln!(t, "max_retries = {}", self.max_retries);
        let _ = writeln!(t, "restart_backoff = {}", q(self.restart_backoff));
        if let Some(max) = self.restart_backoff_max {
            let _ = writeln!(t, "restart_backoff_max = {}", q(max));
        }
        if let Some(after) = self.restart_reset_after {
            let _ = writeln!(t, "restart_reset_after = {}", q(after));
        }
        let _ = writeln!(t, "stop_timeout = {}", q(self.stop_timeout));
        let _ = writeln!(t, "{}", self.extra);
        let _ = writeln!(t, "[services.health_check]");
        let _ = writeln!(t, "type = \"http\"");
        let _ = writeln!(t, "endpoint = \"/health\"");
        let _ = writeln!(t, "interval = {}", q(self.interval));
        let _ = writeln!(t, "timeout = {}", q(self.timeout));
        let _ = writeln!(t, "failure_threshold = {}", self.failure_threshold);
        let _ = writeln!(t, "start_timeout = {}\n", q(self.start_timeout));
        t
    }
}
