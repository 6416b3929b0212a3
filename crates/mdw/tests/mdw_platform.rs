//! mDW's own services file (crates/russell-config/tests/mdw/services.toml, byte for byte) run
//! end to end: a folder shaped like an mDW checkout whose `./bin/mdw serve <short_name>` execs
//! the stand-in `mdw demo` on that service's real ports, registering with Russell on
//! localhost:9100 as mDW's services do; Ollama's `/api/version` served by this test on 11434.
//!
//! The ports are mDW's fixed ones, so the scenario runs in network, PID and mount namespaces
//! of its own (`unshare`, as root, like .ci/smoke.sh): nothing on the machine collides with
//! it, and when the scenario ends the kernel ends every process it started, also on failure.
//! Where namespaces are not permitted the test says why, and fails under CI=true.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, HashSet};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use common::{MDW, alive, kill_group, wait_for};
use russell_api::mdw::common as c;
use russell_api::mdw::russell as m;
use russell_api::mdw::russell::russell_service_client::RussellServiceClient;
use russell_api::pb;
use tonic::transport::Channel;

/// Set inside the namespaces: run the scenario instead of re-executing.
const INSIDE: &str = "MDW_PLATFORM_INSIDE";
/// The stand-in executable, for the fixture's `bin/mdw`.
const STANDIN: &str = "MDW_PLATFORM_STANDIN";
/// This test's name, for re-executing exactly it.
const TEST: &str = "mdw_own_file_runs_end_to_end";
/// Russell's address in mDW's file (the default listen).
const RUSSELL: &str = "127.0.0.1:9100";

/// mDW's services as its file declares them: short_name, grpc_port (0 = none), http_port.
const SERVICES: [(&str, u16, u16); 6] = [
    ("turing", 9200, 9201),
    ("hypatia", 9220, 9221),
    ("babbage", 9150, 9151),
    ("leibniz", 9140, 9141),
    ("bayes", 9120, 9121),
    ("kant", 0, 8080),
];

#[test]
fn mdw_own_file_runs_end_to_end() {
    if std::env::var_os(INSIDE).is_some() {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(scenario());
        return;
    }
    if let Some(why) = no_namespaces() {
        let msg = format!(
            "{TEST}: mDW's fixed ports (9100, 8080, 9200, 11434, …) need a network namespace of \
             their own, and {why}; run this test as root where `unshare --net` works"
        );
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
        eprintln!("skipped: {msg}");
        return;
    }
    // PID 1 of the new namespace is a shell: it brings loopback up, runs the scenario and
    // reaps whatever is reparented to it.
    let status = Command::new("unshare")
        .args(["--net", "--pid", "--fork", "--mount-proc", "--"])
        .args([
            "sh",
            "-c",
            "ip link set lo up && \"$@\"; rc=$?; exit $rc",
            "sh",
        ])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
        .env(INSIDE, "1")
        .status()
        .unwrap();
    assert!(
        status.success(),
        "the scenario failed in its namespaces: {status}"
    );
}

