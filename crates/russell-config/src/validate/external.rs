//! One `[[externals]]` entry: checked, never started, probed where the file says.

use std::ops::Range;

use toml::Spanned;

use super::health::{EXTERNAL_CHECK_TYPES, Timing, exec_probe, unknown_type};
use super::names::identity;
use super::{Context, Spans};
use crate::error::{Collector, Subject};
use crate::model::{External, Probe};
use crate::raw::{RawExternal, RawExternalCheck};

pub(super) fn external(
    raw: &RawExternal,
    entry: Range<usize>,
    index: usize,
    ctx: &Context<'_>,
    c: &mut Collector<'_>,
) -> (External, Spans) {
    let (name, short_name, subject) = identity(
        raw.name.as_ref(),
        raw.short_name.as_ref(),
        entry.clone(),
        index,
        true,
        c,
    );
    let none = RawExternalCheck::default();
    let own = raw.health_check.as_ref();
    let ch = own.map_or(&none, |v| v.get_ref());
    let timing = Timing {
        interval: ch.interval.as_ref(),
        timeout: ch.timeout.as_ref(),
        failure_threshold: ch.failure_threshold.as_ref(),
        success_threshold: ch.success_threshold.as_ref(),
        start_timeout: ch.start_timeout.as_ref(),
    };
    let mut check = timing.check(c, &subject);
    let target = Target {
        ch,
        place: own.map_or(entry.clone(), Spanned::span),
        s: &subject,
    };
    let mut probe_port = None;
    match &ch.kind {
        None if own.is_some() => c.push_missing(
            Some(target.place.clone()),
            &subject,
            "health_check.type",
            "the health check has no type",
            "add type = \"http\" (with url), \"tcp\" or \"grpc\" (with address), \"exec\" \
             (with command), \"ollama\" (with url and models) or \"none\"",
        ),
        None => {}
        Some(kind) => {
            (check.probe, probe_port) = target.probe(kind, ctx, c);
        }
    }
    let external = External {
        name,
        short_name,
        description: raw
            .description
            .as_ref()
            .map(|v| v.get_ref().clone())
            .unwrap_or_default(),
        optional: raw.optional.as_ref().is_some_and(|v| *v.get_ref()),
        health_check: check,
    };
    let spans = Spans {
        subject: Some(subject.clone()),
        entry,
        name: raw.name.as_ref().map(Spanned::span),
        short_name: raw.short_name.as_ref().map(Spanned::span),
        probe_port,
        ..Spans::default()
    };
    (external, spans)
}

/// Port probed on this machine, with the place it is written.
type LocalPort = Option<(u16, Range<usize>)>;

/// An external's `[externals.health_check]`, and where to point messages about it.
struct Target<'a> {
    ch: &'a RawExternalCheck,
    /// The check's table, else the external's entry.
    place: Range<usize>,
    s: &'a Subject,
}

