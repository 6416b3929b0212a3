//! Everything that talks to Russell. The UI sends [`Command`]s through the [`Api`] trait and
//! receives [`Update`]s on a channel; one background task owns the gRPC client, the connection
//! and its retries, the event stream, the periodic refresh and the log stream. Actions run as
//! their own tasks, so a long StartAllServices never blocks a status update or a key.

use std::sync::Arc;
use std::time::Duration;

use russell_api::client::{BearerAuth, Client, error_chain, status_text};
use russell_api::pb;
use russell_api::pb::russell_service_client::RussellServiceClient;
use tokio::sync::{Notify, mpsc};
use tokio::task::{AbortHandle, JoinSet};
use tonic::transport::Endpoint;

mod run;
use run::{command_id, run_action};

/// How long a status request may take before Russell counts as unreachable.
const STATUS_TIMEOUT: Duration = Duration::from_secs(3);
/// The safety-net refresh period (push events do the real work).
const REFRESH_PERIOD: Duration = Duration::from_secs(2);
/// A second status fetch this long after an event-triggered one, to pick up what Russell
/// published just after the event.
const FOLLOW_UP: Duration = Duration::from_millis(250);
/// Lines of log history requested when the log pane opens.
const LOG_TAIL: u32 = 500;

/// A request from the UI. `id`s come from the state and come back in [`Update::Done`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// StartAllServices.
    StartAll { id: u64 },
    /// StopAllServices.
    StopAll { id: u64 },
    /// StartService `name`.
    Start { id: u64, name: String },
    /// StopService `name`.
    Stop { id: u64, name: String },
    /// RestartService `name`.
    Restart { id: u64, name: String },
    /// Start Russell in the background (only while it is not reachable; see [`Launcher`]).
    LaunchRussell { id: u64 },
    /// Follow the logs of `name` (replacing any previous log stream), or stop when `None`.
    Logs {
        generation: u64,
        name: Option<String>,
    },
}

/// News from Russell (or about reaching it), applied to the state by `State::apply`.
#[derive(Debug, Clone)]
pub enum Update {
    /// Connected; a fresh status follows.
    Connected,
    /// Russell did not answer; `attempt` counts failed tries since the last success.
    Unreachable { error: String, attempt: u32 },
    /// A full status (initial, after an event, or periodic).
    Status(Box<pb::OrchestratorStatus>),
    /// One pushed event.
    Event(pb::Event),
    /// The log stream of `generation` (re)started: forget the lines shown so far.
    LogReset { generation: u64 },
    /// One log line of the stream `generation`.
    Log { generation: u64, line: pb::LogLine },
    /// The log stream `generation` ended (with an error when `Some`).
    LogEnded {
        generation: u64,
        error: Option<String>,
    },
    /// An action finished: `Ok(summary)` or `Err(Russell's error)`.
    Done {
        id: u64,
        outcome: Result<String, String>,
    },
}

/// Starts Russell in the background, as `mdw up -d` does, and says how (`Ok`) or why not
/// (`Err`). The binary provides it (ControlCenter does not know how Russell is run); it must
/// refuse when a Russell already answers, so that pressing the key twice never starts two.
pub type Launcher = Arc<
    dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, String>> + Send>>
        + Send
        + Sync,
>;

/// Where the UI sends its commands. The real one is [`Handle`]; tests use a fake.
pub trait Api {
    /// Queues a command; never blocks.
    fn send(&mut self, command: Command);
}

/// The UI side of the background task. Dropping it ends the task.
#[derive(Debug)]
pub struct Handle {
    /// UI → background task; the task ends when this is dropped.
    commands: mpsc::UnboundedSender<Command>,
}

impl Api for Handle {
    fn send(&mut self, command: Command) {
        // The task only ends after the UI drops the handle, so a failed send cannot happen
        // while the UI runs; if it did, there is nobody left to tell.
        let _ = self.commands.send(command);
    }
}

