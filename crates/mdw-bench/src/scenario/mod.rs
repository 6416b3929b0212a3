//! The measurements. Each one deploys fresh Russells with generated line-ups
//! ([`Env::deploy`]), measures from outside (sockets, /proc, gRPC), and tears them down.

pub mod api;
pub mod cc;
pub mod crash;
pub mod footprint;
pub mod http;
pub mod reload;
pub mod start;
pub mod stop;
pub mod watch;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::lineup::{Generated, Site, Spec, generate};
use crate::ports::free_ports;
use crate::russell::{Client, Russell};

/// Where the binaries are and how long to measure.
#[derive(Debug, Clone)]
pub struct Env {
    /// The mdw binary (`mdw serve russell`).
    pub mdw: PathBuf,
    /// The stand-in's program and leading arguments.
    pub standin: Vec<String>,
    pub budget: Budget,
    /// Seed of the random kill moments and victims.
    pub seed: u64,
    /// Load generator: concurrent request loops and the connections they share.
    pub api_tasks: usize,
    pub api_channels: usize,
}

/// Repetitions and windows; `--quick` shrinks every one.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub start_reps: usize,
    pub dag_reps: usize,
    pub big_reps: usize,
    pub kills_zero: usize,
    pub kills_default: usize,
    pub footprint_window: Duration,
    pub stop_reps: usize,
    pub api_window: Duration,
    pub watch_reps: usize,
    /// Live reloads of one changed service each.
    pub reloads: usize,
    /// Timings of the reload's own work (in-process and dry-run RPC).
    pub reload_work_reps: usize,
    /// Rewrites of a watched file.
    pub rebuilds: usize,
    /// `/metrics` scrapes.
    pub scrapes: usize,
    /// How long ControlCenter is watched.
    pub cc_window: Duration,
}

impl Budget {
    /// The full run (about ten minutes).
    pub fn full() -> Budget {
        Budget {
            start_reps: 5,
            dag_reps: 3,
            big_reps: 3,
            kills_zero: 60,
            kills_default: 20,
            footprint_window: Duration::from_secs(30),
            stop_reps: 3,
            api_window: Duration::from_secs(5),
            watch_reps: 20,
            reloads: 5,
            reload_work_reps: 50,
            rebuilds: 20,
            scrapes: 2000,
            cc_window: Duration::from_secs(30),
        }
    }

    /// `--quick`: every figure, fewer repetitions, shorter windows.
    pub fn quick() -> Budget {
        Budget {
            start_reps: 2,
            dag_reps: 1,
            big_reps: 1,
            kills_zero: 15,
            kills_default: 4,
            footprint_window: Duration::from_secs(10),
            stop_reps: 1,
            api_window: Duration::from_secs(2),
            watch_reps: 10,
            reloads: 2,
            reload_work_reps: 10,
            rebuilds: 5,
            scrapes: 300,
            cc_window: Duration::from_secs(10),
        }
    }
}

/// Generous bound on a start of `n` services (for timeouts, not for results).
pub fn start_bound(n: usize) -> Duration {
    Duration::from_secs(30) + Duration::from_millis(100) * n as u32
}

/// One Russell with its generated line-up in a temporary directory.
pub struct Deployment {
    pub lineup: Generated,
    pub russell: Russell,
    dir: tempfile::TempDir,
}

