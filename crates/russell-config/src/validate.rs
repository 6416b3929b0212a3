//! Raw model → [`Config`]: applies `[defaults]` and the documented defaults, resolves paths,
//! `{mdw}` and dependency names, and checks everything, collecting every problem.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use crate::error::{Collector, Subject};
use crate::model::{
    Config, External, HealthCheck, LogSettings, PortConflictPolicy, Probe, RussellSettings,
    Service, StopSignal,
};
use crate::raw::{
    NumOrText, RawExternal, RawExternalCheck, RawFile, RawLogs, RawRussell, RawService,
    RawServiceCheck, closest, example,
};

/// Highest accepted `max_retries`.
pub const MAX_RETRIES_LIMIT: i64 = 10_000;

/// The literal that stands for the running mdw executable in a command.
pub const MDW_PLACEHOLDER: &str = "{mdw}";

const CHECK_TYPES: &[&str] = &["grpc", "http", "tcp", "exec", "none"];

/// Signals a service may be stopped with (Linux numbers).
const SIGNALS: &[(i32, &str)] = &[
    (1, "SIGHUP"),
    (2, "SIGINT"),
    (3, "SIGQUIT"),
    (6, "SIGABRT"),
    (9, "SIGKILL"),
    (10, "SIGUSR1"),
    (12, "SIGUSR2"),
    (14, "SIGALRM"),
    (15, "SIGTERM"),
    (28, "SIGWINCH"),
    (30, "SIGPWR"),
];

/// Where the file lives and what `{mdw}` means.
pub(crate) struct Context<'p> {
    /// Absolute source path.
    pub source: PathBuf,
    /// Absolute folder of the source: base for relative paths.
    pub dir: PathBuf,
    pub mdw_exe: &'p Path,
}

