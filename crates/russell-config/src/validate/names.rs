//! What an entry is called: `name`, `short_name`, and the subject its messages name.

use std::ops::Range;

use toml::Spanned;

use crate::error::{Collector, Subject};

/// Checks name and short_name; returns (name, short_name, subject for messages).
pub(super) fn identity(
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
    let place = name_span.unwrap_or(entry);
    let short = short_name_of(short_name, &name, place, &subject, c);
    (name, short, subject)
}

/// The given short_name (checked), else the name lowercased (checked that it makes one).
/// `place` is where to point when the name does not.
fn short_name_of(
    short_name: Option<&Spanned<String>>,
    name: &str,
    place: Range<usize>,
    subject: &Subject,
    c: &mut Collector<'_>,
) -> String {
    if let Some(v) = short_name {
        if !valid_short_name(v.get_ref()) {
            c.push(
                Some(v.span()),
                subject,
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
        return v.get_ref().clone();
    }
    let derived = name.to_lowercase();
    if !name.is_empty() && !valid_short_name(&derived) {
        c.push(
            Some(place),
            subject,
            "short_name",
            format!(
                "no short_name, and the name '{name}' does not make one ('{derived}' has \
                 characters outside a-z, 0-9, '_', '-')"
            ),
            format!("add short_name = \"{}\"", suggest_short_name(name)),
        );
    }
    derived
}

/// `[a-z0-9_-]{1,64}`, not starting with `_` or `-`.
pub(super) fn valid_short_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_' || ch == '-')
        && s.chars()
            .next()
            .is_some_and(|ch| ch.is_ascii_alphanumeric())
}

pub(super) fn suggest_short_name(s: &str) -> String {
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