impl Env {
    /// Writes a services file for `spec` into a fresh temp dir and launches Russell on it.
    pub fn deploy(&self, spec: &Spec) -> anyhow::Result<Deployment> {
        let dir = tempfile::Builder::new()
            .prefix("mdw-bench-")
            .tempdir()
            .context("cannot create a temp dir")?;
        let ports = free_ports(spec.count + 2).context("cannot pick free ports")?;
        let loopback = |port| std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let state = dir.path().join("state");
        std::fs::create_dir_all(&state)?;
        let watch_dir = dir.path().join("watched");
        let site = Site {
            http_listen: spec.http.then(|| loopback(ports[spec.count + 1])),
            watch_dir: spec.watch.then_some(watch_dir.as_path()),
            ..Site::new(loopback(ports[spec.count]), &state)
        };
        let lineup = generate(spec, &self.standin, &ports[..spec.count], &site)?;
        let listen = site.listen;
        if spec.watch {
            std::fs::create_dir_all(&watch_dir)?;
            for file in lineup.services.iter().filter_map(|s| s.watch_file.as_ref()) {
                std::fs::write(file, b"build 0\n")
                    .with_context(|| format!("cannot write {}", file.display()))?;
            }
        }
        let config = dir.path().join("services.toml");
        std::fs::write(&config, &lineup.toml)
            .with_context(|| format!("cannot write {}", config.display()))?;
        let russell = Russell::launch(
            &self.mdw,
            &config,
            listen,
            &state,
            &dir.path().join("russell.log"),
        )?;
        Ok(Deployment {
            lineup,
            russell,
            dir,
        })
    }
}

impl Deployment {
    /// The services file Russell was started with (a reload re-reads it).
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("services.toml")
    }

    /// The deployment's temporary folder (removed at [`Self::finish`]).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Time from launching Russell until every service port answers.
    pub async fn until_ports(&mut self) -> anyhow::Result<Duration> {
        let n = self.lineup.services.len();
        let port_list = self.lineup.ports();
        let ports = crate::wait::all_ports_answer(&port_list, start_bound(n));
        let russell = &mut self.russell;
        let exited = async {
            while russell.is_running() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        let done = tokio::select! {
            r = ports => r,
            () = exited => Err(anyhow::anyhow!("Russell exited")),
        }
        .with_context(|| {
            format!(
                "the line-up of {n} did not come up; Russell's log:\n{}",
                crate::russell::log_tail(&self.russell.log, 20)
            )
        })?;
        Ok(done.duration_since(self.russell.launched_at))
    }

    /// Waits until Russell reports every service with a PID in state `running` (and healthy
    /// when `healthy`); returns the status it saw last.
    pub async fn until_running(
        &mut self,
        client: &mut Client,
        healthy: bool,
    ) -> anyhow::Result<russell_api::pb::OrchestratorStatus> {
        let n = self.lineup.services.len();
        let deadline = Instant::now() + start_bound(n);
        loop {
            let st = self.russell.status(client).await?;
            let ready = st.services.len() == n
                && st
                    .services
                    .iter()
                    .all(|s| s.pid != 0 && s.state == "running" && (!healthy || s.healthy));
            if ready {
                return Ok(st);
            }
            if Instant::now() >= deadline {
                let bad: Vec<String> = st
                    .services
                    .iter()
                    .filter(|s| s.pid == 0 || s.state != "running" || (healthy && !s.healthy))
                    .take(5)
                    .map(|s| format!("{} {} pid {}", s.short_name, s.state, s.pid))
                    .collect();
                bail!(
                    "Russell does not report all {n} services running (got {} services; e.g. {})",
                    st.services.len(),
                    bad.join(", ")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops Russell and everything under it; warns when processes had to be SIGKILLed.
    pub async fn finish(self) {
        let n = self.lineup.services.len();
        let killed = self.russell.shutdown(start_bound(n)).await;
        if killed > 0 {
            eprintln!(
                "  (teardown: {killed} processes left after Russell's SIGTERM were SIGKILLed)"
            );
        }
        // give the kernel a moment to reap and free ports before the next deployment
        tokio::time::sleep(Duration::from_millis(200)).await;
        drop(self.dir);
    }
}

/// What one load generator thread measured: every latency in ms, and how many requests
/// failed.
pub(crate) type LoadResult = anyhow::Result<(Vec<f64>, usize)>;

/// Waits for the load generator threads (off the runtime) and merges what they measured.
pub(crate) async fn join_load(loops: Vec<std::thread::JoinHandle<LoadResult>>) -> LoadResult {
    let mut all = Vec::new();
    let mut errors = 0;
    for l in loops {
        let joined = tokio::task::spawn_blocking(move || l.join()).await?;
        let (lat, e) =
            joined.map_err(|_| anyhow::anyhow!("a load generator thread panicked"))??;
        all.extend(lat);
        errors += e;
    }
    Ok((all, errors))
}
