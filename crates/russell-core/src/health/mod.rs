//! Health probes: one call of [`probe`] runs one check of a service or an external (grpc,
//! http, tcp, exec, ollama) and says ok or why not, bounded by a timeout.
//!
//! Probes run concurrently from many service tasks and keep nothing between calls (an http
//! probe opens a connection of its own, see [`http`]). Every failure is a
//! [`ProbeError`] whose one-line message names what was probed and what happened, because
//! that line is what a status view shows (`tcp 127.0.0.1:9200: connection refused`).

mod exec;
mod grpc;
mod http;
mod ollama;
mod tcp;

use std::time::Duration;

use russell_config::Probe;

/// One probe failed. The message is complete on its own (target + what happened).
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The probe did not finish within its timeout (an exec probe's group is killed).
    #[error("{target}: timed out after {}", format_duration(*after))]
    TimedOut { target: String, after: Duration },
    /// Connecting or talking to the target failed at the socket level.
    #[error("{target}: {kind}")]
    Io {
        target: String,
        kind: std::io::ErrorKind,
    },
    /// The target is unusable as written (bad URL, empty command).
    #[error("{target}: {what}")]
    InvalidTarget { target: String, what: &'static str },
    /// The HTTP endpoint answered with a non-2xx status; `body` is its first line, shortened.
    #[error("{target}: status {status}{}", suffix(body))]
    HttpStatus {
        target: String,
        status: u16,
        body: String,
    },
    /// The HTTP endpoint answered 2xx, but the body lacks the expected text.
    #[error("{target}: body does not contain {expected:?}")]
    BodyMismatch { target: String, expected: String },
    /// Ollama answered, but not with its model list.
    #[error("{target}: not Ollama's model list ({what})")]
    NotModelList { target: String, what: String },
    /// Ollama's model list lacks models that are needed.
    #[error("{target}: {} not pulled into Ollama: {}; get {} with {}", plural(missing.len()), missing.join(", "), if missing.len() == 1 { "it" } else { "them" }, pull_commands(missing))]
    MissingModels {
        target: String,
        missing: Vec<String>,
    },
    /// The HTTP exchange failed above the socket level (protocol error, closed early).
    #[error("{target}: {what}")]
    Http { target: String, what: String },
    /// The gRPC health service answered with a status other than SERVING.
    #[error("{target}: {status}")]
    NotServing {
        target: String,
        /// e.g. "NOT_SERVING", "UNKNOWN"
        status: &'static str,
    },
    /// The gRPC call failed (e.g. no health service, unknown service name).
    #[error("{target}: {code:?}{}", suffix(message))]
    Grpc {
        target: String,
        code: tonic::Code,
        message: String,
    },
    /// The exec probe's command could not be started.
    #[error("{target}: cannot run: {kind}")]
    Spawn {
        target: String,
        kind: std::io::ErrorKind,
    },
    /// The exec probe's command ended unsuccessfully; `stderr` is its first stderr line.
    #[error("{target}: {status}{}", suffix(stderr))]
    Exit {
        target: String,
        /// e.g. "exit status 1", "killed by signal 9"
        status: String,
        stderr: String,
    },
}

/// Runs one probe, bounded by `timeout`. [`Probe::None`] is always ok.
///
/// Cancel-safe: dropping the future (or the timeout) leaves no process or connection behind.
pub async fn probe(probe: &Probe, timeout: Duration) -> Result<(), ProbeError> {
    let target = describe(probe);
    let check = async {
        match probe {
            Probe::None => Ok(()),
            Probe::Grpc { addr, service } => grpc::probe(&target, addr, service, timeout).await,
            Probe::Http { url, expect_body } => {
                http::probe(&target, url, expect_body.as_deref()).await
            }
            Probe::Tcp { addr } => tcp::probe(&target, addr).await,
            Probe::Exec { command } => exec::probe(&target, command).await,
            Probe::Ollama { url, models } => ollama::probe(&target, url, models).await,
        }
    };
    match tokio::time::timeout(timeout, check).await {
        Ok(result) => result,
        Err(_) => Err(ProbeError::TimedOut {
            target,
            after: timeout,
        }),
    }
}

/// How a probe names its target in messages: `grpc 127.0.0.1:9200`, the URL, `tcp …`,
/// `exec cmd args`.
pub fn describe(probe: &Probe) -> String {
    match probe {
        Probe::None => "none".to_string(),
        Probe::Grpc { addr, service } if service.is_empty() => format!("grpc {addr}"),
        Probe::Grpc { addr, service } => format!("grpc {addr} ({service})"),
        Probe::Http { url, .. } => url.clone(),
        Probe::Tcp { addr } => format!("tcp {addr}"),
        Probe::Exec { command } => format!("exec {}", command.join(" ")),
        Probe::Ollama { url, .. } => url.clone(),
    }
}

/// The most telling [`std::io::ErrorKind`] in an error's source chain, if any.
fn io_kind(err: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut next = Some(err);
    while let Some(err) = next {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        next = err.source();
    }
    None
}

/// The innermost message of an error chain (hyper and tonic wrap the useful part).
fn innermost(err: &(dyn std::error::Error + 'static)) -> String {
    let mut err = err;
    while let Some(source) = err.source() {
        err = source;
    }
    err.to_string()
}

/// "model" or "models".
fn plural(n: usize) -> &'static str {
    if n == 1 { "model" } else { "models" }
}

/// "`ollama pull a` and `ollama pull b`".
fn pull_commands(models: &[String]) -> String {
    let pulls: Vec<String> = models
        .iter()
        .map(|m| format!("`ollama pull {m}`"))
        .collect();
    match pulls.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => pulls.concat(),
    }
}

