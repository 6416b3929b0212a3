//! Waiting, with bounds, for ports to answer.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;

/// True when something accepts a TCP connection on 127.0.0.1:`port` (blocking connect;
/// on loopback a refusal comes back at once).
pub fn port_answers(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// Connect loop over `ports` (one sequential sweep over the ports not yet answering, then
/// a 1 ms pause), on a blocking thread so the async runtime stays free. Returns the moment
/// the last port answered, or fails after `timeout` naming the ports still silent.
/// Dropping the future stops the thread at its next sweep.
pub async fn all_ports_answer(ports: &[u16], timeout: Duration) -> anyhow::Result<Instant> {
    /// Sets the flag when the waiting future goes away (finished or dropped).
    struct StopOnDrop(Arc<AtomicBool>);
    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let ports = ports.to_vec();
    let stop = StopOnDrop(Arc::new(AtomicBool::new(false)));
    let stopped = stop.0.clone();
    tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + timeout;
        let mut pending = ports;
        loop {
            if stopped.load(Ordering::Relaxed) {
                bail!("the wait for {} ports was given up", pending.len());
            }
            let sweep_started = Instant::now();
            pending.retain(|&p| !port_answers(p));
            let now = Instant::now();
            let sweep = now - sweep_started;
            if pending.is_empty() {
                return Ok(now);
            }
            if now >= deadline {
                let shown: Vec<String> = pending.iter().take(10).map(u16::to_string).collect();
                bail!(
                    "{} ports still not answering after {timeout:?}: {}{}",
                    pending.len(),
                    shown.join(", "),
                    if pending.len() > 10 { ", …" } else { "" }
                );
            }
            std::thread::sleep(Duration::from_millis(1).max(sweep * 3));
        }
    })
    .await?
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::net::TcpListener;

    #[tokio::test]
    async fn ports_answer_once_bound() {
        let ports = crate::ports::free_ports(3).unwrap();
        assert!(!port_answers(ports[0]));
        let late = ports[2];
        let binder = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            TcpListener::bind(("127.0.0.1", late)).unwrap()
        });
        let _a = TcpListener::bind(("127.0.0.1", ports[0])).unwrap();
        let _b = TcpListener::bind(("127.0.0.1", ports[1])).unwrap();
        let t0 = Instant::now();
        let done = all_ports_answer(&ports, Duration::from_secs(10))
            .await
            .unwrap();
        assert!(done.duration_since(t0) >= Duration::from_millis(50));
        let _c = binder.join().unwrap();
    }

    #[tokio::test]
    async fn silent_ports_time_out_with_their_numbers() {
        let ports = crate::ports::free_ports(1).unwrap();
        let e = all_ports_answer(&ports, Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(e.to_string().contains(&ports[0].to_string()), "{e}");
    }
}
