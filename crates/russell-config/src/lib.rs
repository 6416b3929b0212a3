//! Typed mdw configuration: TOML loading, validation into [`Config`], start plan.
//! Pure: no I/O but reading the file (and `env_file` existence is not checked here).
//!
//! Loading runs in three steps, each collecting every problem it can find:
//! 1. the TOML is parsed into a spanned document (a syntax error stops here, with its place);
//! 2. `raw` reads it into a serde model that mirrors the file key for key, one key at a
//!    time, so each unknown key or wrongly typed value is reported (with a "did you mean");
//! 3. `validate` applies defaults, resolves paths, `{mdw}` and dependency names, and checks
//!    ports, names, health checks and the dependency graph.

mod error;
pub mod model;
mod plan;
mod raw;
mod ser;
mod validate;

use std::path::{Path, PathBuf};

pub use error::{ConfigError, ConfigErrors};
pub use model::*;
pub use validate::{MAX_RETRIES_LIMIT, MDW_PLACEHOLDER};

use error::{Collector, Subject};

/// Reads and validates the services file at `path`; `{mdw}` in commands becomes the running
/// executable.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    match std::env::current_exe() {
        Ok(exe) => load_with(path, &exe),
        Err(err) => {
            let mut c = Collector::new("", path.to_path_buf());
            c.push(
                None,
                &Subject::File,
                "",
                format!("cannot find the running mdw executable for {{mdw}}: {err}"),
                "run mdw from a normal file path",
            );
            Err(c.finish().err().unwrap_or(ConfigErrors(Vec::new())))
        }
    }
}

/// Like [`load`], with `{mdw}` standing for `mdw_exe`.
pub fn load_with(path: &Path, mdw_exe: &Path) -> Result<Config, ConfigErrors> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, path, mdw_exe),
        Err(err) => {
            let hint = match err.kind() {
                std::io::ErrorKind::NotFound => {
                    "check the path, or pass the services file as an argument"
                }
                std::io::ErrorKind::PermissionDenied => "make the file readable for this user",
                std::io::ErrorKind::InvalidData => "save the file as UTF-8 text",
                _ => "check that the path names a readable text file",
            };
            let mut c = Collector::new("", path.to_path_buf());
            c.push(
                None,
                &Subject::File,
                "",
                format!("cannot read the file: {err}"),
                hint,
            );
            Err(c.finish().err().unwrap_or(ConfigErrors(Vec::new())))
        }
    }
}

/// Parses and validates `text` as if read from `source` (relative paths in the file resolve
/// against `source`'s folder; messages name `source`). `{mdw}` stands for `mdw_exe`.
pub fn parse(text: &str, source: &Path, mdw_exe: &Path) -> Result<Config, ConfigErrors> {
    let mut c = Collector::new(text, source.to_path_buf());
    let doc = match toml::de::DeTable::parse(text) {
        Ok(doc) => doc,
        Err(err) => {
            c.push(
                err.span(),
                &Subject::File,
                "",
                format!("not valid TOML: {}", err.message().trim_end()),
                "fix the syntax at this place (see https://toml.io)",
            );
            return Err(c.finish().err().unwrap_or(ConfigErrors(Vec::new())));
        }
    };
    let raw = raw::read(&doc, &mut c);
    let source_abs = absolute(source);
    let dir = source_abs
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    let ctx = validate::Context {
        source: source_abs,
        dir,
        mdw_exe,
    };
    let config = validate::validate(&raw, &ctx, &mut c);
    c.finish()?;
    config.ok_or(ConfigErrors(Vec::new()))
}

/// `path` made absolute against the current directory, with `.` components dropped.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .components()
        .collect()
}