impl Target<'_> {
    fn probe(
        &self,
        kind: &Spanned<String>,
        ctx: &Context<'_>,
        c: &mut Collector<'_>,
    ) -> (Probe, LocalPort) {
        match kind.get_ref().trim().to_ascii_lowercase().as_str() {
            "http" => self.http(c),
            "ollama" => self.ollama(c),
            k @ ("tcp" | "grpc") => self.address(k, c),
            "exec" => (
                exec_probe(self.ch.command.as_ref(), self.place.clone(), ctx, c, self.s),
                None,
            ),
            "none" => (Probe::None, None),
            _ => {
                unknown_type(kind, EXTERNAL_CHECK_TYPES, c, self.s);
                (Probe::None, None)
            }
        }
    }

    fn http(&self, c: &mut Collector<'_>) -> (Probe, LocalPort) {
        let Some(url) = &self.ch.url else {
            c.push_missing(
                Some(self.place.clone()),
                self.s,
                "health_check.url",
                "an http check of an external needs a url",
                "add url = \"http://127.0.0.1:11434/api/version\"",
            );
            return (Probe::None, None);
        };
        let Some((host, port)) = http_url_port(url.get_ref()) else {
            c.push(
                Some(url.span()),
                self.s,
                "health_check.url",
                format!("'{}' is not an http:// URL with a host", url.get_ref()),
                "write it like url = \"http://127.0.0.1:11434/api/version\" \
                 (https is not supported: use a tcp check on host:443)",
            );
            return (Probe::None, None);
        };
        let probe = Probe::Http {
            url: url.get_ref().trim().to_owned(),
            expect_body: self.ch.expect_body.as_ref().map(|v| v.get_ref().clone()),
        };
        (probe, is_local(&host).then(|| (port, url.span())))
    }

    /// Ollama's model list: `url` is Ollama's address, `models` the names it must list.
    fn ollama(&self, c: &mut Collector<'_>) -> (Probe, LocalPort) {
        let models = self.models(c);
        let Some(url) = &self.ch.url else {
            c.push_missing(
                Some(self.place.clone()),
                self.s,
                "health_check.url",
                "an ollama check needs Ollama's url",
                "add url = \"http://127.0.0.1:11434\"",
            );
            return (Probe::None, None);
        };
        let text = url.get_ref().trim().trim_end_matches('/');
        let path_free = text
            .strip_prefix("http://")
            .is_some_and(|rest| !rest.contains('/'));
        let parsed = http_url_port(text).filter(|_| path_free);
        let Some((host, port)) = parsed else {
            c.push(
                Some(url.span()),
                self.s,
                "health_check.url",
                format!("'{}' is not Ollama's address", url.get_ref()),
                "give the address only, like url = \"http://127.0.0.1:11434\" (the check \
                 reads <url>/api/tags)",
            );
            return (Probe::None, None);
        };
        let local = is_local(&host).then(|| (port, url.span()));
        match models {
            Some(models) => (
                Probe::Ollama {
                    url: format!("{text}/api/tags"),
                    models,
                },
                local,
            ),
            None => (Probe::None, local),
        }
    }

    /// The `models` an ollama check needs: at least one, each a name without spaces.
    fn models(&self, c: &mut Collector<'_>) -> Option<Vec<String>> {
        let hint = "list the model names as `ollama list` shows them, e.g. \
                    models = [\"mistral:7b\", \"nomic-embed-text\"]";
        let Some(models) = &self.ch.models else {
            c.push_missing(
                Some(self.place.clone()),
                self.s,
                "health_check.models",
                "an ollama check needs the models it looks for",
                hint,
            );
            return None;
        };
        if models.get_ref().is_empty() {
            c.push(
                Some(models.span()),
                self.s,
                "health_check.models",
                "the list of models is empty",
                hint,
            );
            return None;
        }
        let mut out = Vec::new();
        for m in models.get_ref() {
            let name = m.get_ref().trim();
            if name.is_empty() || name.contains(char::is_whitespace) || name.ends_with(':') {
                c.push(
                    Some(m.span()),
                    self.s,
                    "health_check.models",
                    format!("'{}' is not a model name", m.get_ref()),
                    hint,
                );
            } else {
                out.push(name.to_owned());
            }
        }
        (out.len() == models.get_ref().len()).then_some(out)
    }

    /// A tcp or grpc check: `address = "host:port"`.
    fn address(&self, kind: &str, c: &mut Collector<'_>) -> (Probe, LocalPort) {
        let Some(addr) = &self.ch.address else {
            c.push_missing(
                Some(self.place.clone()),
                self.s,
                "health_check.address",
                format!("a {kind} check of an external needs an address"),
                "add address = \"127.0.0.1:5432\" (host:port)",
            );
            return (Probe::None, None);
        };
        let Some((host, port)) = host_port(addr.get_ref().trim()) else {
            c.push(
                Some(addr.span()),
                self.s,
                "health_check.address",
                format!("'{}' is not host:port", addr.get_ref()),
                "write it like address = \"127.0.0.1:5432\" (port 1 to 65535)",
            );
            return (Probe::None, None);
        };
        let local = is_local(&host).then(|| (port, addr.span()));
        let addr = addr.get_ref().trim().to_owned();
        let probe = if kind == "tcp" {
            Probe::Tcp { addr }
        } else {
            Probe::Grpc {
                addr,
                service: self
                    .ch
                    .service
                    .as_ref()
                    .map(|v| v.get_ref().clone())
                    .unwrap_or_default(),
            }
        };
        (probe, local)
    }
}

/// Host and port of an `http://host[:port][/path]` URL.
pub(super) fn http_url_port(url: &str) -> Option<(String, u16)> {
    let rest = url.trim().strip_prefix("http://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    if authority.ends_with(']') || !authority.contains(':') {
        return Some((authority.to_owned(), 80));
    }
    host_port(authority)
}

/// `host:port` (IPv6 in brackets), port 1..=65535.
pub(super) fn host_port(text: &str) -> Option<(String, u16)> {
    let (host, port) = text.rsplit_once(':')?;
    let port: u16 = port.parse().ok().filter(|p| *p > 0)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.contains(char::is_whitespace) {
        return None;
    }
    Some((host.to_owned(), port))
}

pub(super) fn is_local(host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "::1" | "0.0.0.0" | "::")
}
