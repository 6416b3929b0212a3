//! `watch` and `watch_debounce` of a service, and what they resolve to: absolute paths or
//! glob patterns, checked here so that Russell's watcher never meets a bad pattern.

use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::fields::{duration, resolve_path};
use crate::error::{Collector, Subject};

/// The default quiet time after a change before the restart.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(500);

/// Each pattern resolved against `dir` (the file's paths base); a bad glob is reported.
pub(super) fn patterns(
    raw: Option<&Spanned<Vec<Spanned<String>>>>,
    dir: &Path,
    c: &mut Collector<'_>,
    s: &Subject,
) -> Vec<PathBuf> {
    let Some(list) = raw else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for p in list.get_ref() {
        let text = p.get_ref().trim();
        if text.is_empty() {
            c.push(
                Some(p.span()),
                s,
                "watch",
                "an empty watch pattern matches nothing",
                "write a path or a glob, e.g. watch = [\"bin/mdw\", \"configs/*.toml\"]",
            );
            continue;
        }
        let path = resolve_path(dir, text);
        match glob::Pattern::new(&path.to_string_lossy()) {
            Ok(_) => out.push(path),
            Err(e) => c.push(
                Some(p.span()),
                s,
                "watch",
                format!(
                    "'{text}' is not a valid glob: {} (at character {})",
                    e.msg, e.pos
                ),
                "use *, ?, [abc] and ** only; write [[] for a literal [",
            ),
        }
    }
    out
}

/// `watch_debounce`, default [`DEFAULT_DEBOUNCE`]; zero is allowed (restart at once).
pub(super) fn debounce(
    raw: Option<&Spanned<String>>,
    c: &mut Collector<'_>,
    s: &Subject,
) -> Duration {
    match raw {
        None => DEFAULT_DEBOUNCE,
        Some(v) => duration(c, Some(v), 0, s, "watch_debounce", true),
    }
}
