//! One request's way through the server, top to bottom: CORS preflight, route, auth, body
//! limit, forward (or a local endpoint), errors in the client's dialect, CORS, compression,
//! and the request's log when its response ends.

use crate::app::App;
use crate::observe::{observed, settling, RequestLog};
use crate::routes::{Access, Action, Route};
use crate::{auth, body, compress, cors, dashboard, error_response, json_response, ResBody};
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use router_core::{ClientRequest, Dialect, Endpoint, RouterError, Snapshot};
use serde_json::json;
use std::sync::Arc;

/// A response and, for a complete body, its length (what compression decides by).
type Routed = (Response<ResBody>, Option<usize>);

/// The request id's header, named once (a name given as text is parsed at each use).
const X_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");

/// The client's `x-request-id` when it is a sane one (1 to 128 letters, digits and
/// `-_.:/+=@`: a UUID, a trace id, base64), else a new random id. Nothing in it needs
/// quoting or escaping in a log line.
fn request_id(headers: &http::HeaderMap) -> String {
    let sane = |b: u8| b.is_ascii_alphanumeric() || b"-_.:/+=@".contains(&b);
    headers
        .get(X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| (1..=128).contains(&v.len()) && v.bytes().all(sane))
        .map_or_else(random_id, str::to_string)
}

/// 16 random hex digits.
fn random_id() -> String {
    let mut hex = [0u8; 16];
    // Eight bytes always fit sixteen digits.
    let _ = hex::encode_to_slice(fastrand::u64(..).to_be_bytes(), &mut hex);
    String::from_utf8_lossy(&hex).into_owned()
}

fn complete(response: Response<ResBody>) -> Routed {
    let len = http_body::Body::size_hint(response.body())
        .exact()
        .map(|n| n as usize);
    (response, len)
}

/// Handles one request. `admin_only` is for the admin listener, which serves health,
/// metrics, the admin endpoints and the dashboard only.
///
/// Boxed: hyper keeps room for a service's future as long as the connection lives, so the
/// handling (kilobytes) has its own allocation, freed once the response head is ready.
pub fn handle<'a>(
    app: &'a Arc<App>,
    request: Request<Incoming>,
    admin_only: bool,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Response<ResBody>> + Send + 'a>> {
    Box::pin(handled(app, request, admin_only))
}

async fn handled(
    app: &Arc<App>,
    request: Request<Incoming>,
    admin_only: bool,
) -> Response<ResBody> {
    let started = std::time::Instant::now();
    let method = request.method().clone();
    // The target as the request's head holds it (a clone shares its bytes): the log names
    // its path, never its query.
    let uri = request.uri().clone();
    let snapshot = app.router.snapshot();
    let server = snapshot.server();
    let origin = request.headers().get(header::ORIGIN).cloned();
    // Held as the header's value (shared with the request's head), read when compressing.
    let accept = request.headers().get(header::ACCEPT_ENCODING).cloned();
    let id = request_id(request.headers());
    if method == Method::OPTIONS {
        let mut response = Response::new(Full::new(Bytes::new()).boxed_unsync());
        *response.status_mut() = StatusCode::NO_CONTENT;
        cors::preflight(
            &server.cors_origins,
            origin.as_ref(),
            response.headers_mut(),
        );
        if let Ok(value) = HeaderValue::from_str(&id) {
            response.headers_mut().insert(X_REQUEST_ID, value);
        }
        return response;
    }
    let route = Route::find(uri.path(), &method, admin_only);
    let label = route.map_or(crate::routes::UNKNOWN, |r| r.label);
    // Logged when the response ends, or when this future is dropped before it has one.
    let mut log = RequestLog::new(app.clone(), id, method, uri, label, started);
    let routed = serve_route(app, &snapshot, route, request, &mut log).await;
    let (mut response, known_len) = match routed {
        Ok(ok) => ok,
        Err(e) => {
            let dialect = route.map_or(Dialect::OpenAi, Route::dialect);
            complete(failed(app, &mut log, &e, dialect))
        }
    };
    cors::apply(
        &server.cors_origins,
        origin.as_ref(),
        response.headers_mut(),
    );
    if let Ok(value) = HeaderValue::from_str(&log.request_id) {
        response.headers_mut().insert(X_REQUEST_ID, value);
    }
    if server.compression {
        response = compress::apply(
            response,
            accept.as_ref().and_then(|v| v.to_str().ok()),
            known_len,
            server.compression_min_bytes,
        )
        .await;
    }
    log.status = response.status().as_u16();
    log.head = Some(std::time::Instant::now());
    let (parts, body) = response.into_parts();
    Response::from_parts(parts, observed(body, log).boxed_unsync())
}

/// The response to a request that failed; what the dashboard should know of it is noted.
fn failed(app: &App, log: &mut RequestLog, e: &RouterError, dialect: Dialect) -> Response<ResBody> {
    if let RouterError::UpstreamFailed {
        group, attempts, ..
    }
    | RouterError::RateLimited {
        group, attempts, ..
    } = e
    {
        log.group = Some(group.clone());
        log.attempts = attempts.len();
    }
    let response = error_response(e, dialect);
    // Every error is shown, the client's own too: a wrong key or model name is often the
    // operator's question.
    let message = e.client_message();
    log.requested_model = e.model().map(str::to_string);
    app.record_error(
        &log.request_id,
        response.status().as_u16(),
        log.path(),
        message.clone(),
    );
    log.error = Some(message);
    response
}

