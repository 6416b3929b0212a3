//! HTTP probe: GET the URL; healthy on 2xx whose body contains `expect_body` when set.
//! [`get`] is also the transport of the Ollama probe (see `ollama.rs`).
//!
//! One fresh connection per probe, driven by hyper's http1 connection API in the probe's own
//! future (no pool, no spawned task): a probe every few seconds gains nothing from
//! keep-alive, a pooled connection the service closed meanwhile would fail the next probe
//! spuriously, and a refused connect during a start costs one socket call instead of the
//! pooling client's layers. Dropping the probe (its timeout) drops the connection.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::header::{CONNECTION, HOST};
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::{ProbeError, first_line, innermost, io_kind};

/// Read at most this much of a response body for `expect_body` and error messages.
const BODY_LIMIT: usize = 64 * 1024;

/// GETs `url` (http only) and checks status and body.
pub(super) async fn probe(
    target: &str,
    url: &str,
    expect_body: Option<&str>,
) -> Result<(), ProbeError> {
    let limit = if expect_body.is_some() { BODY_LIMIT } else { 0 };
    let response = get(target, url, limit).await?;
    match expect_body {
        Some(expected) if !String::from_utf8_lossy(&response).contains(expected) => {
            Err(ProbeError::BodyMismatch {
                target: target.to_string(),
                expected: expected.to_string(),
            })
        }
        _ => Ok(()),
    }
}

/// GETs `url` (http only) on a fresh connection. A 2xx answer gives at most `body_limit`
/// bytes of its body (0: not read); any other status is [`ProbeError::HttpStatus`].
pub(super) async fn get(target: &str, url: &str, body_limit: usize) -> Result<Vec<u8>, ProbeError> {
    let invalid = |what| ProbeError::InvalidTarget {
        target: target.to_string(),
        what,
    };
    let uri: Uri = url.parse().map_err(|_| invalid("not a valid URL"))?;
    if uri.scheme_str() != Some("http") {
        return Err(invalid("only http:// URLs are supported"));
    }
    let (Some(authority), Some(host)) = (uri.authority(), uri.host()) else {
        return Err(invalid("the URL names no host"));
    };
    // "[::1]" → "::1" for the socket address.
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(80);
    let io_kind_error = |kind| ProbeError::Io {
        target: target.to_string(),
        kind,
    };
    let io_error = |err: std::io::Error| io_kind_error(err.kind());
    let http_error = |err: hyper::Error| match io_kind(&err) {
        Some(kind) => io_kind_error(kind),
        None => ProbeError::Http {
            target: target.to_string(),
            what: innermost(&err),
        },
    };

    let stream = TcpStream::connect((host, port)).await.map_err(io_error)?;
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(http_error)?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let request = Request::get(path)
        .header(HOST, authority.as_str())
        .header(CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|_| invalid("not a valid URL"))?;
    let exchange = async move {
        let response = sender.send_request(request).await.map_err(http_error)?;
        let status = response.status();
        if status.is_success() && body_limit == 0 {
            return Ok(Vec::new());
        }
        let body = read_body(target, response.into_body(), body_limit.max(BODY_LIMIT)).await?;
        if !status.is_success() {
            return Err(ProbeError::HttpStatus {
                target: target.to_string(),
                status: status.as_u16(),
                body: first_line(&body),
            });
        }
        Ok(body)
    };
    // The connection must be polled for the exchange to progress; it ends once the
    // exchange is done (the sender is gone) or the server closes. Its own error, if any,
    // has already failed the exchange.
    let (result, _) = futures_util::future::join(exchange, connection).await;
    result
}

/// Reads the body up to `limit` bytes; the rest is dropped with the connection.
async fn read_body(
    target: &str,
    mut body: hyper::body::Incoming,
    limit: usize,
) -> Result<Vec<u8>, ProbeError> {
    let mut bytes = Vec::new();
    while bytes.len() < limit {
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
    bytes.truncate(limit);
    Ok(bytes)
}
