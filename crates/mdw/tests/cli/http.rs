//! Russell's HTTP view against a real `mdw serve russell` with stand-in services on free
//! ports, spoken to by a real HTTP client (hyper): `/metrics` parsed by Prometheus' own
//! Python parser, the JSON answers checked against docs/openapi.yaml by openapi-core (both
//! via .ci/http_check.py in .ci/.venv, made by .ci/validators.sh; missing → the test fails
//! when CI=true, else the check is skipped with a note), the token on every route, SSE
//! within 50 ms, 404 for unknown services.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use test_support::ci::{repo, run_script, venv_python};
use test_support::{Fixture, Svc, wait_for};

/// The Python of .ci/.venv with the checkers; `None` (skip) outside CI, a panic in CI.
fn checker() -> Option<PathBuf> {
    venv_python(&["prometheus_client", "openapi_core"])
}

/// Runs .ci/http_check.py with `args`; its stdout.
fn check(py: &Path, args: &[&str]) -> String {
    run_script(py, "http_check.py", args)
}

/// One answer, as the OpenAPI check wants it.
#[derive(Debug, Clone)]
struct Answer {
    method: String,
    path: String,
    status: u16,
    content_type: String,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    fn case(&self) -> Value {
        json!({"method": self.method, "path": self.path, "status": self.status,
               "content_type": self.content_type, "body": self.body})
    }
}

/// A client of one Russell's HTTP listener; remembers every answer for the OpenAPI check.
struct Http {
    base: String,
    token: Option<String>,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>,
    seen: std::sync::Mutex<Vec<Answer>>,
}

impl Http {
    fn new(port: u16) -> Self {
        Self {
            base: format!("http://127.0.0.1:{port}"),
            token: None,
            client: Client::builder(TokioExecutor::new()).build_http(),
            seen: std::sync::Mutex::default(),
        }
    }

    fn request(&self, method: &str, path: &str, token: Option<&str>) -> Request<Empty<Bytes>> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(t) = token.or(self.token.as_deref()) {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        req.body(Empty::new()).unwrap()
    }

    async fn call_with(&self, method: &str, path: &str, token: Option<&str>) -> Answer {
        let resp = tokio::time::timeout(
            Duration::from_secs(30),
            self.client.request(self.request(method, path, token)),
        )
        .await
        .unwrap()
        .unwrap();
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let a = Answer {
            method: method.to_owned(),
            path: path.to_owned(),
            status,
            content_type,
            body: String::from_utf8(body.to_vec()).unwrap(),
        };
        self.seen.lock().unwrap().push(a.clone());
        a
    }

    async fn get(&self, path: &str) -> Answer {
        self.call_with("GET", path, None).await
    }

    async fn post(&self, path: &str) -> Answer {
        self.call_with("POST", path, None).await
    }

    /// Opens `/v1/events` and reads until the `: subscribed` comment.
    async fn events(&self, token: Option<&str>) -> Events {
        let resp = self
            .client
            .request(self.request("GET", "/v1/events", token))
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        let mut ev = Events {
            body: resp.into_body(),
            buf: String::new(),
        };
        let first = ev.next_block(Duration::from_secs(5)).await;
        assert_eq!(first.as_deref(), Some(": subscribed"));
        ev
    }

    /// Checks every answer seen against docs/openapi.yaml.
    fn check_openapi(&self, py: &Path, dir: &Path, extra: Vec<Value>) {
        // A route that does not exist (404) or a wrong method (405) is outside the spec.
        let mut cases: Vec<Value> = self
            .seen
            .lock()
            .unwrap()
            .iter()
            .filter(|a| a.path != "/v1/nothing" && a.status != 405)
            .map(Answer::case)
            .collect();
        cases.extend(extra);
        let file = dir.join("cases.json");
        std::fs::write(&file, serde_json::to_vec(&cases).unwrap()).unwrap();
        let spec = repo().join("docs/openapi.yaml");
        let out = check(
            py,
            &["openapi", &spec.to_string_lossy(), &file.to_string_lossy()],
        );
        assert_eq!(out.trim(), format!("ok {}", cases.len()));
    }
}

/// An open event stream.
struct Events {
    body: hyper::body::Incoming,
    buf: String,
}

