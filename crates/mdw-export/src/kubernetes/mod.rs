//! `mdw export kubernetes`: a folder for `kubectl apply -k`.
//!
//! Per service `<name>.yaml`: a ConfigMap with its environment (when it has one), a
//! Deployment and a Service (when it has ports). Health checks become native readiness,
//! liveness and startup probes; each dependency becomes an init container that runs
//! `mdw probe --wait` against the dependency's Service, so a pod starts only when what it
//! needs answers its check, as Russell's gating does. Externals become Services without
//! pods (`externals.yaml`): ExternalName for a host name, an EndpointSlice for an address.

mod externals;
mod objects;
mod probes;

use std::collections::BTreeMap;

use russell_config::{Config, RestartPolicy, Service, ServiceKind};

use crate::common::{Lost, duration, looks_secret, path_text, seconds_up, yaml};
use crate::{Export, ExportError, Options, OutFile};
use externals::map_externals;
use objects::*;
use probes::{gate, handler, round_warnings};

/// Value of `app.kubernetes.io/part-of` and `managed-by`.
const PART_OF: &str = "mdw";

/// Exports `config` as a kustomization folder.
pub fn export(config: &Config, options: &Options) -> Result<Export, ExportError> {
    options.images.check(config)?;
    let mut warnings = Vec::new();
    let mut files = Vec::new();
    if let Some(ns) = &options.namespace {
        let ns_name = name_of(ns, "--namespace")?;
        files.push(OutFile {
            name: "namespace.yaml".to_string(),
            text: yaml(&Object::<()> {
                api_version: "v1",
                kind: "Namespace",
                metadata: Metadata {
                    name: ns_name,
                    labels: BTreeMap::from([(
                        "app.kubernetes.io/part-of".to_string(),
                        PART_OF.to_string(),
                    )]),
                    ..Metadata::default()
                },
                spec: None,
                data: None,
            })?,
        });
    }
    let mut names = std::collections::BTreeMap::new();
    for short in config
        .services
        .iter()
        .map(|s| &s.short_name)
        .chain(config.externals.iter().map(|e| &e.short_name))
    {
        if let Some(other) = names.insert(name_of(short, "short_name")?, short) {
            return Err(ExportError(format!(
                "'{other}' and '{short}' both become the Kubernetes name '{}'; rename one",
                name_of(short, "short_name")?
            )));
        }
    }
    for service in &config.services {
        let mut lost = Lost {
            subject: "service",
            service: &service.short_name,
            warnings: &mut warnings,
        };
        files.push(map_service(config, service, options, &mut lost)?);
    }
    if let Some(file) = map_externals(config, &mut warnings)? {
        files.push(file);
    }
    let kustomization = Kustomization {
        api_version: "kustomize.config.k8s.io/v1beta1",
        kind: "Kustomization",
        namespace: options.namespace.clone(),
        resources: files.iter().map(|f| f.name.clone()).collect(),
    };
    files.push(OutFile {
        name: "kustomization.yaml".to_string(),
        text: format!(
            "# Made by `mdw export kubernetes` from {}; `kubectl apply -k .`\n{}",
            path_text(&config.source),
            yaml(&kustomization)?
        ),
    });
    Ok(Export { files, warnings })
}

/// `short_name` as a Kubernetes object name (DNS-1123 label: `_` becomes `-`).
fn name_of(short_name: &str, what: &str) -> Result<String, ExportError> {
    let name = short_name.replace('_', "-");
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(name)
    } else {
        Err(ExportError(format!(
            "{what} '{short_name}' cannot be a Kubernetes name ('{name}': at most 63 letters, digits and '-', starting and ending with a letter or digit); rename it"
        )))
    }
}

fn labels(name: &str, version: &str, lost: &mut Lost<'_>) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), name.to_string()),
        ("app.kubernetes.io/part-of".to_string(), PART_OF.to_string()),
        (
            "app.kubernetes.io/managed-by".to_string(),
            PART_OF.to_string(),
        ),
    ]);
    let valid_value = version.len() <= 63
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && version
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && version
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    if valid_value {
        labels.insert("app.kubernetes.io/version".to_string(), version.to_string());
    } else if !version.is_empty() {
        lost.key(
            "version",
            format!("'{version}' is not a valid label value; the version label is left out"),
        );
    }
    labels
}