/// Validates `raw` into a [`Config`]; every problem goes into `c` (then `None`).
pub(crate) fn validate(raw: &RawFile, ctx: &Context<'_>, c: &mut Collector<'_>) -> Option<Config> {
    let russell = russell(raw.russell.as_ref(), ctx, c);
    let logs = logs(raw.logs.as_ref(), c);
    let empty = RawService::default();
    let defaults = raw.defaults.as_ref().map_or(&empty, |d| &d.raw);
    check_defaults(defaults, c);

    let mut services = Vec::new();
    let mut service_spans = Vec::new();
    for (index, entry) in raw.services.iter().enumerate() {
        let (service, spans) = service(&entry.raw, entry.span.clone(), index, defaults, ctx, c);
        services.push(service);
        service_spans.push(spans);
    }
    let mut externals = Vec::new();
    let mut external_spans = Vec::new();
    for (index, entry) in raw.externals.iter().enumerate() {
        let (external, spans) = external(&entry.raw, entry.span.clone(), index, ctx, c);
        externals.push(external);
        external_spans.push(spans);
    }

    let names = unique_names(&services, &service_spans, &externals, &external_spans, c);
    let listen_span = raw
        .russell
        .as_ref()
        .and_then(|r| r.listen.as_ref())
        .map(Spanned::span);
    unique_ports(
        &services,
        &service_spans,
        &externals,
        &external_spans,
        (&russell, listen_span),
        c,
    );
    for (service, spans) in services.iter_mut().zip(&service_spans) {
        service.dependencies = resolve_dependencies(service, spans, &names, c);
    }
    find_cycles(&services, &service_spans, c);

    c.errors.is_empty().then_some(Config {
        source: ctx.source.clone(),
        russell,
        logs,
        services,
        externals,
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
    /// Port an external probes on this machine, with the place it is written.
    probe_port: Option<(u16, Range<usize>)>,
}

impl Spans {
    fn subject(&self) -> Subject {
        self.subject.clone().unwrap_or(Subject::File)
    }
}

fn russell(raw: Option<&RawRussell>, ctx: &Context<'_>, c: &mut Collector<'_>) -> RussellSettings {
    let empty = RawRussell::default();
    let raw = raw.unwrap_or(&empty);
    let default_listen = SocketAddr::from(([127, 0, 0, 1], 9100));
    let listen = match &raw.listen {
        None => default_listen,
        Some(v) => match v.get_ref().trim().parse::<SocketAddr>() {
            Ok(addr) if addr.port() != 0 => addr,
            Ok(_) => {
                c.push(
                    Some(v.span()),
                    &Subject::File,
                    "russell.listen",
                    "listen port 0 would pick a random port that clients cannot find",
                    "use a fixed port, e.g. listen = \"127.0.0.1:9100\"",
                );
                default_listen
            }
            Err(_) => {
                c.push(
                    Some(v.span()),
                    &Subject::File,
                    "russell.listen",
                    format!("'{}' is not an IP address with a port", v.get_ref()),
                    "write it like listen = \"127.0.0.1:9100\" (an IP address, not a host name)",
                );
                default_listen
            }
        },
    };
    RussellSettings {
        listen,
        state_dir: raw.state_dir.as_ref().map_or_else(
            || ctx.dir.join(".russell"),
            |v| resolve_path(&ctx.dir, v.get_ref()),
        ),
        token_file: raw
            .token_file
            .as_ref()
            .map(|v| resolve_path(&ctx.dir, v.get_ref())),
        autostart: raw.autostart.as_ref().is_none_or(|v| *v.get_ref()),
    }
}

fn logs(raw: Option<&RawLogs>, c: &mut Collector<'_>) -> LogSettings {
    let empty = RawLogs::default();
    let raw = raw.unwrap_or(&empty);
    let default_size = 10 * 1024 * 1024;
    let max_file_size = match &raw.max_file_size {
        None => default_size,
        Some(v) => match parse_size(v.get_ref()) {
            Some(size) if size >= 1024 => size,
            _ => {
                c.push(
                    Some(v.span()),
                    &Subject::File,
                    "logs.max_file_size",
                    format!("'{}' is not a size of at least 1KiB", show(v.get_ref())),
                    "write a number of bytes or a size like \"512KiB\", \"10MiB\", \"1GiB\"",
                );
                default_size
            }
        },
    };
    let max_files = count(
        c,
        raw.max_files.as_ref(),
        5,
        (0, 1000),
        &Subject::File,
        "logs.max_files",
    );
    let tail_lines = count(
        c,
        raw.tail_lines.as_ref(),
        1000,
        (1, 1_000_000),
        &Subject::File,
        "logs.tail_lines",
    );
    LogSettings {
        dir: None,
        max_file_size,
        max_files,
        tail_lines: tail_lines as usize,
    }
}

fn show(v: &NumOrText) -> String {
    match v {
        NumOrText::Num(n) => n.to_string(),
        NumOrText::Text(t) => t.clone(),
    }
}

/// Bytes in a size like 1048576, "512KiB", "10MiB", "1GB".
fn parse_size(v: &NumOrText) -> Option<u64> {
    let text = match v {
        NumOrText::Num(n) => return u64::try_from(*n).ok(),
        NumOrText::Text(t) => t.trim(),
    };
    let split = text
        .find(|ch: char| !ch.is_ascii_digit())
        .unwrap_or(text.len());
    let number: u64 = text[..split].parse().ok()?;
    let factor: u64 = match text[split..].trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "kb" => 1000,
        "m" | "mib" => 1 << 20,
        "mb" => 1_000_000,
        "g" | "gib" => 1 << 30,
        "gb" => 1_000_000_000,
        _ => return None,
    };
    number.checked_mul(factor)
}

/// Keys that identify one service and so cannot come from `[defaults]`.
fn check_defaults(d: &RawService, c: &mut Collector<'_>) {
    let identity: [(&str, Option<Range<usize>>); 6] = [
        ("name", d.name.as_ref().map(Spanned::span)),
        ("short_name", d.short_name.as_ref().map(Spanned::span)),
        ("command", d.command.as_ref().map(Spanned::span)),
        ("grpc_port", d.grpc_port.as_ref().map(Spanned::span)),
        ("http_port", d.http_port.as_ref().map(Spanned::span)),
        ("dependencies", d.dependencies.as_ref().map(Spanned::span)),
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

/// Own value, else the `[defaults]` one.
fn pick<'a, T>(
    own: &'a Option<Spanned<T>>,
    default: &'a Option<Spanned<T>>,
) -> Option<&'a Spanned<T>> {
    own.as_ref().or(default.as_ref())
}

fn service(
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
    let s = &subject;
    let grpc_port = port(c, raw.grpc_port.as_ref(), s, "grpc_port");
    let http_port = port(c, raw.http_port.as_ref(), s, "http_port");
    if let (Some(g), Some(h), Some(span)) = (grpc_port, http_port, &raw.http_port)
        && g == h
    {
        c.push(
            Some(span.span()),
            s,
            "http_port",
            format!("grpc_port and http_port are both {g}"),
            "a port can serve one protocol: give http_port another number",
        );
    }
    let command = match &raw.command {
        None => {
            c.push_missing(
                Some(entry.clone()),
                s,
                "command",
                "no command: mdw does not know how to start this service",
                "add e.g. command = [\"./bin/server\", \"--port\", \"8080\"] (or make it an \
                 [[externals]] entry if mdw should only check it)",
            );
            Vec::new()
        }
        Some(cmd) => command(cmd, ctx, c, s, "command"),
    };
    let working_dir = pick(&raw.working_dir, &d.working_dir)
        .map_or_else(|| ctx.dir.clone(), |v| resolve_path(&ctx.dir, v.get_ref()));
    let mut env = BTreeMap::new();
    for table in [&d.env, &raw.env].into_iter().flatten() {
        for (key, value) in table.get_ref() {
            if key.is_empty() || key.contains('=') || key.contains('\0') {
                c.push(
                    Some(value.span()),
                    s,
                    format!("env.{key}"),
                    format!("'{key}' is not a valid environment variable name"),
                    "use a name without '=', like RUST_LOG",
                );
            } else {
                env.insert(key.clone(), value.get_ref().clone());
            }
        }
    }
    let max_retries = match pick(&raw.max_retries, &d.max_retries) {
        None => 3,
        Some(v) => match u32::try_from(*v.get_ref()) {
            Ok(n) if i64::from(n) <= MAX_RETRIES_LIMIT => n,
            _ => {
                c.push(
                    Some(v.span()),
                    s,
                    "max_retries",
                    format!("max_retries {} is out of range", v.get_ref()),
                    format!("use 0 (never restart) up to {MAX_RETRIES_LIMIT}; the default is 3"),
                );
                3
            }
        },
    };
    let restart_backoff = duration(
        c,
        pick(&raw.restart_backoff, &d.restart_backoff),
        1,
        s,
        "restart_backoff",
        true,
    );
    let restart_backoff_max = duration(
        c,
        pick(&raw.restart_backoff_max, &d.restart_backoff_max),
        30,
        s,
        "restart_backoff_max",
        true,
    );
    if restart_backoff_max < restart_backoff
        && let Some(v) = pick(&raw.restart_backoff_max, &d.restart_backoff_max)
            .or(pick(&raw.restart_backoff, &d.restart_backoff))
    {
        c.push(
            Some(v.span()),
            s,
            "restart_backoff_max",
            format!(
                "restart_backoff_max {} is below restart_backoff {}",
                humantime::format_duration(restart_backoff_max),
                humantime::format_duration(restart_backoff)
            ),
            "the cap must be at least the first delay",
        );
    }
    let health_check = service_check(raw, d, grpc_port, http_port, entry.clone(), ctx, c, s);
    let service = Service {
        description: pick(&raw.description, &d.description)
            .map(|v| v.get_ref().clone())
            .unwrap_or_default(),
        grpc_port,
        http_port,
        command,
        working_dir,
        env,
        env_file: pick(&raw.env_file, &d.env_file).map(|v| resolve_path(&ctx.dir, v.get_ref())),
        dependencies: Vec::new(),
        start_order: pick(&raw.start_order, &d.start_order).map_or(0, |v| *v.get_ref()),
        max_retries,
        stop_signal: stop_signal(pick(&raw.stop_signal, &d.stop_signal), c, s),
        stop_timeout: duration(
            c,
            pick(&raw.stop_timeout, &d.stop_timeout),
            10,
            s,
            "stop_timeout",
            true,
        ),
        on_port_conflict: port_policy(pick(&raw.on_port_conflict, &d.on_port_conflict), c, s),
        restart_backoff,
        restart_backoff_max,
        restart_reset_after: duration(
            c,
            pick(&raw.restart_reset_after, &d.restart_reset_after),
            60,
            s,
            "restart_reset_after",
            false,
        ),
        restart_dependents: pick(&raw.restart_dependents, &d.restart_dependents)
            .is_some_and(|v| *v.get_ref()),
        version: pick(&raw.version, &d.version)
            .map(|v| v.get_ref().clone())
            .unwrap_or_default(),
        enabled: pick(&raw.enabled, &d.enabled).is_none_or(|v| *v.get_ref()),
        health_check,
        name,
        short_name,
    };
    let spans = Spans {
        subject: Some(subject),
        entry,
        name: raw.name.as_ref().map(Spanned::span),
        short_name: raw.short_name.as_ref().map(Spanned::span),
        grpc_port: raw.grpc_port.as_ref().map(Spanned::span),
        http_port: raw.http_port.as_ref().map(Spanned::span),
        dependencies: raw
            .dependencies
            .as_ref()
            .map(|v| v.get_ref().clone())
            .unwrap_or_default(),
        probe_port: None,
    };
    (service, spans)
}

/// Checks name and short_name; returns (name, short_name, subject for messages).
fn identity(
    name: Option<&Spanned<String>>,
    short_name: Option<&Spanned<String>>,
    entry: Range<usize>,
    index: usize,
    external: bool,
    c: &mut Collector<'_>,
) -> (String, String, Subject) {
    let kind = if external { "externals" } else { "services" };
    let label = |text: String| {
        if external {
            Subject::External(text)
        } else {
            Subject::Service(text)
        }
    };
    let name_span = name.map(Spanned::span);
    let display = name
        .map(|n| n.get_ref().trim().to_owned())
        .filter(|n| !n.is_empty());
    let given_short = short_name.map(|v| v.get_ref().clone());
    let subject = label(
        given_short
            .clone()
            .filter(|s| !s.trim().is_empty())
            .or_else(|| display.as_ref().map(|n| n.to_lowercase()))
            .unwrap_or_else(|| format!("#{}", index + 1)),
    );
    let name = match display {
        Some(name) => name,
        None => {
            c.push_missing(
                Some(name_span.clone().unwrap_or(entry.clone())),
                &subject,
                "name",
                format!("entry #{} of [[{kind}]] has no name", index + 1),
                "add name = \"Kant\" (shown in status and logs)",
            );
            String::new()
        }
    };
    let short = match short_name {
        Some(v) => {
            if !valid_short_name(v.get_ref()) {
                c.push(
                    Some(v.span()),
                    &subject,
                    "short_name",
                    format!(
                        "short_name '{}' is not usable as an identifier",
                        v.get_ref()
                    ),
                    format!(
                        "use 1 to 64 of a-z, 0-9, '_' and '-', starting with a letter or digit \
                         (it becomes a file name), e.g. short_name = \"{}\"",
                        suggest_short_name(v.get_ref())
                    ),
                );
            }
            v.get_ref().clone()
        }
        None => {
            let derived = name.to_lowercase();
            if !name.is_empty() && !valid_short_name(&derived) {
                c.push(
                    name_span.clone().or(Some(entry.clone())),
                    &subject,
                    "short_name",
                    format!(
                        "no short_name, and the name '{name}' does not make one ('{derived}' \
                         has characters outside a-z, 0-9, '_', '-')"
                    ),
                    format!("add short_name = \"{}\"", suggest_short_name(&name)),
                );
            }
            derived
        }
    };
    (name, short, subject)
}

/// `[a-z0-9_-]{1,64}`, not starting with `_` or `-`.
pub(crate) fn valid_short_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_' || ch == '-')
        && s.chars()
            .next()
            .is_some_and(|ch| ch.is_ascii_alphanumeric())
}