impl Events {
    /// The next SSE block (lines up to a blank line), or None after `timeout`.
    async fn next_block(&mut self, timeout: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(i) = self.buf.find("\n\n") {
                let block = self.buf[..i].to_owned();
                self.buf.drain(..i + 2);
                return Some(block);
            }
            let frame = tokio::time::timeout_at(deadline, self.body.frame())
                .await
                .ok()??
                .ok()?;
            if let Ok(data) = frame.into_data() {
                self.buf.push_str(std::str::from_utf8(&data).unwrap());
            }
        }
    }

    /// The next event (its JSON) with `kind` for `service`, and when it arrived.
    async fn next_event(&mut self, kind: &str, service: &str) -> (Value, SystemTime, String) {
        loop {
            let block = self
                .next_block(Duration::from_secs(20))
                .await
                .unwrap_or_else(|| panic!("no {kind} event of {service}"));
            let arrived = SystemTime::now();
            let Some(data) = block.lines().find_map(|l| l.strip_prefix("data: ")) else {
                continue;
            };
            let v: Value = serde_json::from_str(data).unwrap();
            if v["kind"] == kind && v["service"] == service {
                return (v, arrived, data.to_owned());
            }
        }
    }
}

/// The fixture's config with an HTTP listener on a free port; its port.
fn fixture(services: &[Svc], extra: &str) -> (Fixture, u16) {
    let http = test_support::free_port();
    let f = Fixture::new(
        services,
        &format!("http_listen = \"127.0.0.1:{http}\"\n{extra}"),
    );
    (f, http)
}

