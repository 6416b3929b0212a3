//! `--register ADDR`: the stand-in announces itself to Russell as an mDW service does,
//! through mDW's `mdw.russell.RussellService`: Register{name, address "localhost", port,
//! version} once its ports are open, Heartbeat{id} every `--heartbeat-every`, Register
//! again when a heartbeat comes back `acknowledged = false` (Russell forgot the id, e.g.
//! after its restart), Deregister{id} when the stand-in is told to stop. An error from
//! Russell is printed and the next tick tries again; it never ends the stand-in.

use std::time::Duration;

use russell_api::mdw::russell as m;
use russell_api::mdw::russell::russell_service_client::RussellServiceClient;
use tokio::sync::oneshot;
use tokio::time::MissedTickBehavior;
use tonic::transport::Channel;

use crate::{say, say_err};

/// How long one call to Russell may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);

/// What to announce.
#[derive(Debug, Clone)]
pub struct Announce {
    pub russell: String,
    pub name: String,
    pub version: String,
    pub port: u16,
    pub every: Duration,
}

/// The running registration; [`Registration::deregister`] ends it.
#[derive(Debug)]
pub struct Registration {
    stop: oneshot::Sender<oneshot::Sender<()>>,
}

impl Registration {
    /// Starts registering and heartbeating in a task of its own.
    pub fn spawn(a: Announce) -> anyhow::Result<Self> {
        let channel = russell_api::client::endpoint(&a.russell)?
            .timeout(CALL_TIMEOUT)
            .connect_lazy();
        let (stop, stopped) = oneshot::channel();
        tokio::spawn(run(a, RussellServiceClient::new(channel), stopped));
        Ok(Self { stop })
    }

    /// Deregisters (waiting at most `limit`) and ends the heartbeats.
    pub async fn deregister(self, limit: Duration) {
        let (done, finished) = oneshot::channel();
        if self.stop.send(done).is_ok() {
            let _ = tokio::time::timeout(limit, finished).await;
        }
    }
}

async fn run(
    a: Announce,
    mut client: RussellServiceClient<Channel>,
    mut stopped: oneshot::Receiver<oneshot::Sender<()>>,
) {
    let mut id: Option<String> = None;
    let mut tick = tokio::time::interval(a.every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            done = &mut stopped => {
                if let Some(id) = id.take() {
                    match client.deregister(m::DeregisterRequest { id: id.clone() }).await {
                        Ok(_) => say(&format!("{}: deregistered {id}", a.name)),
                        Err(e) => say_err(&format!("{}: deregister {id} failed: {}", a.name, e.message())),
                    }
                }
                if let Ok(done) = done {
                    let _ = done.send(());
                }
                return;
            }
            _ = tick.tick() => {
                if let Some(current) = id.clone() {
                    match client.heartbeat(m::HeartbeatRequest { id: current.clone() }).await {
                        Ok(r) if r.get_ref().acknowledged => continue,
                        Ok(_) => {
                            say(&format!("{}: heartbeat for {current} not acknowledged; registering again", a.name));
                        }
                        Err(e) => {
                            say_err(&format!("{}: heartbeat failed: {}", a.name, e.message()));
                            continue;
                        }
                    }
                }
                id = register(&a, &mut client).await;
            }
        }
    }
}

async fn register(a: &Announce, client: &mut RussellServiceClient<Channel>) -> Option<String> {
    let req = m::RegisterRequest {
        name: a.name.clone(),
        address: "localhost".to_string(),
        port: i32::from(a.port),
        version: a.version.clone(),
        ..Default::default()
    };
    match client.register(req).await {
        Ok(r) if r.get_ref().success => {
            let id = r.into_inner().id;
            say(&format!(
                "{}: registered with Russell at {} as {id}",
                a.name, a.russell
            ));
            Some(id)
        }
        Ok(r) => {
            say_err(&format!(
                "{}: registration refused: {}",
                a.name,
                r.get_ref().message
            ));
            None
        }
        Err(e) => {
            say_err(&format!(
                "{}: cannot register with Russell at {}: {}",
                a.name,
                a.russell,
                e.message()
            ));
            None
        }
    }
}
