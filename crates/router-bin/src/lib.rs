//! The `llm-router` server: a hyper server (HTTP/1.1 and h2c) around `router-core`, with
//! bearer auth, CORS, compression, a body limit, admin endpoints and graceful shutdown.
//! [`serve`] is what the binary runs and what tests and embedders drive.

mod app;
mod auth;
mod body;
mod compress;
mod cors;
mod dashboard;
pub mod ledger;
mod metrics;
mod observe;
mod server;

pub use app::{App, LedgerState, RecentError};
pub use observe::access_lines_as_text;
pub use server::{serve, serve_admin};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use observe::{Observed, RequestLog, Settling};
use router_core::{Dialect, Endpoint, RouterError, Snapshot};
use serde_json::json;
use std::convert::Infallible;
use std::sync::Arc;

/// The response body type of the server.
pub type ResBody = UnsyncBoxBody<Bytes, Infallible>;

/// The config the binary serves when no config file is given and `config.yaml` is absent.
pub const EMBEDDED_CONFIG: &str = include_str!("../../../config.example.yaml");

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<ResBody> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())).boxed_unsync());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The one place an error becomes an HTTP response: its status, and an OpenAI-shaped body, or
/// an Anthropic-shaped one for requests that came in Anthropic's format.
pub fn error_response(error: &RouterError, dialect: Dialect) -> Response<ResBody> {
    match error.origin() {
        router_core::Origin::Internal => tracing::error!("{error}"),
        router_core::Origin::Upstream => tracing::warn!("{error}"),
        router_core::Origin::Client => tracing::debug!("{error}"),
    }
    let body = match dialect {
        Dialect::OpenAi => error.body(),
        Dialect::Anthropic => error.anthropic_body(),
    };
    let mut response = json_response(error.status(), &body);
    if let Some(secs) = error.retry_after_secs() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    if matches!(error, RouterError::Unauthorized) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// Who may call a route.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Anyone (health, the dashboard page, which holds no data).
    Open,
    /// The client keys.
    Client,
    /// The admin key (or, without one, the client keys).
    Admin,
}

const ROUTES: &[(&str, &[Method], Access)] = &[
    ("/health", &[Method::GET], Access::Open),
    ("/v1/models", &[Method::GET], Access::Client),
    ("/v1/chat/completions", &[Method::POST], Access::Client),
    ("/v1/messages", &[Method::POST], Access::Client),
    ("/v1/completions", &[Method::POST], Access::Client),
    ("/v1/embeddings", &[Method::POST], Access::Client),
    ("/admin/usage", &[Method::GET], Access::Admin),
    ("/admin/reload", &[Method::POST], Access::Admin),
    ("/admin/dashboard", &[Method::GET], Access::Admin),
    ("/metrics", &[Method::GET], Access::Admin),
    ("/dashboard", &[Method::GET], Access::Open),
    ("/demo", &[Method::GET], Access::Open),
];

/// The metrics label of a path.
pub(crate) fn endpoint_label(path: &str) -> &'static str {
    match path {
        "/v1/chat/completions" => "chat",
        "/v1/messages" => "messages",
        "/v1/completions" => "completions",
        "/v1/embeddings" => "embeddings",
        _ => "other",
    }
}

/// The client's `x-request-id` when it is a sane one (1 to 128 visible ASCII characters),
/// else a new random id.
fn request_id(headers: &http::HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| (1..=128).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| format!("{:016x}", fastrand::u64(..)), str::to_string)
}

/// Handles one request: the request's way through the router, top to bottom. `admin_only`
/// is for the admin listener, which serves health, metrics, the admin endpoints and the
/// dashboard only.
pub async fn handle(
    app: &Arc<App>,
    request: Request<Incoming>,
    admin_only: bool,
) -> Response<ResBody> {
    let started = std::time::Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let snapshot = app.router.snapshot();
    let server = snapshot.server();
    let origin = request.headers().get(header::ORIGIN).cloned();
    let accept = request
        .headers()
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let id = request_id(request.headers());

    if request.method() == Method::OPTIONS {
        let mut response = Response::new(Full::new(Bytes::new()).boxed_unsync());
        *response.status_mut() = StatusCode::NO_CONTENT;
        cors::preflight(
            &server.cors_origins,
            origin.as_ref(),
            response.headers_mut(),
        );
        if let Ok(value) = HeaderValue::from_str(&id) {
            response.headers_mut().insert("x-request-id", value);
        }
        return response;
    }

    // Logged when the response ends, or when this future is dropped before it has one.
    let mut log = RequestLog::new(app.clone(), id.clone(), method, path, started);
    // Boxed: hyper keeps this future's allocation for the connection's life, so the
    // forwarding state (kilobytes) lives in its own allocation, freed when the head is ready.
    let routed = Box::pin(route(app, &snapshot, request, &mut log, admin_only)).await;
    let (mut response, known_len) = match routed {
        Ok(ok) => ok,
        Err(e) => {
            let dialect = if log.path == "/v1/messages" {
                Dialect::Anthropic
            } else {
                Dialect::OpenAi
            };
            if let RouterError::UpstreamFailed {
                group, attempts, ..
            }
            | RouterError::RateLimited {
                group, attempts, ..
            } = &e
            {
                log.group = Some(group.clone());
                log.attempts = attempts.len();
            }
            let r = error_response(&e, dialect);
            if !matches!(e.origin(), router_core::Origin::Client)
                || r.status() == StatusCode::TOO_MANY_REQUESTS
            {
                app.record_error(RecentError {
                    at: std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs()),
                    request_id: id.clone(),
                    status: r.status().as_u16(),
                    path: log.path.clone(),
                    message: e.client_message(),
                });
            }
            let len = http_body::Body::size_hint(r.body())
                .exact()
                .map(|n| n as usize);
            (r, len)
        }
    };
    cors::apply(
        &server.cors_origins,
        origin.as_ref(),
        response.headers_mut(),
    );
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    if server.compression {
        response = compress::apply(
            response,
            accept.as_deref(),
            known_len,
            server.compression_min_bytes,
        )
        .await;
    }
    log.status = response.status().as_u16();
    log.head = Some(std::time::Instant::now());
    let (parts, body) = response.into_parts();
    Response::from_parts(parts, Observed::new(body, log).boxed_unsync())
}