/// Starts the background task; returns the command handle and the update receiver.
/// `launcher`, when given, serves [`Command::LaunchRussell`] while Russell is unreachable.
pub fn spawn(
    endpoint: Endpoint,
    auth: BearerAuth,
    launcher: Option<Launcher>,
) -> (Handle, mpsc::UnboundedReceiver<Update>) {
    let (commands, command_rx) = mpsc::unbounded_channel();
    let (update_tx, updates) = mpsc::unbounded_channel();
    tokio::spawn(background(endpoint, auth, launcher, command_rx, update_tx));
    (Handle { commands }, updates)
}

/// Delay before reconnect attempt `attempt` (1-based): 200 ms doubling, at most 2 s.
fn backoff(attempt: u32) -> Duration {
    let exp = attempt.saturating_sub(1).min(4);
    Duration::from_millis(200 * (1u64 << exp)).min(Duration::from_secs(2))
}

/// Why a connected session ended.
enum SessionEnd {
    /// The UI dropped its handle.
    Quit,
    /// The connection broke; the text says how.
    Lost(String),
}

/// Connect, serve a session, and on any loss retry with backoff, forever (until the UI quits).
async fn background(
    endpoint: Endpoint,
    auth: BearerAuth,
    launcher: Option<Launcher>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    ui: mpsc::UnboundedSender<Update>,
) {
    let mut attempt = 0u32;
    // The log stream to resume after a reconnect.
    let mut logs: Option<(u64, String)> = None;
    // A launch under way: its result ends the wait below so that we reconnect at once.
    let mut launch: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        match connect(&endpoint, &auth).await {
            Ok((client, status)) => {
                let _ = ui.send(Update::Connected);
                let _ = ui.send(Update::Status(Box::new(status)));
                match session(client, &mut commands, &ui, &mut logs).await {
                    SessionEnd::Quit => return,
                    SessionEnd::Lost(error) => {
                        attempt = 1;
                        let _ = ui.send(Update::Unreachable { error, attempt });
                    }
                }
            }
            Err(error) => {
                attempt = attempt.saturating_add(1);
                let _ = ui.send(Update::Unreachable { error, attempt });
            }
        }
        // Wait before the next try, answering commands meanwhile.
        let sleep = tokio::time::sleep(backoff(attempt));
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => break,
                _ = async {
                    match launch.as_mut() {
                        Some(task) => task.await,
                        None => std::future::pending().await,
                    }
                } => {
                    launch = None;
                    break;
                }
                command = commands.recv() => match command {
                    None => return,
                    Some(Command::Logs { generation, name }) => {
                        logs = name.map(|n| (generation, n));
                    }
                    Some(Command::LaunchRussell { id }) => {
                        let outcome = match (&launcher, &launch) {
                            (None, _) => Some(Err(NO_LAUNCHER.to_string())),
                            (Some(_), Some(_)) => {
                                Some(Err("Russell is being started already; a moment".to_string()))
                            }
                            (Some(launcher), None) => {
                                let (launcher, ui) = (launcher.clone(), ui.clone());
                                launch = Some(tokio::spawn(async move {
                                    let outcome = launcher().await;
                                    let _ = ui.send(Update::Done { id, outcome });
                                }));
                                None
                            }
                        };
                        if let Some(outcome) = outcome {
                            let _ = ui.send(Update::Done { id, outcome });
                        }
                    }
                    Some(command) => {
                        let _ = ui.send(Update::Done {
                            id: command_id(&command),
                            outcome: Err("Russell is not reachable; try again when it is".into()),
                        });
                    }
                },
            }
        }
    }
}

/// What [`Command::LaunchRussell`] answers when this ControlCenter was given no launcher.
const NO_LAUNCHER: &str = "this ControlCenter cannot start Russell; start it with: mdw up -d";

/// Opens the channel and fetches a first status (only then does Russell count as reachable).
async fn connect(
    endpoint: &Endpoint,
    auth: &BearerAuth,
) -> Result<(Client, pb::OrchestratorStatus), String> {
    let channel = endpoint.connect().await.map_err(|e| error_chain(&e))?;
    let mut client = RussellServiceClient::with_interceptor(channel, auth.clone());
    let status = fetch_status(&mut client).await?;
    Ok((client, status))
}