/// One `[[services]]` entry as `<name>.yaml`; every key is used here or reported.
fn map_service(
    config: &Config,
    s: &Service,
    options: &Options,
    lost: &mut Lost<'_>,
) -> Result<OutFile, ExportError> {
    let name = name_of(&s.short_name, "service")?;
    let labels = labels(&name, &s.version, lost);
    let selector = BTreeMap::from([("app.kubernetes.io/name".to_string(), name.clone())]);
    let mut annotations = BTreeMap::from([("mdw/name".to_string(), s.name.clone())]);
    if !s.description.is_empty() {
        annotations.insert("mdw/description".to_string(), s.description.clone());
    }
    let image = options.images.image(s);
    let mut header = format!(
        "# {} ({}): made by `mdw export kubernetes` from {}\n",
        s.name,
        s.short_name,
        path_text(&config.source)
    );
    let mut docs = Vec::new();

    // env and env_file: a ConfigMap; env_file entries that look secret as Secret references.
    let (config_map, secret_keys) = environment(s, options, lost);
    let mut container = Container {
        name: name.clone(),
        image: image.clone(),
        working_dir: Some(path_text(&s.working_dir)),
        ..Container::default()
    };
    if let Some((program, args)) = s.command.split_first() {
        container.command = vec![program.clone()];
        container.args = args.to_vec();
    }
    if !config_map.is_empty() {
        let cm_name = format!("{name}-env");
        container.env_from.push(EnvFrom {
            config_map_ref: NameRef {
                name: cm_name.clone(),
            },
        });
        docs.push(yaml(&Object::<()> {
            api_version: "v1",
            kind: "ConfigMap",
            metadata: Metadata {
                name: cm_name,
                labels: labels.clone(),
                ..Metadata::default()
            },
            spec: None,
            data: Some(config_map),
        })?);
    }
    if !secret_keys.is_empty() {
        let secret = format!("{name}-env");
        header.push_str(&format!(
            "# Needs Secret '{secret}' with {}: kubectl create secret generic {secret} --from-env-file={}\n",
            secret_keys.join(", "),
            s.env_file.as_deref().map_or_else(|| "<file>".to_string(), path_text)
        ));
        for key in secret_keys {
            container.env.push(EnvVar {
                name: key.clone(),
                value_from: ValueFrom {
                    secret_key_ref: SecretKeyRef {
                        name: secret.clone(),
                        key,
                    },
                },
            });
        }
    }

    // grpc_port, http_port.
    let mut ports = Vec::new();
    if let Some(p) = s.grpc_port {
        ports.push(("grpc", p));
    }
    if let Some(p) = s.http_port {
        ports.push(("http", p));
    }
    // A check on a port of its own (health_check.port): served too, so that the init
    // containers of dependents can reach it through the Service.
    if let Some((_, p)) = crate::common::target(&s.health_check.probe)
        && !ports.iter().any(|&(_, q)| q == p)
    {
        ports.push(("health", p));
    }
    container.ports = ports
        .iter()
        .map(|&(name, container_port)| ContainerPort {
            name,
            container_port,
        })
        .collect();

    // health_check: readiness (gates traffic), liveness (restarts after failure_threshold
    // failures, as Russell does), startup (the start grace of start_timeout).
    let check = &s.health_check;
    if let Some(handler) = handler(&check.probe, check, &options.mdw_in_image) {
        round_warnings(check, lost);
        let readiness = K8sProbe {
            handler: handler.clone(),
            period_seconds: seconds_up(check.interval).max(1),
            timeout_seconds: seconds_up(check.timeout).max(1),
            failure_threshold: u64::from(check.failure_threshold.max(1)),
            success_threshold: check.success_threshold.max(1),
        };
        let liveness = K8sProbe {
            success_threshold: 1,
            ..readiness.clone()
        };
        let period = seconds_up(check.timeout).max(1);
        container.startup_probe = Some(K8sProbe {
            handler,
            period_seconds: period,
            timeout_seconds: period,
            failure_threshold: seconds_up(check.start_timeout).div_ceil(period).max(1),
            success_threshold: 1,
        });
        container.readiness_probe = Some(readiness);
        container.liveness_probe = Some(liveness);
    }

    // dependencies: one init container per dependency, in the service's own image.
    let mut init_containers = Vec::new();
    for dep in &s.dependencies {
        if let Some(gate) = gate(config, dep, options, lost)? {
            init_containers.push(Container {
                name: format!("wait-{}", name_of(dep, "dependency")?),
                image: image.clone(),
                command: gate,
                ..Container::default()
            });
        }
    }

    if s.kind == ServiceKind::Service {
        restart_warnings(s, lost);
    }
    if s.start_order != 0 {
        lost.key(
            "start_order",
            "pods that do not depend on each other start together, in no set order",
        );
    }
    if s.stop_signal.number != 15 {
        lost.key(
            "stop_signal",
            format!(
                "Kubernetes stops with the image's STOPSIGNAL (SIGTERM unless set); build the image with STOPSIGNAL {}",
                s.stop_signal.name
            ),
        );
    }
    if s.stop_timeout.subsec_millis() != 0 {
        lost.key(
            "stop_timeout",
            format!(
                "{} is rounded up to {}s (Kubernetes counts whole seconds)",
                duration(s.stop_timeout),
                seconds_up(s.stop_timeout)
            ),
        );
    }
    // on_port_conflict: each pod has its own network namespace; there is nothing to conflict with.

    let template = PodTemplate {
        metadata: Metadata {
            name: String::new(),
            labels: labels.clone(),
            ..Metadata::default()
        },
        spec: PodSpec {
            restart_policy: None,
            termination_grace_period_seconds: seconds_up(s.stop_timeout),
            init_containers,
            containers: vec![container],
        },
    };
    let metadata = Metadata {
        name: name.clone(),
        labels: labels.clone(),
        annotations,
    };
    if s.kind == ServiceKind::Task {
        docs.push(yaml(&task_job(s, metadata, template, lost))?);
    } else {
        docs.push(yaml(&Object {
            api_version: "apps/v1",
            kind: "Deployment",
            metadata,
            spec: Some(DeploymentSpec {
                // enabled = false: known, but not running.
                replicas: u32::from(s.enabled),
                selector: Selector {
                    match_labels: selector.clone(),
                },
                template,
            }),
            data: None,
        })?);
    }
    if !ports.is_empty() {
        docs.push(yaml(&Object {
            api_version: "v1",
            kind: "Service",
            metadata: Metadata {
                name: name.clone(),
                labels,
                ..Metadata::default()
            },
            spec: Some(ServiceSpec {
                kind: "ClusterIP",
                selector,
                ports: ports
                    .iter()
                    .map(|&(name, port)| ServicePort {
                        name,
                        port,
                        target_port: port,
                    })
                    .collect(),
                ..ServiceSpec::default()
            }),
            data: None,
        })?);
    }
    Ok(OutFile {
        name: format!("{name}.yaml"),
        text: format!("{header}{}", docs.join("---\n")),
    })
}

