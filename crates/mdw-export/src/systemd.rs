//! `mdw export systemd`: one unit per service (`mdw-<short_name>.service`), `mdw.target`
//! that pulls in the enabled ones, and `mdw-russell.service` for those who keep Russell.
//!
//! Readiness is made real: `ExecStartPost=` runs `mdw probe --wait <start_timeout>`, so the
//! unit is "started" only once its check passes, and `After=` on it means healthy, as
//! Russell's gating does. Externals are waited for by `ExecStartPre=` (with `-` for
//! optional ones, which start the service anyway when the wait ends).

use std::fmt::Write as _;
use std::time::Duration;

use russell_config::{Config, PortConflictPolicy, RestartPolicy, Service, ServiceKind};

use crate::common::{Lost, duration, external, path_text, probe_command};
use crate::{Export, ExportError, Options, OutFile};

/// The unit name of a service.
pub fn unit_name(short_name: &str) -> String {
    format!("mdw-{short_name}.service")
}

/// Exports `config` as unit files.
pub fn export(config: &Config, options: &Options) -> Result<Export, ExportError> {
    let mut warnings = Vec::new();
    let mut files = Vec::new();
    if config.services.iter().any(|s| s.short_name == "russell") {
        return Err(ExportError(format!(
            "{}: a service is named 'russell', the name of Russell's own unit (mdw-russell.service); rename the service",
            path_text(&config.source)
        )));
    }
    for service in &config.services {
        let mut lost = Lost {
            subject: "service",
            service: &service.short_name,
            warnings: &mut warnings,
        };
        files.push(OutFile {
            name: unit_name(&service.short_name),
            text: map_service(config, service, options, &mut lost),
        });
    }
    files.push(OutFile {
        name: "mdw.target".to_string(),
        text: target_unit(config, options),
    });
    files.push(OutFile {
        name: "mdw-russell.service".to_string(),
        text: russell_unit(config, options),
    });
    Ok(Export { files, warnings })
}

/// One `[[services]]` entry as a unit; every key is used here or reported.
fn map_service(config: &Config, s: &Service, options: &Options, lost: &mut Lost<'_>) -> String {
    let mdw = options.mdw_on_host.display().to_string();
    let mut unit = String::new();
    let mut service = String::new();
    let mut description = s.name.clone();
    if !s.description.is_empty() {
        description.push_str(&format!(" ({})", s.description));
    }
    if !s.version.is_empty() {
        description.push_str(&format!(" {}", s.version));
    }
    line(&mut unit, "Description", &description);
    line(
        &mut unit,
        "Documentation",
        &format!("file://{}", path_text(&config.source)),
    );
    line(&mut unit, "PartOf", "mdw.target");
    if s.kind == ServiceKind::Task {
        // Runs to completion; active after it, so that Requires=/After= of dependents
        // wait for its success (as Russell waits for `completed`).
        line(&mut service, "Type", "oneshot");
        line(&mut service, "RemainAfterExit", "yes");
    } else {
        line(&mut service, "Type", "exec");
    }

    // dependencies: services by Requires=/After= (healthy, thanks to ExecStartPost=);
    // externals by a probe before the start.
    let mut waited = Duration::ZERO;
    for dep in &s.dependencies {
        if let Some(e) = external(config, dep) {
            let check = &e.health_check;
            match probe_command(&mdw, &check.probe, check, check.start_timeout) {
                Some(cmd) => {
                    let prefix = if e.optional { "-" } else { "" };
                    line(
                        &mut service,
                        "ExecStartPre",
                        &format!("{prefix}{}", command_line(&cmd)),
                    );
                    waited += check.start_timeout;
                }
                None => lost.key(
                    "dependencies",
                    format!("external '{dep}' has no check; nothing waits for it"),
                ),
            }
        } else {
            line(&mut unit, "Requires", &unit_name(dep));
            line(&mut unit, "After", &unit_name(dep));
        }
    }
    if s.start_order != 0 {
        lost.key(
            "start_order",
            "systemd starts units that do not depend on each other together, in no set order",
        );
    }
    // max_retries: starts within the window before systemd gives up (the first start counts).
    let attempts = s.max_retries + 1;
    let window = s.restart_reset_after + s.restart_backoff_max.saturating_mul(attempts);
    line(&mut unit, "StartLimitIntervalSec", &duration(window));
    line(&mut unit, "StartLimitBurst", &attempts.to_string());

    let mut command = s.command.clone();
    if let Some(program) = command.first_mut().filter(|p| p.starts_with('/')) {
        *program = path_text(std::path::Path::new(program.as_str()));
    }
    line(&mut service, "ExecStart", &command_line(&command));
    let check = &s.health_check;
    if let Some(cmd) = probe_command(&mdw, &check.probe, check, check.start_timeout) {
        line(&mut service, "ExecStartPost", &command_line(&cmd));
        waited += check.start_timeout;
        lost.key(
            "health_check",
            format!(
                "systemd checks health only at start; a service that turns unhealthy later is not restarted (Russell restarts it after {} failed probes)",
                check.failure_threshold
            ),
        );
    }
    // A task's run is its start: bounded by start_timeout, as Russell bounds it.
    if s.kind == ServiceKind::Task {
        waited += check.start_timeout;
    }
    line(
        &mut service,
        "TimeoutStartSec",
        &duration(waited + Duration::from_secs(10)),
    );
    line(&mut service, "WorkingDirectory", &path_text(&s.working_dir));
    // env_file first, then env (which wins, as with Russell).
    if let Some(file) = &s.env_file {
        line(&mut service, "EnvironmentFile", &path_text(file));
    }
    for (k, v) in &s.env {
        line(&mut service, "Environment", &quote(&format!("{k}={v}")));
    }
    // success_exit_codes: 0 is always a success to systemd.
    let extra: Vec<String> = s
        .success_exit_codes
        .iter()
        .filter(|c| **c != 0)
        .map(i32::to_string)
        .collect();
    if !extra.is_empty() {
        line(&mut service, "SuccessExitStatus", &extra.join(" "));
    }
    if !s.success_exit_codes.contains(&0) {
        lost.key(
            "success_exit_codes",
            "systemd always counts exit code 0 as success",
        );
    }
    let restart = match s.restart {
        RestartPolicy::Always if s.kind == ServiceKind::Service => "always",
        RestartPolicy::Never => "no",
        _ => "on-failure",
    };
    if s.max_retries == 0 || restart == "no" {
        line(&mut service, "Restart", "no");
    } else {
        line(&mut service, "Restart", restart);
        line(&mut service, "RestartSec", &duration(s.restart_backoff));
        lost.key(
            "restart_backoff",
            format!(
                "systemd waits {} before every restart; Russell doubles it up to {} (systemd 254+ can with RestartSteps=/RestartMaxDelaySec=)",
                duration(s.restart_backoff),
                duration(s.restart_backoff_max)
            ),
        );
    }
    line(&mut service, "KillMode", "control-group");
    line(&mut service, "KillSignal", s.stop_signal.name);
    line(&mut service, "TimeoutStopSec", &duration(s.stop_timeout));
    if s.restart_dependents {
        lost.key(
            "restart_dependents",
            "a unit that restarts by itself does not restart its dependents",
        );
    }
    if s.on_port_conflict != PortConflictPolicy::Fail && !s.ports().is_empty() {
        lost.key(
            "on_port_conflict",
            "a taken port makes the service fail to start (as on_port_conflict = \"fail\"); nothing is adopted or stopped",
        );
    }
    // enabled = false: the unit exists but mdw.target does not pull it in.
    // grpc_port, http_port: only used by the checks, which carry them.
    format!(
        "# Made by `mdw export systemd` from {}.\n[Unit]\n{unit}\n[Service]\n{service}\n[Install]\nWantedBy=mdw.target\n",
        path_text(&config.source)
    )
}

