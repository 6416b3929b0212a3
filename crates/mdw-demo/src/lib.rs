//! The stand-in service: a small, configurable process that behaves like a real service for
//! the default config and for tests (`mdw demo` and the standalone `mdw-demo` binary).
//!
//! Theory of operation: one current-thread tokio runtime runs one `select!` loop that owns
//! every timer (ready, unhealthy, exit, log lines) and every signal (SIGTERM, SIGINT,
//! SIGUSR1). Health lives in [`Health`], shared with the HTTP and gRPC servers, which run as
//! spawned tasks once the ports are bound. The loop ends with the exit code; dropping the
//! runtime drops the servers.

mod grpc;
mod http;
mod register;

use std::io::Write;
use std::os::unix::process::CommandExt as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::time::{Instant, MissedTickBehavior, sleep_until};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

/// Options of the stand-in service (the CLI contract shared by all tests).
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Name shown in log lines and in the HTTP health body.
    #[arg(long, default_value = "demo")]
    pub name: String,
    /// Serve HTTP health on 127.0.0.1:PORT.
    #[arg(long, value_name = "PORT")]
    pub http_port: Option<u16>,
    /// HTTP health path: 200 "ok <name>" when healthy, 503 when not.
    #[arg(long, value_name = "PATH", default_value = "/health")]
    pub health_path: String,
    /// Serve grpc.health.v1 on 127.0.0.1:PORT (SERVING when healthy, NOT_SERVING when not).
    #[arg(long, value_name = "PORT")]
    pub grpc_port: Option<u16>,
    /// Bind the ports only after this long (before that nothing listens), e.g. 500ms, 2s.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub ready_after: Option<Duration>,
    /// Exit with --exit-code after this long (counted from process start).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub exit_after: Option<Duration>,
    /// Exit code used by --exit-after.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub exit_code: u8,
    /// Turn unhealthy this long after process start; SIGUSR1 toggles health at any time.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub unhealthy_after: Option<Duration>,
    /// Ignore SIGTERM (only SIGKILL or SIGINT ends the process).
    #[arg(long)]
    pub ignore_sigterm: bool,
    /// Spawn `sleep 100000` in the same process group and print `grandchild <pid>`.
    #[arg(long)]
    pub spawn_grandchild: bool,
    /// Spawn `sleep 100000` in a process group of its own (as setsid or setpgid would)
    /// and print `escapee <pid>`: a group stop misses it.
    #[arg(long)]
    pub spawn_escapee: bool,
    /// Print N numbered lines a second, alternating stdout and stderr.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub log_rate: u32,
    /// Extra text in the HTTP health body (for expect_body checks).
    #[arg(long, value_name = "TEXT")]
    pub body: Option<String>,
    /// Register with Russell at ADDR (host:port) as an mDW service does: Register as
    /// --name with --version, address localhost and the gRPC (else HTTP) port, Heartbeat
    /// every --heartbeat-every, register again when a heartbeat is not acknowledged,
    /// Deregister on SIGTERM or SIGINT.
    #[arg(long, value_name = "ADDR")]
    pub register: Option<String>,
    /// Version announced with --register.
    #[arg(long, value_name = "VERSION", default_value = "0.0.0")]
    pub version: String,
    /// Time between heartbeats with --register.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_period)]
    pub heartbeat_every: Duration,
}

