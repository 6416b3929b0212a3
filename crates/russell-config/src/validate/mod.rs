//! Raw model → [`Config`]: applies `[defaults]` and the documented defaults, resolves paths,
//! `{mdw}` and dependency names, and checks everything, collecting every problem.
//!
//! One file per concern, each reporting into the same [`Collector`]:
//! - `settings`: the `[russell]` and `[logs]` tables;
//! - `service`: one `[[services]]` entry with `[defaults]` applied;
//! - `health`: a service's health check and the timing keys every check shares;
//! - `lifecycle`: `kind`, `restart` and `success_exit_codes` (tasks and restart policy);
//! - `expand`: `${NAME}` variables, expanded in the raw file before everything else;
//! - `external`: one `[[externals]]` entry and where it probes;
//! - `names` and `fields`: identity (name, short_name) and single values (ports, durations,
//!   signals, commands, paths);
//! - `cross`: what needs every entry at once (unique names and ports, dependency names,
//!   cycles).
//!
//! Every entry is validated on its own first, so one bad entry never hides the problems of
//! the next; the cross-entry checks run last, over what the entries produced.

mod cross;
mod expand;
mod external;
mod fields;
mod health;
mod lifecycle;
mod mdw;
mod names;
mod service;
mod settings;
mod watch;

use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;

use crate::error::{Collector, Subject};
use crate::model::{Config, Paths};
use crate::raw::{RawFile, RawService};

pub(crate) use expand::expand_vars;

/// Highest accepted `max_retries`.
pub const MAX_RETRIES_LIMIT: i64 = 10_000;

/// The literal that stands for the running mdw executable in a command.
pub const MDW_PLACEHOLDER: &str = "{mdw}";

/// Where the file lives and what `{mdw}` means.
pub(crate) struct Context<'p> {
    /// Absolute source path.
    pub source: PathBuf,
    /// Base for relative paths: the source's folder, or in mDW's shape the current
    /// directory (see [`crate::FileShape`]).
    pub dir: PathBuf,
    /// Absolute folder of the source (the default state directory goes next to it).
    pub file_dir: PathBuf,
    pub mdw_exe: &'p Path,
    /// `[orchestrator] binary_path`: what a service without `command` runs.
    pub binary_path: Option<Spanned<String>>,
}

/// Validates `raw` into a [`Config`]; every problem goes into `c` (then `None`).
pub(crate) fn validate(
    raw: &RawFile,
    ctx: &Context<'_>,
    paths: Paths,
    c: &mut Collector<'_>,
) -> Option<Config> {
    let russell = settings::russell(raw.russell.as_ref(), ctx, c);
    let mut logs = settings::logs(raw.logs.as_ref(), ctx, c);
    let empty = RawService::default();
    let own_defaults = raw.defaults.as_ref().map_or(&empty, |d| &d.raw);
    service::check_defaults(own_defaults, c);
    let orchestrator = mdw::orchestrator(raw, own_defaults, ctx, c);
    if orchestrator.log_dir.is_some() {
        logs.dir.clone_from(&orchestrator.log_dir);
    }
    let defaults = &orchestrator.defaults;

    let mut services = Vec::new();
    let mut service_spans = Vec::new();
    for (index, entry) in raw.services.iter().enumerate() {
        let (service, spans) =
            service::service(&entry.raw, entry.span.clone(), index, defaults, ctx, c);
        services.push(service);
        service_spans.push(spans);
    }
    let (mut externals, mut external_spans): (Vec<_>, Vec<_>) =
        mdw::dependencies(raw, &orchestrator, c).into_iter().unzip();
    for (index, entry) in raw.externals.iter().enumerate() {
        let (external, spans) = external::external(&entry.raw, entry.span.clone(), index, ctx, c);
        externals.push(external);
        external_spans.push(spans);
    }

    let names = cross::unique_names(&services, &service_spans, &externals, &external_spans, c);
    let listen_span = raw
        .russell
        .as_ref()
        .and_then(|r| r.listen.as_ref())
        .map(Spanned::span);
    cross::unique_ports(
        &services,
        &service_spans,
        &externals,
        &external_spans,
        (&russell, listen_span),
        raw.russell
            .as_ref()
            .and_then(|r| r.http_listen.as_ref())
            .map(Spanned::span),
        c,
    );
    for (service, spans) in services.iter_mut().zip(&service_spans) {
        service.dependencies = cross::resolve_dependencies(service, spans, &names, c);
        cross::add_external_dependencies(service, spans, &externals, c);
    }
    cross::find_cycles(&services, &service_spans, c);

    c.errors.is_empty().then_some(Config {
        source: ctx.source.clone(),
        russell,
        logs,
        services,
        externals,
        paths,
    })
}

/// Places remembered per entry for the cross-entry checks.
#[derive(Debug, Default)]
struct Spans {
    subject: Option<Subject>,
    entry: Range<usize>,
    name: Option<Range<usize>>,
    short_name: Option<Range<usize>>,
    grpc_port: Option<Range<usize>>,
    http_port: Option<Range<usize>>,
    /// Each dependency as written, with its place.
    dependencies: Vec<Spanned<String>>,
    /// Each `external_dependencies` entry as written, with its place.
    external_dependencies: Vec<Spanned<String>>,
    /// Port an external probes on this machine, with the place it is written.
    probe_port: Option<(u16, Range<usize>)>,
}

impl Spans {
    fn subject(&self) -> Subject {
        self.subject.clone().unwrap_or(Subject::File)
    }
}

/// Own value, else the `[defaults]` one.
fn pick<'a, T>(
    own: &'a Option<Spanned<T>>,
    default: &'a Option<Spanned<T>>,
) -> Option<&'a Spanned<T>> {
    own.as_ref().or(default.as_ref())
}
