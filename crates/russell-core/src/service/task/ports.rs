//! The port check before a spawn: a port in use is adopted (its holder passes the
//! service's health check), replaced (it is this service's own process, or
//! `on_port_conflict = "kill"`) or refused with a message that names port, PID and command.

use std::time::Duration;

use russell_config::{PortConflictPolicy, Probe};
use tokio::time::Instant;

use super::ServiceTask;
use crate::EventKind;
use crate::process::{self, Proc};

impl ServiceTask {
    /// Port conflicts before a spawn. `Ok(Some)` = a healthy holder to
    /// adopt; `Ok(None)` = ports free (a holder may have been stopped); `Err` = refuse.
    pub(super) async fn check_ports(&mut self) -> Result<Option<Proc>, String> {
        let name = self.svc.short_name.clone();
        for port in self.svc.ports() {
            if port_is_free(port) {
                continue;
            }
            // The /proc scans are slow on a busy host (thousands of sockets): off the
            // runtime's threads.
            let dir = self.shared.state_dir.clone();
            let (listening, holders, holder_mark) = tokio::task::spawn_blocking(move || {
                let listening = crate::proc::ports::is_listening(port);
                let holders = if listening {
                    crate::proc::ports::listening_holders(port)
                } else {
                    Vec::new()
                };
                // Whose marks the holder carries (see proc::strays).
                let mark = holders
                    .first()
                    .and_then(|h| crate::proc::strays::mark(h.pid, &dir));
                (listening, holders, mark)
            })
            .await
            .unwrap_or_default();
            if !listening {
                continue;
            }
            let Some(h) = holders.first() else {
                return Err(format!(
                    "port {port} of '{name}' is in use by a process Russell cannot see (another user?); free the port or change it in the config"
                ));
            };
            let cmd = h.command_line.join(" ");
            if h.pid == std::process::id() {
                return Err(format!(
                    "port {port} of '{name}' is in use by Russell itself (PID {}); change the port",
                    h.pid
                ));
            }
            match self.svc.on_port_conflict {
                PortConflictPolicy::Fail => {
                    return Err(format!(
                        "port {port} of '{name}' is in use by PID {} ({cmd}); on_port_conflict = \"fail\": stop that process or change the port",
                        h.pid
                    ));
                }
                PortConflictPolicy::Adopt => {
                    let probe = &self.svc.health_check.probe;
                    if *probe != Probe::None
                        && crate::health::probe(probe, self.svc.health_check.timeout)
                            .await
                            .is_ok()
                    {
                        return Ok(Some(Proc::adopt(h.pid, h.start_time)));
                    }
                    let ours = h.command_line == self.svc.command
                        || holder_mark.as_deref() == Some(self.svc.short_name.as_str())
                        || self
                            .known
                            .iter()
                            .any(|k| k.pid == h.pid && k.start_time == h.start_time);
                    if !ours {
                        return Err(format!(
                            "port {port} of '{name}' is in use by PID {} ({cmd}), which is neither this service nor healthy by its check; it was left alone: stop it, change the port, or set on_port_conflict = \"kill\"",
                            h.pid
                        ));
                    }
                    self.replace_holder(port, h.pid, h.start_time, &cmd).await?;
                }
                PortConflictPolicy::Kill => {
                    self.replace_holder(port, h.pid, h.start_time, &cmd).await?;
                }
            }
        }
        Ok(None)
    }

    /// Stops a port holder gracefully and waits for the port to be free.
    pub(super) async fn replace_holder(
        &mut self,
        port: u16,
        pid: u32,
        start_time: u64,
        cmd: &str,
    ) -> Result<(), String> {
        self.emit(
            EventKind::PortConflict,
            format!("port {port} is held by PID {pid} ({cmd}); stopping it"),
        );
        let mut holder = Proc::adopt(pid, start_time);
        process::stop(
            &mut holder,
            process::stop_signal(&self.svc),
            self.svc.stop_timeout,
        )
        .await;
        let deadline = Instant::now() + Duration::from_secs(5);
        // The same /proc/net scan as in check_ports, polled: off the runtime's threads too,
        // or every other service, probe and status read would stall for up to 5 s.
        let listening = || async move {
            tokio::task::spawn_blocking(move || crate::proc::ports::is_listening(port))
                .await
                .unwrap_or(true)
        };
        while listening().await {
            if Instant::now() >= deadline {
                return Err(format!(
                    "port {port} of '{}' is still in use 5 s after PID {pid} ({cmd}) was stopped; free the port or change it in the config",
                    self.svc.short_name
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }
}

/// Fast path of the port check: if we can bind the port on every address ourselves, nobody
/// listens on it (std sets SO_REUSEADDR, so TIME_WAIT leftovers do not count). The probe
/// listener is closed at once. Any failure means "look closer" (the /proc scan).
fn port_is_free(port: u16) -> bool {
    std::net::TcpListener::bind((std::net::Ipv4Addr::UNSPECIFIED, port)).is_ok()
}
