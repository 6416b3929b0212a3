//! Checks across entries: unique names and ports, dependency names, dependency cycles.

use std::collections::HashMap;
use std::ops::Range;

use toml::Spanned;

use super::Spans;
use crate::error::{Collector, Subject};
use crate::model::{External, RussellSettings, Service};
use crate::raw::closest;

/// Every lowercase name and short_name → short_name of its owner; reports duplicates.
pub(super) fn unique_names(
    services: &[Service],
    service_spans: &[Spans],
    externals: &[External],
    external_spans: &[Spans],
    c: &mut Collector<'_>,
) -> HashMap<String, String> {
    let mut owners: HashMap<String, (usize, String)> = HashMap::new();
    let entries = services
        .iter()
        .map(|s| (&s.name, &s.short_name))
        .chain(externals.iter().map(|e| (&e.name, &e.short_name)))
        .zip(service_spans.iter().chain(external_spans));
    for (id, ((name, short), spans)) in entries.enumerate() {
        let mut keys = vec![(short.clone(), "short_name", spans.short_name.clone())];
        if name.to_lowercase() != *short {
            keys.push((name.to_lowercase(), "name", spans.name.clone()));
        }
        let mut reported = Vec::new();
        for (key, field, span) in keys {
            if key.is_empty() {
                continue;
            }
            match owners.get(&key) {
                Some((other, owner_short)) if *other != id => {
                    if reported.contains(other) {
                        continue;
                    }
                    reported.push(*other);
                    let owner_spans = service_spans.iter().chain(external_spans).nth(*other);
                    let line = owner_spans.map(|o| {
                        c.line_col(o.name.clone().unwrap_or(o.entry.clone()).start)
                            .0
                    });
                    let what = match owner_spans.map(Spans::subject) {
                        Some(Subject::External(_)) => "external",
                        _ => "service",
                    };
                    c.push(
                        span.or(Some(spans.entry.clone())),
                        &spans.subject(),
                        field,
                        format!(
                            "duplicate {field} '{key}': {what} '{owner_short}'{} has it too",
                            line.map(|l| format!(" (line {l})")).unwrap_or_default()
                        ),
                        "names and short_names must be unique, ignoring case: rename one",
                    );
                }
                Some(_) => {}
                None => {
                    owners.insert(key, (id, short.clone()));
                }
            }
        }
    }
    owners
        .into_iter()
        .map(|(k, (_, short))| (k, short))
        .collect()
}

/// The first user of each port: (who, field, line, place, subject).
#[derive(Default)]
struct PortOwners(HashMap<u16, (String, String, usize, Range<usize>, Subject)>);

impl PortOwners {
    /// Records `who` as the user of `port`, or reports that someone was first.
    fn claim(
        &mut self,
        port: u16,
        who: String,
        field: &str,
        span: Range<usize>,
        subject: Subject,
        c: &mut Collector<'_>,
    ) {
        let line = c.line_col(span.start).0;
        let Some((owner, owner_field, owner_line, _, _)) = self.0.get(&port) else {
            self.0
                .insert(port, (who, field.to_owned(), line, span, subject));
            return;
        };
        let (message, hint) = if matches!(subject, Subject::External(_)) {
            (
                format!(
                    "probes port {port} on this machine, which {owner} listens on \
                     ({owner_field}, line {owner_line})"
                ),
                "an external is not started by mdw and cannot share a managed service's \
                 port: change one of them",
            )
        } else {
            (
                format!(
                    "port {port} is already used by {owner} ({owner_field}, line {owner_line})"
                ),
                "each port belongs to one service: choose another port",
            )
        };
        c.push(Some(span), &subject, field, message, hint);
    }
}

/// A port may be configured by one service only; externals probing this machine count too.
pub(super) fn unique_ports(
    services: &[Service],
    service_spans: &[Spans],
    externals: &[External],
    external_spans: &[Spans],
    (russell, listen_span): (&RussellSettings, Option<Range<usize>>),
    http_listen_span: Option<Range<usize>>,
    c: &mut Collector<'_>,
) {
    let mut owners = PortOwners::default();
    for (service, spans) in services.iter().zip(service_spans) {
        for (port, field, span) in [
            (service.grpc_port, "grpc_port", &spans.grpc_port),
            (service.http_port, "http_port", &spans.http_port),
        ] {
            if let (Some(port), Some(span)) = (port, span)
                && !(field == "http_port" && service.grpc_port == Some(port))
            {
                let who = format!("service '{}'", service.short_name);
                owners.claim(port, who, field, span.clone(), spans.subject(), c);
            }
        }
    }
    let mut probed: Vec<u16> = Vec::new();
    for (external, spans) in externals.iter().zip(external_spans) {
        // Two externals may probe the same server (Ollama and a model on it).
        if let Some((port, span)) = &spans.probe_port
            && !probed.contains(port)
        {
            probed.push(*port);
            let who = format!("external '{}'", external.short_name);
            owners.claim(*port, who, "health_check", span.clone(), spans.subject(), c);
        }
    }
    listen_port(&owners, (russell.listen, "listen"), listen_span, c);
    if let Some(http) = russell.http_listen {
        listen_port(&owners, (http, "http_listen"), http_listen_span, c);
    }
}