/// Why the scenario cannot have namespaces of its own, or None when it can.
fn no_namespaces() -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        return Some("this test does not run as root".to_string());
    }
    let probe = Command::new("unshare")
        .args(["--net", "--pid", "--fork", "--mount-proc", "--"])
        .args(["sh", "-c", "ip link set lo up"])
        .stdin(Stdio::null())
        .output();
    match probe {
        Err(e) => Some(format!("`unshare` cannot be run: {e}")),
        Ok(o) if !o.status.success() => Some(format!(
            "`unshare --net --pid --fork --mount-proc` with `ip link set lo up` failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Ok(_) => None,
    }
}

/// The mDW-shaped checkout: services.toml, `bin/mdw`, and what Russell writes there.
/// Drop kills Russell's process group and every service PID it saw (each leads its own
/// group); on a failure it prints Russell's and the services' logs first.
struct Checkout {
    dir: tempfile::TempDir,
    russell: Option<Child>,
    russell_logs: Vec<PathBuf>,
    seen: Mutex<HashSet<u32>>,
}

impl Checkout {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let file = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../russell-config/tests/mdw/services.toml"
        );
        std::fs::copy(file, dir.path().join("services.toml")).unwrap();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        let script = dir.path().join("bin/mdw");
        std::fs::write(&script, bin_mdw()).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        Self {
            dir,
            russell: None,
            russell_logs: Vec::new(),
            seen: Mutex::default(),
        }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    /// `mdw serve russell --config services.toml`, started from the checkout's root.
    fn start_russell(&mut self) {
        let log = self
            .root()
            .join(format!("russell-{}.log", self.russell_logs.len()));
        let f = std::fs::File::create(&log).unwrap();
        let child = Command::new(MDW)
            .args(["serve", "russell", "--config", "services.toml"])
            .current_dir(self.root())
            .env(STANDIN, MDW)
            .env("XDG_RUNTIME_DIR", self.root())
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .process_group(0)
            .spawn()
            .unwrap();
        self.russell = Some(child);
        self.russell_logs.push(log);
        assert!(
            wait_for(Duration::from_secs(20), serving),
            "Russell did not answer at {RUSSELL}:\n{}",
            self.russell_log()
        );
    }

    /// kill -9 of Russell, reaped.
    fn kill9_russell(&mut self) -> u32 {
        let mut child = self.russell.take().unwrap();
        let pid = child.id();
        child.kill().unwrap();
        child.wait().unwrap();
        pid
    }

    fn russell_log(&self) -> String {
        self.russell_logs
            .last()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    }

    /// A service's log as Russell wrote it (`[orchestrator] log_dir = "./logs"`).
    fn service_log(&self, short: &str) -> String {
        std::fs::read_to_string(self.root().join(format!("logs/{short}.log"))).unwrap_or_default()
    }

    /// The CLI, run from the checkout's root against Russell's default address.
    fn mdw(&self, args: &[&str]) -> std::process::Output {
        Command::new(MDW)
            .args(args)
            .current_dir(self.root())
            .env("XDG_RUNTIME_DIR", self.root())
            .env_remove("MDW_RUSSELL_TOKEN")
            .env_remove("MDW_RUSSELL_TOKEN_FILE")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// `mdw status --json`, parsed; remembers the PIDs for cleanup.
    fn status(&self) -> serde_json::Value {
        let out = self.mdw(&["status", "--json"]);
        assert!(
            out.status.success(),
            "mdw status failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut seen = self.seen.lock().unwrap();
        seen.extend(pids(&v).values().copied());
        v
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- russell log\n{}", self.russell_log());
            for (short, ..) in SERVICES {
                eprintln!("---- logs/{short}.log\n{}", self.service_log(short));
            }
        }
        if let Some(mut child) = self.russell.take() {
            kill_group(child.id());
            let _ = child.kill();
            let _ = child.wait();
        }
        for pid in self.seen.lock().map(|s| s.clone()).unwrap_or_default() {
            kill_group(pid);
        }
    }
}

/// The fixture's `bin/mdw`: `serve <short_name>` execs the stand-in with that service's
/// ports from mDW's file, registering with Russell as mDW's services do.
fn bin_mdw() -> String {
    let mut cases = String::new();
    for (short, grpc, http) in SERVICES {
        let mut ports = format!("--http-port {http}");
        if grpc != 0 {
            ports.push_str(&format!(" --grpc-port {grpc}"));
        }
        if short == "kant" {
            ports.push_str(" --health-path /api/v1/health");
        }
        cases.push_str(&format!("  {short}) ports=\"{ports}\" ;;\n"));
    }
    format!(
        "#!/bin/sh\n\
         # mDW's ./bin/mdw, played by the stand-in: serve <short_name> on that service's ports.\n\
         [ \"$1\" = serve ] || {{ echo \"bin/mdw: only 'serve <service>' is played here\" >&2; exit 2; }}\n\
         case \"$2\" in\n{cases}  *) echo \"bin/mdw: unknown service '$2'\" >&2; exit 2 ;;\n\
         esac\n\
         exec \"${STANDIN}\" demo --name \"$2\" $ports --register localhost:9100 --version 0.1.0 \
         --heartbeat-every 500ms\n"
    )
}

/// Ollama's `GET /api/version` on localhost:11434 (both loopback families); abort the
/// returned tasks to stop it (the listeners close with them).
async fn ollama() -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for addr in ["127.0.0.1:11434", "[::1]:11434"] {
        let Ok(listener) = tokio::net::TcpListener::bind(addr).await else {
            continue;
        };
        tasks.push(tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buf = [0u8; 2048];
                    let _ = conn.read(&mut buf).await;
                    let body = r#"{"version":"0.5.7"}"#;
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = conn.write_all(reply.as_bytes()).await;
                });
            }
        }));
    }
    assert!(!tasks.is_empty(), "cannot listen on localhost:11434");
    tasks
}

fn serving() -> bool {
    std::thread::spawn(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(russell_api::client::serving(RUSSELL))
            .unwrap_or(false)
    })
    .join()
    .unwrap_or(false)
}

async fn compat() -> RussellServiceClient<Channel> {
    RussellServiceClient::new(russell_api::client::channel(RUSSELL).await.unwrap())
}

async fn v1() -> pb::russell_service_client::RussellServiceClient<Channel> {
    pb::russell_service_client::RussellServiceClient::new(
        russell_api::client::channel(RUSSELL).await.unwrap(),
    )
}

