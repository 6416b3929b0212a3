//! One `[[services]]` entry, with `[defaults]` applied key by key.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use super::fields::{command, duration, port, port_policy, resolve_path, stop_signal};
use super::health::{Ports, service_check};
use super::lifecycle::lifecycle;
use super::names::identity;
use super::{Context, MAX_RETRIES_LIMIT, Spans, pick};
use crate::error::{Collector, Subject};
use crate::model::Service;
use crate::raw::RawService;

/// Keys that identify one service and so cannot come from `[defaults]`.
pub(super) fn check_defaults(d: &RawService, c: &mut Collector<'_>) {
    let identity: [(&str, Option<Range<usize>>); 8] = [
        ("kind", d.kind.as_ref().map(Spanned::span)),
        ("name", d.name.as_ref().map(Spanned::span)),
        ("short_name", d.short_name.as_ref().map(Spanned::span)),
        ("command", d.command.as_ref().map(Spanned::span)),
        ("grpc_port", d.grpc_port.as_ref().map(Spanned::span)),
        ("http_port", d.http_port.as_ref().map(Spanned::span)),
        ("dependencies", d.dependencies.as_ref().map(Spanned::span)),
        (
            "external_dependencies",
            d.external_dependencies.as_ref().map(Spanned::span),
        ),
    ];
    for (key, span) in identity {
        if let Some(span) = span {
            c.push(
                Some(span),
                &Subject::File,
                format!("defaults.{key}"),
                format!("'{key}' identifies one service and cannot be set in [defaults]"),
                "move it into each [[services]] entry",
            );
        }
    }
}

/// One entry being validated: its own keys over the `[defaults]` ones.
struct Entry<'a, 'p> {
    raw: &'a RawService,
    d: &'a RawService,
    ctx: &'a Context<'p>,
    s: &'a Subject,
}

pub(super) fn service(
    raw: &RawService,
    entry: Range<usize>,
    index: usize,
    d: &RawService,
    ctx: &Context<'_>,
    c: &mut Collector<'_>,
) -> (Service, Spans) {
    let (name, short_name, subject) = identity(
        raw.name.as_ref(),
        raw.short_name.as_ref(),
        entry.clone(),
        index,
        false,
        c,
    );
    let e = Entry {
        raw,
        d,
        ctx,
        s: &subject,
    };
    let (grpc_port, http_port) = e.ports(c);
    let (restart_backoff, restart_backoff_max) = e.backoff(c);
    let life = lifecycle(raw, d, c, e.s);
    let service = Service {
        kind: life.kind,
        restart: life.restart,
        success_exit_codes: life.success_exit_codes,
        description: pick(&raw.description, &d.description)
            .map(|v| v.get_ref().clone())
            .unwrap_or_default(),
        grpc_port,
        http_port,
        command: e.command(entry.clone(), &short_name, c),
        working_dir: pick(&raw.working_dir, &d.working_dir)
            .map_or_else(|| ctx.dir.clone(), |v| resolve_path(&ctx.dir, v.get_ref())),
        env: e.env(c),
        env_file: pick(&raw.env_file, &d.env_file).map(|v| resolve_path(&ctx.dir, v.get_ref())),
        dependencies: Vec::new(),
        start_order: pick(&raw.start_order, &d.start_order).map_or(0, |v| *v.get_ref()),
        max_retries: e.max_retries(c),
        stop_signal: stop_signal(pick(&raw.stop_signal, &d.stop_signal), c, e.s),
        stop_timeout: e.duration(c, |r| &r.stop_timeout, 10, "stop_timeout", true),
        on_port_conflict: port_policy(pick(&raw.on_port_conflict, &d.on_port_conflict), c, e.s),
        restart_backoff,
        restart_backoff_max,
        restart_reset_after: e.duration(
            c,
            |r| &r.restart_reset_after,
            60,
            "restart_reset_after",
            false,
        ),
        restart_dependents: pick(&raw.restart_dependents, &d.restart_dependents)
            .is_some_and(|v| *v.get_ref()),
        version: pick(&raw.version, &d.version)
            .map(|v| v.get_ref().clone())
            .unwrap_or_default(),
        enabled: pick(&raw.enabled, &d.enabled).is_none_or(|v| *v.get_ref()),
        watch: super::watch::patterns(pick(&raw.watch, &d.watch), &ctx.dir, c, e.s),
        watch_debounce: super::watch::debounce(
            pick(&raw.watch_debounce, &d.watch_debounce),
            c,
            e.s,
        ),
        health_check: service_check(
            raw,
            d,
            Ports {
                grpc: grpc_port,
                http: http_port,
            },
            entry.clone(),
            ctx,
            c,
            e.s,
        ),
        name,
        short_name,
    };
    (service, spans(raw, subject, entry))
}

