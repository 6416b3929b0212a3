//! mDW's file shape: `[orchestrator]` and `[dependencies.<id>]`, read with the meaning mDW's
//! Go Russell gives them.
//!
//! - `[orchestrator] startup_timeout`, `shutdown_timeout` and `health_check_interval` are
//!   defaults for every service, exactly as `[defaults.health_check] start_timeout`,
//!   `[defaults] stop_timeout` and `[defaults.health_check] interval` are in mdw's own
//!   shape (and for the `[dependencies]` externals' checks); `log_dir` is `[logs] dir`.
//!   Setting one of these in both shapes is an error naming both keys.
//! - `binary_path` is what a service without `command` runs: `<binary_path> serve
//!   <short_name>` (resolved in `service`, read from [`super::Context`]).
//! - Each `[dependencies.<id>]` (name, type, url, required) becomes an external with
//!   short_name `<id>`; `required = false` makes it optional. An `[[externals]]` entry of
//!   the same short_name is an error naming both.

use std::ops::Range;
use std::path::PathBuf;

use toml::Spanned;

use super::external::{http_url_port, is_local};
use super::fields::{duration, resolve_path};
use super::health::Timing;
use super::names::valid_short_name;
use super::{Context, Spans};
use crate::error::{Collector, Subject};
use crate::model::{External, Probe};
use crate::raw::{RawDependency, RawFile, RawOrchestrator, RawService};

/// What `[orchestrator]` contributes, once checked.
#[derive(Default)]
pub(super) struct Orchestrator {
    /// `[defaults]` with the orchestrator's timeouts and interval filled in.
    pub defaults: RawService,
    /// `log_dir`, resolved.
    pub log_dir: Option<PathBuf>,
}

/// One orchestrator key and the native key that sets the same thing.
struct Twin {
    key: &'static str,
    native: &'static str,
    zero_ok: bool,
}

const STARTUP: Twin = Twin {
    key: "startup_timeout",
    native: "[defaults.health_check] start_timeout",
    zero_ok: false,
};
const SHUTDOWN: Twin = Twin {
    key: "shutdown_timeout",
    native: "[defaults] stop_timeout",
    zero_ok: true,
};
const INTERVAL: Twin = Twin {
    key: "health_check_interval",
    native: "[defaults.health_check] interval",
    zero_ok: false,
};

/// Checks `[orchestrator]` against `[defaults]` and `[logs]` and merges it into them.
pub(super) fn orchestrator(
    raw: &RawFile,
    defaults: &RawService,
    ctx: &Context<'_>,
    c: &mut Collector<'_>,
) -> Orchestrator {
    let mut out = Orchestrator {
        defaults: defaults.clone(),
        log_dir: None,
    };
    let Some(orch) = raw.orchestrator.as_ref() else {
        return out;
    };
    let o: &RawOrchestrator = &orch.raw;
    let d_check = defaults.health_check.as_ref().map(Spanned::get_ref);
    let mut check = d_check.cloned().unwrap_or_default();
    if let Some(v) = twin(
        &STARTUP,
        &o.startup_timeout,
        d_check.and_then(|k| k.start_timeout.as_ref()),
        c,
    ) {
        check.start_timeout = Some(v);
    }
    if let Some(v) = twin(
        &INTERVAL,
        &o.health_check_interval,
        d_check.and_then(|k| k.interval.as_ref()),
        c,
    ) {
        check.interval = Some(v);
    }
    if let Some(v) = twin(
        &SHUTDOWN,
        &o.shutdown_timeout,
        defaults.stop_timeout.as_ref(),
        c,
    ) {
        out.defaults.stop_timeout = Some(v);
    }
    let span = defaults
        .health_check
        .as_ref()
        .map_or(orch.span.clone(), Spanned::span);
    out.defaults.health_check = Some(Spanned::new(span, check));
    out.log_dir = log_dir(o, raw, ctx, c);
    out
}

/// A checked orchestrator duration, unless the native twin is set too (an error).
fn twin(
    twin: &Twin,
    own: &Option<Spanned<String>>,
    native: Option<&Spanned<String>>,
    c: &mut Collector<'_>,
) -> Option<Spanned<String>> {
    let own = own.as_ref()?;
    if let Some(native) = native {
        both(twin.key, twin.native, own.span(), native.span(), c);
        return None;
    }
    let before = c.errors.len();
    let field = format!("orchestrator.{}", twin.key);
    duration(c, Some(own), 0, &Subject::File, &field, twin.zero_ok);
    (c.errors.len() == before).then(|| own.clone())
}

/// "`[orchestrator] key` and `native` (line N) set the same thing".
fn both(key: &str, native: &str, own: Range<usize>, other: Range<usize>, c: &mut Collector<'_>) {
    let line = c.line_col(other.start).0;
    c.push(
        Some(own),
        &Subject::File,
        format!("orchestrator.{key}"),
        format!("[orchestrator] {key} and {native} (line {line}) set the same thing"),
        "keep one of them: [orchestrator] belongs to mDW's file shape, the other key to \
         mdw's own",
    );
}