/// The ConfigMap data (env_file entries, then `env`, which wins) and the names of env_file
/// entries that look secret (left to a Secret).
fn environment(
    s: &Service,
    options: &Options,
    lost: &mut Lost<'_>,
) -> (BTreeMap<String, String>, Vec<String>) {
    let mut data = BTreeMap::new();
    let mut secret = Vec::new();
    if let Some(path) = &s.env_file {
        match options.env_files.get(path) {
            Some(Ok(vars)) => {
                for (k, v) in vars {
                    if s.env.contains_key(k) {
                        continue;
                    }
                    if looks_secret(k) {
                        if !secret.contains(k) {
                            secret.push(k.clone());
                        }
                    } else {
                        data.insert(k.clone(), v.clone());
                    }
                }
            }
            Some(Err(why)) => lost.key(
                "env_file",
                format!("{why}: its variables are not in the manifests; add them to the ConfigMap or a Secret"),
            ),
            None => lost.key(
                "env_file",
                format!(
                    "{} was not read: its variables are not in the manifests",
                    path.display()
                ),
            ),
        }
    }
    for (k, v) in &s.env {
        if looks_secret(k) {
            lost.key(
                "env",
                format!(
                    "{k} looks secret and goes into a ConfigMap in clear text; move it to env_file"
                ),
            );
        }
        data.insert(k.clone(), v.clone());
    }
    (data, secret)
}

fn restart_warnings(s: &Service, lost: &mut Lost<'_>) {
    if s.max_retries == 0 {
        lost.key(
            "max_retries",
            "a Deployment restarts its pod without limit; Russell does not restart it (max_retries = 0)",
        );
    } else {
        lost.key(
            "max_retries",
            format!(
                "a Deployment restarts its pod without limit (Russell gives up after {} restarts)",
                s.max_retries
            ),
        );
        lost.key(
            "restart_backoff",
            format!(
                "the kubelet's delay (10s doubling up to 5m) replaces {} doubling up to {}",
                duration(s.restart_backoff),
                duration(s.restart_backoff_max)
            ),
        );
        lost.key(
            "restart_reset_after",
            "the kubelet resets its restart delay after 10 minutes of running",
        );
    }
    if s.restart_dependents {
        lost.key(
            "restart_dependents",
            "Kubernetes does not restart dependents when a dependency restarts",
        );
    }
}

/// `kind = "task"`: a Job that runs the pod to completion (`restart = "on-failure"`:
/// retried `max_retries` times, `"never"`: not at all).
fn task_job(
    s: &Service,
    metadata: Metadata,
    mut template: PodTemplate,
    lost: &mut Lost<'_>,
) -> Object<JobSpec> {
    let retries = match s.restart {
        RestartPolicy::OnFailure => s.max_retries,
        _ => 0,
    };
    template.spec.restart_policy = Some("Never");
    if s.success_exit_codes != [0] {
        lost.key(
            "success_exit_codes",
            format!(
                "a Job counts only exit code 0 as success, not {:?}",
                s.success_exit_codes
            ),
        );
    }
    Object {
        api_version: "batch/v1",
        kind: "Job",
        metadata,
        spec: Some(JobSpec {
            backoff_limit: retries,
            suspend: !s.enabled,
            template,
        }),
        data: None,
    }
}