/// `": text"` for a non-empty text, else nothing.
fn suffix(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

/// The first non-empty line of `bytes`, at most 200 characters.
fn first_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let line = text.lines().map(str::trim).find(|l| !l.is_empty());
    line.unwrap_or_default().chars().take(200).collect()
}

/// `3s`, `1500ms`: whole seconds when exact, else milliseconds.
fn format_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_target_and_cause() {
        let cases: Vec<(ProbeError, &str)> = vec![
            (
                ProbeError::TimedOut {
                    target: "tcp a:1".into(),
                    after: Duration::from_secs(3),
                },
                "tcp a:1: timed out after 3s",
            ),
            (
                ProbeError::TimedOut {
                    target: "tcp a:1".into(),
                    after: Duration::from_millis(250),
                },
                "tcp a:1: timed out after 250ms",
            ),
            (
                ProbeError::Io {
                    target: "tcp 127.0.0.1:9200".into(),
                    kind: std::io::ErrorKind::ConnectionRefused,
                },
                "tcp 127.0.0.1:9200: connection refused",
            ),
            (
                ProbeError::HttpStatus {
                    target: "http://127.0.0.1:8080/health".into(),
                    status: 503,
                    body: String::new(),
                },
                "http://127.0.0.1:8080/health: status 503",
            ),
            (
                ProbeError::NotServing {
                    target: "grpc 127.0.0.1:9200".into(),
                    status: "NOT_SERVING",
                },
                "grpc 127.0.0.1:9200: NOT_SERVING",
            ),
            (
                ProbeError::MissingModels {
                    target: "http://127.0.0.1:11434/api/tags".into(),
                    missing: vec!["mistral:7b".into(), "nomic-embed-text".into()],
                },
                "http://127.0.0.1:11434/api/tags: models not pulled into Ollama: mistral:7b, \
                 nomic-embed-text; get them with `ollama pull mistral:7b` and `ollama pull \
                 nomic-embed-text`",
            ),
            (
                ProbeError::MissingModels {
                    target: "u".into(),
                    missing: vec!["mistral:7b".into()],
                },
                "u: model not pulled into Ollama: mistral:7b; get it with `ollama pull mistral:7b`",
            ),
            (
                ProbeError::Exit {
                    target: "exec false".into(),
                    status: "exit status 1".into(),
                    stderr: "boom".into(),
                },
                "exec false: exit status 1: boom",
            ),
        ];
        for (err, text) in cases {
            assert_eq!(err.to_string(), text);
        }
    }

    #[test]
    fn first_line_skips_blank_lines_and_shortens() {
        assert_eq!(first_line(b"\n  \nerror: x\nmore"), "error: x");
        assert_eq!(first_line(&[b'a'; 500]).len(), 200);
        assert_eq!(first_line(b""), "");
    }
}
