//! Reading the parsed document into the raw model, one table and one key at a time.

use std::ops::Range;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::hints::{Kind, closest, example, fields_of, misplaced_hint, type_message};
use super::{Located, RawExternal, RawExternalCheck, RawFile, RawService, RawServiceCheck};
use crate::error::{Collector, Subject};

const TOP_LEVEL: &[&str] = &[
    "russell",
    "logs",
    "defaults",
    "services",
    "externals",
    "orchestrator",
    "dependencies",
];

/// Reads a parsed document into the raw model, reporting unknown keys and wrongly typed
/// values (each one, with its place) into `c`.
pub(crate) fn read(doc: &Spanned<DeTable<'_>>, c: &mut Collector<'_>) -> RawFile {
    let mut file = RawFile::default();
    for (key, value) in doc.get_ref() {
        let name: &str = key.get_ref();
        match name {
            "russell" | "logs" | "defaults" | "orchestrator" | "dependencies" => {
                let Some(table) = value.get_ref().as_table() else {
                    c.push(
                        Some(key.span()),
                        &Subject::File,
                        name,
                        format!("'{name}' must be a table"),
                        format!("write it as a [{name}] section"),
                    );
                    continue;
                };
                read_table(&mut file, name, table, value.span(), c);
            }
            "services" | "externals" => read_entries(&mut file, key, value, c),
            _ => unknown_top_level(key, c),
        }
    }
    file
}

/// One top-level table.
fn read_table(
    file: &mut RawFile,
    name: &str,
    table: &DeTable<'_>,
    span: Range<usize>,
    c: &mut Collector<'_>,
) {
    let prefix = format!("{name}.");
    let s = &Subject::File;
    match name {
        "russell" => file.russell = Some(sift(table, span, c, s, &prefix, Kind::Other)),
        "logs" => file.logs = Some(sift(table, span, c, s, &prefix, Kind::Other)),
        "orchestrator" => {
            let raw = sift(table, span.clone(), c, s, &prefix, Kind::Other);
            file.orchestrator = Some(Located { span, raw });
        }
        "dependencies" => read_dependencies(file, table, span, c),
        _ => {
            let raw = sift_service(table, span.clone(), c, s, &prefix);
            file.defaults = Some(Located { span, raw });
        }
    }
}

/// `[dependencies]`: one `[dependencies.<id>]` table per external.
fn read_dependencies(
    file: &mut RawFile,
    table: &DeTable<'_>,
    span: Range<usize>,
    c: &mut Collector<'_>,
) {
    file.dependencies_table = Some(span);
    for (id, value) in table {
        let subject = Subject::External(id.get_ref().to_string());
        let Some(entry) = value.get_ref().as_table() else {
            c.push(
                Some(id.span()),
                &subject,
                "",
                format!("'dependencies.{}' must be a table", id.get_ref()),
                format!(
                    "write it as a [dependencies.{}] section with name, type, url and required",
                    id.get_ref()
                ),
            );
            continue;
        };
        let raw = sift(entry, value.span(), c, &subject, "", Kind::Other);
        let id = Spanned::new(id.span(), id.get_ref().to_string());
        let located = Located {
            span: value.span(),
            raw,
        };
        file.dependencies.push((id, located));
    }
}

/// `[[services]]` or `[[externals]]`: an array of tables.
fn read_entries(
    file: &mut RawFile,
    key: &Spanned<std::borrow::Cow<'_, str>>,
    value: &Spanned<DeValue<'_>>,
    c: &mut Collector<'_>,
) {
    let name: &str = key.get_ref();
    let Some(items) = value.get_ref().as_array() else {
        c.push(
            Some(key.span()),
            &Subject::File,
            name,
            format!("'{name}' must be an array of tables"),
            format!("start each entry with [[{name}]] (double brackets)"),
        );
        return;
    };
    for (index, item) in items.iter().enumerate() {
        let Some(table) = item.get_ref().as_table() else {
            c.push(
                Some(item.span()),
                &Subject::File,
                name,
                format!("entry #{} of '{name}' is not a table", index + 1),
                format!("start each entry with [[{name}]] (double brackets)"),
            );
            continue;
        };
        let label = entry_label(table, index);
        let span = item.span();
        if name == "services" {
            let raw = sift_service(table, span.clone(), c, &Subject::Service(label), "");
            file.services.push(Located { span, raw });
        } else {
            let raw = sift_external(table, span.clone(), c, &Subject::External(label));
            file.externals.push(Located { span, raw });
        }
    }
}