fn log_dir(
    o: &RawOrchestrator,
    raw: &RawFile,
    ctx: &Context<'_>,
    c: &mut Collector<'_>,
) -> Option<PathBuf> {
    let own = o.log_dir.as_ref()?;
    if let Some(native) = raw.logs.as_ref().and_then(|l| l.dir.as_ref()) {
        both("log_dir", "[logs] dir", own.span(), native.span(), c);
        return None;
    }
    Some(resolve_path(&ctx.dir, own.get_ref()))
}

/// The `[dependencies.<id>]` tables as externals, in file order.
pub(super) fn dependencies(
    raw: &RawFile,
    orch: &Orchestrator,
    c: &mut Collector<'_>,
) -> Vec<(External, Spans)> {
    let check = orch.defaults.health_check.as_ref().map(Spanned::get_ref);
    let timing = Timing {
        interval: check.and_then(|k| k.interval.as_ref()),
        timeout: None,
        failure_threshold: None,
        success_threshold: None,
        start_timeout: check.and_then(|k| k.start_timeout.as_ref()),
    };
    let mut out = Vec::new();
    for (id, entry) in &raw.dependencies {
        if clashes(id, raw, c) {
            continue;
        }
        let subject = Subject::External(id.get_ref().clone());
        let mut health_check = timing.check(c, &subject);
        let (probe, probe_port) = dependency_probe(&entry.raw, entry.span.clone(), &subject, c);
        health_check.probe = probe;
        if !valid_short_name(id.get_ref()) {
            c.push(
                Some(id.span()),
                &subject,
                "",
                format!("'{}' is not usable as an identifier", id.get_ref()),
                "name the table [dependencies.<id>] with 1 to 64 of a-z, 0-9, '_' and '-'",
            );
        }
        let d = &entry.raw;
        let external = External {
            name: d
                .name
                .as_ref()
                .map_or_else(|| id.get_ref().clone(), |v| v.get_ref().trim().to_owned()),
            short_name: id.get_ref().clone(),
            description: d
                .description
                .as_ref()
                .map(|v| v.get_ref().clone())
                .unwrap_or_default(),
            optional: d.required.as_ref().is_some_and(|v| !*v.get_ref()),
            health_check,
        };
        let spans = Spans {
            subject: Some(subject),
            entry: entry.span.clone(),
            name: d.name.as_ref().map(Spanned::span),
            short_name: Some(id.span()),
            probe_port,
            ..Spans::default()
        };
        out.push((external, spans));
    }
    out
}

/// True (and reported) when an `[[externals]]` entry has the same short_name as `id`.
fn clashes(id: &Spanned<String>, raw: &RawFile, c: &mut Collector<'_>) -> bool {
    let short = id.get_ref().to_lowercase();
    let Some(other) = raw.externals.iter().find(|e| {
        let r = &e.raw;
        r.short_name
            .as_ref()
            .map(|v| v.get_ref().to_lowercase())
            .as_ref()
            == Some(&short)
            || (r.short_name.is_none()
                && r.name
                    .as_ref()
                    .map(|v| v.get_ref().trim().to_lowercase())
                    .as_ref()
                    == Some(&short))
    }) else {
        return false;
    };
    let line = c.line_col(other.span.start).0;
    c.push(
        Some(id.span()),
        &Subject::External(id.get_ref().clone()),
        "",
        format!(
            "[dependencies.{}] and the [[externals]] entry with short_name '{short}' (line {line}) \
             define the same external",
            id.get_ref()
        ),
        "keep one of them: [dependencies.<id>] belongs to mDW's file shape, [[externals]] to \
         mdw's own",
    );
    true
}

/// `type = "http"` with `url`: the only check mDW's `[dependencies]` tables use.
fn dependency_probe(
    d: &RawDependency,
    place: Range<usize>,
    s: &Subject,
    c: &mut Collector<'_>,
) -> (Probe, Option<(u16, Range<usize>)>) {
    let kind = d.kind.as_ref().map_or("http".to_owned(), |k| {
        k.get_ref().trim().to_ascii_lowercase()
    });
    if kind != "http" {
        if let Some(k) = &d.kind {
            c.push(
                Some(k.span()),
                s,
                "type",
                format!("unknown dependency type '{}'", k.get_ref()),
                "a [dependencies.<id>] table checks type = \"http\" with a url; for a tcp, \
                 grpc, exec or ollama check write an [[externals]] entry",
            );
        }
        return (Probe::None, None);
    }
    let Some(url) = &d.url else {
        c.push_missing(
            Some(place),
            s,
            "url",
            "an http dependency needs a url",
            "add url = \"http://localhost:11434/api/version\"",
        );
        return (Probe::None, None);
    };
    let Some((host, port)) = http_url_port(url.get_ref()) else {
        c.push(
            Some(url.span()),
            s,
            "url",
            format!("'{}' is not an http:// URL with a host", url.get_ref()),
            "write it like url = \"http://localhost:11434/api/version\"",
        );
        return (Probe::None, None);
    };
    let probe = Probe::Http {
        url: url.get_ref().trim().to_owned(),
        expect_body: None,
    };
    (probe, is_local(&host).then(|| (port, url.span())))
}
