//! The routes of the HTTP view and their answers. Errors are JSON
//! (`{"error": "...", "code": "not_found"}`) with the HTTP status that matches the gRPC
//! code the same call gets over gRPC (`crate::server::to_status` chooses it).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{ALLOW, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;
use tonic::{Code, Status};

use super::{Body, HttpView, metrics, sse};
use crate::json::{ErrorJson, ServiceJson};
use crate::pb;
use crate::server::{check_name, resolve, resolve_service, to_status};

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Metrics,
    Status,
    Events,
    Service(String),
    Control(String, Action),
}

/// The three verbs on one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Start,
    Stop,
    Restart,
}

impl Route {
    /// The route of `path`, or None (404).
    fn parse(path: &str) -> Option<Self> {
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        Some(match parts.as_slice() {
            ["metrics"] => Self::Metrics,
            ["v1", "status"] => Self::Status,
            ["v1", "events"] => Self::Events,
            ["v1", "services", name] => Self::Service(decode(name)?),
            ["v1", "services", name, action] => {
                let action = match *action {
                    "start" => Action::Start,
                    "stop" => Action::Stop,
                    "restart" => Action::Restart,
                    _ => return None,
                };
                Self::Control(decode(name)?, action)
            }
            _ => return None,
        })
    }

    /// The method the route answers.
    fn method(&self) -> Method {
        match self {
            Self::Control(..) => Method::POST,
            _ => Method::GET,
        }
    }

    /// The route's template, the `method` label of `mdw_api_requests_total`.
    fn template(&self) -> &'static str {
        match self {
            Self::Metrics => "GET /metrics",
            Self::Status => "GET /v1/status",
            Self::Events => "GET /v1/events",
            Self::Service(_) => "GET /v1/services/{name}",
            Self::Control(_, Action::Start) => "POST /v1/services/{name}/start",
            Self::Control(_, Action::Stop) => "POST /v1/services/{name}/stop",
            Self::Control(_, Action::Restart) => "POST /v1/services/{name}/restart",
        }
    }
}

/// A path segment with `%XX` escapes decoded (a service name may hold a space); None when
/// an escape is broken or the result is not UTF-8.
fn decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Answers one request and counts it.
pub(super) async fn answer(view: &HttpView, req: Request<Incoming>) -> Response<Body> {
    let metrics = view.api.metrics().clone();
    let route = Route::parse(req.uri().path());
    let label = route.as_ref().map_or("other", Route::template);
    let resp = match route {
        None => error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "no route {} {}: see docs/openapi.yaml for the routes",
                req.method(),
                req.uri().path()
            ),
        ),
        Some(route) if *req.method() != route.method() => {
            let allowed = route.method();
            let mut resp = error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("{} takes {allowed}, not {}", req.uri().path(), req.method()),
            );
            resp.headers_mut().insert(
                ALLOW,
                HeaderValue::from_static(if allowed == Method::POST {
                    "POST"
                } else {
                    "GET"
                }),
            );
            resp
        }
        Some(route) => {
            let header = req
                .headers()
                .get(AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            match view.auth.check(header) {
                Err(refused) => from_status(&refused),
                Ok(()) => serve(view, route).await,
            }
        }
    };
    metrics.count_call("http", label, resp.status().as_u16());
    resp
}

async fn serve(view: &HttpView, route: Route) -> Response<Body> {
    let orch = view.api.orch();
    match route {
        Route::Metrics => {
            let scrape = metrics::Scrape {
                snapshot: orch.fresh_snapshot().await,
                calls: view.api.metrics().calls(),
            };
            text(
                StatusCode::OK,
                metrics::CONTENT_TYPE,
                metrics::render(scrape),
            )
        }
        Route::Status => match view.api.status_json().await {
            Ok(bytes) => full(StatusCode::OK, "application/json", bytes),
            Err(e) => encode_failed(&e),
        },
        Route::Events => sse::events(orch, view.closing.clone()),
        Route::Service(name) => match service(view, &name).await {
            Ok(svc) => json(StatusCode::OK, &svc),
            Err(s) => from_status(&s),
        },
        Route::Control(name, action) => match control(view, &name, action).await {
            Ok(svc) => json(StatusCode::OK, &svc),
            Err(s) => from_status(&s),
        },
    }
}