fn suggest_short_name(s: &str) -> String {
    let mut out = String::new();
    for ch in s.to_lowercase().chars() {
        if ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_' {
            out.push(ch);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let out: String = out.trim_matches('-').chars().take(64).collect();
    if out.is_empty() {
        "my-service".to_owned()
    } else {
        out
    }
}

fn port(c: &mut Collector<'_>, v: Option<&Spanned<i64>>, s: &Subject, field: &str) -> Option<u16> {
    let v = v?;
    match u16::try_from(*v.get_ref()) {
        Ok(p) if p > 0 => Some(p),
        Ok(_) => {
            c.push(
                Some(v.span()),
                s,
                field,
                "port 0 is not a fixed port, so mdw cannot check or probe it",
                "choose a port between 1 and 65535",
            );
            None
        }
        Err(_) => {
            c.push(
                Some(v.span()),
                s,
                field,
                format!("port {} is out of range", v.get_ref()),
                "choose a port between 1 and 65535",
            );
            None
        }
    }
}

/// A whole number in `range` (inclusive), else an error and `default`.
fn count(
    c: &mut Collector<'_>,
    v: Option<&Spanned<i64>>,
    default: u32,
    range: (u32, u32),
    s: &Subject,
    field: &str,
) -> u32 {
    let Some(v) = v else { return default };
    match u32::try_from(*v.get_ref()) {
        Ok(n) if (range.0..=range.1).contains(&n) => n,
        _ => {
            c.push(
                Some(v.span()),
                s,
                field,
                format!("{} is out of range", v.get_ref()),
                format!("use {} to {} (default {default})", range.0, range.1),
            );
            default
        }
    }
}

/// A duration like "500ms"; zero only when `zero_ok`. `default` is in seconds.
fn duration(
    c: &mut Collector<'_>,
    v: Option<&Spanned<String>>,
    default: u64,
    s: &Subject,
    field: &str,
    zero_ok: bool,
) -> Duration {
    let default = Duration::from_secs(default);
    let Some(v) = v else { return default };
    match humantime::parse_duration(v.get_ref().trim()) {
        Ok(d) if d.is_zero() && !zero_ok => {
            c.push(
                Some(v.span()),
                s,
                field,
                format!(
                    "{} must be above zero",
                    field.rsplit('.').next().unwrap_or(field)
                ),
                format!(
                    "write e.g. {}",
                    example(field.rsplit('.').next().unwrap_or(field)).unwrap_or("\"10s\"")
                ),
            );
            default
        }
        Ok(d) => d,
        Err(_) => {
            c.push(
                Some(v.span()),
                s,
                field,
                format!("'{}' is not a duration", v.get_ref()),
                "write a number with a unit, e.g. \"500ms\", \"10s\", \"2m\"",
            );
            default
        }
    }
}

fn stop_signal(v: Option<&Spanned<NumOrText>>, c: &mut Collector<'_>, s: &Subject) -> StopSignal {
    let default = StopSignal {
        number: 15,
        name: "SIGTERM",
    };
    let Some(v) = v else { return default };
    let found = match v.get_ref() {
        NumOrText::Num(n) => SIGNALS.iter().find(|(num, _)| i64::from(*num) == *n),
        NumOrText::Text(t) => {
            let upper = t.trim().to_ascii_uppercase();
            let full = if upper.starts_with("SIG") {
                upper
            } else {
                format!("SIG{upper}")
            };
            SIGNALS
                .iter()
                .find(|(num, name)| *name == full || upper_is_number(t, *num))
        }
    };
    match found {
        Some((number, name)) => StopSignal {
            number: *number,
            name,
        },
        None => {
            c.push(
                Some(v.span()),
                s,
                "stop_signal",
                format!("unknown stop signal '{}'", show(v.get_ref())),
                format!(
                    "use one of {} (with or without SIG, or its number)",
                    SIGNALS
                        .iter()
                        .map(|(_, n)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            default
        }
    }
}

fn upper_is_number(text: &str, number: i32) -> bool {
    text.trim().parse::<i32>() == Ok(number)
}

fn port_policy(
    v: Option<&Spanned<String>>,
    c: &mut Collector<'_>,
    s: &Subject,
) -> PortConflictPolicy {
    let Some(v) = v else {
        return PortConflictPolicy::Adopt;
    };
    match v.get_ref().trim().to_ascii_lowercase().as_str() {
        "adopt" => PortConflictPolicy::Adopt,
        "kill" => PortConflictPolicy::Kill,
        "fail" => PortConflictPolicy::Fail,
        other => {
            let hint = closest(other, &["adopt", "kill", "fail"])
                .map(|b| format!("did you mean '{b}'? "))
                .unwrap_or_default();
            c.push(
                Some(v.span()),
                s,
                "on_port_conflict",
                format!("unknown on_port_conflict '{}'", v.get_ref()),
                format!("{hint}use \"adopt\" (default), \"kill\" or \"fail\""),
            );
            PortConflictPolicy::Adopt
        }
    }
}

/// Resolves `{mdw}` and a relative program path; reports an empty command.
fn command(
    cmd: &Spanned<Vec<Spanned<String>>>,
    ctx: &Context<'_>,
    c: &mut Collector<'_>,
    s: &Subject,
    field: &str,
) -> Vec<String> {
    let parts = cmd.get_ref();
    if parts.first().is_none_or(|p| p.get_ref().trim().is_empty()) {
        c.push(
            Some(cmd.span()),
            s,
            field,
            "the command is empty",
            "name a program and its arguments, e.g. command = [\"./bin/server\", \"--port\", \"8080\"]",
        );
        return Vec::new();
    }
    let mut out = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let text = part.get_ref();
        if text == MDW_PLACEHOLDER {
            out.push(ctx.mdw_exe.to_string_lossy().into_owned());
        } else if text.contains(MDW_PLACEHOLDER) {
            c.push(
                Some(part.span()),
                s,
                field,
                format!("'{text}' contains {MDW_PLACEHOLDER} inside a longer string"),
                format!(
                    "give {MDW_PLACEHOLDER} as an element of its own, e.g. [\"{MDW_PLACEHOLDER}\", \"demo\"]"
                ),
            );
            out.push(text.clone());
        } else if i == 0 && text.contains('/') {
            out.push(resolve_path(&ctx.dir, text).to_string_lossy().into_owned());
        } else {
            out.push(text.clone());
        }
    }
    out
}

/// `path` made absolute against `dir`, with `.` components dropped.
pub(crate) fn resolve_path(dir: &Path, path: &str) -> PathBuf {
    let joined = dir.join(path);
    joined.components().collect()
}

#[allow(clippy::too_many_arguments)]
fn service_check(
    raw: &RawService,
    d: &RawService,
    grpc_port: Option<u16>,
    http_port: Option<u16>,
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
    let check_port = port(c, pick(&own_check.port, &def.port), s, "health_check.port");
    let kind_name = kind.get_ref().trim().to_ascii_lowercase();
    check.probe = match kind_name.as_str() {
        "grpc" => match check_port.or(grpc_port) {
            Some(p) => Probe::Grpc {
                addr: format!("127.0.0.1:{p}"),
                service: pick(&own_check.service, &def.service)
                    .map(|v| v.get_ref().clone())
                    .unwrap_or_default(),
            },
            None => {
                c.push(
                    Some(kind.span()),
                    s,
                    "health_check.type",
                    "a grpc check needs a grpc_port, and this service has none",
                    "set grpc_port = … on the service, or choose another check type",
                );
                Probe::None
            }
        },
        "http" => {
            let endpoint = pick(&own_check.endpoint, &def.endpoint);
            let path = match endpoint {
                None => {
                    c.push_missing(
                        Some(place.clone()),
                        s,
                        "health_check.endpoint",
                        "an http check needs an endpoint",
                        "add endpoint = \"/health\" (the path mdw GETs on http_port)",
                    );
                    None
                }
                Some(e) if !e.get_ref().starts_with('/') => {
                    c.push(
                        Some(e.span()),
                        s,
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
            };
            let p = check_port.or(http_port);
            if p.is_none() {
                c.push(
                    Some(kind.span()),
                    s,
                    "health_check.type",
                    "an http check needs an http_port, and this service has none",
                    "set http_port = … on the service, or choose another check type",
                );
            }
            match (p, path) {
                (Some(p), Some(path)) => Probe::Http {
                    url: format!("http://127.0.0.1:{p}{path}"),
                    expect_body: pick(&own_check.expect_body, &def.expect_body)
                        .map(|v| v.get_ref().clone()),
                },
                _ => Probe::None,
            }
        }
        "tcp" => match check_port.or(grpc_port).or(http_port) {
            Some(p) => Probe::Tcp {
                addr: format!("127.0.0.1:{p}"),
            },
            None => {
                c.push(
                    Some(kind.span()),
                    s,
                    "health_check.type",
                    "a tcp check needs a port, and this service has none",
                    "set port = … in the health_check, or grpc_port/http_port on the service",
                );
                Probe::None
            }
        },
        "exec" => exec_probe(pick(&own_check.command, &def.command), place, ctx, c, s),
        "none" => Probe::None,
        _ => {
            unknown_type(kind, c, s);
            Probe::None
        }
    };
    check
}

fn exec_probe(
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

fn unknown_type(kind: &Spanned<String>, c: &mut Collector<'_>, s: &Subject) {
    let hint = closest(kind.get_ref(), CHECK_TYPES)
        .map(|b| format!("did you mean '{b}'? "))
        .unwrap_or_default();
    c.push(
        Some(kind.span()),
        s,
        "health_check.type",
        format!("unknown health-check type '{}'", kind.get_ref()),
        format!("{hint}use one of {}", CHECK_TYPES.join(", ")),
    );
}

/// The timing keys of a check, merged.
struct Timing<'a> {
    interval: Option<&'a Spanned<String>>,
    timeout: Option<&'a Spanned<String>>,
    failure_threshold: Option<&'a Spanned<i64>>,
    success_threshold: Option<&'a Spanned<i64>>,
    start_timeout: Option<&'a Spanned<String>>,
}

impl Timing<'_> {
    fn check(&self, c: &mut Collector<'_>, s: &Subject) -> HealthCheck {
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

fn external(
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
    let s = &subject;
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
    let mut check = timing.check(c, s);
    let place = own.map_or(entry.clone(), Spanned::span);
    let mut probe_port = None;
    match &ch.kind {
        None if own.is_some() => c.push_missing(
            Some(place.clone()),
            s,
            "health_check.type",
            "the health check has no type",
            "add type = \"http\" (with url), \"tcp\" or \"grpc\" (with address), \"exec\" \
             (with command) or \"none\"",
        ),
        None => {}
        Some(kind) => {
            check.probe = match kind.get_ref().trim().to_ascii_lowercase().as_str() {
                "http" => match &ch.url {
                    None => {
                        c.push_missing(
                            Some(place.clone()),
                            s,
                            "health_check.url",
                            "an http check of an external needs a url",
                            "add url = \"http://127.0.0.1:11434/api/version\"",
                        );
                        Probe::None
                    }
                    Some(url) => match http_url_port(url.get_ref()) {
                        Some((host, port)) => {
                            if is_local(&host) {
                                probe_port = Some((port, url.span()));
                            }
                            Probe::Http {
                                url: url.get_ref().trim().to_owned(),
                                expect_body: ch.expect_body.as_ref().map(|v| v.get_ref().clone()),
                            }
                        }
                        None => {
                            c.push(
                                Some(url.span()),
                                s,
                                "health_check.url",
                                format!("'{}' is not an http:// URL with a host", url.get_ref()),
                                "write it like url = \"http://127.0.0.1:11434/api/version\" \
                                 (https is not supported: use a tcp check on host:443)",
                            );
                            Probe::None
                        }
                    },
                },
                k @ ("tcp" | "grpc") => match &ch.address {
                    None => {
                        c.push_missing(
                            Some(place.clone()),
                            s,
                            "health_check.address",
                            format!("a {k} check of an external needs an address"),
                            "add address = \"127.0.0.1:5432\" (host:port)",
                        );
                        Probe::None
                    }
                    Some(addr) => match host_port(addr.get_ref().trim()) {
                        Some((host, port)) => {
                            if is_local(&host) {
                                probe_port = Some((port, addr.span()));
                            }
                            let addr = addr.get_ref().trim().to_owned();
                            if k == "tcp" {
                                Probe::Tcp { addr }
                            } else {
                                Probe::Grpc {
                                    addr,
                                    service: ch
                                        .service
                                        .as_ref()
                                        .map(|v| v.get_ref().clone())
                                        .unwrap_or_default(),
                                }
                            }
                        }
                        None => {
                            c.push(
                                Some(addr.span()),
                                s,
                                "health_check.address",
                                format!("'{}' is not host:port", addr.get_ref()),
                                "write it like address = \"127.0.0.1:5432\" (port 1 to 65535)",
                            );
                            Probe::None
                        }
                    },
                },
                "exec" => exec_probe(ch.command.as_ref(), place.clone(), ctx, c, s),
                "none" => Probe::None,
                _ => {
                    unknown_type(kind, c, s);
                    Probe::None
                }
            };
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
        subject: Some(subject),
        entry,
        name: raw.name.as_ref().map(Spanned::span),
        short_name: raw.short_name.as_ref().map(Spanned::span),
        probe_port,
        ..Spans::default()
    };
    (external, spans)
}

/// Host and port of an `http://host[:port][/path]` URL.
fn http_url_port(url: &str) -> Option<(String, u16)> {
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
fn host_port(text: &str) -> Option<(String, u16)> {
    let (host, port) = text.rsplit_once(':')?;
    let port: u16 = port.parse().ok().filter(|p| *p > 0)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.contains(char::is_whitespace) {
        return None;
    }
    Some((host.to_owned(), port))
}

fn is_local(host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "::1" | "0.0.0.0" | "::")
}

/// Every lowercase name and short_name → short_name of its owner; reports duplicates.
fn unique_names(
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

/// A port may be configured by one service only; externals probing this machine count too.
fn unique_ports(
    services: &[Service],
    service_spans: &[Spans],
    externals: &[External],
    external_spans: &[Spans],
    (russell, listen_span): (&RussellSettings, Option<Range<usize>>),
    c: &mut Collector<'_>,
) {
    // port → (who, field, line, place, subject) of its first user.
    type Owner = (String, String, usize, Range<usize>, Subject);
    let mut owners: HashMap<u16, Owner> = HashMap::new();
    let mut claim = |port: u16,
                     who: String,
                     field: &str,
                     span: Range<usize>,
                     subject: Subject,
                     c: &mut Collector<'_>| {
        let line = c.line_col(span.start).0;
        if let Some((owner, owner_field, owner_line, _, _)) = owners.get(&port) {
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
        } else {
            owners.insert(port, (who, field.to_owned(), line, span, subject));
        }
    };
    for (service, spans) in services.iter().zip(service_spans) {
        for (port, field, span) in [
            (service.grpc_port, "grpc_port", &spans.grpc_port),
            (service.http_port, "http_port", &spans.http_port),
        ] {
            if let (Some(port), Some(span)) = (port, span)
                && !(field == "http_port" && service.grpc_port == Some(port))
            {
                claim(
                    port,
                    format!("service '{}'", service.short_name),
                    field,
                    span.clone(),
                    spans.subject(),
                    c,
                );
            }
        }
    }
    let mut probed: HashMap<u16, ()> = HashMap::new();
    for (external, spans) in externals.iter().zip(external_spans) {
        if let Some((port, span)) = &spans.probe_port {
            // Two externals may probe the same server (Ollama and a model on it).
            if probed.insert(*port, ()).is_none() {
                claim(
                    *port,
                    format!("external '{}'", external.short_name),
                    "health_check",
                    span.clone(),
                    spans.subject(),
                    c,
                );
            }
        }
    }
    let listen = russell.listen;
    let ip = listen.ip();
    if (ip.is_loopback() || ip.is_unspecified())
        && let Some((owner, field, line, span, subject)) = owners.get(&listen.port())
    {
        let (span, subject, field_name) = match listen_span {
            Some(listen) => (listen, Subject::File, "russell.listen".to_owned()),
            None => (span.clone(), subject.clone(), field.clone()),
        };
        c.push(
            Some(span),
            &subject,
            field_name,
            format!(
                "Russell listens on port {}, which {owner} also uses ({field}, line {line})",
                listen.port()
            ),
            "move the service to another port, or set another listen address under [russell]",
        );
    }
}

/// Resolves dependency names (name or short_name, any case) to short_names.
fn resolve_dependencies(
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

/// Reports each dependency cycle among services once, as `a → b → c → a`.
fn find_cycles(services: &[Service], spans: &[Spans], c: &mut Collector<'_>) {
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

fn report_cycle(cycle: &[usize], services: &[Service], spans: &[Spans], c: &mut Collector<'_>) {
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
