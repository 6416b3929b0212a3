//! What follows a service's exit: `kind` (service or one-shot task), `restart` and
//! `success_exit_codes`, and what a task may not have (ports, a health check, a restart
//! that would run it forever).

use toml::Spanned;

use super::pick;
use crate::error::{Collector, Subject};
use crate::model::{RestartPolicy, ServiceKind};
use crate::raw::{RawService, closest};

/// The lifecycle keys of one entry.
pub(super) struct Lifecycle {
    pub kind: ServiceKind,
    pub restart: RestartPolicy,
    pub success_exit_codes: Vec<i32>,
}

/// `kind`, `restart` and `success_exit_codes` of an entry (`restart` and the codes may
/// come from `[defaults]`; `kind` may not).
pub(super) fn lifecycle(
    raw: &RawService,
    d: &RawService,
    c: &mut Collector<'_>,
    s: &Subject,
) -> Lifecycle {
    let kind = kind(raw.kind.as_ref(), c, s);
    let restart = restart(pick(&raw.restart, &d.restart), kind, c, s);
    let success_exit_codes =
        success_exit_codes(pick(&raw.success_exit_codes, &d.success_exit_codes), c, s);
    if kind == ServiceKind::Task {
        task_rules(raw, c, s);
    }
    Lifecycle {
        kind,
        restart,
        success_exit_codes,
    }
}

fn kind(v: Option<&Spanned<String>>, c: &mut Collector<'_>, s: &Subject) -> ServiceKind {
    let Some(v) = v else {
        return ServiceKind::Service;
    };
    match v.get_ref().trim().to_ascii_lowercase().as_str() {
        "service" => ServiceKind::Service,
        "task" | "oneshot" => ServiceKind::Task,
        other => {
            let hint = closest(other, &["service", "task"])
                .map(|b| format!("did you mean '{b}'? "))
                .unwrap_or_default();
            c.push(
                Some(v.span()),
                s,
                "kind",
                format!("unknown kind '{}'", v.get_ref()),
                format!(
                    "{hint}use \"service\" (default, runs until stopped) or \"task\" (runs once to completion)"
                ),
            );
            ServiceKind::Service
        }
    }
}

fn restart(
    v: Option<&Spanned<String>>,
    kind: ServiceKind,
    c: &mut Collector<'_>,
    s: &Subject,
) -> RestartPolicy {
    let default = match kind {
        ServiceKind::Service => RestartPolicy::Always,
        ServiceKind::Task => RestartPolicy::Never,
    };
    let Some(v) = v else { return default };
    let policy = match v.get_ref().trim().to_ascii_lowercase().as_str() {
        "always" => RestartPolicy::Always,
        "on-failure" | "on_failure" => RestartPolicy::OnFailure,
        "never" | "no" => RestartPolicy::Never,
        other => {
            let hint = closest(other, &["always", "on-failure", "never"])
                .map(|b| format!("did you mean '{b}'? "))
                .unwrap_or_default();
            c.push(
                Some(v.span()),
                s,
                "restart",
                format!("unknown restart policy '{}'", v.get_ref()),
                format!("{hint}use \"always\", \"on-failure\" or \"never\""),
            );
            return default;
        }
    };
    if kind == ServiceKind::Task && policy == RestartPolicy::Always {
        c.push(
            Some(v.span()),
            s,
            "restart",
            "restart = \"always\" would run this task forever",
            "use \"on-failure\" (retry a failed run within max_retries) or \"never\" (default \
             for a task), or make it kind = \"service\"",
        );
        return default;
    }
    policy
}

fn success_exit_codes(
    v: Option<&Spanned<Vec<Spanned<i64>>>>,
    c: &mut Collector<'_>,
    s: &Subject,
) -> Vec<i32> {
    let Some(v) = v else { return vec![0] };
    if v.get_ref().is_empty() {
        c.push(
            Some(v.span()),
            s,
            "success_exit_codes",
            "success_exit_codes is empty, so no exit could ever count as success",
            "list at least one code, e.g. success_exit_codes = [0]",
        );
        return vec![0];
    }
    let mut codes = Vec::new();
    for code in v.get_ref() {
        match u8::try_from(*code.get_ref()) {
            Ok(n) => codes.push(i32::from(n)),
            Err(_) => c.push(
                Some(code.span()),
                s,
                "success_exit_codes",
                format!("exit code {} is out of range", code.get_ref()),
                "an exit code is 0 to 255",
            ),
        }
    }
    codes
}

/// A task runs to completion: nothing listens, so it has no ports and no health check.
fn task_rules(raw: &RawService, c: &mut Collector<'_>, s: &Subject) {
    let spans = [
        ("grpc_port", raw.grpc_port.as_ref().map(Spanned::span)),
        ("http_port", raw.http_port.as_ref().map(Spanned::span)),
        ("health_check", raw.health_check.as_ref().map(Spanned::span)),
    ];
    for (key, span) in spans {
        if let Some(span) = span {
            c.push(
                Some(span),
                s,
                key,
                format!("a task has no {key}: it runs once to completion and serves nothing"),
                "remove it, or make the entry kind = \"service\"",
            );
        }
    }
}
