//! Externals as Services without pods, so their names resolve inside the cluster.

use std::collections::BTreeMap;

use russell_config::{Config, External};

use super::objects::*;
use super::{labels, name_of};
use crate::common::{Lost, is_loopback, path_text, target, yaml};
use crate::{ExportError, OutFile};

/// Externals as Services without pods, so `<name>` resolves inside the cluster.
pub(super) fn map_externals(
    config: &Config,
    warnings: &mut Vec<crate::Warning>,
) -> Result<Option<OutFile>, ExportError> {
    let mut docs = Vec::new();
    for e in &config.externals {
        let mut lost = Lost {
            subject: "external",
            service: &e.short_name,
            warnings,
        };
        let Some((host, port)) = target(&e.health_check.probe) else {
            continue;
        };
        docs.extend(external_objects(e, &host, port, &mut lost)?);
    }
    if docs.is_empty() {
        return Ok(None);
    }
    Ok(Some(OutFile {
        name: "externals.yaml".to_string(),
        text: format!(
            "# Externals of {}: Services without pods, so their names resolve in the cluster.\n{}",
            path_text(&config.source),
            docs.join("---\n")
        ),
    }))
}

fn external_objects(
    e: &External,
    host: &str,
    port: u16,
    lost: &mut Lost<'_>,
) -> Result<Vec<String>, ExportError> {
    let name = name_of(&e.short_name, "external")?;
    let labels = labels(&name, "", lost);
    let mut annotations = BTreeMap::from([("mdw/name".to_string(), e.name.clone())]);
    if !e.description.is_empty() {
        annotations.insert("mdw/description".to_string(), e.description.clone());
    }
    let ports = vec![ServicePort {
        name: "main",
        port,
        target_port: port,
    }];
    let Ok(ip) = host.parse::<std::net::IpAddr>() else {
        return Ok(vec![yaml(&Object {
            api_version: "v1",
            kind: "Service",
            metadata: Metadata {
                name,
                labels,
                annotations,
            },
            spec: Some(ServiceSpec {
                kind: "ExternalName",
                external_name: Some(host.to_string()),
                ports,
                ..ServiceSpec::default()
            }),
            data: None,
        })?]);
    };
    if is_loopback(host) {
        lost.key(
            "health_check",
            format!("{host} is this machine; in a cluster it is the pod itself: set the external's real address in externals.yaml (EndpointSlice '{name}')"),
        );
    }
    let service = yaml(&Object {
        api_version: "v1",
        kind: "Service",
        metadata: Metadata {
            name: name.clone(),
            labels: labels.clone(),
            annotations,
        },
        spec: Some(ServiceSpec {
            kind: "ClusterIP",
            ports,
            ..ServiceSpec::default()
        }),
        data: None,
    })?;
    let mut slice_labels = labels;
    slice_labels.insert("kubernetes.io/service-name".to_string(), name.clone());
    let slice = yaml(&EndpointSlice {
        api_version: "discovery.k8s.io/v1",
        kind: "EndpointSlice",
        metadata: Metadata {
            name,
            labels: slice_labels,
            ..Metadata::default()
        },
        address_type: if ip.is_ipv4() { "IPv4" } else { "IPv6" },
        endpoints: vec![Endpoint {
            addresses: vec![ip.to_string()],
        }],
        ports: vec![EndpointPort {
            name: "main",
            port,
            protocol: "TCP",
        }],
    })?;
    Ok(vec![service, slice])
}
