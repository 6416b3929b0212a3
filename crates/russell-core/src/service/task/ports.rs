//! The port check before a spawn: a port in use is adopted (its holder passes the
//! service's health check), replaced (it is this service's own process, or
//! `on_port_conflict = "kill"`) or refused with a message that names port, PID and command.

use std::time::Duration;

use russell_config::{PortConflictPolicy, Probe};
use tokio::time::Instant;

use super::ServiceTask;
use crate::EventKind;
use crate::error::PortConflict;
use crate::process::{self, Proc};

/// How long a stopped port holder's port may take to be free (the 5 s in
/// [`PortConflict::StillInUse`]).
const FREED_WITHIN: Duration = Duration::from_secs(5);

impl ServiceTask {
    /// Port conflicts before a spawn. `Ok(Some)` = a healthy holder to
    /// adopt; `Ok(None)` = ports free (a holder may have been stopped); `Err` = refuse.
    pub(super) async fn check_ports(&mut self) -> Result<Option<Proc>, PortConflict> {
        let service = self.svc.short_name.clone();
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
                return Err(PortConflict::Invisible { port, service });
            };
            let cmd = h.command_line.join(" ");
            if h.pid == std::process::id() {
                return Err(PortConflict::Russell {
                    port,
                    service,
                    pid: h.pid,
                });
            }
            match self.svc.on_port_conflict {
                PortConflictPolicy::Fail => {
                    return Err(PortConflict::Refused {
                        port,
                        service,
                        pid: h.pid,
                        command: cmd,
                    });
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
                        return Err(PortConflict::Stranger {
                            port,
                            service,
                            pid: h.pid,
                            command: cmd,
                        });
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
    ) -> Result<(), PortConflict> {
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
        let deadline = Instant::now() + FREED_WITHIN;
        // The same /proc/net scan as in check_ports, polled: off the runtime's threads too,
        // or every other service, probe and status read would stall for up to 5 s.
        let listening = || async move {
            tokio::task::spawn_blocking(move || crate::proc::ports::is_listening(port))
                .await
                .unwrap_or(true)
        };
        while listening().await {
            if Instant::now() >= deadline {
                return Err(PortConflict::StillInUse {
                    port,
                    service: self.svc.short_name.clone(),
                    pid,
                    command: cmd.to_string(),
                });
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
