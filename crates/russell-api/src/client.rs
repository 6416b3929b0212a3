//! The typed client: a [`pb::russell_service_client::RussellServiceClient`] over one
//! channel, with an interceptor that adds `authorization: Bearer <token>` when the
//! environment provides a token (`MDW_RUSSELL_TOKEN`, or a file named by
//! `MDW_RUSSELL_TOKEN_FILE`).

use std::time::Duration;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::pb::russell_service_client::RussellServiceClient;

/// Environment variable holding the API token.
pub const TOKEN_ENV: &str = "MDW_RUSSELL_TOKEN";
/// Environment variable naming a file that holds the API token.
pub const TOKEN_FILE_ENV: &str = "MDW_RUSSELL_TOKEN_FILE";

/// How long a connection attempt may take before Russell counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The largest HTTP/2 DATA frame the client accepts (SETTINGS_MAX_FRAME_SIZE). h2's
/// default of 16 KiB splits a GetOrchestratorStatus reply of a few hundred services into
/// several frames; with 1 MiB it goes in one, which costs Russell less CPU per reply (the
/// figures are in docs/BENCHMARKS.md).
pub const MAX_FRAME_SIZE: u32 = 1 << 20;

/// A connected Russell client.
pub type Client = RussellServiceClient<InterceptedService<Channel, BearerAuth>>;

/// Why no client could be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The address is not a usable URI.
    #[error("'{addr}' is not a valid Russell address (expected HOST:PORT, e.g. 127.0.0.1:9100)")]
    BadAddress {
        addr: String,
        #[source]
        source: tonic::transport::Error,
    },
    /// Nothing answered at the address.
    #[error("Russell is not reachable at {addr} — start it with: mdw up")]
    Unreachable {
        addr: String,
        #[source]
        source: tonic::transport::Error,
    },
    /// The token file could not be read.
    #[error("cannot read the token file {path} (named by {TOKEN_FILE_ENV})")]
    TokenFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The token has characters that cannot go into a header.
    #[error("the Russell token from {from} contains characters not allowed in a header")]
    BadToken { from: &'static str },
}

/// Adds `authorization: Bearer <token>` to every request when a token is set.
#[derive(Debug, Clone, Default)]
pub struct BearerAuth {
    header: Option<MetadataValue<Ascii>>,
}

impl BearerAuth {
    /// An interceptor that sends `token` (none: sends nothing).
    pub fn new(token: Option<&str>) -> Result<Self, ClientError> {
        let header = match token {
            None => None,
            Some(t) => Some(
                format!("Bearer {}", t.trim())
                    .parse()
                    .map_err(|_| ClientError::BadToken { from: "the caller" })?,
            ),
        };
        Ok(Self { header })
    }

    /// The token from `MDW_RUSSELL_TOKEN` or the file named by `MDW_RUSSELL_TOKEN_FILE`.
    pub fn from_env() -> Result<Self, ClientError> {
        if let Ok(token) = std::env::var(TOKEN_ENV)
            && !token.trim().is_empty()
        {
            return Self::new(Some(&token)).map_err(|_| ClientError::BadToken { from: TOKEN_ENV });
        }
        if let Ok(path) = std::env::var(TOKEN_FILE_ENV)
            && !path.is_empty()
        {
            let token = std::fs::read_to_string(&path)
                .map_err(|source| ClientError::TokenFile { path, source })?;
            return Self::new(Some(&token)).map_err(|_| ClientError::BadToken {
                from: TOKEN_FILE_ENV,
            });
        }
        Ok(Self::default())
    }
}

impl tonic::service::Interceptor for BearerAuth {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(h) = &self.header {
            req.metadata_mut().insert("authorization", h.clone());
        }
        Ok(req)
    }
}

/// The URI for `addr`: `HOST:PORT` gets `http://` in front; a full URI is kept.
pub fn endpoint(addr: &str) -> Result<Endpoint, ClientError> {
    let uri = if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    };
    Endpoint::from_shared(uri)
        .map(|e| {
            e.connect_timeout(CONNECT_TIMEOUT)
                .max_frame_size(MAX_FRAME_SIZE)
        })
        .map_err(|source| ClientError::BadAddress {
            addr: addr.to_string(),
            source,
        })
}

