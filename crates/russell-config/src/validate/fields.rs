//! Single values: ports, counts, durations, stop signals, the port-conflict policy,
//! commands and paths. Each reports a bad value at its place and returns the default.

use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::settings::show;
use super::{Context, MDW_PLACEHOLDER};
use crate::error::{Collector, Subject};
use crate::model::{PortConflictPolicy, StopSignal};
use crate::raw::{NumOrText, closest, example};

/// Signals a service may be stopped with (Linux numbers).
pub(super) const SIGNALS: &[(i32, &str)] = &[
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

pub(super) fn port(
    c: &mut Collector<'_>,
    v: Option<&Spanned<i64>>,
    s: &Subject,
    field: &str,
) -> Option<u16> {
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
pub(super) fn count(
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
pub(super) fn duration(
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

pub(super) fn stop_signal(
    v: Option<&Spanned<NumOrText>>,
    c: &mut Collector<'_>,
    s: &Subject,
) -> StopSignal {
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

pub(super) fn upper_is_number(text: &str, number: i32) -> bool {
    text.trim().parse::<i32>() == Ok(number)
}

pub(super) fn port_policy(
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
pub(super) fn command(
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
pub(super) fn resolve_path(dir: &Path, path: &str) -> PathBuf {
    let joined = dir.join(path);
    joined.components().collect()
}
