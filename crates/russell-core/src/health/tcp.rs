//! TCP probe: healthy when a connection to `addr` is accepted.

use super::{ProbeError, io_kind};

/// Connects to `addr` ("host:port") and closes the connection at once.
pub(super) async fn probe(target: &str, addr: &str) -> Result<(), ProbeError> {
    match tokio::net::TcpStream::connect(addr).await {
        Ok(_stream) => Ok(()),
        Err(err) => Err(ProbeError::Io {
            target: target.to_string(),
            kind: io_kind(&err).unwrap_or(err.kind()),
        }),
    }
}
