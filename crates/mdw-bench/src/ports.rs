//! Free loopback ports, picked at run time.

use std::net::TcpListener;

/// `n` distinct free ports on 127.0.0.1: all are bound at once (so the kernel hands out
/// distinct ones), then released for the services to take.
pub fn free_ports(n: usize) -> std::io::Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ports_are_distinct_and_bindable_again() {
        let ports = free_ports(300).unwrap();
        assert_eq!(ports.iter().collect::<HashSet<_>>().len(), 300);
        assert!(ports.iter().all(|&p| p != 0));
        TcpListener::bind(("127.0.0.1", ports[0])).unwrap();
    }
}