/// One service as `GET /v1/status` shows it.
async fn service(view: &HttpView, name: &str) -> Result<ServiceJson, Status> {
    let orch = view.api.orch();
    let short = resolve(orch, "name", name)?;
    let snap = orch.fresh_snapshot().await;
    snap.services
        .iter()
        .find(|s| s.short_name == short)
        .map(|s| ServiceJson::from(&pb::ServiceStatus::from(&**s)))
        .ok_or_else(|| {
            Status::not_found(format!(
                "'{short}' is an external dependency: GET /v1/status lists its state"
            ))
        })
}

/// Starts, stops or restarts a service, then shows it.
async fn control(view: &HttpView, name: &str, action: Action) -> Result<ServiceJson, Status> {
    check_name("name", name)?;
    let orch = view.api.orch();
    let verb = match action {
        Action::Start => "start",
        Action::Stop => "stop",
        Action::Restart => "restart",
    };
    let short = resolve_service(orch, "name", name, verb)?;
    let result = match action {
        Action::Start => orch.start_service(&short).await.map_err(to_status)?,
        Action::Stop => {
            orch.stop_service(&short).await.map_err(to_status)?;
            return service(view, &short).await;
        }
        Action::Restart => orch.restart_service(&short).await.map_err(to_status)?,
    };
    if !result.success {
        return Err(Status::failed_precondition(format!(
            "{short} did not {verb}: {}",
            result.error
        )));
    }
    service(view, &short).await
}

/// The HTTP status and the snake_case code for a gRPC status.
fn http_code(code: Code) -> (StatusCode, &'static str) {
    match code {
        Code::NotFound => (StatusCode::NOT_FOUND, "not_found"),
        Code::InvalidArgument => (StatusCode::BAD_REQUEST, "invalid_argument"),
        Code::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
        Code::PermissionDenied => (StatusCode::FORBIDDEN, "permission_denied"),
        Code::FailedPrecondition => (StatusCode::CONFLICT, "failed_precondition"),
        Code::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        Code::DeadlineExceeded => (StatusCode::GATEWAY_TIMEOUT, "deadline_exceeded"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    }
}

fn from_status(s: &Status) -> Response<Body> {
    let (status, code) = http_code(s.code());
    let mut resp = error(status, code, s.message().to_owned());
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut()
            .insert("www-authenticate", HeaderValue::from_static("Bearer"));
    }
    resp
}

fn error(status: StatusCode, code: &str, message: String) -> Response<Body> {
    let body = ErrorJson {
        error: message,
        code: code.to_owned(),
    };
    json(status, &body)
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(bytes) => full(status, "application/json", bytes),
        Err(e) => encode_failed(&e),
    }
}

fn encode_failed(e: &serde_json::Error) -> Response<Body> {
    full(
        StatusCode::INTERNAL_SERVER_ERROR,
        "text/plain; charset=utf-8",
        format!("could not encode the answer: {e}"),
    )
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    full(status, content_type, body.into_bytes())
}

fn full(status: StatusCode, content_type: &'static str, bytes: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(Full::new(bytes.into()).boxed());
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_parse() {
        assert_eq!(Route::parse("/metrics"), Some(Route::Metrics));
        assert_eq!(Route::parse("/v1/status"), Some(Route::Status));
        assert_eq!(
            Route::parse("/v1/services/Kant%20Gateway"),
            Some(Route::Service("Kant Gateway".into()))
        );
        assert_eq!(
            Route::parse("/v1/services/kant/restart"),
            Some(Route::Control("kant".into(), Action::Restart))
        );
        assert_eq!(Route::parse("/v1/services/kant/explode"), None);
        assert_eq!(Route::parse("/v1/services/%zz"), None);
        assert_eq!(Route::parse("/"), None);
    }
}
