//! The `llm-router` server: a hyper server (HTTP/1.1 and h2c) around `router-core`, with
//! bearer auth, CORS, compression, a body limit, admin endpoints and graceful shutdown.
//! [`serve`] is what the binary runs and what tests and embedders drive.

mod auth;
mod body;
mod compress;
mod cors;
mod server;

pub use server::serve;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use router_core::{Dialect, Endpoint, Router, RouterError, Snapshot};
use serde_json::json;
use std::convert::Infallible;

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

const ROUTES: &[(&str, &[Method])] = &[
    ("/health", &[Method::GET]),
    ("/v1/models", &[Method::GET]),
    ("/v1/chat/completions", &[Method::POST]),
    ("/v1/messages", &[Method::POST]),
    ("/v1/completions", &[Method::POST]),
    ("/v1/embeddings", &[Method::POST]),
    ("/admin/usage", &[Method::GET]),
    ("/admin/reload", &[Method::POST]),
];

/// Handles one request: the request's way through the router, top to bottom.
pub async fn handle(router: &Router, request: Request<Incoming>) -> Response<ResBody> {
    let started = std::time::Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let snapshot = router.snapshot();
    let server = snapshot.server();
    let origin = request.headers().get(header::ORIGIN).cloned();
    let accept = request
        .headers()
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);

    if request.method() == Method::OPTIONS {
        let mut response = Response::new(Full::new(Bytes::new()).boxed_unsync());
        *response.status_mut() = StatusCode::NO_CONTENT;
        cors::preflight(
            &server.cors_origins,
            origin.as_ref(),
            response.headers_mut(),
        );
        return response;
    }

    let mut served = None;
    let (mut response, known_len) = match route(router, &snapshot, request, &mut served).await {
        Ok(ok) => ok,
        Err(e) => {
            let dialect = if path == "/v1/messages" {
                Dialect::Anthropic
            } else {
                Dialect::OpenAi
            };
            let r = error_response(&e, dialect);
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
    if server.compression {
        response = compress::apply(
            response,
            accept.as_deref(),
            known_len,
            server.compression_min_bytes,
        )
        .await;
    }
    // One access line per request: never content, never a key (key ids only).
    let status = response.status().as_u16();
    let latency_us = started.elapsed().as_micros() as u64;
    match served {
        Some(s) => tracing::info!(
            target: "access", %method, %path, status, latency_us,
            provider = %s.provider, model = %s.model, key = %s.key_id, attempts = s.attempts,
        ),
        None => tracing::info!(target: "access", %method, %path, status, latency_us),
    }
    response
}

async fn route(
    router: &Router,
    snapshot: &Snapshot,
    request: Request<Incoming>,
    served: &mut Option<router_core::Served>,
) -> Result<(Response<ResBody>, Option<usize>), RouterError> {
    let path = request.uri().path().to_string();
    let method = request.method().clone();
    let Some((_, methods)) = ROUTES.iter().find(|(p, _)| *p == path) else {
        return Err(RouterError::NotFound(path));
    };
    if !methods.contains(&method) {
        return Err(RouterError::MethodNotAllowed(method.to_string()));
    }
    if path != "/health" && !auth::authorized(request.headers(), snapshot.client_keys()) {
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
            *served = Some(answer.served);
            let known_len = answer.body.len();
            let mut response = Response::new(answer.body.boxed_unsync());
            *response.status_mut() = answer.status;
            *response.headers_mut() = answer.headers;
            Ok((response, known_len))
        }
    }
}
