//! A service's health check (`[services.health_check]` over `[defaults.health_check]`) and
//! the timing keys every check shares.

use std::ops::Range;

use toml::Spanned;

use super::fields::{command, count, duration, port};
use super::{Context, pick};
use crate::error::{Collector, Subject};
use crate::model::{HealthCheck, Probe};
use crate::raw::{RawService, RawServiceCheck, closest};

/// Check types of a service.
pub(super) const CHECK_TYPES: &[&str] = &["grpc", "http", "tcp", "exec", "none"];

/// Check types of an external.
pub(super) const EXTERNAL_CHECK_TYPES: &[&str] = &["grpc", "http", "tcp", "exec", "ollama", "none"];

/// A service's ports, as its health check may probe them.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ports {
    pub(super) grpc: Option<u16>,
    pub(super) http: Option<u16>,
}

/// The service's health check: its own `[services.health_check]` keys over the
/// `[defaults.health_check]` ones; probes go to 127.0.0.1 on the service's ports.
pub(super) fn service_check(
    raw: &RawService,
    d: &RawService,
    ports: Ports,
    entry: Range<usize>,
    ctx: &Context<'_>,
    c: &mut Collector<'_>,
    s: &Subject,
) -> HealthCheck {
    let none = RawServiceCheck::default();
    let own = raw.health_check.as_ref();
    let own_check = own.map_or(&none, |v| v.get_ref());
    let def = d.health_check.as_ref().map_or(&none, |v| v.get_ref());
    let timing = Timing {
        interval: pick(&own_check.interval, &def.interval),
        timeout: pick(&own_check.timeout, &def.timeout),
        failure_threshold: pick(&own_check.failure_threshold, &def.failure_threshold),
        success_threshold: pick(&own_check.success_threshold, &def.success_threshold),
        start_timeout: pick(&own_check.start_timeout, &def.start_timeout),
    };
    let mut check = timing.check(c, s);
    let place = own.map_or(entry, Spanned::span);
    let Some(kind) = pick(&own_check.kind, &def.kind) else {
        if own.is_some() {
            c.push_missing(
                Some(place),
                s,
                "health_check.type",
                "the health check has no type",
                "add type = \"grpc\", \"http\", \"tcp\", \"exec\" or \"none\"",
            );
        }
        return check;
    };
    let merged = Merged {
        own: own_check,
        def,
        kind,
        place,
        ports,
        s,
    };
    let check_port = port(c, merged.pick(|k| &k.port), s, "health_check.port");
    check.probe = match kind.get_ref().trim().to_ascii_lowercase().as_str() {
        "grpc" => merged.grpc(check_port, c),
        "http" => merged.http(check_port, c),
        "tcp" => merged.tcp(check_port, c),
        "exec" => exec_probe(merged.pick(|k| &k.command), merged.place, ctx, c, s),
        "none" => Probe::None,
        "ollama" => {
            c.push(
                Some(kind.span()),
                s,
                "health_check.type",
                "an ollama check looks at Ollama, not at this service",
                "make Ollama an [[externals]] entry with type = \"ollama\", url and models, and \
                 add it to this service's dependencies",
            );
            Probe::None
        }
        _ => {
            unknown_type(kind, CHECK_TYPES, c, s);
            Probe::None
        }
    };
    check
}

/// The keys of one service's check, own over `[defaults]`, and where to point messages.
struct Merged<'a> {
    own: &'a RawServiceCheck,
    def: &'a RawServiceCheck,
    kind: &'a Spanned<String>,
    /// The check's table, else the service's entry.
    place: Range<usize>,
    ports: Ports,
    s: &'a Subject,
}