/// A duration above zero.
fn parse_period(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("must be above zero, e.g. 10s".to_string()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

/// Runs the stand-in until a signal or `--exit-after` ends it; returns the exit code.
pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(serve(args))
}

/// The service's health, read by the HTTP handler and pushed to the gRPC health reporter.
struct Health {
    healthy: AtomicBool,
    reporter: HealthReporter,
}

impl Health {
    fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    async fn set(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::Relaxed);
        let status = if healthy {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        self.reporter.set_service_status("", status).await;
    }
}

/// Writes one line to stdout; a closed pipe (the reader went away) is not our problem.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Writes one line to stderr, ignoring a closed pipe.
fn say_err(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

async fn serve(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let start = Instant::now();
    let name = args.name.clone();

    // Signals first, so that a SIGTERM during --ready-after is already handled.
    let mut sigterm = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut sigint = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let mut sigusr1 = signal(SignalKind::user_defined1()).context("cannot listen for SIGUSR1")?;

    if args.spawn_grandchild {
        // Same process group on purpose: a group stop must reach it. Not waited for; it
        // dies with the group.
        let child = std::process::Command::new("sleep")
            .arg("100000")
            .stdin(std::process::Stdio::null())
            .spawn()
            .context("cannot spawn the grandchild `sleep 100000`")?;
        say(&format!("grandchild {}", child.id()));
    }
    if args.spawn_escapee {
        let child = std::process::Command::new("sleep")
            .arg("100000")
            .stdin(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .context("cannot spawn the escapee `sleep 100000`")?;
        say(&format!("escapee {}", child.id()));
    }

    let (reporter, grpc_service) = tonic_health::server::health_reporter();
    let health = Arc::new(Health {
        healthy: AtomicBool::new(true),
        reporter,
    });
    health.set(true).await;

    let ready_at = start + args.ready_after.unwrap_or_default();
    let unhealthy_at = args.unhealthy_after.map(|d| start + d);
    let mut unhealthy_done = unhealthy_at.is_none();
    let exit_at = args.exit_after.map(|d| start + d);
    // Far enough never to fire; only polled when the matching guard allows it.
    let never = start + Duration::from_secs(100 * 365 * 24 * 3600);

    let mut log = LogLines::new(&name, args.log_rate);

    let mut grpc_service = Some(grpc_service);
    let mut registration = None;
    // Without --ready-after the ports are bound at once: a sleep until "now" would still
    // wait for the timer wheel's next millisecond tick, and that millisecond would show up
    // in every restart the benchmarks time.
    let mut ready = args.ready_after.unwrap_or_default().is_zero();
    if ready {
        open_ports(&args, &health, &mut grpc_service).await?;
        registration = announce(&args)?;
    }
    loop {
        tokio::select! {
            () = sleep_until(ready_at), if !ready => {
                ready = true;
                open_ports(&args, &health, &mut grpc_service).await?;
                registration = announce(&args)?;
            }
            () = sleep_until(unhealthy_at.unwrap_or(never)), if !unhealthy_done => {
                unhealthy_done = true;
                health.set(false).await;
                say(&format!("{name}: unhealthy (--unhealthy-after)"));
            }
            () = sleep_until(exit_at.unwrap_or(never)), if exit_at.is_some() => {
                say(&format!("{name}: exiting with code {} (--exit-after)", args.exit_code));
                return Ok(ExitCode::from(args.exit_code));
            }
            _ = log.tick.tick(), if log.rate > 0 => log.emit(),
            _ = sigterm.recv() => {
                if args.ignore_sigterm {
                    say(&format!("{name}: ignoring SIGTERM (--ignore-sigterm)"));
                } else {
                    say(&format!("{name}: SIGTERM, exiting"));
                    leave(registration.take()).await;
                    return Ok(ExitCode::SUCCESS);
                }
            }
            _ = sigint.recv() => {
                say(&format!("{name}: SIGINT, exiting"));
                leave(registration.take()).await;
                return Ok(ExitCode::SUCCESS);
            }
            _ = sigusr1.recv() => {
                let healthy = !health.is_healthy();
                health.set(healthy).await;
                say(&format!("{name}: {} (SIGUSR1)", if healthy { "healthy" } else { "unhealthy" }));
            }
        }
    }
}

/// Starts `--register`, if asked for.
fn announce(args: &DemoArgs) -> anyhow::Result<Option<register::Registration>> {
    let Some(russell) = args.register.clone() else {
        return Ok(None);
    };
    let port = args.grpc_port.or(args.http_port).unwrap_or(0);
    register::Registration::spawn(register::Announce {
        russell,
        name: args.name.clone(),
        version: args.version.clone(),
        port,
        every: args.heartbeat_every,
    })
    .map(Some)
    .with_context(|| format!("--register {:?}", args.register.as_deref().unwrap_or("")))
}

/// Deregisters before the stand-in exits (at most 3 s).
async fn leave(registration: Option<register::Registration>) {
    if let Some(r) = registration {
        r.deregister(Duration::from_secs(3)).await;
    }
}

/// Binds the HTTP and gRPC ports, serves them from spawned tasks, and says "ready".
async fn open_ports<G: tonic_health::pb::health_server::Health>(
    args: &DemoArgs,
    health: &Arc<Health>,
    grpc_service: &mut Option<tonic_health::pb::health_server::HealthServer<G>>,
) -> anyhow::Result<()> {
    let name = &args.name;
    if let Some(port) = args.http_port {
        let listener = bind(port, "http").await?;
        let server = http::Server {
            name: name.clone(),
            path: args.health_path.clone(),
            body: args.body.clone(),
            health: health.clone(),
        };
        tokio::spawn(server.serve(listener));
        say(&format!(
            "{name}: http health on http://127.0.0.1:{port}{}",
            args.health_path
        ));
    }
    if let (Some(port), Some(service)) = (args.grpc_port, grpc_service.take()) {
        let listener = bind(port, "grpc").await?;
        tokio::spawn(grpc::serve(service, listener));
        say(&format!("{name}: grpc health on 127.0.0.1:{port}"));
    }
    say("ready");
    Ok(())
}

/// `--log-rate`: numbered lines, odd ones on stdout, even ones on stderr.
///
/// At most one tick's worth of lines per tick, and missed ticks are skipped: when the pipes
/// are slower than the rate, the rate drops instead of a backlog starving the signal loop.
struct LogLines {
    name: String,
    rate: u32,
    tick: tokio::time::Interval,
    ticks: u64,
    written: u64,
}

impl LogLines {
    fn new(name: &str, rate: u32) -> Self {
        let period = if rate == 0 {
            Duration::from_secs(3600)
        } else {
            (Duration::from_secs(1) / rate).max(Duration::from_millis(10))
        };
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        LogLines {
            name: name.to_string(),
            rate,
            tick,
            ticks: 0,
            written: 0,
        }
    }

    /// Writes the lines due after one more tick, one write per stream.
    fn emit(&mut self) {
        self.ticks += 1;
        let ticks_per_second = 1.0 / self.tick.period().as_secs_f64();
        let due = (self.ticks as f64 * f64::from(self.rate) / ticks_per_second).round() as u64;
        let (mut out, mut err) = (String::new(), String::new());
        while self.written < due {
            self.written += 1;
            let n = self.written;
            if n % 2 == 1 {
                out.push_str(&format!("{} line {n} stdout\n", self.name));
            } else {
                err.push_str(&format!("{} line {n} stderr\n", self.name));
            }
        }
        // A closed pipe (the reader went away) is not the stand-in's problem.
        if !out.is_empty() {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(out.as_bytes());
            let _ = stdout.flush();
        }
        if !err.is_empty() {
            let _ = std::io::stderr().lock().write_all(err.as_bytes());
        }
    }
}

async fn bind(port: u16, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(("127.0.0.1", port)).await.with_context(|| {
        format!("cannot listen for {what} on 127.0.0.1:{port} (is another process holding the port?)")
    })
}