/// The route's answer, once the caller may call it.
async fn serve_route(
    app: &Arc<App>,
    snapshot: &Snapshot,
    route: Option<&'static Route>,
    request: Request<Incoming>,
    log: &mut RequestLog,
) -> Result<Routed, RouterError> {
    let Some(route) = route else {
        return Err(RouterError::not_found(request.uri().path()));
    };
    if request.method() != route.method {
        return Err(RouterError::MethodNotAllowed(request.method().to_string()));
    }
    let client = match route.access {
        Access::Open => None,
        Access::Client => client(snapshot, request.headers())?,
        Access::Admin if snapshot.admin_closed() => {
            return Err(RouterError::KeyRefused(
                "the admin endpoints are closed: clients are named and there is no admin_key; set admin_key in the config".into(),
            ))
        }
        Access::Admin => {
            if !auth::authorized(request.headers(), snapshot.admin_keys()) {
                // A client's key here is a wrong door, not a wrong key: said so.
                if auth::identify(request.headers(), snapshot.client_keys()).is_some() {
                    return Err(RouterError::AdminKeyRequired);
                }
                return Err(RouterError::Unauthorized);
            }
            None
        }
    };
    log.client = client.as_ref().map(|c| c.name().to_string());
    match route.action {
        Action::Requests => requests(app, request.uri().query()).await.map(complete),
        Action::Manage(what) => {
            // A name that is not UTF-8 once decoded names nothing here.
            let Some(names) = route.names(request.uri().path()) else {
                return Err(RouterError::not_found(request.uri().path()));
            };
            crate::manage_admin::serve(app, snapshot, what, names, request)
                .await
                .map(complete)
        }
        Action::Forward(dialect, endpoint) => {
            forward(
                app,
                snapshot,
                request,
                dialect,
                endpoint,
                client.as_ref(),
                log,
            )
            .await
        }
        local => {
            local_endpoint(app, snapshot, local, request.headers(), client.as_ref()).map(complete)
        }
    }
}

/// The named client whose key the request carries (`None` for an unnamed key, or when no key
/// is configured), or why the request is refused: an unknown key, or a client's key that is
/// disabled or expired.
fn client(
    snapshot: &Snapshot,
    headers: &http::HeaderMap,
) -> Result<Option<Arc<router_core::tenants::Client>>, RouterError> {
    let keys = snapshot.client_keys();
    if keys.is_empty() {
        return Ok(None);
    }
    let index = auth::identify(headers, keys).ok_or(RouterError::Unauthorized)?;
    let Some(client) = snapshot.key_owner(index) else {
        return Ok(None);
    };
    if let Some(reason) = client.refused_because(time::OffsetDateTime::now_utc()) {
        return Err(RouterError::KeyRefused(reason));
    }
    Ok(Some(client.clone()))
}

/// A client's request, forwarded: read under the body limit, then to the group it names.
async fn forward(
    app: &Arc<App>,
    snapshot: &Snapshot,
    request: Request<Incoming>,
    dialect: Dialect,
    endpoint: Endpoint,
    named: Option<&Arc<router_core::tenants::Client>>,
    log: &mut RequestLog,
) -> Result<Routed, RouterError> {
    let (parts, incoming) = request.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let limits = body::BodyLimits::of(snapshot.server());
    let trace = (app.telemetry.as_ref()).map(|t| Arc::new(t.begin(&parts.headers)));
    log.trace = trace.clone();
    let body = body::read_limited(incoming, declared, limits).await?;
    let client = ClientRequest::new(dialect, endpoint, &body)
        .with_headers(&parts.headers)
        .with_client(named)
        .with_request_id(&log.request_id);
    let client = match &trace {
        Some(trace) => client.traced(trace),
        None => client,
    };
    let answer = app.router.forward(snapshot, client).await?;
    log.served = Some(answer.served);
    let known_len = answer.body.len();
    let mut answer_body = answer.body;
    log.stream = answer_body.is_stream();
    if log.stream {
        answer_body.cut_when(app.stream_cut(log.request_id.clone()));
    }
    let (body, slot) = settling(answer_body);
    log.usage = Some(slot);
    let mut response = Response::new(body.boxed_unsync());
    *response.status_mut() = answer.status;
    *response.headers_mut() = answer.headers;
    Ok((response, known_len))
}

