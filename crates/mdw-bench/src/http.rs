//! A keep-alive HTTP/1.1 client for the bench: one connection, one request at a time,
//! on hyper's connection API (the crate Russell's HTTP listener and the stand-in use).
//! It reads Russell's `/metrics` and `/v1/status` and the stand-ins' `/health`.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::client::conn::http1::{SendRequest, handshake};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// One open HTTP/1.1 connection to `addr`.
pub struct HttpConn {
    addr: SocketAddr,
    sender: SendRequest<Empty<Bytes>>,
    task: tokio::task::JoinHandle<()>,
}

/// A reply: its status code and its whole body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Bytes,
}

impl HttpConn {
    /// Connects (TCP_NODELAY, as Russell's side) and drives the connection on a task.
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<HttpConn> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot connect to http://{addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, conn) = handshake(TokioIo::new(stream))
            .await
            .with_context(|| format!("HTTP handshake with {addr} failed"))?;
        let task = tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(HttpConn { addr, sender, task })
    }

    /// `GET path` on this connection; the whole body is read.
    pub async fn get(&mut self, path: &str) -> anyhow::Result<Reply> {
        self.sender
            .ready()
            .await
            .with_context(|| format!("the connection to {} closed", self.addr))?;
        let request = hyper::Request::get(path)
            .header(hyper::header::HOST, self.addr.to_string())
            .body(Empty::new())
            .context("cannot build the request")?;
        let reply = self
            .sender
            .send_request(request)
            .await
            .with_context(|| format!("GET http://{}{path} failed", self.addr))?;
        let status = reply.status().as_u16();
        let body = reply
            .into_body()
            .collect()
            .await
            .with_context(|| format!("reading the body of http://{}{path} failed", self.addr))?
            .to_bytes();
        Ok(Reply { status, body })
    }
}

impl Drop for HttpConn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One `GET` on a fresh connection, bounded by `timeout`; fails on a status other than 200.
pub async fn get_once(addr: SocketAddr, path: &str, timeout: Duration) -> anyhow::Result<Bytes> {
    let reply = tokio::time::timeout(timeout, async {
        HttpConn::connect(addr).await?.get(path).await
    })
    .await
    .with_context(|| format!("GET http://{addr}{path} took over {timeout:?}"))??;
    if reply.status != 200 {
        bail!(
            "GET http://{addr}{path} answered {}: {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        );
    }
    Ok(reply.body)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-connection server that answers every request with `body`.
    async fn serve(body: &'static str) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let mut seen = Vec::new();
            while let Ok(n) = s.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                seen.extend_from_slice(&buf[..n]);
                while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                    seen.drain(..end + 4);
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    s.write_all(reply.as_bytes()).await.unwrap();
                }
            }
        });
        addr
    }

    #[tokio::test]
    async fn requests_reuse_one_connection_and_read_the_whole_body() {
        let addr = serve("hello").await;
        let mut c = HttpConn::connect(addr).await.unwrap();
        for _ in 0..3 {
            let r = c.get("/x").await.unwrap();
            assert_eq!((r.status, &r.body[..]), (200, &b"hello"[..]));
        }
    }

    #[tokio::test]
    async fn a_closed_port_names_the_address() {
        let port = crate::ports::free_ports(1).unwrap()[0];
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let e = get_once(addr, "/", Duration::from_secs(2))
            .await
            .unwrap_err();
        assert!(format!("{e:#}").contains(&port.to_string()), "{e:#}");
    }
}
