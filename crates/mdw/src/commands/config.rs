//! `mdw config check [PATH] [--json]`: validates a services file and prints its start plan,
//! or every problem in it (exit 1).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use russell_config::{Config, ConfigErrors, FileShape, HealthCheck, Probe};
use serde_json::{Value, json};

/// Options of `mdw config`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: ConfigCommand,
}

/// What to do with a services file.
#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Validate a services file and print its start plan (exit 1 and every problem if invalid).
    Check(CheckArgs),
}

/// Options of `mdw config check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The services file.
    #[arg(default_value = "configs/services.toml")]
    pub path: PathBuf,
    /// Print one JSON document (valid or not) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `mdw config …`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        ConfigCommand::Check(check) => run_check(&check),
    }
}

fn run_check(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let result = russell_config::load(&args.path);
    let valid = result.is_ok();
    let output = match (&result, args.json) {
        (Ok(config), true) => serde_json::to_string_pretty(&config_json(config)?)?,
        (Err(errors), true) => serde_json::to_string_pretty(&json!({
            "valid": false,
            "file": args.path,
            "errors": errors,
        }))?,
        (Ok(config), false) => super::secrets::mask_text(
            &plan_text(&args.path, config),
            &super::secrets::secret_values(config),
        ),
        (Err(errors), false) => {
            eprintln!("{}", errors_text(&args.path, errors));
            return Ok(ExitCode::FAILURE);
        }
    };
    println!("{output}");
    Ok(if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn errors_text(path: &Path, errors: &ConfigErrors) -> String {
    let n = errors.len();
    format!(
        "{errors}\n{}: {n} problem{} found; nothing was started",
        path.display(),
        if n == 1 { "" } else { "s" }
    )
}

fn secs(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// "http http://127.0.0.1:8080/health every 2s (timeout 1s)".
fn check_text(check: &HealthCheck) -> String {
    let what = match &check.probe {
        Probe::None => return "none (healthy while the process runs)".to_owned(),
        Probe::Grpc { addr, service } if service.is_empty() => format!("grpc {addr}"),
        Probe::Grpc { addr, service } => format!("grpc {addr} service {service:?}"),
        Probe::Http {
            url,
            expect_body: None,
        } => format!("http {url}"),
        Probe::Http {
            url,
            expect_body: Some(body),
        } => format!("http {url} (body contains {body:?})"),
        Probe::Tcp { addr } => format!("tcp {addr}"),
        Probe::Exec { command } => format!("exec {}", command.join(" ")),
        Probe::Ollama { url, models } => format!("ollama {url} lists {}", models.join(", ")),
    };
    format!(
        "{what} every {} (timeout {})",
        secs(check.interval),
        secs(check.timeout)
    )
}

fn plan_text(path: &Path, config: &Config) -> String {
    use std::fmt::Write as _;
    let plan = config.plan();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: valid — {} services, {} externals, {} start level{}",
        path.display(),
        config.services.len(),
        config.externals.len(),
        plan.levels.len(),
        if plan.levels.len() == 1 { "" } else { "s" }
    );
    let _ = writeln!(out, "{}", paths_text(config));
    let _ = writeln!(
        out,
        "\nStart plan (a level starts in parallel once what it depends on is healthy):"
    );
    for (i, level) in plan.levels.iter().enumerate() {
        let _ = writeln!(out, "  level {}: {}", i + 1, level.join(", "));
    }
    let _ = writeln!(out, "\nServices:");
    for level in &plan.levels {
        for short in level {
            let Some(s) = config.service(short) else {
                continue;
            };
            let ports: Vec<String> = s
                .grpc_port
                .map(|p| format!("grpc {p}"))
                .into_iter()
                .chain(s.http_port.map(|p| format!("http {p}")))
                .collect();
            let version = if s.version.is_empty() {
                String::new()
            } else {
                format!(" {}", s.version)
            };
            let disabled = if s.enabled { "" } else { " [disabled]" };
            let _ = writeln!(
                out,
                "  {} ({}{version}){}{disabled}",
                s.short_name,
                s.name,
                dash(&s.description)
            );
            let _ = writeln!(
                out,
                "      ports: {}",
                if ports.is_empty() {
                    "none".to_owned()
                } else {
                    ports.join(", ")
                }
            );
            let _ = writeln!(
                out,
                "      needs: {}",
                if s.dependencies.is_empty() {
                    "nothing".to_owned()
                } else {
                    s.dependencies.join(", ")
                }
            );
            let _ = writeln!(out, "      check: {}", check_text(&s.health_check));
            let _ = writeln!(out, "      command: {}", s.command.join(" "));
            if !s.env.is_empty() {
                let _ = writeln!(out, "      env: {}", super::secrets::env_text(&s.env));
            }
            let codes: Vec<String> = s.success_exit_codes.iter().map(i32::to_string).collect();
            let _ = writeln!(
                out,
                "      kind: {}, restart: {}, success exit codes: {}",
                s.kind.as_str(),
                s.restart.as_str(),
                codes.join(" ")
            );
            let _ = writeln!(
                out,
                "      timeouts: healthy within {}, stop grace {}",
                secs(s.health_check.start_timeout),
                secs(s.stop_timeout)
            );
        }
    }
    if !config.externals.is_empty() {
        let _ = writeln!(out, "\nExternals (checked, never started):");
        for e in &config.externals {
            let _ = writeln!(
                out,
                "  {} ({}){}{}",
                e.short_name,
                e.name,
                dash(&e.description),
                if e.optional {
                    " [optional]"
                } else {
                    " [required]"
                }
            );
            let _ = writeln!(out, "      check: {}", check_text(&e.health_check));
        }
    }
    let notes = notes(config);
    if !notes.is_empty() {
        let _ = writeln!(out, "\nNotes (valid, but worth a look):");
        for note in &notes {
            let _ = writeln!(out, "  {note}");
        }
    }
    let _ = write!(
        out,
        "\nRussell listens on {}; state in {}; service logs in {}",
        config.russell.listen,
        config.russell.state_dir.display(),
        config.log_dir().display()
    );
    out
}

/// " — text", or nothing for an empty text.
fn dash(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!(" — {text}")
    }
}

/// Which shape the file has and what its relative paths resolved against.
fn paths_text(config: &Config) -> String {
    let base = config.paths.base.display();
    match config.paths.shape {
        FileShape::Native => format!("Relative paths resolve against {base} (this file's folder)."),
        FileShape::Mdw => format!(
            "mDW-shaped file ([orchestrator]/[dependencies]): relative paths resolve against \
             {base}, the current directory, as mDW's Go Russell does."
        ),
    }
}

/// Where the kernel says it picks the local ports of outgoing connections.
const EPHEMERAL_RANGE: &str = "/proc/sys/net/ipv4/ip_local_port_range";

/// The kernel's ephemeral port range on this machine, if it can be read.
fn ephemeral_range() -> Option<(u16, u16)> {
    let text = std::fs::read_to_string(EPHEMERAL_RANGE).ok()?;
    let mut parts = text.split_whitespace().map(str::parse::<u16>);
    Some((parts.next()?.ok()?, parts.next()?.ok()?))
}

/// Things that are valid but likely to bite: service ports inside the ephemeral range,
/// where any outgoing connection on this machine may hold the port a moment before the
/// service binds it (the start then fails with "port in use").
fn notes(config: &Config) -> Vec<String> {
    let Some((low, high)) = ephemeral_range() else {
        return Vec::new();
    };
    config
        .services
        .iter()
        .flat_map(move |s| {
            s.grpc_port
                .map(|p| ("grpc_port", p))
                .into_iter()
                .chain(s.http_port.map(|p| ("http_port", p)))
                .filter(move |(_, p)| (low..=high).contains(p))
                .map(move |(field, p)| {
                    format!(
                        "service '{}', field '{field}': port {p} is in this machine's ephemeral range {low}–{high} ({EPHEMERAL_RANGE}), from which outgoing connections take their local ports; one may hold it just when the service starts — pick a port below {low}",
                        s.short_name
                    )
                })
        })
        .collect()
}

/// The whole validated model as russell-config serializes it (so it cannot drift from the
/// model), plus what `config check` derives from it: `valid`, the start `levels`, each
/// service's `level`, and `notes`.
fn config_json(config: &Config) -> anyhow::Result<Value> {
    let plan = config.plan();
    let mut doc = serde_json::to_value(config)?;
    super::secrets::mask_json(&mut doc, &super::secrets::secret_values(config));
    if let Some(services) = doc.get_mut("services").and_then(Value::as_array_mut) {
        for service in services {
            let level = service["short_name"].as_str().and_then(|short| {
                plan.levels
                    .iter()
                    .position(|l| l.iter().any(|s| s == short))
            });
            if let Some(map) = service.as_object_mut() {
                map.insert("level".into(), json!(level));
            }
        }
    }
    if let Some(map) = doc.as_object_mut() {
        map.insert("valid".into(), json!(true));
        map.insert("levels".into(), json!(plan.levels));
        map.insert("notes".into(), json!(notes(config)));
    }
    Ok(doc)
}
