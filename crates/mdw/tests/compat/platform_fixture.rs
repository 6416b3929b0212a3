//! The mDW-shaped checkout of `platform.rs`: mDW's own services file, a `bin/mdw` that
//! plays mDW's services with the stand-in on their real ports, Ollama's version endpoint,
//! and clients for Russell on mDW's address. Only for use inside a private network
//! namespace (the ports are mDW's fixed ones).
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashSet};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use russell_api::mdw::russell::russell_service_client::RussellServiceClient;
use russell_api::pb;
use tonic::transport::Channel;

use test_support::{kill_group, mdw_bin, mdw_command, status_json, wait_for};

/// The stand-in executable, for the fixture's `bin/mdw`.
pub const STANDIN: &str = "MDW_PLATFORM_STANDIN";
/// Russell's address in mDW's file (the default listen).
pub const RUSSELL: &str = "127.0.0.1:9100";

/// mDW's services as its file declares them: short_name, grpc_port (0 = none), http_port.
pub const SERVICES: [(&str, u16, u16); 6] = [
    ("turing", 9200, 9201),
    ("hypatia", 9220, 9221),
    ("babbage", 9150, 9151),
    ("leibniz", 9140, 9141),
    ("bayes", 9120, 9121),
    ("kant", 0, 8080),
];

/// The mDW-shaped checkout: services.toml, `bin/mdw`, and what Russell writes there.
/// Drop kills Russell's process group and every service PID it saw (each leads its own
/// group); on a failure it prints Russell's and the services' logs first.
pub struct Checkout {
    pub dir: tempfile::TempDir,
    pub russell: Option<Child>,
    russell_logs: Vec<PathBuf>,
    pub seen: Mutex<HashSet<u32>>,
}

impl Checkout {
    pub fn new() -> Self {
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

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// `mdw serve russell --config services.toml`, started from the checkout's root.
    pub fn start_russell(&mut self) {
        let log = self
            .root()
            .join(format!("russell-{}.log", self.russell_logs.len()));
        let f = std::fs::File::create(&log).unwrap();
        let child = Command::new(mdw_bin())
            .args(["serve", "russell", "--config", "services.toml"])
            .current_dir(self.root())
            .env(STANDIN, mdw_bin())
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
    pub fn kill9_russell(&mut self) -> u32 {
        let mut child = self.russell.take().unwrap();
        let pid = child.id();
        child.kill().unwrap();
        child.wait().unwrap();
        pid
    }

    pub fn russell_log(&self) -> String {
        self.russell_logs
            .last()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    }

    /// A service's log as Russell wrote it (`[orchestrator] log_dir = "./logs"`).
    pub fn service_log(&self, short: &str) -> String {
        std::fs::read_to_string(self.root().join(format!("logs/{short}.log"))).unwrap_or_default()
    }

    /// The CLI, run from the checkout's root against Russell's default address.
    pub fn mdw(&self, args: &[&str]) -> std::process::Output {
        mdw_command(self.root())
            .args(args)
            .current_dir(self.root())
            .output()
            .unwrap()
    }

    /// `mdw status --json`, parsed; remembers the PIDs for cleanup.
    pub fn status(&self) -> serde_json::Value {
        let v = status_json(&self.mdw(&["status", "--json"]));
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
pub fn bin_mdw() -> String {
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
pub async fn ollama() -> Vec<tokio::task::JoinHandle<()>> {
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

pub fn serving() -> bool {
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

pub async fn compat() -> RussellServiceClient<Channel> {
    RussellServiceClient::new(russell_api::client::channel(RUSSELL).await.unwrap())
}

pub async fn v1() -> pb::russell_service_client::RussellServiceClient<Channel> {
    pb::russell_service_client::RussellServiceClient::new(
        russell_api::client::channel(RUSSELL).await.unwrap(),
    )
}

/// short_name → PID of a `mdw status --json`.
pub fn pids(status: &serde_json::Value) -> BTreeMap<String, u32> {
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