/// short_name → PID of a `mdw status --json`.
fn pids(status: &serde_json::Value) -> BTreeMap<String, u32> {
    status["services"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| {
            let pid = u32::try_from(s["pid"].as_u64()?).ok()?;
            Some((s["short_name"].as_str()?.to_string(), pid))
        })
        .collect()
}

fn all_healthy(status: &serde_json::Value) -> bool {
    status["services"]
        .as_array()
        .is_some_and(|s| s.len() == SERVICES.len() && s.iter().all(|x| x["healthy"] == true))
}

/// Polls `f` every 200 ms until it returns Some, at most `limit`.
async fn until<T, F: std::future::Future<Output = Option<T>>>(
    limit: Duration,
    what: &str,
    mut f: impl FnMut() -> F,
) -> T {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} (waited {limit:?})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The registration of each stand-in, by Discover{name}: one entry, linked to the managed
/// service, with a registration id (not the `managed/<name>` placeholder); short → id.
async fn registrations(c: &mut RussellServiceClient<Channel>) -> Option<BTreeMap<String, String>> {
    let mut ids = BTreeMap::new();
    for (short, grpc, http) in SERVICES {
        let found = c
            .discover(m::DiscoverRequest {
                name: short.to_string(),
                tags: Vec::new(),
            })
            .await
            .ok()?
            .into_inner()
            .services;
        let [s] = found.as_slice() else { return None };
        if s.id.starts_with("managed/") {
            return None;
        }
        assert_eq!(s.name, short);
        assert_eq!(s.version, "0.1.0", "{s:?}");
        assert_eq!(
            s.port,
            i32::from(if grpc != 0 { grpc } else { http }),
            "{s:?}"
        );
        assert_eq!(s.metadata.get("managed").map(String::as_str), Some("true"));
        ids.insert(short.to_string(), s.id.clone());
    }
    Some(ids)
}

/// `mdw status --json` and the compat GetOrchestratorStatus of the same moment agree on
/// services, states, PIDs; the compat view carries each file's version.
async fn assert_same_view(co: &Checkout, c: &mut RussellServiceClient<Channel>) {
    let json = co.status();
    let s = c
        .get_orchestrator_status(c::Empty {})
        .await
        .unwrap()
        .into_inner();
    let names: Vec<_> = json["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["name"].as_str().unwrap(),
                x["short_name"].as_str().unwrap(),
            )
        })
        .collect();
    let compat_names: Vec<_> = s
        .services
        .iter()
        .map(|x| (x.name.as_str(), x.short_name.as_str()))
        .collect();
    assert_eq!(names, compat_names);
    for (x, y) in json["services"].as_array().unwrap().iter().zip(&s.services) {
        assert_eq!(x["pid"].as_i64().unwrap_or(0), i64::from(y.pid), "{x}");
        let status = m::ServiceStatus::try_from(y.status).unwrap();
        assert_eq!(
            x["state"] == "running",
            status == m::ServiceStatus::Healthy,
            "{x} vs {status:?}"
        );
        assert_eq!(x["healthy"], y.healthy);
        assert_eq!(y.version, "0.1.0");
    }
    assert_eq!(json["total_services"], s.total_services);
    assert_eq!(json["healthy_services"], s.healthy_services);
}

/// Each service was spawned only after each of its dependencies was healthy.
async fn assert_dependency_order() {
    let s = v1()
        .await
        .get_orchestrator_status(pb::StatusRequest {})
        .await
        .unwrap()
        .into_inner();
    let spawned = |x: &pb::ServiceStatus| {
        SystemTime::try_from(x.timing.unwrap().spawned_at.unwrap()).unwrap()
    };
    let healthy = |x: &pb::ServiceStatus| {
        SystemTime::try_from(x.timing.unwrap().healthy_at.unwrap()).unwrap()
    };
    let by_name: BTreeMap<_, _> = s
        .services
        .iter()
        .map(|x| (x.short_name.as_str(), x))
        .collect();
    for x in &s.services {
        // `dependencies` lists Ollama too (an external, checked by its own probe).
        for d in x
            .dependencies
            .iter()
            .filter(|d| by_name.contains_key(d.as_str()))
        {
            assert!(
                spawned(x) >= healthy(by_name[d.as_str()]),
                "{} spawned before {d} was healthy",
                x.short_name
            );
        }
    }
    // Kant, the gateway, is the last one started.
    let kant = spawned(by_name["kant"]);
    for x in s.services.iter().filter(|x| x.short_name != "kant") {
        assert!(kant >= spawned(x), "kant spawned before {}", x.short_name);
    }
}

