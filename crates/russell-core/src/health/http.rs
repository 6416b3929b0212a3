//! HTTP probe: GET the URL; healthy on 2xx whose body contains `expect_body` when set.
//!
//! One hyper client for the whole process (cheap to share, built on first use). It keeps no
//! idle connections: a probe every few seconds gains little from keep-alive, and a pooled
//! connection the service closed in the meantime would fail the next probe spuriously.

use std::sync::OnceLock;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Uri;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;

use super::{ProbeError, first_line, innermost, io_kind};

/// Read at most this much of a response body.
const BODY_LIMIT: usize = 64 * 1024;

fn client() -> &'static Client<HttpConnector, Empty<Bytes>> {
    static CLIENT: OnceLock<Client<HttpConnector, Empty<Bytes>>> = OnceLock::new();
    CLIENT.get_or_init(|| {
        Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build_http()
    })
}

/// GETs `url` (http only) and checks status and body.
pub(super) async fn probe(
    target: &str,
    url: &str,
    expect_body: Option<&str>,
) -> Result<(), ProbeError> {
    let uri: Uri = url.parse().map_err(|_| ProbeError::InvalidTarget {
        target: target.to_string(),
        what: "not a valid URL",
    })?;
    if uri.scheme_str() != Some("http") {
        return Err(ProbeError::InvalidTarget {
            target: target.to_string(),
            what: "only http:// URLs are supported",
        });
    }
    let response = client().get(uri).await.map_err(|err| match io_kind(&err) {
        Some(kind) => ProbeError::Io {
            target: target.to_string(),
            kind,
        },
        None => ProbeError::Http {
            target: target.to_string(),
            what: innermost(&err),
        },
    })?;
    let status = response.status();
    if status.is_success() && expect_body.is_none() {
        return Ok(());
    }
    let body = read_body(target, response.into_body()).await?;
    if !status.is_success() {
        return Err(ProbeError::HttpStatus {
            target: target.to_string(),
            status: status.as_u16(),
            body: first_line(&body),
        });
    }
    match expect_body {
        Some(expected) if !String::from_utf8_lossy(&body).contains(expected) => {
            Err(ProbeError::BodyMismatch {
                target: target.to_string(),
                expected: expected.to_string(),
            })
        }
        _ => Ok(()),
    }
}

/// Reads the body up to [`BODY_LIMIT`] bytes; the rest is dropped with the connection.
async fn read_body(target: &str, mut body: hyper::body::Incoming) -> Result<Vec<u8>, ProbeError> {
    let mut bytes = Vec::new();
    while bytes.len() < BODY_LIMIT {
        match body.frame().await {
            None => break,
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    bytes.extend_from_slice(&data);
                }
            }
            Some(Err(err)) => {
                return Err(ProbeError::Http {
                    target: target.to_string(),
                    what: format!("reading the body: {}", innermost(&err)),
                });
            }
        }
    }
    bytes.truncate(BODY_LIMIT);
    Ok(bytes)
}