/// `GET /admin/requests`: the request log's latest rows that the query's filters let through
/// (`kept: false` and why, when no request log is kept).
async fn requests(app: &Arc<App>, query: Option<&str>) -> Result<Response<ResBody>, RouterError> {
    let filter = crate::ledger::RequestFilter::from_query(query)
        .map_err(|e| RouterError::bad_request(e, None))?;
    let ledger = match app.request_log() {
        Ok(ledger) => ledger,
        Err(why) => {
            let body = json!({"kept": false, "why": why, "rows": []});
            return Ok(json_response(StatusCode::OK, &body));
        }
    };
    let rows = tokio::task::spawn_blocking(move || ledger.requests(&filter))
        .await
        .map_err(|e| RouterError::Internal(format!("request log: {e}")))?
        .map_err(RouterError::Internal)?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"kept": true, "rows": rows}),
    ))
}

/// Readiness: 200 when the config is loaded (it is, to answer), the ledger is written or
/// off, and every group has a pair it can pick first; 503 with the reasons otherwise. Redis
/// away is never a reason: state goes on locally and the answer says `degraded`.
fn ready(app: &App, snapshot: &Snapshot) -> Response<ResBody> {
    let router = &app.router;
    let mut reasons: Vec<String> = Vec::new();
    if let crate::app::LedgerState::Failing { path, error } = app.ledger_state() {
        reasons.push(format!(
            "the usage ledger {path} cannot be written: {error}"
        ));
    }
    for group in snapshot.groups() {
        if !group.has_usable_pair(snapshot) {
            reasons.push(format!(
                "group '{}' has no usable pair: each is disabled, cooling down or behind an \
                 open breaker",
                group.name()
            ));
        }
    }
    let status = if reasons.is_empty() {
        "ready"
    } else {
        "not_ready"
    };
    let mut body = json!({"status": status, "state": router.shared_state().name()});
    if snapshot.shared().is_some() {
        body["replicas"] = json!(router.replicas());
    }
    if reasons.is_empty() {
        json_response(StatusCode::OK, &body)
    } else {
        body["reasons"] = json!(reasons);
        json_response(StatusCode::SERVICE_UNAVAILABLE, &body)
    }
}

/// The answer of an endpoint the server serves itself.
fn local_endpoint(
    app: &App,
    snapshot: &Snapshot,
    action: Action,
    headers: &http::HeaderMap,
    client: Option<&Arc<router_core::tenants::Client>>,
) -> Result<Response<ResBody>, RouterError> {
    let router = &app.router;
    Ok(match action {
        Action::Health => json_response(
            StatusCode::OK,
            &json!({"status": "ok", "generation": snapshot.generation()}),
        ),
        Action::Live => json_response(StatusCode::OK, &json!({"status": "live"})),
        Action::Ready => ready(app, snapshot),
        Action::Models => json_response(StatusCode::OK, &models(snapshot, headers, client)),
        Action::Usage => json_response(
            StatusCode::OK,
            &json!({"generation": snapshot.generation(), "usage": router.usage()}),
        ),
        Action::Clients => json_response(StatusCode::OK, &crate::clients::report(snapshot)),
        Action::Providers => json_response(StatusCode::OK, &crate::manage_admin::providers(app)?),
        Action::Groups => json_response(StatusCode::OK, &crate::manage_admin::groups(app)?),
        Action::DashboardData => json_response(StatusCode::OK, &dashboard::data(app, snapshot)),
        Action::DashboardPage => dashboard::page(),
        Action::Metrics => {
            let text = app
                .metrics
                .render(router, &app.ledger_state())
                .map_err(|e| RouterError::Internal(format!("metrics: {e}")))?;
            let mut r = Response::new(Full::new(Bytes::from(text)).boxed_unsync());
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            r
        }
        Action::Reload => match router.reload() {
            Ok(outcome) => json_response(
                StatusCode::OK,
                &json!({"status": "reloaded", "generation": outcome.generation, "warnings": outcome.warnings}),
            ),
            Err(e) => {
                tracing::error!("reload requested but the config cannot be used; still serving the previous one:\n{e}");
                return Err(RouterError::ConfigInvalid {
                    generation: snapshot.generation(),
                    problems: e.to_string(),
                });
            }
        },
        Action::Forward(..) | Action::Manage(_) | Action::Requests => {
            return Err(RouterError::Internal(
                "a route served on its own reached the local endpoints".into(),
            ))
        }
    })
}

/// The groups as a model list (a named client's: those it may use): Anthropic's shape for a
/// client that sends `anthropic-version` (Claude Code and the Anthropic SDKs), else OpenAI's.
fn models(
    snapshot: &Snapshot,
    headers: &http::HeaderMap,
    client: Option<&Arc<router_core::tenants::Client>>,
) -> serde_json::Value {
    let names: Vec<&str> = (snapshot.groups().iter().map(|g| g.name()))
        .filter(|name| client.is_none_or(|c| c.may_use(name)))
        .collect();
    if headers.contains_key("anthropic-version") {
        let data: Vec<_> = names
            .iter()
            .map(|n| json!({"type": "model", "id": n, "display_name": n, "created_at": "1970-01-01T00:00:00Z"}))
            .collect();
        return json!({"data": data, "has_more": false, "first_id": names.first(), "last_id": names.last()});
    }
    let data: Vec<_> = names
        .iter()
        .map(|n| json!({"id": n, "object": "model", "created": 0, "owned_by": "llm-router"}))
        .collect();
    json!({"object": "list", "data": data})
}