async fn fetch_status(client: &mut Client) -> Result<pb::OrchestratorStatus, String> {
    match tokio::time::timeout(
        STATUS_TIMEOUT,
        client.get_orchestrator_status(pb::StatusRequest {}),
    )
    .await
    {
        Ok(Ok(response)) => Ok(response.into_inner()),
        Ok(Err(status)) => Err(status_text(&status)),
        Err(_) => Err(format!(
            "GetOrchestratorStatus got no answer within {}",
            humantime::format_duration(STATUS_TIMEOUT)
        )),
    }
}

/// One connected period: event stream, refresher and log stream run as tasks; commands
/// spawn action tasks. Everything is aborted when the session ends (the JoinSet drops).
async fn session(
    client: Client,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    ui: &mpsc::UnboundedSender<Update>,
    logs: &mut Option<(u64, String)>,
) -> SessionEnd {
    let mut tasks = JoinSet::new();
    // Any task that finds the connection broken reports here; the session then ends.
    let (lost_tx, mut lost_rx) = mpsc::channel::<String>(4);
    // Wakes the refresher: after each event and each finished action.
    let refresh = Arc::new(Notify::new());
    tasks.spawn(watch_events(
        client.clone(),
        ui.clone(),
        refresh.clone(),
        lost_tx.clone(),
    ));
    tasks.spawn(refresher(
        client.clone(),
        ui.clone(),
        refresh.clone(),
        lost_tx.clone(),
    ));
    let mut log_task: Option<AbortHandle> = logs.as_ref().map(|(generation, name)| {
        tasks.spawn(stream_logs(
            client.clone(),
            *generation,
            name.clone(),
            ui.clone(),
        ))
    });
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                None => return SessionEnd::Quit,
                Some(Command::Logs { generation, name }) => {
                    if let Some(task) = log_task.take() {
                        task.abort();
                    }
                    *logs = name.map(|n| (generation, n));
                    log_task = logs.as_ref().map(|(generation, name)| {
                        tasks.spawn(stream_logs(client.clone(), *generation, name.clone(), ui.clone()))
                    });
                }
                Some(command) => {
                    tasks.spawn(run_action(client.clone(), command, ui.clone(), refresh.clone()));
                }
            },
            Some(error) = lost_rx.recv() => return SessionEnd::Lost(error),
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
}

/// Forwards every pushed event and asks for a fresh status after each.
async fn watch_events(
    mut client: Client,
    ui: mpsc::UnboundedSender<Update>,
    refresh: Arc<Notify>,
    lost: mpsc::Sender<String>,
) {
    let mut stream = match client
        .watch_events(pb::WatchEventsRequest { names: Vec::new() })
        .await
    {
        Ok(response) => response.into_inner(),
        Err(status) => {
            let _ = lost
                .send(format!("WatchEvents: {}", status_text(&status)))
                .await;
            return;
        }
    };
    // Anything that happened between the first status and the subscription.
    refresh.notify_one();
    loop {
        match stream.message().await {
            Ok(Some(event)) => {
                let _ = ui.send(Update::Event(event));
                refresh.notify_one();
            }
            Ok(None) => {
                let _ = lost.send("Russell closed the event stream".into()).await;
                return;
            }
            Err(status) => {
                let _ = lost
                    .send(format!("event stream: {}", status_text(&status)))
                    .await;
                return;
            }
        }
    }
}

/// Fetches the status when woken (coalescing bursts of events), once more shortly after
/// each event-triggered fetch, and every few seconds.
async fn refresher(
    mut client: Client,
    ui: mpsc::UnboundedSender<Update>,
    refresh: Arc<Notify>,
    lost: mpsc::Sender<String>,
) {
    let mut follow_up = false;
    loop {
        let wait = if follow_up { FOLLOW_UP } else { REFRESH_PERIOD };
        follow_up = tokio::select! {
            () = refresh.notified() => true,
            () = tokio::time::sleep(wait) => false,
        };
        match fetch_status(&mut client).await {
            Ok(status) => {
                let _ = ui.send(Update::Status(Box::new(status)));
            }
            Err(error) => {
                let _ = lost.send(error).await;
                return;
            }
        }
    }
}

