//! A free loopback port, shared by the `common` and `reliability_common` fixtures.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::sync::Mutex;

/// A loopback port that was free a moment ago (bind port 0, read it, drop the listener);
/// never the same one twice in one test binary.
pub fn free_port() -> u16 {
    static TAKEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("bind 127.0.0.1:0")
            .local_addr()
            .expect("local addr")
            .port();
        if TAKEN.lock().expect("port set").insert(port) {
            return port;
        }
    }
}
