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

use std::collections::{BTreeMap, HashSet};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use crate::platform_fixture::{Checkout, SERVICES, compat, ollama, pids, v1};
use russell_api::mdw::common as c;
use russell_api::mdw::russell as m;
use russell_api::mdw::russell::russell_service_client::RussellServiceClient;
use russell_api::pb;
use test_support::{alive, wait_for};
use tonic::transport::Channel;

/// Set inside the namespaces: run the scenario instead of re-executing.
const INSIDE: &str = "MDW_PLATFORM_INSIDE";
/// This test's function name; [`test_path`] gives the name libtest filters by.
const TEST: &str = "mdw_own_file_runs_end_to_end";

/// `platform::mdw_own_file_runs_end_to_end`: the test's path inside this test binary, for
/// re-executing exactly it (the module path without the binary's crate name).
fn test_path() -> String {
    let module = module_path!().split_once("::").map_or("", |(_, rest)| rest);
    if module.is_empty() {
        TEST.to_string()
    } else {
        format!("{module}::{TEST}")
    }
}

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
    let out = Command::new("unshare")
        .args(["--net", "--pid", "--fork", "--mount-proc", "--"])
        .args([
            "sh",
            "-c",
            "ip link set lo up && \"$@\"; rc=$?; exit $rc",
            "sh",
        ])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", &test_path(), "--nocapture", "--test-threads=1"])
        .env(INSIDE, "1")
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    assert!(
        out.status.success(),
        "the scenario failed in its namespaces: {}",
        out.status
    );
    // A filter that matches nothing passes too: make sure the scenario really ran.
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "the scenario did not run in its namespaces (filter {:?} matched no test)",
        test_path()
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
