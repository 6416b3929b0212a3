//! Typed mdw configuration: TOML loading, validation into [`Config`], start plan.
//! No I/O but reading the file and, for `${NAME}` variables, each service's `env_file`
//! (a missing env_file is not an error here: the start reports it).
//!
//! Loading runs in three steps, each collecting every problem it can find:
//! 1. the TOML is parsed into a spanned document (a syntax error stops here, with its place);
//! 2. `raw` reads it into a serde model that mirrors the file key for key, one key at a
//!    time, so each unknown key or wrongly typed value is reported (with a "did you mean");
//! 3. `validate` applies defaults, resolves paths, `{mdw}` and dependency names, and checks
//!    ports, names, health checks and the dependency graph.

mod diff;
mod error;
pub mod model;
mod plan;
mod raw;
mod ser;
mod validate;
pub mod vars;

use std::path::{Path, PathBuf};

pub use diff::{Action, Change, ConfigDiff, Effect, diff, external_keys, service_keys};
pub use error::{ConfigError, ConfigErrors};
pub use model::*;
pub use plan::{Dependency, DependencyGraph, GraphNode};
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

/// Parses and validates `text` as if read from `source` (messages name `source`). `{mdw}`
/// stands for `mdw_exe`. Relative paths in the file resolve against `source`'s folder, or,
/// in mDW's shape, against the current directory (see [`FileShape`]).
pub fn parse(text: &str, source: &Path, mdw_exe: &Path) -> Result<Config, ConfigErrors> {
    match std::env::current_dir() {
        Ok(cwd) => parse_in(text, source, mdw_exe, &cwd),
        Err(err) => {
            let mut c = Collector::new("", source.to_path_buf());
            c.push(
                None,
                &Subject::File,
                "",
                format!("cannot read the current directory: {err}"),
                "start mdw from a folder that exists and is readable",
            );
            Err(c.finish().err().unwrap_or(ConfigErrors(Vec::new())))
        }
    }
}

/// Like [`parse`], with `cwd` as the current directory (the base of relative paths in an
/// mDW-shaped file).
pub fn parse_in(
    text: &str,
    source: &Path,
    mdw_exe: &Path,
    cwd: &Path,
) -> Result<Config, ConfigErrors> {
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
    let mut raw = raw::read(&doc, &mut c);
    let source_abs = absolute(source);
    let file_dir = source_abs
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    let paths = if raw.is_mdw_shaped() {
        Paths {
            shape: FileShape::Mdw,
            base: absolute(cwd),
        }
    } else {
        Paths {
            shape: FileShape::Native,
            base: file_dir.clone(),
        }
    };
    validate::expand_vars(&mut raw, &paths.base, &mut c);
    let ctx = validate::Context {
        source: source_abs,
        dir: paths.base.clone(),
        file_dir,
        mdw_exe,
        binary_path: raw
            .orchestrator
            .as_ref()
            .and_then(|o| o.raw.binary_path.clone()),
    };
    let config = validate::validate(&raw, &ctx, paths, &mut c);
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
