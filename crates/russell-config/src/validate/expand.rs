//! `${NAME}`, `${NAME:-default}` and `$$` in the raw file, before any other check: in
//! `command`, `env` values, `working_dir` and the health check's `endpoint`, `url`,
//! `address` and `command`, of services, `[defaults]`, externals and mDW's
//! `[dependencies.<id>]`. Names resolve from Russell's environment first, then from the
//! service's `env_file` (read now, its own values expanded the same way). An unset name
//! without a default is an error at its place, naming the variable.

use std::path::Path;

use toml::Spanned;

use super::fields::resolve_path;
use crate::error::{Collector, Subject};
use crate::raw::{RawExternalCheck, RawFile, RawService};
use crate::vars::{VarError, expand, expand_env_file, parse_env_file};

type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Expands every variable of `raw` in place; `base` resolves relative env_file paths.
pub(crate) fn expand_vars(raw: &mut RawFile, base: &Path, c: &mut Collector<'_>) {
    let outer = |name: &str| std::env::var(name).ok();
    let default_env_file = raw.defaults.as_ref().and_then(|d| d.raw.env_file.clone());
    if let Some(d) = raw.defaults.as_mut() {
        service(&mut d.raw, &Subject::File, "defaults.", &outer, c);
    }
    for (i, entry) in raw.services.iter_mut().enumerate() {
        let s = &mut entry.raw;
        let subject = Subject::Service(label(s, i));
        let file_vars = s
            .env_file
            .clone()
            .or_else(|| default_env_file.clone())
            .map(|f| env_file_vars(&f, base, &subject, c))
            .unwrap_or_default();
        let lookup = |name: &str| {
            outer(name).or_else(|| {
                file_vars
                    .iter()
                    .rev()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            })
        };
        service(s, &subject, "", &lookup, c);
    }
    for (i, entry) in raw.externals.iter_mut().enumerate() {
        let e = &mut entry.raw;
        let name = e
            .short_name
            .as_ref()
            .or(e.name.as_ref())
            .map_or_else(|| format!("#{}", i + 1), |n| n.get_ref().to_lowercase());
        if let Some(check) = e.health_check.as_mut() {
            external_check(check.get_mut(), &Subject::External(name), &outer, c);
        }
    }
    for (id, dep) in &mut raw.dependencies {
        let subject = Subject::External(id.get_ref().clone());
        one(&mut dep.raw.url, &subject, "url", &outer, c);
    }
}

/// How an entry is named in messages before validation named it.
fn label(s: &RawService, index: usize) -> String {
    s.short_name
        .as_ref()
        .or(s.name.as_ref())
        .map_or_else(|| format!("#{}", index + 1), |n| n.get_ref().to_lowercase())
}

fn service(
    s: &mut RawService,
    subject: &Subject,
    prefix: &str,
    lookup: Lookup<'_>,
    c: &mut Collector<'_>,
) {
    list(
        &mut s.command,
        subject,
        &format!("{prefix}command"),
        lookup,
        c,
    );
    one(
        &mut s.working_dir,
        subject,
        &format!("{prefix}working_dir"),
        lookup,
        c,
    );
    if let Some(env) = s.env.as_mut() {
        for (key, value) in env.get_mut().iter_mut() {
            let field = format!("{prefix}env.{key}");
            text(value, subject, &field, lookup, c);
        }
    }
    if let Some(check) = s.health_check.as_mut() {
        let check = check.get_mut();
        let field = format!("{prefix}health_check.");
        one(
            &mut check.endpoint,
            subject,
            &format!("{field}endpoint"),
            lookup,
            c,
        );
        list(
            &mut check.command,
            subject,
            &format!("{field}command"),
            lookup,
            c,
        );
    }
}

fn external_check(
    check: &mut RawExternalCheck,
    subject: &Subject,
    lookup: Lookup<'_>,
    c: &mut Collector<'_>,
) {
    one(&mut check.url, subject, "health_check.url", lookup, c);
    one(
        &mut check.address,
        subject,
        "health_check.address",
        lookup,
        c,
    );
    list(
        &mut check.command,
        subject,
        "health_check.command",
        lookup,
        c,
    );
}

fn one(
    v: &mut Option<Spanned<String>>,
    subject: &Subject,
    field: &str,
    lookup: Lookup<'_>,
    c: &mut Collector<'_>,
) {
    if let Some(v) = v.as_mut() {
        text(v, subject, field, lookup, c);
    }
}

fn list(
    v: &mut Option<Spanned<Vec<Spanned<String>>>>,
    subject: &Subject,
    field: &str,
    lookup: Lookup<'_>,
    c: &mut Collector<'_>,
) {
    if let Some(v) = v.as_mut() {
        for part in v.get_mut() {
            text(part, subject, field, lookup, c);
        }
    }
}

fn text(
    v: &mut Spanned<String>,
    subject: &Subject,
    field: &str,
    lookup: Lookup<'_>,
    c: &mut Collector<'_>,
) {
    match expand(v.get_ref(), lookup) {
        Ok(done) => *v.get_mut() = done,
        Err(e) => c.push(Some(v.span()), subject, field, e.to_string(), hint(&e)),
    }
}

fn hint(e: &VarError) -> String {
    match e {
        VarError::Unset(name) => format!(
            "set {name} in Russell's environment or in the service's env_file, or give a \
             default: ${{{name}:-value}} (write $$ for a literal $)"
        ),
        VarError::Unclosed | VarError::BadName(_) => {
            "write ${NAME} or ${NAME:-default} with NAME of A-Z, 0-9 and _ (write $$ for a \
             literal $)"
                .to_string()
        }
    }
}

/// The service's env_file as variables (values expanded); a file that cannot be read is
/// left to the start (which reports it), a value that cannot be expanded is an error here.
fn env_file_vars(
    file: &Spanned<String>,
    base: &Path,
    subject: &Subject,
    c: &mut Collector<'_>,
) -> Vec<(String, String)> {
    let path = resolve_path(base, file.get_ref());
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Vec::new();
    };
    let Ok(entries) = parse_env_file(&text) else {
        return Vec::new();
    };
    match expand_env_file(entries, &|name| std::env::var(name).ok()) {
        Ok(vars) => vars,
        Err((key, e)) => {
            c.push(
                Some(file.span()),
                subject,
                "env_file",
                format!("{}: the value of {key}: {e}", path.display()),
                hint(&e),
            );
            Vec::new()
        }
    }
}