/// Russell's own listen ports (`listen`, `http_listen`) may not be a service's.
fn listen_port(
    owners: &PortOwners,
    (listen, key): (std::net::SocketAddr, &str),
    listen_span: Option<Range<usize>>,
    c: &mut Collector<'_>,
) {
    let ip = listen.ip();
    let Some((owner, field, line, span, subject)) = owners.0.get(&listen.port()) else {
        return;
    };
    if !(ip.is_loopback() || ip.is_unspecified()) {
        return;
    }
    let (span, subject, field_name) = match listen_span {
        Some(listen) => (listen, Subject::File, format!("russell.{key}")),
        None => (span.clone(), subject.clone(), field.clone()),
    };
    c.push(
        Some(span),
        &subject,
        field_name,
        format!(
            "Russell listens on port {} ({key}), which {owner} also uses ({field}, line {line})",
            listen.port()
        ),
        format!("move the service to another port, or set another {key} address under [russell]"),
    );
}

/// Resolves dependency names (name or short_name, any case) to short_names.
pub(super) fn resolve_dependencies(
    service: &Service,
    spans: &Spans,
    names: &HashMap<String, String>,
    c: &mut Collector<'_>,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for dep in &spans.dependencies {
        let key = dep.get_ref().trim().to_lowercase();
        match names.get(&key) {
            Some(short) if *short == service.short_name => c.push(
                Some(dep.span()),
                &spans.subject(),
                "dependencies",
                format!("'{}' depends on itself", service.short_name),
                "remove it from its own dependencies",
            ),
            Some(short) => {
                if !out.contains(short) {
                    out.push(short.clone());
                }
            }
            None => {
                let mut known: Vec<&str> = names.keys().map(String::as_str).collect();
                known.sort_unstable();
                let hint = match closest(&key, &known) {
                    Some(best) => format!(
                        "did you mean '{}'?",
                        names.get(best).map_or(best, String::as_str)
                    ),
                    None => {
                        "name a [[services]] or [[externals]] entry (name or short_name)".to_owned()
                    }
                };
                c.push(
                    Some(dep.span()),
                    &spans.subject(),
                    "dependencies",
                    format!("unknown dependency '{}'", dep.get_ref()),
                    hint,
                );
            }
        }
    }
    out
}

/// Adds the externals named in `external_dependencies` (by short_name, any case) to the
/// service's dependencies.
pub(super) fn add_external_dependencies(
    service: &mut Service,
    spans: &Spans,
    externals: &[External],
    c: &mut Collector<'_>,
) {
    for dep in &spans.external_dependencies {
        let key = dep.get_ref().trim().to_lowercase();
        match externals
            .iter()
            .find(|e| e.short_name.to_lowercase() == key)
        {
            Some(e) => {
                if !service.dependencies.contains(&e.short_name) {
                    service.dependencies.push(e.short_name.clone());
                }
            }
            None => {
                let known: Vec<&str> = externals.iter().map(|e| e.short_name.as_str()).collect();
                let hint = match closest(&key, &known) {
                    Some(best) => format!("did you mean '{best}'?"),
                    None if known.is_empty() => {
                        "define it as a [dependencies.<id>] table (or an [[externals]] entry); \
                         a service to wait for goes under dependencies"
                            .to_owned()
                    }
                    None => format!(
                        "known externals: {}; a service to wait for goes under dependencies",
                        known.join(", ")
                    ),
                };
                c.push(
                    Some(dep.span()),
                    &spans.subject(),
                    "external_dependencies",
                    format!("unknown external dependency '{}'", dep.get_ref()),
                    hint,
                );
            }
        }
    }
}

/// Reports each dependency cycle among services once, as `a → b → c → a`.
pub(super) fn find_cycles(services: &[Service], spans: &[Spans], c: &mut Collector<'_>) {
    let edges = crate::plan::dependency_indices(services);
    // 0 = unvisited, 1 = on the current path, 2 = done.
    let mut color = vec![0u8; services.len()];
    let mut seen_cycles: Vec<Vec<usize>> = Vec::new();
    for start in 0..services.len() {
        if color[start] != 0 {
            continue;
        }
        // Iterative DFS: (node, next edge to look at).
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        color[start] = 1;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if let Some(&dep) = edges[node].get(*next) {
                *next += 1;
                match color[dep] {
                    0 => {
                        color[dep] = 1;
                        stack.push((dep, 0));
                    }
                    1 => {
                        let from = stack.iter().position(|(n, _)| *n == dep).unwrap_or(0);
                        let cycle: Vec<usize> = stack[from..].iter().map(|(n, _)| *n).collect();
                        let mut key = cycle.clone();
                        key.sort_unstable();
                        if !seen_cycles.contains(&key) {
                            seen_cycles.push(key);
                            report_cycle(&cycle, services, spans, c);
                        }
                    }
                    _ => {}
                }
            } else {
                color[node] = 2;
                stack.pop();
            }
        }
    }
}

pub(super) fn report_cycle(
    cycle: &[usize],
    services: &[Service],
    spans: &[Spans],
    c: &mut Collector<'_>,
) {
    let Some(&first) = cycle.first() else { return };
    let mut path: Vec<&str> = cycle
        .iter()
        .map(|&i| services[i].short_name.as_str())
        .collect();
    path.push(&services[first].short_name);
    // Point at the first service's dependency on the second one.
    let next = path.get(1).copied().unwrap_or_default();
    let span = spans[first]
        .dependencies
        .iter()
        .find(|d| {
            let key = d.get_ref().trim().to_lowercase();
            key == next
                || services
                    .iter()
                    .any(|s| s.short_name == next && s.name.to_lowercase() == key)
        })
        .map(Spanned::span)
        .unwrap_or(spans[first].entry.clone());
    c.push(
        Some(span),
        &spans[first].subject(),
        "dependencies",
        format!("dependency cycle: {}", path.join(" → ")),
        "services in a cycle can never start: remove one of these dependencies",
    );
}
