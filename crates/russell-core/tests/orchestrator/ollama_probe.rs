//! The Ollama probe against a real HTTP server on a free loopback port that answers
//! `GET /api/tags` the way Ollama does (or does not).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use russell_config::Probe;
use russell_core::health::{ProbeError, probe};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const TIMEOUT: Duration = Duration::from_secs(3);

/// A one-route HTTP server: every request gets `status` and `body`. It lives as long as the
/// returned guard (the accept task is aborted on drop).
struct Server {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(status: &'static str, body: String) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let body = body.clone();
            tokio::spawn(async move {
                // Read the request head; the probe sends no body.
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                assert!(head.starts_with(b"GET /api/tags HTTP/1.1\r\n"));
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    Server { port, task }
}

fn tags(names: &[&str]) -> String {
    let models: Vec<String> = names
        .iter()
        .map(|n| {
            format!(
                r#"{{"name":"{n}","model":"{n}","modified_at":"2025-01-01T00:00:00Z","size":4109865159,"digest":"f974a74358d6","details":{{"format":"gguf","family":"llama"}}}}"#
            )
        })
        .collect();
    format!(r#"{{"models":[{}]}}"#, models.join(","))
}

fn needs(port: u16, models: &[&str]) -> Probe {
    Probe::Ollama {
        url: format!("http://127.0.0.1:{port}/api/tags"),
        models: models.iter().map(ToString::to_string).collect(),
    }
}

const MDW_MODELS: &[&str] = &["mistral:7b", "nomic-embed-text"];

#[tokio::test]
async fn every_needed_model_listed_is_healthy() {
    let server = serve(
        "200 OK",
        tags(&["llama3:8b", "mistral:7b", "nomic-embed-text:latest"]),
    )
    .await;
    probe(&needs(server.port, MDW_MODELS), TIMEOUT)
        .await
        .unwrap();
}

#[tokio::test]
async fn missing_models_are_named_with_the_pull_command() {
    let server = serve("200 OK", tags(&["llama3:8b"])).await;
    let err = probe(&needs(server.port, MDW_MODELS), TIMEOUT)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProbeError::MissingModels { missing, .. } if missing == MDW_MODELS),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "http://127.0.0.1:{}/api/tags: models not pulled into Ollama: mistral:7b, \
             nomic-embed-text; get them with `ollama pull mistral:7b` and `ollama pull \
             nomic-embed-text`",
            server.port
        )
    );
}

/// The external's status carries the missing models by name (ControlCenter shows them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_status_names_its_missing_models() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve("200 OK", tags(&["mistral:7b"])).await;
    let mut models = test_support::config::external("models", "127.0.0.1:1", false);
    models.health_check.probe = needs(server.port, MDW_MODELS);
    let h = test_support::harness::Harness::new(
        test_support::config::config(dir.path(), vec![], vec![models]),
        false,
    )
    .await;
    let missing = || h.orch.snapshot().externals[0].missing_models.clone();
    test_support::wait_until_async("the models external probed", test_support::WAIT, || {
        !missing().is_empty()
    })
    .await;
    assert_eq!(missing(), vec!["nomic-embed-text".to_string()]);
    assert_eq!(
        h.orch.snapshot().externals[0].state,
        russell_core::ExternalState::Unhealthy
    );
    h.finish().await;
}

#[tokio::test]
async fn tags_must_match_whole_names_not_substrings() {
    // The body mentions both names, but neither model is there.
    let server = serve(
        "200 OK",
        tags(&[
            "mistral:7b-instruct",
            "nomic-embed-text-v2:latest",
            "mistral:latest",
        ]),
    )
    .await;
    let err = probe(&needs(server.port, MDW_MODELS), TIMEOUT)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProbeError::MissingModels { missing, .. } if missing == MDW_MODELS),
        "{err}"
    );
    // A needed name without a tag takes any tag; one with a tag needs exactly it.
    let server = serve("200 OK", tags(&["mistral:7b", "nomic-embed-text:v1.5"])).await;
    probe(&needs(server.port, MDW_MODELS), TIMEOUT)
        .await
        .unwrap();
    let err = probe(&needs(server.port, &["mistral"]), TIMEOUT).await;
    assert!(err.is_ok(), "{err:?}");
    let err = probe(&needs(server.port, &["nomic-embed-text:latest"]), TIMEOUT)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .ends_with("model not pulled into Ollama: nomic-embed-text:latest; get it with `ollama pull nomic-embed-text:latest`"),
        "{err}"
    );
}

#[tokio::test]
async fn an_answer_that_is_not_the_model_list_says_so() {
    for body in [
        "<html>Ollama is running</html>".to_owned(),
        r#"{"version":"0.5.1"}"#.to_owned(),
        String::new(),
    ] {
        let server = serve("200 OK", body.clone()).await;
        let err = probe(&needs(server.port, MDW_MODELS), TIMEOUT)
            .await
            .unwrap_err();
        assert!(
            matches!(err, ProbeError::NotModelList { .. }),
            "{body}: {err:?}"
        );
        assert!(err.to_string().contains("not Ollama's model list"), "{err}");
    }
}

#[tokio::test]
async fn an_error_status_and_a_closed_port_fail_as_http_does() {
    let server = serve("500 Internal Server Error", r#"{"error":"boom"}"#.into()).await;
    let err = probe(&needs(server.port, MDW_MODELS), TIMEOUT)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProbeError::HttpStatus { status: 500, .. }),
        "{err:?}"
    );
    let port = server.port;
    drop(server);
    // The listener closes once its task is gone (a connection caught in between is reset).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match probe(&needs(port, MDW_MODELS), TIMEOUT).await {
            Err(ProbeError::Io {
                kind: std::io::ErrorKind::ConnectionRefused,
                ..
            }) => break,
            other => {
                assert!(std::time::Instant::now() < deadline, "{other:?}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}