fn target_unit(config: &Config, options: &Options) -> String {
    let mut unit = String::new();
    line(&mut unit, "Description", "mDW services");
    for s in config.services.iter().filter(|s| s.enabled) {
        line(&mut unit, "Wants", &unit_name(&s.short_name));
    }
    let wanted_by = if options.systemd_user {
        "default.target"
    } else {
        "multi-user.target"
    };
    format!(
        "# Made by `mdw export systemd` from {}.\n[Unit]\n{unit}\n[Install]\nWantedBy={wanted_by}\n",
        path_text(&config.source)
    )
}

/// Russell itself under systemd: the other way to run the same file (not together with
/// mdw.target, which runs the services without Russell).
fn russell_unit(config: &Config, options: &Options) -> String {
    let mdw = options.mdw_on_host.display().to_string();
    let source = path_text(&config.source);
    let mut unit = String::new();
    line(&mut unit, "Description", "Russell, the mDW orchestrator");
    line(&mut unit, "Documentation", &format!("file://{source}"));
    line(&mut unit, "Conflicts", "mdw.target");
    let mut service = String::new();
    line(&mut service, "Type", "notify");
    line(
        &mut service,
        "ExecStart",
        &command_line(&[
            mdw,
            "serve".into(),
            "russell".into(),
            "--config".into(),
            source.clone(),
        ]),
    );
    let dir = config
        .source
        .parent()
        .map_or_else(|| "/".to_string(), path_text);
    line(&mut service, "WorkingDirectory", &dir);
    line(&mut service, "Restart", "on-failure");
    line(&mut service, "RestartSec", "1s");
    line(&mut service, "KillMode", "mixed");
    line(&mut service, "TimeoutStopSec", "60s");
    let wanted_by = if options.systemd_user {
        "default.target"
    } else {
        "multi-user.target"
    };
    format!(
        "# Made by `mdw export systemd` from {source}. Use either this unit or mdw.target, not both.\n[Unit]\n{unit}\n[Service]\n{service}\n[Install]\nWantedBy={wanted_by}\n"
    )
}

fn line(out: &mut String, key: &str, value: &str) {
    let _ = writeln!(out, "{key}={value}");
}

/// A command line as systemd reads it in `ExecStart=`: each word quoted when needed.
pub fn command_line<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One word for a unit file: `%` (specifiers) doubled, `$` (variables) doubled, and double
/// quotes with C escapes when it holds anything but plain characters.
pub fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_./:=,+@-".contains(&b));
    let escaped = word.replace('%', "%%").replace('$', "$$");
    if plain {
        return escaped;
    }
    let mut out = String::from("\"");
    for c in escaped.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
