//! mDW's `mdw.russell.RussellService` through a client that is not ours: grpcio-tools
//! (protoc) generates a Python client from proto/mdw/russell/russell.proto, and
//! .ci/grpc_compat_check.py drives every method against a real `mdw serve russell`; its
//! answers are compared with the v1 view of the same moment. The Python and its packages
//! come from .ci/.venv (.ci/validators.sh); missing → the test fails when CI=true, else
//! it is skipped with a note.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::Value;
use test_support::ci::{run_script, venv_python};
use test_support::compat::{v1, v1_status};
use test_support::{Fixture, Svc};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protoc_generated_python_client_drives_every_method() {
    let Some(py) = venv_python(&["grpc", "grpc_tools"]) else {
        return;
    };
    let mut web = Svc::demo("web");
    web.extra.push_str("version = \"1.2.3\"\n");
    let f = Fixture::new(&[web, Svc::demo("api")], "");
    let _d = f.start();
    f.wait_all_healthy(Duration::from_secs(30));

    let out = tokio::task::spawn_blocking({
        let (py, addr) = (py.clone(), f.addr.clone());
        move || run_script(&py, "grpc_compat_check.py", &[&addr, "api"])
    })
    .await
    .unwrap();
    let r: Value = serde_json::from_str(out.trim()).unwrap();
    let mut old = v1(&f, None).await;
    let now = v1_status(&mut old, &f).await;
    f.status(); // records the restarted PIDs for cleanup

    // The generated client reads the same services, PIDs and versions as v1 (api was
    // restarted by the script: compare after it).
    let orch = &r["orchestrator"];
    assert_eq!(orch["state"], "ORCHESTRATOR_STATE_RUNNING", "{r}");
    assert_eq!(orch["total"], 2, "{r}");
    assert_eq!(orch["services"]["web"]["version"], "1.2.3", "{r}");
    let web_pid = now
        .services
        .iter()
        .find(|s| s.short_name == "web")
        .unwrap()
        .pid;
    let api_pid = now
        .services
        .iter()
        .find(|s| s.short_name == "api")
        .unwrap()
        .pid;
    assert_eq!(orch["services"]["web"]["pid"], web_pid, "{r}");
    assert_eq!(r["all_status"]["web"], web_pid, "{r}");
    assert_eq!(r["restart"]["success"], true, "{r}");
    assert_eq!(
        r["restart"]["pid"], api_pid,
        "the restart's PID is v1's: {r}"
    );
    assert_eq!(r["one_status"]["name"], "api", "{r}");
    assert_eq!(r["health_check"], "healthy", "{r}");
    assert_eq!(r["system_health"], "healthy", "{r}");
    assert_eq!(r["overview"]["total"], 2, "{r}");

    // Registration, heartbeat, discovery, deregistration.
    assert_eq!(r["register"]["success"], true, "{r}");
    assert_eq!(r["heartbeat"]["acknowledged"], true, "{r}");
    assert_eq!(
        r["discover"],
        serde_json::json!([["pyclient", "9.9.9", {"lang": "python"}]]),
        "{r}"
    );
    assert_eq!(r["get_service"], "pyclient", "{r}");
    let listed: Vec<&str> = r["list_services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(listed.contains(&"pyclient"), "{r}");
    assert!(
        !r["after_deregister"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v == "pyclient"),
        "{r}"
    );

    // The pushed stream saw api go through its restart back to healthy.
    let stream = r["stream"].as_array().unwrap();
    assert!(
        stream
            .iter()
            .any(|e| e[0] == "api" && e[1] == "SERVICE_STATUS_HEALTHY"),
        "{r}"
    );

    // Pipelines are kept; executing one is refused as docs/API.md says.
    assert_eq!(r["pipeline"]["created"], "py", "{r}");
    assert_eq!(r["pipeline"]["got"], "py", "{r}");
    assert_eq!(r["pipeline"]["execute"], "UNIMPLEMENTED", "{r}");
    assert_eq!(r["pipeline"]["after_delete"], "NOT_FOUND", "{r}");
    assert_eq!(r["unknown_service"], "NOT_FOUND", "{r}");
}