fn unknown_top_level(key: &Spanned<std::borrow::Cow<'_, str>>, c: &mut Collector<'_>) {
    let name: &str = key.get_ref();
    let hint = if fields_of::<RawService>().contains(&name) {
        format!(
            "'{name}' belongs to a service: put it after a [[services]] line, or under \
             [defaults] for every service"
        )
    } else {
        match closest(name, TOP_LEVEL) {
            Some(best) => format!("did you mean '{best}'?"),
            None => format!("top-level keys are: {}", TOP_LEVEL.join(", ")),
        }
    };
    c.push(
        Some(key.span()),
        &Subject::File,
        name,
        format!("unknown key '{name}'"),
        hint,
    );
}

/// What an entry is called in messages before it is validated: its short_name, else its
/// lowercased name, else its position.
pub(super) fn entry_label(table: &DeTable<'_>, index: usize) -> String {
    let text = |key: &str| {
        table
            .iter()
            .find(|(k, _)| k.get_ref() == key)
            .and_then(|(_, v)| v.get_ref().as_str().map(str::to_owned))
            .filter(|s| !s.trim().is_empty())
    };
    text("short_name")
        .or_else(|| text("name").map(|n| n.trim().to_lowercase()))
        .unwrap_or_else(|| format!("#{}", index + 1))
}

pub(super) fn sift_service(
    table: &DeTable<'_>,
    span: Range<usize>,
    c: &mut Collector<'_>,
    subject: &Subject,
    prefix: &str,
) -> RawService {
    let mut table = table.clone();
    for (key, value) in table.iter_mut() {
        if key.get_ref() == "health_check"
            && let Some(check) = value.get_ref().as_table()
        {
            let check_prefix = format!("{prefix}health_check.");
            let kept = filter::<RawServiceCheck>(
                check,
                value.span(),
                c,
                subject,
                &check_prefix,
                Kind::ServiceCheck,
            );
            *value = Spanned::new(value.span(), DeValue::Table(kept));
        }
    }
    sift(&table, span, c, subject, prefix, Kind::Service)
}

pub(super) fn sift_external(
    table: &DeTable<'_>,
    span: Range<usize>,
    c: &mut Collector<'_>,
    subject: &Subject,
) -> RawExternal {
    let mut table = table.clone();
    for (key, value) in table.iter_mut() {
        if key.get_ref() == "health_check"
            && let Some(check) = value.get_ref().as_table()
        {
            let kept = filter::<RawExternalCheck>(
                check,
                value.span(),
                c,
                subject,
                "health_check.",
                Kind::ExternalCheck,
            );
            *value = Spanned::new(value.span(), DeValue::Table(kept));
        }
    }
    sift(&table, span, c, subject, "", Kind::External)
}

/// Filters `table` down to the keys `T` knows with values of the right type (reporting the
/// rest), then deserializes it.
fn sift<T: DeserializeOwned + Default>(
    table: &DeTable<'_>,
    span: Range<usize>,
    c: &mut Collector<'_>,
    subject: &Subject,
    prefix: &str,
    kind: Kind,
) -> T {
    let kept = filter::<T>(table, span.clone(), c, subject, prefix, kind);
    match T::deserialize(ValueDeserializer::from(Spanned::new(
        span.clone(),
        DeValue::Table(kept),
    ))) {
        Ok(value) => value,
        Err(err) => {
            // Not expected: every key was tried on its own above.
            c.push(
                err.span().or(Some(span)),
                subject,
                prefix.trim_end_matches('.'),
                err.message().to_owned(),
                "fix this table",
            );
            T::default()
        }
    }
}

pub(super) fn filter<'i, T: DeserializeOwned>(
    table: &DeTable<'i>,
    span: Range<usize>,
    c: &mut Collector<'_>,
    subject: &Subject,
    prefix: &str,
    kind: Kind,
) -> DeTable<'i> {
    let fields = fields_of::<T>();
    let mut kept = DeTable::new();
    for (key, value) in table {
        let name: &str = key.get_ref();
        if !fields.contains(&name) {
            let hint = misplaced_hint(kind, name).unwrap_or_else(|| match closest(name, fields) {
                Some(best) => format!("did you mean '{best}'?"),
                None => format!("known keys here: {}", fields.join(", ")),
            });
            c.push(
                Some(key.span()),
                subject,
                format!("{prefix}{name}"),
                format!("unknown key '{name}'"),
                hint,
            );
            continue;
        }
        let mut one = DeTable::new();
        one.insert(key.clone(), value.clone());
        let trial = T::deserialize(ValueDeserializer::from(Spanned::new(
            span.clone(),
            DeValue::Table(one),
        )));
        match trial {
            Ok(_) => {
                kept.insert(key.clone(), value.clone());
            }
            Err(err) => c.push(
                err.span().or(Some(value.span())),
                subject,
                format!("{prefix}{name}"),
                type_message(err.message()),
                match example(name) {
                    Some(example) => format!("write it like {example}"),
                    None => "see the configuration reference in README.md".to_owned(),
                },
            ),
        }
    }
    kept
}