/// Where the entry wrote what the cross-entry checks look at.
fn spans(raw: &RawService, subject: Subject, entry: Range<usize>) -> Spans {
    let list = |v: &Option<Spanned<Vec<Spanned<String>>>>| {
        v.as_ref().map(|v| v.get_ref().clone()).unwrap_or_default()
    };
    Spans {
        subject: Some(subject),
        entry,
        name: raw.name.as_ref().map(Spanned::span),
        short_name: raw.short_name.as_ref().map(Spanned::span),
        grpc_port: raw.grpc_port.as_ref().map(Spanned::span),
        http_port: raw.http_port.as_ref().map(Spanned::span),
        dependencies: list(&raw.dependencies),
        external_dependencies: list(&raw.external_dependencies),
        probe_port: None,
    }
}

impl Entry<'_, '_> {
    /// grpc_port and http_port (0 = none, as mDW writes it); both the same is an error.
    fn ports(&self, c: &mut Collector<'_>) -> (Option<u16>, Option<u16>) {
        fn given(v: &Option<Spanned<i64>>) -> Option<&Spanned<i64>> {
            v.as_ref().filter(|v| *v.get_ref() != 0)
        }
        let grpc_port = port(c, given(&self.raw.grpc_port), self.s, "grpc_port");
        let http_port = port(c, given(&self.raw.http_port), self.s, "http_port");
        if let (Some(g), Some(h), Some(span)) = (grpc_port, http_port, &self.raw.http_port)
            && g == h
        {
            c.push(
                Some(span.span()),
                self.s,
                "http_port",
                format!("grpc_port and http_port are both {g}"),
                "a port can serve one protocol: give http_port another number",
            );
        }
        (grpc_port, http_port)
    }

    /// The entry's command, else `<binary_path> serve <short_name>` when `[orchestrator]`
    /// names a binary.
    fn command(&self, entry: Range<usize>, short_name: &str, c: &mut Collector<'_>) -> Vec<String> {
        match (&self.raw.command, &self.ctx.binary_path) {
            (None, Some(binary)) => {
                let span = binary.span();
                let parts = [binary.get_ref().as_str(), "serve", short_name]
                    .map(|p| Spanned::new(span.clone(), p.to_owned()));
                let cmd = Spanned::new(span, parts.to_vec());
                command(&cmd, self.ctx, c, self.s, "orchestrator.binary_path")
            }
            (None, None) => {
                c.push_missing(
                    Some(entry),
                    self.s,
                    "command",
                    "no command: mdw does not know how to start this service",
                    "add e.g. command = [\"./bin/server\", \"--port\", \"8080\"] (or make it an \
                     [[externals]] entry if mdw should only check it)",
                );
                Vec::new()
            }
            (Some(cmd), _) => command(cmd, self.ctx, c, self.s, "command"),
        }
    }

    /// `[defaults] env` with the entry's own `env` on top.
    fn env(&self, c: &mut Collector<'_>) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        for table in [&self.d.env, &self.raw.env].into_iter().flatten() {
            for (key, value) in table.get_ref() {
                if key.is_empty() || key.contains('=') || key.contains('\0') {
                    c.push(
                        Some(value.span()),
                        self.s,
                        format!("env.{key}"),
                        format!("'{key}' is not a valid environment variable name"),
                        "use a name without '=', like RUST_LOG",
                    );
                } else {
                    env.insert(key.clone(), value.get_ref().clone());
                }
            }
        }
        env
    }

    fn max_retries(&self, c: &mut Collector<'_>) -> u32 {
        let Some(v) = pick(&self.raw.max_retries, &self.d.max_retries) else {
            return 3;
        };
        match u32::try_from(*v.get_ref()) {
            Ok(n) if i64::from(n) <= MAX_RETRIES_LIMIT => n,
            _ => {
                c.push(
                    Some(v.span()),
                    self.s,
                    "max_retries",
                    format!("max_retries {} is out of range", v.get_ref()),
                    format!("use 0 (never restart) up to {MAX_RETRIES_LIMIT}; the default is 3"),
                );
                3
            }
        }
    }

    /// A duration key of the entry (own value, else `[defaults]`); `default` in seconds.
    fn duration(
        &self,
        c: &mut Collector<'_>,
        key: fn(&RawService) -> &Option<Spanned<String>>,
        default: u64,
        field: &str,
        zero_ok: bool,
    ) -> Duration {
        duration(
            c,
            pick(key(self.raw), key(self.d)),
            default,
            self.s,
            field,
            zero_ok,
        )
    }

    /// restart_backoff and its cap; a cap below the first delay is an error.
    fn backoff(&self, c: &mut Collector<'_>) -> (Duration, Duration) {
        let first = self.duration(c, |r| &r.restart_backoff, 1, "restart_backoff", true);
        let cap = self.duration(
            c,
            |r| &r.restart_backoff_max,
            30,
            "restart_backoff_max",
            true,
        );
        if cap < first
            && let Some(v) = pick(&self.raw.restart_backoff_max, &self.d.restart_backoff_max)
                .or(pick(&self.raw.restart_backoff, &self.d.restart_backoff))
        {
            c.push(
                Some(v.span()),
                self.s,
                "restart_backoff_max",
                format!(
                    "restart_backoff_max {} is below restart_backoff {}",
                    humantime::format_duration(cap),
                    humantime::format_duration(first)
                ),
                "the cap must be at least the first delay",
            );
        }
        (first, cap)
    }
}