/// Opens a channel to `addr` (fails fast when nothing answers).
pub async fn channel(addr: &str) -> Result<Channel, ClientError> {
    endpoint(addr)?
        .connect()
        .await
        .map_err(|source| ClientError::Unreachable {
            addr: addr.to_string(),
            source,
        })
}

/// Connects to Russell at `addr` with the token from the environment, if any.
pub async fn connect(addr: &str) -> Result<Client, ClientError> {
    let auth = BearerAuth::from_env()?;
    let channel = channel(addr).await?;
    Ok(RussellServiceClient::with_interceptor(channel, auth))
}

/// Whether Russell at `addr` answers its `grpc.health.v1` check with SERVING (no token
/// needed). `Err` when nothing answers.
pub async fn serving(addr: &str) -> Result<bool, ClientError> {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

    let mut health = HealthClient::new(channel(addr).await?);
    let reply = health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await;
    Ok(matches!(reply, Ok(r) if r.get_ref().status == ServingStatus::Serving as i32))
}

/// An error and its causes in one line (`error: cause: cause…`), skipping a cause whose text
/// the previous part already contains (transport errors often repeat their source). The one
/// helper for errors a client shows; the server side has `russell_core::error::chain`.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if parts.last().is_none_or(|last| !last.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

/// A failed call's text: Russell's message (the code when it sent none), then the
/// transport's cause chain when there is one the message does not already say.
pub fn status_text(status: &tonic::Status) -> String {
    use std::error::Error as _;
    let mut text = if status.message().is_empty() {
        format!("{:?}", status.code())
    } else {
        status.message().to_string()
    };
    if let Some(source) = status.source() {
        let chain = error_chain(source);
        if !text.contains(&chain) {
            text = format!("{text}: {chain}");
        }
    }
    text
}

/// A one-line explanation of a failed call for people: the code, the server's message and,
/// for connection problems, the address and a hint.
pub fn describe_status(addr: &str, status: &tonic::Status) -> String {
    match status.code() {
        tonic::Code::Unavailable => format!(
            "Russell at {addr} is unavailable ({}) — start it with: mdw up",
            status_text(status)
        ),
        tonic::Code::Unauthenticated => format!(
            "Russell at {addr} refused the call: {} — set {TOKEN_ENV} or {TOKEN_FILE_ENV}",
            status_text(status)
        ),
        _ => status_text(status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Layer(String, #[source] Option<Box<Layer>>);

    #[test]
    fn error_chain_joins_causes_and_skips_repeats() {
        let inner = Layer("connection refused".into(), None);
        let repeat = Layer(
            "tcp connect error: connection refused".into(),
            Some(inner.into()),
        );
        let outer = Layer("transport error".into(), Some(repeat.into()));
        assert_eq!(
            error_chain(&outer),
            "transport error: tcp connect error: connection refused"
        );
    }

    #[test]
    fn status_text_falls_back_to_the_code_and_names_the_address_when_unavailable() {
        assert_eq!(status_text(&tonic::Status::not_found("")), "NotFound");
        assert_eq!(
            describe_status("127.0.0.1:9", &tonic::Status::unavailable("gone")),
            "Russell at 127.0.0.1:9 is unavailable (gone) — start it with: mdw up"
        );
        assert_eq!(
            describe_status("x", &tonic::Status::not_found("no service 'kant'")),
            "no service 'kant'"
        );
    }

    #[test]
    fn endpoint_accepts_host_port_and_uri() {
        assert_eq!(
            endpoint("127.0.0.1:9100").map(|e| e.uri().to_string()).ok(),
            Some("http://127.0.0.1:9100/".to_string())
        );
        assert!(endpoint("http://[::1]:9100").is_ok());
        let err = endpoint("not a uri").expect_err("a bad address");
        assert!(matches!(err, ClientError::BadAddress { .. }), "{err}");
        assert!(err.to_string().contains("not a uri"), "{err}");
    }
}