async fn route(
    app: &Arc<App>,
    snapshot: &Snapshot,
    request: Request<Incoming>,
    log: &mut RequestLog,
    admin_only: bool,
) -> Result<(Response<ResBody>, Option<usize>), RouterError> {
    let router = &app.router;
    let path = request.uri().path().to_string();
    let method = request.method().clone();
    let route = ROUTES
        .iter()
        .find(|(p, _, access)| *p == path && !(admin_only && *access == Access::Client));
    let Some((_, methods, access)) = route else {
        return Err(RouterError::NotFound(path));
    };
    if !methods.contains(&method) {
        return Err(RouterError::MethodNotAllowed(method.to_string()));
    }
    let keys = match access {
        Access::Open => None,
        Access::Client => Some(snapshot.client_keys()),
        Access::Admin => Some(snapshot.admin_keys()),
    };
    if keys.is_some_and(|keys| !auth::authorized(request.headers(), keys)) {
        return Err(RouterError::Unauthorized);
    }
    let complete = |r: Response<ResBody>| {
        let len = http_body::Body::size_hint(r.body())
            .exact()
            .map(|n| n as usize);
        (r, len)
    };
    match path.as_str() {
        "/health" => Ok(complete(json_response(
            StatusCode::OK,
            &json!({"status": "ok", "generation": snapshot.generation()}),
        ))),
        "/v1/models" => {
            let data: Vec<_> = snapshot
                .groups()
                .iter()
                .map(|g| json!({"id": g.name(), "object": "model", "created": 0, "owned_by": "llm-router"}))
                .collect();
            Ok(complete(json_response(
                StatusCode::OK,
                &json!({"object": "list", "data": data}),
            )))
        }
        "/admin/usage" => Ok(complete(json_response(
            StatusCode::OK,
            &json!({"generation": snapshot.generation(), "usage": router.usage()}),
        ))),
        "/admin/dashboard" => Ok(complete(json_response(
            StatusCode::OK,
            &dashboard::data(app, snapshot),
        ))),
        "/dashboard" | "/demo" => {
            let mut r =
                Response::new(Full::new(Bytes::from_static(dashboard::PAGE)).boxed_unsync());
            let headers = r.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            // Nothing outside the page: no CDN, no frames, no other origin, and no script but
            // the page's own (by its hash).
            if let Ok(csp) = HeaderValue::from_str(dashboard::content_security_policy()) {
                headers.insert(header::CONTENT_SECURITY_POLICY, csp);
            }
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(complete(r))
        }
        "/metrics" => match app.metrics.render(router) {
            Ok(text) => {
                let mut r = Response::new(Full::new(Bytes::from(text)).boxed_unsync());
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                );
                Ok(complete(r))
            }
            Err(e) => Err(RouterError::Internal(format!("metrics: {e}"))),
        },
        "/admin/reload" => match router.reload() {
            Ok(outcome) => Ok(complete(json_response(
                StatusCode::OK,
                &json!({"status": "reloaded", "generation": outcome.generation, "warnings": outcome.warnings}),
            ))),
            Err(e) => {
                tracing::error!("reload requested but the config cannot be used; still serving the previous one:\n{e}");
                Ok(complete(json_response(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &json!({"error": {
                        "message": format!("config not reloaded; still serving generation {}: {e}", snapshot.generation()),
                        "type": "invalid_config_error",
                        "param": null,
                        "code": "config_invalid",
                    }}),
                )))
            }
        },
        _ => {
            let client_headers = router_core::ClientHeaders::from_request(request.headers());
            let declared = request
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            let body = body::read_limited(
                request.into_body(),
                declared,
                snapshot.server().max_body_bytes,
            )
            .await?;
            let answer = match path.as_str() {
                "/v1/messages" => {
                    router
                        .messages_with_headers(snapshot, &body, &client_headers)
                        .await?
                }
                "/v1/completions" => {
                    router
                        .forward_openai(snapshot, Endpoint::Completions, &body)
                        .await?
                }
                "/v1/embeddings" => {
                    router
                        .forward_openai(snapshot, Endpoint::Embeddings, &body)
                        .await?
                }
                _ => router.chat_completions_with(snapshot, &body).await?,
            };
            log.served = Some(answer.served);
            let known_len = answer.body.len();
            let (body, slot) = Settling::new(answer.body);
            log.usage = Some(slot);
            let mut response = Response::new(body.boxed_unsync());
            *response.status_mut() = answer.status;
            *response.headers_mut() = answer.headers;
            Ok((response, known_len))
        }
    }
}