/// The value of the sample `name` with `labels` in the parsed exposition.
fn sample(parsed: &Value, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    parsed["samples"].as_array()?.iter().find_map(|s| {
        let ok = s[0] == name && labels.iter().all(|(k, v)| s[1][*k] == *v);
        ok.then(|| s[2].as_f64()).flatten()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_json_and_events_against_the_real_parsers() {
    let closed = test_support::free_port();
    let (f, port) = fixture(
        &[Svc::demo("alpha"), Svc::demo("beta").deps(&["alpha"])],
        &format!(
            "\n[[externals]]\nname = \"Ollama\"\nshort_name = \"ollama\"\noptional = true\n\
             [externals.health_check]\ntype = \"tcp\"\naddress = \"127.0.0.1:{closed}\"\n\
             interval = \"300ms\"\ntimeout = \"200ms\"\n"
        ),
    );
    let _d = f.start();
    f.wait_all_healthy(Duration::from_secs(30));
    let http = Http::new(port);

    // The same facts as `mdw status --json`.
    let a = http.get("/v1/status").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.content_type, "application/json");
    let via_http = a.json();
    let via_cli = f.status();
    for key in [
        "status",
        "version",
        "pid",
        "total_services",
        "healthy_services",
    ] {
        assert_eq!(via_http[key], via_cli[key], "{key}");
    }
    for short in ["alpha", "beta"] {
        let (h, c) = (
            Fixture::service(&via_http, short),
            Fixture::service(&via_cli, short),
        );
        for key in [
            "name",
            "state",
            "pid",
            "http_port",
            "dependencies",
            "restart_count",
        ] {
            assert_eq!(h[key], c[key], "{short}.{key}");
        }
    }
    assert_eq!(via_http["externals"][0]["short_name"], "ollama");

    // One service, by any spelling; 404 for unknown ones, 405 for a wrong method.
    let a = http.get("/v1/services/ALPHA").await;
    assert_eq!(
        (a.status, a.json()["short_name"].clone()),
        (200, json!("alpha"))
    );
    for (method, path) in [
        ("GET", "/v1/services/nope"),
        ("POST", "/v1/services/nope/restart"),
        ("GET", "/v1/nothing"),
    ] {
        let a = http.call_with(method, path, None).await;
        assert_eq!(a.status, 404, "{method} {path}: {}", a.body);
        assert_eq!(a.json()["code"], "not_found");
        assert!(a.json()["error"].as_str().unwrap().contains("nope") || path == "/v1/nothing");
    }
    let a = http.get("/v1/services/alpha/stop").await;
    assert_eq!(a.status, 405);

    // Events: one arrives within 50 ms of happening.
    let mut events = http.events(None).await;
    let pid = Fixture::service(&f.status(), "alpha")["pid"]
        .as_u64()
        .unwrap() as u32;
    let killed = SystemTime::now();
    test_support::signal(pid, rustix::process::Signal::KILL);
    let (ev, arrived, data) = events.next_event("exited", "alpha").await;
    let at = humantime::parse_rfc3339(ev["timestamp"].as_str().unwrap()).unwrap();
    let exited_delay = arrived.duration_since(at).unwrap_or_default();
    assert!(at >= killed - Duration::from_millis(5));
    assert_eq!(ev["pid"], pid);
    // The restart's own events follow; the best of the two is the stream's latency (one
    // sample alone can catch a test thread descheduled on a busy 2-core CI machine).
    let (healthy, arrived, _) = events.next_event("healthy", "alpha").await;
    let at = humantime::parse_rfc3339(healthy["timestamp"].as_str().unwrap()).unwrap();
    let healthy_delay = arrived.duration_since(at).unwrap_or_default();
    let best = exited_delay.min(healthy_delay);
    assert!(
        best <= Duration::from_millis(50)
            && exited_delay.max(healthy_delay) <= Duration::from_secs(2),
        "events came {exited_delay:?} (exited) and {healthy_delay:?} (healthy) after they happened"
    );
    let event_case = json!({"method": "GET", "path": "/v1/events", "status": 200,
        "content_type": "text/event-stream", "body": data, "schema": "Event"});

    // Control over HTTP, and the restart the kill caused, in the metrics.
    let restarted = wait_for(Duration::from_secs(20), || {
        let s = f.status();
        let a = Fixture::service(&s, "alpha");
        a["restart_count"] == 1 && a["healthy"] == true
    });
    assert!(restarted, "alpha did not come back: {:#}", f.status());
    let a = http.post("/v1/services/beta/stop").await;
    assert_eq!(
        (a.status, a.json()["state"].clone()),
        (200, json!("stopped")),
        "{}",
        a.body
    );
    let a = http.post("/v1/services/beta/start").await;
    assert_eq!(
        (a.status, a.json()["state"].clone()),
        (200, json!("running")),
        "{}",
        a.body
    );
    let a = http.post("/v1/services/Beta/restart").await;
    assert_eq!(
        (a.status, a.json()["healthy"].clone()),
        (200, json!(true)),
        "{}",
        a.body
    );
    let a = http.post("/v1/services/ollama/start").await;
    assert!(matches!(a.status, 400 | 409), "{}", a.body);
    f.record(&http.get("/v1/status").await.json());

    // CPU and memory are sampled (every few seconds while someone reads): the restarted
    // process shows up in the next round.
    let mut m = http.get("/metrics").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !m.body.lines().any(|l| {
        l.starts_with("mdw_service_resident_memory_bytes{service=\"alpha\"} ")
            && !l.ends_with(" 0.0")
    }) && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
        m = http.get("/metrics").await;
    }
    assert_eq!(m.status, 200);
    assert!(
        m.content_type.starts_with("text/plain; version=0.0.4"),
        "{}",
        m.content_type
    );
    let Some(py) = checker() else {
        return;
    };
    let file = f.path("metrics.txt");
    std::fs::write(&file, &m.body).unwrap();
    let parsed: Value =
        serde_json::from_str(&check(&py, &["metrics", &file.to_string_lossy()])).unwrap();
    let alpha = [("service", "alpha")];
    assert_eq!(
        sample(&parsed, "mdw_service_restarts_total", &alpha),
        Some(1.0)
    );
    assert_eq!(sample(&parsed, "mdw_service_up", &alpha), Some(1.0));
    let running = [("service", "alpha"), ("state", "running")];
    assert_eq!(sample(&parsed, "mdw_service_state", &running), Some(1.0));
    let failed = [("service", "alpha"), ("state", "failed")];
    assert_eq!(sample(&parsed, "mdw_service_state", &failed), Some(0.0));
    assert!(sample(&parsed, "mdw_service_probe_duration_seconds_count", &alpha) > Some(0.0));
    let inf = [("service", "alpha"), ("le", "+Inf")];
    assert!(sample(&parsed, "mdw_service_probe_duration_seconds_bucket", &inf) > Some(0.0));
    assert!(sample(&parsed, "mdw_service_probe_failures_total", &alpha).is_some());
    assert!(
        sample(&parsed, "mdw_service_resident_memory_bytes", &alpha) > Some(0.0),
        "{}",
        m.body
    );
    assert!(sample(&parsed, "mdw_service_cpu_seconds_total", &alpha) >= Some(0.0));
    assert!(sample(&parsed, "mdw_service_start_duration_seconds", &alpha) > Some(0.0));
    let down = [("external", "ollama"), ("state", "unhealthy")];
    assert_eq!(sample(&parsed, "mdw_external_state", &down), Some(1.0));
    let version = [("version", env!("CARGO_PKG_VERSION"))];
    assert_eq!(sample(&parsed, "mdw_build_info", &version), Some(1.0));
    assert!(sample(&parsed, "process_resident_memory_bytes", &[]) > Some(0.0));
    assert!(sample(&parsed, "process_cpu_seconds_total", &[]) > Some(0.0));
    let http_status = [
        ("protocol", "http"),
        ("method", "GET /v1/status"),
        ("code", "200"),
    ];
    assert!(sample(&parsed, "mdw_api_requests_total", &http_status) >= Some(1.0));
    let grpc_status = [
        ("protocol", "grpc"),
        (
            "method",
            "/mdw.russell.v1.RussellService/GetOrchestratorStatus",
        ),
        ("code", "0"),
    ];
    assert!(sample(&parsed, "mdw_api_requests_total", &grpc_status) >= Some(1.0));
    // Naming: Russell's own series carry the mdw_ prefix (the process_* ones are the
    // standard names), counters end in _total, units are spelled out.
    for (name, kind) in parsed["families"].as_object().unwrap() {
        assert!(
            name.starts_with("mdw_") || name.starts_with("process_"),
            "{name}"
        );
        if kind == "counter" {
            assert!(m.body.contains(&format!("{name}_total")), "{name}");
        }
    }
    for s in parsed["samples"].as_array().unwrap() {
        let name = s[0].as_str().unwrap();
        assert!(!name.contains("_ms") && !name.contains("_kb"), "{name}");
    }

    http.check_openapi(&py, f.dir.path(), vec![event_case]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_guards_every_route() {
    let token_dir = tempfile::tempdir().unwrap();
    let token_file = token_dir.path().join("token");
    std::fs::write(&token_file, "correct-horse\n").unwrap();
    let (f, port) = fixture(
        &[Svc::demo("alpha")],
        &format!(
            "autostart = false\ntoken_file = {:?}",
            token_file.display().to_string()
        ),
    );
    let _d = f.start();
    let http = Http::new(port);
    let routes = [
        ("GET", "/metrics"),
        ("GET", "/v1/status"),
        ("GET", "/v1/services/alpha"),
        ("POST", "/v1/services/alpha/start"),
        ("POST", "/v1/services/alpha/restart"),
        ("POST", "/v1/services/alpha/stop"),
    ];
    for (method, path) in routes {
        for token in [None, Some("wrong")] {
            let a = http.call_with(method, path, token).await;
            assert_eq!(a.status, 401, "{method} {path} with {token:?}: {}", a.body);
            assert_eq!(a.json()["code"], "unauthenticated");
        }
        let a = http.call_with(method, path, Some("correct-horse")).await;
        assert_eq!(a.status, 200, "{method} {path}: {}", a.body);
    }
    f.record(
        &http
            .call_with("GET", "/v1/status", Some("correct-horse"))
            .await
            .json(),
    );
    let a = http.call_with("GET", "/v1/events", None).await;
    assert_eq!(a.status, 401);
    let _events = http.events(Some("correct-horse")).await;
    // The gRPC rule is the same token.
    assert!(!f.mdw(&["status"]).status.success());

    if let Some(py) = checker() {
        http.check_openapi(&py, f.dir.path(), Vec::new());
    }
}

#[test]
fn http_listen_is_checked_like_listen() {
    let f = Fixture::new(&[Svc::demo("alpha")], "");
    let port = {
        let text = std::fs::read_to_string(&f.config).unwrap();
        text.split("http_port = ")
            .nth(1)
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .to_owned()
    };
    for (value, says) in [
        (format!("\"127.0.0.1:{port}\""), "service 'alpha'"),
        (format!("\"{}\"", f.addr), "gRPC listen address"),
        ("\"localhost:9101\"".to_owned(), "not an IP address"),
        ("\"127.0.0.1:0\"".to_owned(), "port 0"),
    ] {
        let text = std::fs::read_to_string(&f.config).unwrap().replacen(
            "[russell]\n",
            &format!("[russell]\nhttp_listen = {value}\n"),
            1,
        );
        let file = f.path("bad.toml");
        std::fs::write(&file, text).unwrap();
        let out = f.mdw(&["config", "check", &file.to_string_lossy()]);
        let err = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{value} passed");
        assert!(
            err.contains("http_listen") && err.contains(says),
            "{value}: {err}"
        );
    }
}
