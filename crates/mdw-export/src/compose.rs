//! `mdw export compose`: one Compose Specification file (`compose.yaml`).
//!
//! Each service becomes a Compose service whose `healthcheck` runs `mdw probe` inside the
//! container and whose `depends_on` waits for `service_healthy`, as Russell's gating does.
//! Externals are not containers: each one a service depends on becomes a one-shot
//! `wait-<external>` container that runs `mdw probe --wait` against it, and dependents wait
//! for `service_completed_successfully`.

use std::collections::BTreeMap;

use russell_config::{
    Config, External, PortConflictPolicy, Probe, RestartPolicy, Service, ServiceKind,
};
use serde::Serialize;

use crate::common::{
    self, Lost, Ordered, duration, external, is_loopback, path_text, probe_at, probe_command,
    target, yaml,
};
use crate::{Export, ExportError, Options, OutFile};

/// How containers reach the host (Docker and Podman both resolve it with `host-gateway`).
const HOST_ALIAS: &str = "host.docker.internal";

#[derive(Debug, Serialize)]
struct File {
    services: Ordered<ComposeService>,
}

#[derive(Debug, Default, Serialize)]
struct ComposeService {
    image: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    profiles: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    entrypoint: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    command: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    working_dir: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    environment: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    env_file: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ports: Vec<String>,
    #[serde(skip_serializing_if = "Ordered::is_empty")]
    depends_on: Ordered<Dependency>,
    #[serde(skip_serializing_if = "Option::is_none")]
    healthcheck: Option<Healthcheck>,
    restart: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_signal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_grace_period: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    extra_hosts: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
struct Dependency {
    condition: &'static str,
}

#[derive(Debug, Serialize)]
struct Healthcheck {
    test: Vec<String>,
    interval: String,
    timeout: String,
    retries: u32,
    start_period: String,
}

/// Exports `config` as `compose.yaml`.
pub fn export(config: &Config, options: &Options) -> Result<Export, ExportError> {
    options.images.check(config)?;
    let mut warnings = Vec::new();
    let mut services = Ordered::default();
    let mut waiters: Ordered<ComposeService> = Ordered::default();
    for service in &config.services {
        let mut lost = Lost {
            subject: "service",
            service: &service.short_name,
            warnings: &mut warnings,
        };
        let mapped = map_service(config, service, options, &mut lost, &mut waiters);
        services.push(service.short_name.clone(), mapped);
    }
    for (name, waiter) in waiters.0 {
        if services.0.iter().any(|(n, _)| *n == name) {
            return Err(ExportError(format!(
                "a service is named '{name}', the name of the Compose service that waits for an external; rename the service"
            )));
        }
        services.push(name, waiter);
    }
    let header = header(config);
    let text = format!("{header}{}", yaml(&File { services })?);
    Ok(Export {
        files: vec![OutFile {
            name: "compose.yaml".to_string(),
            text,
        }],
        warnings,
    })
}

/// The comment at the top: where the file came from and the externals it expects.
fn header(config: &Config) -> String {
    let mut out = format!(
        "# Made by `mdw export compose` from {}; edit that file and export again.\n",
        path_text(&config.source)
    );
    if !config.externals.is_empty() {
        out.push_str("# Externals (not containers; checked by the wait-<name> services):\n");
        for e in &config.externals {
            let what = if e.description.is_empty() {
                e.name.clone()
            } else {
                format!("{}, {}", e.name, e.description)
            };
            out.push_str(&format!(
                "#   {} ({what}): {}{}\n",
                e.short_name,
                common::probe_words(&e.health_check.probe)
                    .map_or_else(|| "no check".to_string(), |words| words.join(" ")),
                if e.optional { ", optional" } else { "" }
            ));
        }
    }
    out
}

/// One `[[services]]` entry as a Compose service; every key of the entry is either used
/// here or reported through `lost`.
fn map_service(
    config: &Config,
    s: &Service,
    options: &Options,
    lost: &mut Lost<'_>,
    waiters: &mut Ordered<ComposeService>,
) -> ComposeService {
    let image = options.images.image(s);
    let mut out = ComposeService {
        image: image.clone(),
        ..ComposeService::default()
    };
    // name, description, version: labels (version also in the image tag).
    out.labels.insert("mdw.name".to_string(), s.name.clone());
    if !s.description.is_empty() {
        out.labels
            .insert("mdw.description".to_string(), s.description.clone());
    }
    if !s.version.is_empty() {
        out.labels
            .insert("mdw.version".to_string(), s.version.clone());
    }
    // enabled = false: known, not started by `up` (only when named or with the profile).
    if !s.enabled {
        out.profiles.push("disabled".to_string());
    }
    // command: program as entrypoint, so an image's own ENTRYPOINT cannot change its meaning.
    if let Some((program, args)) = s.command.split_first() {
        out.entrypoint.push(program.clone());
        out.command.extend(args.iter().cloned());
    }
    out.working_dir = Some(path_text(&s.working_dir));
    out.environment = s.env.clone();
    if let Some(file) = &s.env_file {
        out.env_file.push(path_text(file));
    }
    // grpc_port, http_port: published on the same host port.
    out.ports = s.ports().iter().map(|p| format!("{p}:{p}")).collect();
    // health_check: run by the engine inside the container.
    let check = &s.health_check;
    let test = match &check.probe {
        Probe::Exec { command } => Some(command.clone()),
        probe => common::probe_args(probe, check.timeout).map(|args| {
            [options.mdw_in_image.clone(), "probe".to_string()]
                .into_iter()
                .chain(args)
                .collect()
        }),
    };
    if let Some(test) = test {
        out.healthcheck = Some(Healthcheck {
            test: std::iter::once("CMD".to_string()).chain(test).collect(),
            interval: duration(check.interval),
            timeout: duration(check.timeout),
            retries: check.failure_threshold,
            start_period: duration(check.start_timeout),
        });
        if check.success_threshold > 1 {
            lost.key(
                "health_check.success_threshold",
                format!(
                    "Compose counts a service healthy after one good probe, not {}",
                    check.success_threshold
                ),
            );
        }
    }
    // dependencies: services gate on healthy (started, for a service without a check);
    // externals on a one-shot wait container.
    for dep in &s.dependencies {
        if let Some(e) = external(config, dep) {
            map_external_dependency(e, &image, options, lost, &mut out, waiters);
        } else {
            let d = common::service(config, dep);
            let task = d.is_some_and(|d| d.kind == ServiceKind::Task);
            let healthy = d.is_some_and(|d| !matches!(d.health_check.probe, Probe::None));
            out.depends_on.push(
                dep.clone(),
                Dependency {
                    condition: if task {
                        "service_completed_successfully"
                    } else if healthy {
                        "service_healthy"
                    } else {
                        "service_started"
                    },
                },
            );
        }
    }
    if s.start_order != 0 {
        lost.key(
            "start_order",
            "Compose starts services that do not depend on each other together, in no set order",
        );
    }
    // restart, max_retries: `always` has no count in Compose, `on-failure` does.
    out.restart = match s.restart {
        _ if s.max_retries == 0 => "no".to_string(),
        RestartPolicy::Never => "no".to_string(),
        RestartPolicy::OnFailure => format!("on-failure:{}", s.max_retries),
        RestartPolicy::Always => {
            lost.key(
                "max_retries",
                format!(
                    "restart: always has no limit (Russell gives up after {} restarts)",
                    s.max_retries
                ),
            );
            "always".to_string()
        }
    };
    // kind = "task": a container that runs to completion; dependents wait for
    // service_completed_successfully (above).
    if s.success_exit_codes != [0] {
        lost.key(
            "success_exit_codes",
            format!(
                "Compose counts only exit code 0 as success, not {:?}",
                s.success_exit_codes
            ),
        );
    }
    if s.max_retries > 0 && s.restart != RestartPolicy::Never {
        lost.key(
            "restart_backoff",
            format!(
                "the engine's own restart delay (doubling from 100ms) replaces {} doubling up to {}",
                duration(s.restart_backoff),
                duration(s.restart_backoff_max)
            ),
        );
        lost.key(
            "restart_reset_after",
            "the engine never resets the count of restarts towards max_retries",
        );
    }
    if s.kind == ServiceKind::Service {
        lost.key(
            "health_check",
            "an unhealthy container is marked unhealthy but not restarted (Russell restarts it after failure_threshold failures)",
        );
    }
    if s.restart_dependents {
        lost.key(
            "restart_dependents",
            "Compose does not restart dependents when a dependency restarts",
        );
    }
    out.stop_signal = Some(s.stop_signal.name.to_string());
    out.stop_grace_period = Some(duration(s.stop_timeout));
    if s.on_port_conflict != PortConflictPolicy::Fail && !s.ports().is_empty() {
        lost.key(
            "on_port_conflict",
            "a taken host port fails the container's start (as on_port_conflict = \"fail\"); nothing is adopted or stopped",
        );
    }
    out
}

/// A dependency on an external: a `wait-<name>` one-shot container probes it (with the
/// dependent's image, which carries mdw), and the dependent waits for it to succeed.
fn map_external_dependency(
    e: &External,
    image: &str,
    options: &Options,
    lost: &mut Lost<'_>,
    out: &mut ComposeService,
    waiters: &mut Ordered<ComposeService>,
) {
    let check = &e.health_check;
    let mut probe = check.probe.clone();
    let on_host = target(&probe).is_some_and(|(host, _)| is_loopback(&host));
    if on_host {
        probe = probe_at(&probe, HOST_ALIAS);
        let alias = format!("{HOST_ALIAS}:host-gateway");
        if !out.extra_hosts.contains(&alias) {
            out.extra_hosts.push(alias);
        }
        lost.key(
            "dependencies",
            format!(
                "external '{}' is on this machine's loopback; from the container it is {HOST_ALIAS} (extra_hosts), so point the service there",
                e.short_name
            ),
        );
    }
    if matches!(probe, Probe::None) {
        lost.key(
            "dependencies",
            format!(
                "external '{}' has no check; nothing waits for it",
                e.short_name
            ),
        );
        return;
    }
    if e.optional {
        lost.key(
            "dependencies",
            format!(
                "optional external '{}' is not waited for (Russell waits up to {} and then starts anyway)",
                e.short_name,
                duration(check.start_timeout)
            ),
        );
        return;
    }
    let name = format!("wait-{}", e.short_name);
    if !waiters.0.iter().any(|(n, _)| *n == name) {
        let mut cmd = probe_command(&options.mdw_in_image, &probe, check, check.start_timeout)
            .unwrap_or_default();
        let program = if cmd.is_empty() {
            String::new()
        } else {
            cmd.remove(0)
        };
        waiters.push(
            name.clone(),
            ComposeService {
                image: image.to_string(),
                entrypoint: vec![program],
                command: cmd,
                restart: "no".to_string(),
                extra_hosts: if on_host {
                    vec![format!("{HOST_ALIAS}:host-gateway")]
                } else {
                    Vec::new()
                },
                labels: BTreeMap::from([("mdw.external".to_string(), e.name.clone())]),
                ..ComposeService::default()
            },
        );
    }
    out.depends_on.push(
        name,
        Dependency {
            condition: "service_completed_successfully",
        },
    );
}
