//! `mdw export`: one services file, three engines. Pure: a validated [`Config`] (plus the
//! options of the command line and the contents of env files the caller read) goes in;
//! files as text and warnings come out. Nothing here touches the file system.
//!
//! Each target keeps its whole mapping in one module ([`compose`], [`kubernetes`],
//! [`systemd`]): the function that maps one service also says, key by key, what the target
//! cannot reproduce (a [`Warning`]). A new key of the services file is added there, in
//! three places side by side. What the targets share (the `mdw probe` command line of a
//! check, image names, durations, names) is in `common`.

mod common;
pub mod compose;
pub mod kubernetes;
pub mod systemd;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

pub use common::{
    DEFAULT_IMAGE_TEMPLATE, DEFAULT_MDW_IN_IMAGE, ImageTemplate, duration, probe_args,
};
use russell_config::Config;

/// Where the export goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Compose,
    Kubernetes,
    Systemd,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Target::Compose => "compose",
            Target::Kubernetes => "kubernetes",
            Target::Systemd => "systemd",
        })
    }
}

/// What the command line adds to the services file.
#[derive(Debug, Clone)]
pub struct Options {
    /// Image names of services (Compose, Kubernetes).
    pub images: ImageTemplate,
    /// Where `mdw` lives inside the images (for probes and dependency gates).
    pub mdw_in_image: String,
    /// Kubernetes namespace (kustomization `namespace:`); `None` = the user's current one.
    pub namespace: Option<String>,
    /// systemd: user units (`systemctl --user`) instead of system units.
    pub systemd_user: bool,
    /// systemd: the mdw executable on the host (for probes and the Russell unit).
    pub mdw_on_host: PathBuf,
    /// The variables of each service's `env_file`, read by the caller (Kubernetes puts the
    /// names into the manifests; values only of entries that do not look secret). A file
    /// missing here is reported as a warning.
    pub env_files: BTreeMap<PathBuf, Result<Vec<(String, String)>, String>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            images: ImageTemplate::default(),
            mdw_in_image: DEFAULT_MDW_IN_IMAGE.to_string(),
            namespace: None,
            systemd_user: false,
            mdw_on_host: PathBuf::from("/usr/local/bin/mdw"),
            env_files: BTreeMap::new(),
        }
    }
}

/// One file of an export.
#[derive(Debug, Clone, PartialEq)]
pub struct OutFile {
    /// File name, no folder (e.g. `compose.yaml`, `mdw-kant.service`).
    pub name: String,
    pub text: String,
}

/// Something of the services file the target does not reproduce, for one service (or the
/// file as a whole when `service` is empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// "service" or "external".
    pub subject: &'static str,
    pub service: String,
    /// The key in the services file, e.g. `on_port_conflict`, `health_check.success_threshold`.
    pub key: String,
    /// What is lost and what to do about it.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.service.is_empty() {
            write!(f, "{}: {}", self.key, self.message)
        } else {
            write!(
                f,
                "{} '{}', {}: {}",
                self.subject, self.service, self.key, self.message
            )
        }
    }
}

/// The result of one export.
#[derive(Debug, Clone, PartialEq)]
pub struct Export {
    pub files: Vec<OutFile>,
    pub warnings: Vec<Warning>,
}

impl Export {
    /// Every file, as one text for standard output (YAML documents joined by `---`; unit
    /// files preceded by a `# <name>` line).
    pub fn to_stream(&self, target: Target) -> String {
        let mut out = String::new();
        for (i, file) in self.files.iter().enumerate() {
            match target {
                Target::Compose | Target::Kubernetes => {
                    if i > 0 {
                        out.push_str("---\n");
                    }
                    out.push_str(&format!("# {}\n", file.name));
                }
                Target::Systemd => {
                    if i > 0 {
                        out.push('\n');
                    }
                    out.push_str(&format!("# {}\n", file.name));
                }
            }
            out.push_str(&file.text);
        }
        out
    }
}

/// An export that cannot be made at all (as opposed to a [`Warning`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportError(pub String);

impl fmt::Display for ExportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ExportError {}

/// Exports `config` for `target`.
pub fn export(target: Target, config: &Config, options: &Options) -> Result<Export, ExportError> {
    match target {
        Target::Compose => compose::export(config, options),
        Target::Kubernetes => kubernetes::export(config, options),
        Target::Systemd => systemd::export(config, options),
    }
}