/// The error lines (`err`) of a stand-in's log after its last "registering again": none.
/// Before it, only heartbeats that failed while Russell was away are allowed.
fn assert_clean_log(co: &Checkout, short: &str) {
    let log = co.service_log(short);
    let again = log
        .rfind("not acknowledged; registering again")
        .unwrap_or_else(|| panic!("{short} did not register again:\n{log}"));
    for line in log[..again].lines().filter(|l| l.contains(" err ")) {
        assert!(line.contains("heartbeat failed"), "{short}: {line}");
    }
    let after: Vec<_> = log[again..]
        .lines()
        .filter(|l| l.contains(" err "))
        .collect();
    assert!(after.is_empty(), "{short} logged errors: {after:#?}");
    for bad in ["refused", "cannot register", "deregister"] {
        assert!(!log.contains(bad), "{short}: '{bad}' in\n{log}");
    }
}

async fn scenario() {
    let mut co = Checkout::new();
    let ollama_tasks = ollama().await;
    let out = co.mdw(&["config", "check", "services.toml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Up: all six healthy, each after its dependencies, Kant last.
    co.start_russell();
    let first = until(Duration::from_secs(120), "all six healthy", || {
        let s = co.status();
        async move { all_healthy(&s).then_some(s) }
    })
    .await;
    let before = pids(&first);
    assert_eq!(before.len(), SERVICES.len(), "{first:#}");
    assert_dependency_order().await;

    // Every stand-in registered as its short_name; ListServices shows one entry each.
    let mut c = compat().await;
    let ids = until(Duration::from_secs(30), "every stand-in registered", || {
        let mut c = c.clone();
        async move { registrations(&mut c).await }
    })
    .await;
    let list = c.list_services(c::Empty {}).await.unwrap().into_inner();
    for (short, ..) in SERVICES {
        let n = list.services.iter().filter(|s| s.name == short).count();
        assert_eq!(n, 1, "{short} in ListServices: {:?}", list.services);
    }
    assert_same_view(&co, &mut c).await;

    // kill -9 of Russell, a new one: the same PIDs adopted, every stand-in registers again
    // (its heartbeat is not acknowledged by the new Russell).
    let old = co.kill9_russell();
    assert!(!alive(old));
    co.start_russell();
    let again = until(
        Duration::from_secs(60),
        "same PIDs adopted, all healthy",
        || {
            let s = co.status();
            async move {
                (all_healthy(&s)
                    && s["services"]
                        .as_array()?
                        .iter()
                        .all(|x| x["adopted"] == true))
                .then_some(s)
            }
        },
    )
    .await;
    assert_eq!(pids(&again), before);
    let mut c = compat().await;
    let ids_again = until(
        Duration::from_secs(30),
        "every stand-in registered again",
        || {
            let mut c = c.clone();
            async move { registrations(&mut c).await }
        },
    )
    .await;
    for (short, id) in &ids_again {
        assert_ne!(
            Some(id),
            ids.get(short),
            "{short} kept its old registration id"
        );
        assert_clean_log(&co, short);
    }
    assert_same_view(&co, &mut c).await;

    // Ollama away: a restart of Turing waits for it and fails naming it.
    for t in &ollama_tasks {
        t.abort();
    }
    until(Duration::from_secs(60), "Russell sees Ollama down", || {
        let s = co.status();
        async move {
            s["externals"]
                .as_array()?
                .iter()
                .any(|e| e["short_name"] == "ollama" && e["state"] == "unhealthy")
                .then_some(())
        }
    })
    .await;
    let restart = tokio::time::timeout(
        Duration::from_secs(120),
        c.restart_service(m::RestartServiceRequest {
            name: "turing".into(),
        }),
    )
    .await
    .expect("RestartService(turing) did not answer")
    .unwrap()
    .into_inner();
    assert!(!restart.success, "{restart:?}");
    assert!(restart.message.contains("ollama"), "{restart:?}");
    let s = co.status();
    let turing = s["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["short_name"] == "turing")
        .unwrap();
    assert!(
        turing["last_error"].as_str().unwrap().contains("ollama"),
        "{turing}"
    );
    assert_ne!(turing["state"], "running", "{turing}");

    // Down: Russell and every service gone.
    let out = co.mdw(&["down"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let russell = co.russell.as_mut().unwrap();
    assert!(
        wait_for(Duration::from_secs(30), || russell
            .try_wait()
            .ok()
            .flatten()
            .is_some()),
        "Russell still runs after mdw down"
    );
    let all: HashSet<u32> = co.seen.lock().unwrap().clone();
    assert!(
        wait_for(Duration::from_secs(10), || all.iter().all(|p| !alive(*p))),
        "service processes left after mdw down: {all:?}"
    );
    assert!(marked_processes().is_empty(), "{:?}", marked_processes());
}

/// Processes in this PID namespace that carry a service's marks (RUSSELL_STATE_DIR).
fn marked_processes() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            alive(*pid)
                && std::fs::read(format!("/proc/{pid}/environ"))
                    .is_ok_and(|env| env.windows(18).any(|w| w == b"RUSSELL_STATE_DIR="))
        })
        .collect()
}
