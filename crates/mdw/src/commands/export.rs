//! `mdw export compose|kubernetes|systemd`: the services file that `mdw up` runs, turned
//! into what another engine reads (crate mdw-export does the mapping). Warnings say what a
//! target does not reproduce; `--strict` makes them an error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use mdw_export::{DEFAULT_IMAGE_TEMPLATE, DEFAULT_MDW_IN_IMAGE, ImageTemplate, Options, Target};

use super::serve::DEFAULT_CONFIG;

/// Options of `mdw export`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub target: TargetArgs,
}

/// The engine to export for.
#[derive(Debug, clap::Subcommand)]
pub enum TargetArgs {
    /// A Compose file (docker compose, podman-compose).
    Compose {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        images: Images,
    },
    /// A folder of manifests for `kubectl apply -k`.
    Kubernetes {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        images: Images,
        /// Namespace for every object (also written as a Namespace object).
        #[arg(long)]
        namespace: Option<String>,
    },
    /// systemd units: one per service, mdw.target, and one for Russell itself.
    Systemd {
        #[command(flatten)]
        common: Common,
        /// User units (`systemctl --user`) instead of system units.
        #[arg(long)]
        user: bool,
        /// The mdw executable the units run (for probes and Russell; default: this mdw).
        #[arg(long)]
        mdw: Option<PathBuf>,
    },
}

/// Options every target has.
#[derive(Debug, clap::Args)]
pub struct Common {
    /// The services file.
    #[arg(long, default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// Folder to write the files into (created if missing), or - for standard output.
    #[arg(long, default_value = "-")]
    pub out: String,
    /// Fail (exit 1, nothing written) when the target cannot reproduce something.
    #[arg(long)]
    pub strict: bool,
}

/// Image options of the container targets.
#[derive(Debug, clap::Args)]
pub struct Images {
    /// Image name template: {short_name}, {name}, {version} (`latest` when none is set).
    #[arg(long, default_value = DEFAULT_IMAGE_TEMPLATE)]
    pub image_template: String,
    /// The image of one service, SHORT_NAME=IMAGE (repeatable); wins over the template.
    #[arg(long = "image", value_parser = short_eq_image)]
    pub image: Vec<(String, String)>,
    /// Where the images carry mdw, for `mdw probe` and `{mdw}` in commands.
    #[arg(long, default_value = DEFAULT_MDW_IN_IMAGE)]
    pub mdw_in_image: String,
}

fn short_eq_image(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((short, image)) if !short.is_empty() && !image.is_empty() => {
            Ok((short.to_string(), image.to_string()))
        }
        _ => Err("expected SHORT_NAME=IMAGE, e.g. kant=registry.example/kant:1.2".into()),
    }
}

/// Runs `mdw export …`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut options = Options::default();
    let (target, common, mdw_exe) = match args.target {
        TargetArgs::Compose { common, images } => {
            let exe = image_options(&mut options, images);
            (Target::Compose, common, exe)
        }
        TargetArgs::Kubernetes {
            common,
            images,
            namespace,
        } => {
            let exe = image_options(&mut options, images);
            options.namespace = namespace;
            (Target::Kubernetes, common, exe)
        }
        TargetArgs::Systemd { common, user, mdw } => {
            let exe = match mdw {
                Some(path) => std::path::absolute(&path)
                    .with_context(|| format!("--mdw {}", path.display()))?,
                None => {
                    std::env::current_exe().context("cannot find the running mdw executable")?
                }
            };
            options.systemd_user = user;
            options.mdw_on_host = exe.clone();
            (Target::Systemd, common, exe)
        }
    };
    let config = russell_config::load_with(&common.config, &mdw_exe).map_err(|errs| {
        anyhow::anyhow!(
            "{} has {} problem{}:\n{errs}",
            common.config.display(),
            errs.len(),
            if errs.len() == 1 { "" } else { "s" }
        )
    })?;
    options.env_files = read_env_files(&config);
    let export = mdw_export::export(target, &config, &options)?;
    for warning in &export.warnings {
        eprintln!("mdw export {target}: warning: {warning}");
    }
    let n = export.warnings.len();
    if n > 0 {
        eprintln!(
            "mdw export {target}: {n} thing{} of {} not reproduced (see docs/DEPLOY.md){}",
            if n == 1 { "" } else { "s" },
            common.config.display(),
            if common.strict {
                "; --strict: nothing written"
            } else {
                ""
            }
        );
        if common.strict {
            return Ok(ExitCode::FAILURE);
        }
    }
    if common.out == "-" {
        print!("{}", export.to_stream(target));
    } else {
        write_files(Path::new(&common.out), &export.files)?;
        eprintln!(
            "mdw export {target}: wrote {} file{} to {}",
            export.files.len(),
            if export.files.len() == 1 { "" } else { "s" },
            common.out
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Fills the image options; returns what `{mdw}` stands for inside the images.
fn image_options(options: &mut Options, images: Images) -> PathBuf {
    options.images = ImageTemplate {
        template: images.image_template,
        overrides: images.image.into_iter().collect(),
    };
    options.mdw_in_image = images.mdw_in_image;
    PathBuf::from(&options.mdw_in_image)
}

/// Each service's env_file as Russell would read it (the error as text when it cannot).
fn read_env_files(
    config: &russell_config::Config,
) -> BTreeMap<PathBuf, Result<Vec<(String, String)>, String>> {
    config
        .services
        .iter()
        .filter_map(|s| s.env_file.clone())
        .map(|path| {
            let vars = russell_core::process::env::read_env_file(&path).map_err(|e| {
                let mut text = e.to_string();
                if let Some(source) = std::error::Error::source(&e) {
                    text.push_str(&format!(": {source}"));
                }
                text
            });
            (path, vars)
        })
        .collect()
}

fn write_files(dir: &Path, files: &[mdw_export::OutFile]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the folder {}", dir.display()))?;
    for file in files {
        let path = dir.join(&file.name);
        std::fs::write(&path, &file.text)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