impl<'a> Merged<'a> {
    fn pick<T>(&self, key: fn(&RawServiceCheck) -> &Option<Spanned<T>>) -> Option<&'a Spanned<T>> {
        pick(key(self.own), key(self.def))
    }

    fn grpc(&self, check_port: Option<u16>, c: &mut Collector<'_>) -> Probe {
        let Some(p) = check_port.or(self.ports.grpc) else {
            c.push(
                Some(self.kind.span()),
                self.s,
                "health_check.type",
                "a grpc check needs a grpc_port, and this service has none",
                "set grpc_port = … on the service, or choose another check type",
            );
            return Probe::None;
        };
        Probe::Grpc {
            addr: format!("127.0.0.1:{p}"),
            service: self
                .pick(|k| &k.service)
                .map(|v| v.get_ref().clone())
                .unwrap_or_default(),
        }
    }

    fn http(&self, check_port: Option<u16>, c: &mut Collector<'_>) -> Probe {
        let path = self.endpoint(c);
        let p = check_port.or(self.ports.http);
        if p.is_none() {
            c.push(
                Some(self.kind.span()),
                self.s,
                "health_check.type",
                "an http check needs an http_port, and this service has none",
                "set http_port = … on the service, or choose another check type",
            );
        }
        match (p, path) {
            (Some(p), Some(path)) => Probe::Http {
                url: format!("http://127.0.0.1:{p}{path}"),
                expect_body: self.pick(|k| &k.expect_body).map(|v| v.get_ref().clone()),
            },
            _ => Probe::None,
        }
    }

    /// The http check's path, which must start with '/'.
    fn endpoint(&self, c: &mut Collector<'_>) -> Option<String> {
        match self.pick(|k| &k.endpoint) {
            None => {
                c.push_missing(
                    Some(self.place.clone()),
                    self.s,
                    "health_check.endpoint",
                    "an http check needs an endpoint",
                    "add endpoint = \"/health\" (the path mdw GETs on http_port)",
                );
                None
            }
            Some(e) if !e.get_ref().starts_with('/') => {
                c.push(
                    Some(e.span()),
                    self.s,
                    "health_check.endpoint",
                    format!("endpoint '{}' does not start with '/'", e.get_ref()),
                    format!(
                        "give the path only, e.g. endpoint = \"/{}\"",
                        e.get_ref().trim_start_matches('/')
                    ),
                );
                None
            }
            Some(e) => Some(e.get_ref().clone()),
        }
    }

    /// A tcp check without `port` probes the primary port: grpc_port, else http_port.
    fn tcp(&self, check_port: Option<u16>, c: &mut Collector<'_>) -> Probe {
        match check_port.or(self.ports.grpc).or(self.ports.http) {
            Some(p) => Probe::Tcp {
                addr: format!("127.0.0.1:{p}"),
            },
            None => {
                c.push(
                    Some(self.kind.span()),
                    self.s,
                    "health_check.type",
                    "a tcp check needs a port, and this service has none",
                    "set port = … in the health_check, or grpc_port/http_port on the service",
                );
                Probe::None
            }
        }
    }
}

pub(super) fn exec_probe(
    cmd: Option<&Spanned<Vec<Spanned<String>>>>,
    place: Range<usize>,
    ctx: &Context<'_>,
    c: &mut Collector<'_>,
    s: &Subject,
) -> Probe {
    match cmd {
        None => {
            c.push_missing(
                Some(place),
                s,
                "health_check.command",
                "an exec check needs a command",
                "add command = [\"pg_isready\", \"-q\"] (exit status 0 means healthy)",
            );
            Probe::None
        }
        Some(cmd) => {
            let command = command(cmd, ctx, c, s, "health_check.command");
            if command.is_empty() {
                Probe::None
            } else {
                Probe::Exec { command }
            }
        }
    }
}

pub(super) fn unknown_type(
    kind: &Spanned<String>,
    types: &[&str],
    c: &mut Collector<'_>,
    s: &Subject,
) {
    let hint = closest(kind.get_ref(), types)
        .map(|b| format!("did you mean '{b}'? "))
        .unwrap_or_default();
    c.push(
        Some(kind.span()),
        s,
        "health_check.type",
        format!("unknown health-check type '{}'", kind.get_ref()),
        format!("{hint}use one of {}", types.join(", ")),
    );
}

/// The timing keys of a check, merged.
pub(super) struct Timing<'a> {
    pub(super) interval: Option<&'a Spanned<String>>,
    pub(super) timeout: Option<&'a Spanned<String>>,
    pub(super) failure_threshold: Option<&'a Spanned<i64>>,
    pub(super) success_threshold: Option<&'a Spanned<i64>>,
    pub(super) start_timeout: Option<&'a Spanned<String>>,
}

impl Timing<'_> {
    pub(super) fn check(&self, c: &mut Collector<'_>, s: &Subject) -> HealthCheck {
        let interval = duration(c, self.interval, 10, s, "health_check.interval", false);
        let mut timeout = duration(c, self.timeout, 3, s, "health_check.timeout", false);
        if timeout >= interval
            && let Some(span) = self.timeout.or(self.interval).map(Spanned::span)
        {
            c.push(
                Some(span),
                s,
                "health_check.timeout",
                format!(
                    "timeout {} is not below interval {}",
                    humantime::format_duration(timeout),
                    humantime::format_duration(interval)
                ),
                "a probe must end before the next one starts: make timeout shorter than interval",
            );
            timeout = interval;
        }
        HealthCheck {
            probe: Probe::None,
            interval,
            timeout,
            failure_threshold: count(
                c,
                self.failure_threshold,
                3,
                (1, 1000),
                s,
                "health_check.failure_threshold",
            ),
            success_threshold: count(
                c,
                self.success_threshold,
                1,
                (1, 1000),
                s,
                "health_check.success_threshold",
            ),
            start_timeout: duration(
                c,
                self.start_timeout,
                30,
                s,
                "health_check.start_timeout",
                false,
            ),
        }
    }
}
