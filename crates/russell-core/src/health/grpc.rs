//! gRPC probe: `grpc.health.v1.Health/Check`; healthy when the answer is SERVING.

use std::time::Duration;

use tonic::transport::Endpoint;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use super::{ProbeError, innermost, io_kind};

/// Connects to `addr` ("host:port", plaintext HTTP/2) and asks for `service` ("" = server).
///
/// One short-lived connection per probe: nothing is cached between calls, so a restarted
/// service is never probed over a stale connection.
pub(super) async fn probe(
    target: &str,
    addr: &str,
    service: &str,
    timeout: Duration,
) -> Result<(), ProbeError> {
    let endpoint =
        Endpoint::from_shared(format!("http://{addr}")).map_err(|_| ProbeError::InvalidTarget {
            target: target.to_string(),
            what: "not a host:port address",
        })?;
    let channel = endpoint
        .connect_timeout(timeout)
        .timeout(timeout)
        .connect()
        .await
        .map_err(|err| match io_kind(&err) {
            Some(kind) => ProbeError::Io {
                target: target.to_string(),
                kind,
            },
            None => ProbeError::Grpc {
                target: target.to_string(),
                code: tonic::Code::Unavailable,
                message: innermost(&err),
            },
        })?;
    let request = HealthCheckRequest {
        service: service.to_string(),
    };
    let response = HealthClient::new(channel)
        .check(request)
        .await
        .map_err(|status| ProbeError::Grpc {
            target: target.to_string(),
            code: status.code(),
            message: status_message(&status),
        })?;
    match response.into_inner().status() {
        ServingStatus::Serving => Ok(()),
        other => Err(ProbeError::NotServing {
            target: target.to_string(),
            status: other.as_str_name(),
        }),
    }
}

/// The status message, plus the underlying cause when tonic only says "transport error".
fn status_message(status: &tonic::Status) -> String {
    match std::error::Error::source(status) {
        Some(cause) => format!("{}: {}", status.message(), innermost(cause)),
        None => status.message().to_string(),
    }
}