/// Follows one service's log.
async fn stream_logs(
    mut client: Client,
    generation: u64,
    name: String,
    ui: mpsc::UnboundedSender<Update>,
) {
    let request = pb::StreamLogsRequest {
        name,
        tail: LOG_TAIL,
        follow: true,
        ..Default::default()
    };
    let _ = ui.send(Update::LogReset { generation });
    let mut stream = match client.stream_logs(request).await {
        Ok(response) => response.into_inner(),
        Err(status) => {
            let _ = ui.send(Update::LogEnded {
                generation,
                error: Some(status_text(&status)),
            });
            return;
        }
    };
    let error = loop {
        match stream.message().await {
            Ok(Some(line)) => {
                let _ = ui.send(Update::Log { generation, line });
            }
            Ok(None) => break None,
            Err(status) => break Some(status_text(&status)),
        }
    };
    let _ = ui.send(Update::LogEnded { generation, error });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loopback port with nothing listening (bound, read, released).
    fn closed_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("bind a free port")
    }

    #[tokio::test]
    async fn unreachable_russell_is_retried_and_actions_get_an_error() {
        let addr = format!("127.0.0.1:{}", closed_port());
        let (mut handle, mut updates) = spawn(
            russell_api::client::endpoint(&addr).expect("endpoint"),
            BearerAuth::default(),
            None,
        );
        let mut attempts = Vec::new();
        let mut rejected = None;
        handle.send(Command::StartAll { id: 7 });
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while (attempts.len() < 3 || rejected.is_none()) && tokio::time::Instant::now() < deadline {
            match tokio::time::timeout_at(deadline, updates.recv()).await {
                Ok(Some(Update::Unreachable { error, attempt })) => {
                    assert!(error.contains("onnection refused"), "{error}");
                    attempts.push(attempt);
                }
                Ok(Some(Update::Done { id, outcome })) => rejected = Some((id, outcome)),
                Ok(Some(other)) => panic!("unexpected update {other:?}"),
                Ok(None) | Err(_) => break,
            }
        }
        assert_eq!(attempts[..3], [1, 2, 3]);
        assert!(
            matches!(&rejected, Some((7, Err(e))) if e.contains("not reachable")),
            "{rejected:?}"
        );
    }

    /// `u` while unreachable: no launcher → a hint; with one, it runs once at a time and
    /// its result comes back as the action's outcome.
    #[tokio::test]
    async fn launch_runs_once_at_a_time_and_reports() {
        let addr = format!("127.0.0.1:{}", closed_port());
        let endpoint = || russell_api::client::endpoint(&addr).expect("endpoint");

        let (mut handle, mut updates) = spawn(endpoint(), BearerAuth::default(), None);
        handle.send(Command::LaunchRussell { id: 1 });
        assert_eq!(done(&mut updates, 1).await, Err(NO_LAUNCHER.to_string()));

        let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counted = calls.clone();
        let launcher: Launcher = Arc::new(move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Box::pin(async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                Ok("started Russell (PID 1)".to_string())
            })
        });
        let (mut handle, mut updates) = spawn(endpoint(), BearerAuth::default(), Some(launcher));
        // Let the first attempt fail, so the task waits (and answers commands).
        while !matches!(updates.recv().await, Some(Update::Unreachable { .. })) {}
        handle.send(Command::LaunchRussell { id: 2 });
        handle.send(Command::LaunchRussell { id: 3 });
        let second = done(&mut updates, 3).await;
        assert!(
            matches!(&second, Err(e) if e.contains("being started")),
            "{second:?}"
        );
        assert_eq!(
            done(&mut updates, 2).await,
            Ok("started Russell (PID 1)".into())
        );
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    /// The outcome of action `id`, skipping other updates.
    async fn done(
        updates: &mut mpsc::UnboundedReceiver<Update>,
        want: u64,
    ) -> Result<String, String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            match tokio::time::timeout_at(deadline, updates.recv()).await {
                Ok(Some(Update::Done { id, outcome })) if id == want => return outcome,
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => panic!("no outcome for action {want}"),
            }
        }
    }

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(2), Duration::from_millis(400));
        assert_eq!(backoff(4), Duration::from_millis(1600));
        assert_eq!(backoff(5), Duration::from_secs(2));
        assert_eq!(backoff(100), Duration::from_secs(2));
    }
}
