//! A health check as Kubernetes probes, and a dependency as the command of the init
//! container that waits for it.

use std::time::Duration;

use russell_config::{Config, HealthCheck, Probe};

use super::name_of;
use super::objects::Handler;
use crate::common::{
    self, Lost, duration, external, probe_args, probe_at, probe_command, seconds_up, target,
    url_path,
};
use crate::{ExportError, Options};

/// The native probe handler of a check; an http check with `expect_body` runs `mdw probe`
/// (Kubernetes' httpGet looks at the status only).
pub(super) fn handler(probe: &Probe, check: &HealthCheck, mdw: &str) -> Option<Handler> {
    let port = target(probe).map(|(_, p)| p);
    Some(match probe {
        Probe::None => return None,
        Probe::Grpc { service, .. } => Handler::Grpc {
            port: port?,
            service: (!service.is_empty()).then(|| service.clone()),
        },
        Probe::Http {
            expect_body: Some(_),
            ..
        }
        | Probe::Ollama { .. } => Handler::Exec {
            command: [mdw.to_string(), "probe".to_string()]
                .into_iter()
                .chain(probe_args(probe, check.timeout)?)
                .collect(),
        },
        Probe::Http { url, .. } => Handler::HttpGet {
            path: url_path(url),
            port: port?,
        },
        Probe::Tcp { .. } => Handler::TcpSocket { port: port? },
        Probe::Exec { command } => Handler::Exec {
            command: command.clone(),
        },
    })
}

/// Kubernetes counts probe times in whole seconds.
pub(super) fn round_warnings(check: &HealthCheck, lost: &mut Lost<'_>) {
    for (key, d) in [
        ("health_check.interval", check.interval),
        ("health_check.timeout", check.timeout),
        ("health_check.start_timeout", check.start_timeout),
    ] {
        if d.subsec_millis() != 0 || d < Duration::from_secs(1) {
            lost.key(
                key,
                format!(
                    "{} is rounded up to {}s (Kubernetes counts whole seconds)",
                    duration(d),
                    seconds_up(d).max(1)
                ),
            );
        }
    }
}

/// The command of the init container that waits for dependency `dep`, if it can be gated.
pub(super) fn gate(
    config: &Config,
    dep: &str,
    options: &Options,
    lost: &mut Lost<'_>,
) -> Result<Option<Vec<String>>, ExportError> {
    let host = name_of(dep, "dependency")?;
    let mdw = &options.mdw_in_image;
    if let Some(e) = external(config, dep) {
        let check = &e.health_check;
        if e.optional {
            lost.key(
                "dependencies",
                format!(
                    "optional external '{dep}' is not waited for (Russell waits up to {} and then starts anyway)",
                    duration(check.start_timeout)
                ),
            );
            return Ok(None);
        }
        let probe = probe_at(&check.probe, &host);
        let cmd = probe_command(mdw, &probe, check, check.start_timeout);
        if cmd.is_none() {
            lost.key(
                "dependencies",
                format!("external '{dep}' has no check; nothing waits for it"),
            );
        }
        return Ok(cmd);
    }
    let Some(d) = common::service(config, dep) else {
        return Ok(None);
    };
    if d.kind == russell_config::ServiceKind::Task {
        lost.key(
            "dependencies",
            format!(
                "the pod does not wait for the Job '{host}' to complete (Russell starts it only after '{dep}' completed); wait for it, e.g. kubectl wait --for=condition=complete job/{host}"
            ),
        );
        return Ok(None);
    }
    let check = &d.health_check;
    let probe = match &check.probe {
        Probe::Exec { .. } | Probe::None => match d.ports().first() {
            Some(port) => {
                if matches!(check.probe, Probe::Exec { .. }) {
                    lost.key(
                        "dependencies",
                        format!("'{dep}' has an exec check, which runs only in its own pod; the gate waits for its port {port} to accept connections instead"),
                    );
                }
                Probe::Tcp {
                    addr: format!("{host}:{port}"),
                }
            }
            None => {
                lost.key(
                    "dependencies",
                    format!("'{dep}' has no port to probe from another pod; nothing waits for it"),
                );
                return Ok(None);
            }
        },
        probe => probe_at(probe, &host),
    };
    Ok(probe_command(mdw, &probe, check, check.start_timeout))
}
