//! Forwarding a chat request: pick, send, fail over, and account — for complete answers and
//! for streams relayed event by event.

use crate::config::ProviderType;
use crate::error::FailedAttempt;
use crate::health::Failure;
use crate::meter::StreamMeter;
use crate::providers::{anthropic, anthropic_in, completions, embeddings, gemini, mock};
use crate::request::ChatRequest;
use crate::request::{Dialect, Endpoint};
use crate::select::{Selection, Unavailable};
use crate::snapshot::Provider;
use crate::snapshot::{Snapshot, Transport};
use crate::sse::{event_data, SseScanner};
use crate::usage::TokenUsage;
use crate::RouterError;
use bytes::{Bytes, BytesMut};
use http::{header, HeaderMap, HeaderValue, Request, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use serde::Deserialize;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// Boxed error of an upstream body.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
type UpstreamBody = UnsyncBoxBody<Bytes, BoxError>;

/// Largest non-streamed upstream answer accepted.
const MAX_UPSTREAM_BODY: usize = 64 * 1024 * 1024;

/// What answered a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// The group asked for.
    pub group: String,
    /// Provider name.
    pub provider: String,
    /// Upstream model.
    pub model: String,
    /// `provider#index` of the key used.
    pub key_id: String,
    /// Attempts made, including the one that answered.
    pub attempts: usize,
    /// Time spent waiting on upstreams, over all attempts (failed attempts and backoff
    /// included): for the answer's head (and first event of a stream), and for a complete
    /// answer's body. The rest of the time to the response head is the router's own.
    pub upstream_wait: Duration,
}

/// An answer to relay to the client: the upstream's status and body, untouched except for
/// the usage-only stream chunk the client did not ask for.
#[derive(Debug)]
pub struct ChatResponse {
    /// Upstream status (a success, or a 4xx that is the request's own fault).
    pub status: StatusCode,
    /// Headers for the client (content type, and `cache-control` for streams).
    pub headers: HeaderMap,
    /// The body.
    pub body: ChatBody,
    /// What answered.
    pub served: Served,
}

/// The body of a [`ChatResponse`]: complete bytes, or a stream relayed as it arrives.
#[derive(Debug)]
pub struct ChatBody(BodyInner);

#[derive(Debug)]
enum BodyInner {
    /// A complete answer and the tokens charged for it.
    Full(Option<Bytes>, Option<TokenUsage>),
    Stream(Box<ChatStream>),
}

impl ChatBody {
    /// Whether this is a streamed (SSE) body.
    pub fn is_stream(&self) -> bool {
        matches!(self.0, BodyInner::Stream(_))
    }

    /// The length when complete (not a stream).
    pub fn len(&self) -> Option<usize> {
        match &self.0 {
            BodyInner::Full(b, _) => Some(b.as_ref().map_or(0, Bytes::len)),
            BodyInner::Stream(_) => None,
        }
    }

    /// Whether this is a complete, empty body.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }

    /// The tokens charged for this answer: known at once for a complete answer; for a stream,
    /// once it ended, or now if it has not (a client that left: what was streamed is charged
    /// and the stream is settled). `None` for an answer that charged nothing (a relayed 4xx).
    pub fn settle_usage(&mut self) -> Option<TokenUsage> {
        match &mut self.0 {
            BodyInner::Full(_, usage) => *usage,
            BodyInner::Stream(s) => s.settle(),
        }
    }

    /// Reads the whole body (for a stream, until it ends).
    pub async fn collect_bytes(self) -> Bytes {
        match BodyExt::collect(self).await {
            Ok(c) => c.to_bytes(),
            Err(never) => match never {},
        }
    }
}

impl Body for ChatBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match &mut self.get_mut().0 {
            BodyInner::Full(b, _) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            BodyInner::Stream(s) => Pin::new(s.as_mut()).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(&self.0, BodyInner::Full(None, _))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            BodyInner::Full(b, _) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            BodyInner::Stream(_) => SizeHint::default(),
        }
    }
}

#[derive(Deserialize)]
struct RawUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    total_tokens: Option<u64>,
}

impl From<RawUsage> for TokenUsage {
    fn from(u: RawUsage) -> Self {
        TokenUsage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: u
                .total_tokens
                .unwrap_or(u.prompt_tokens.saturating_add(u.completion_tokens)),
        }
    }
}

#[derive(Deserialize)]
struct WithUsage {
    #[serde(default)]
    choices: Option<Vec<serde::de::IgnoredAny>>,
    #[serde(default)]
    usage: Option<RawUsage>,
}

/// A complete answer's `usage` alone: serde skips every other field without building it.
#[derive(Deserialize)]
struct OnlyUsage {
    #[serde(default)]
    usage: Option<RawUsage>,
}

/// Usage of a complete OpenAI-format answer (`usage.*_tokens`), if it reports one.
pub fn usage_of_body(body: &[u8]) -> Option<TokenUsage> {
    serde_json::from_slice::<OnlyUsage>(body)
        .ok()
        .and_then(|w| w.usage)
        .map(Into::into)
}

/// Headers of the client's request that reach an upstream of the same kind: Anthropic's
/// `anthropic-version` (overriding the provider's) and `anthropic-beta`.
#[derive(Debug, Clone, Default)]
pub struct ClientHeaders {
    anthropic_version: Option<HeaderValue>,
    anthropic_beta: Option<HeaderValue>,
}

impl ClientHeaders {
    /// Picks the forwarded headers out of a client request's headers.
    pub fn from_request(headers: &HeaderMap) -> Self {
        Self {
            anthropic_version: headers.get("anthropic-version").cloned(),
            anthropic_beta: headers.get("anthropic-beta").cloned(),
        }
    }
}

/// Why one attempt failed: what to tell the client, what it means for the pair, and how far
/// to fail over.
struct AttemptError {
    outcome: String,
    failure: Failure,
    timeout: bool,
}

impl AttemptError {
    fn upstream(outcome: impl Into<String>) -> Self {
        Self {
            outcome: outcome.into(),
            failure: Failure::Upstream,
            timeout: false,
        }
    }
    fn timeout(outcome: impl Into<String>) -> Self {
        Self {
            outcome: outcome.into(),
            failure: Failure::Upstream,
            timeout: true,
        }
    }
}

/// Classifies a transport error: a refused connection or a failed DNS lookup makes the model on
/// that provider unavailable; a connect timeout and anything else count for the breaker.
fn transport_error(e: &hyper_util::client::legacy::Error) -> AttemptError {
    let mut detail = String::new();
    let mut refused = false;
    let mut dns = false;
    let mut timed_out = false;
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        dns |= text.starts_with("dns error");
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            refused |= io.kind() == std::io::ErrorKind::ConnectionRefused;
            timed_out |= io.kind() == std::io::ErrorKind::TimedOut;
        }
        detail = text;
        source = s.source();
    }
    if e.is_connect() && (refused || dns) {
        AttemptError {
            outcome: format!("connection failed ({detail})"),
            failure: Failure::ModelUnavailable,
            timeout: false,
        }
    } else if e.is_connect() && timed_out {
        AttemptError::timeout("connect timeout")
    } else if e.is_connect() {
        AttemptError::upstream(format!("connection failed ({detail})"))
    } else if detail.is_empty() {
        AttemptError::upstream(format!("transport error ({e})"))
    } else {
        AttemptError::upstream(format!("transport error ({detail})"))
    }
}

/// `Retry-After`: delay-seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(
        date.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// What an upstream error status means; `None` for a 4xx that is the request's own fault.
fn status_error(status: StatusCode, headers: &HeaderMap) -> Option<AttemptError> {
    let failure = match status.as_u16() {
        429 => Failure::RateLimited {
            retry_after: retry_after(headers),
        },
        401 | 403 => Failure::Unauthorized,
        404 => Failure::ModelUnavailable,
        408 => Failure::Upstream,
        s if s >= 500 => Failure::Upstream,
        _ => return None,
    };
    Some(AttemptError {
        outcome: format!("status {}", status.as_u16()),
        failure,
        timeout: false,
    })
}

async fn send(
    hints: &ClientHeaders,
    endpoint: Endpoint,
    stream: bool,
    selection: &Selection,
    body: Vec<u8>,
    first_byte: Duration,
    request_id: u64,
) -> Result<http::Response<UpstreamBody>, AttemptError> {
    let provider = selection.provider();
    match &provider.transport {
        Transport::Mock => {
            let answer = mock::answer(&body, request_id);
            let body = FramesBody(answer.chunks.into());
            let mut response = http::Response::new(UnsyncBoxBody::new(body));
            *response.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(answer.content_type),
            );
            Ok(response)
        }
        Transport::Http(client) => {
            let mut url = provider
                .url(endpoint, selection.model())
                .ok_or_else(|| AttemptError::upstream("endpoint not offered by this provider"))?;
            if stream && provider.kind() == ProviderType::Gemini {
                url = url.replace(":generateContent", ":streamGenerateContent?alt=sse");
            }
            let mut request = Request::post(url)
                .body(Full::new(Bytes::from(body)))
                .map_err(|e| AttemptError::upstream(format!("bad upstream request: {e}")))?;
            let headers = request.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            headers.insert(
                header::ACCEPT_ENCODING,
                HeaderValue::from_static("identity"),
            );
            headers.insert(
                header::USER_AGENT,
                HeaderValue::from_static(concat!("llm-router/", env!("CARGO_PKG_VERSION"))),
            );
            for (name, value) in provider.headers() {
                headers.insert(name.clone(), value.clone());
            }
            let key = selection.key().expose();
            let (name, value) = match provider.kind() {
                ProviderType::Azure => ("api-key", key.to_string()),
                ProviderType::Gemini => ("x-goog-api-key", key.to_string()),
                ProviderType::Anthropic => {
                    // The client's own version and betas win: the body was written for them.
                    let version = match &hints.anthropic_version {
                        Some(v) => v.clone(),
                        None => {
                            HeaderValue::from_str(provider.anthropic_version()).map_err(|_| {
                                AttemptError::upstream("anthropic_version has invalid characters")
                            })?
                        }
                    };
                    headers.insert("anthropic-version", version);
                    if let Some(beta) = &hints.anthropic_beta {
                        headers.insert("anthropic-beta", beta.clone());
                    }
                    ("x-api-key", key.to_string())
                }
                ProviderType::Openai | ProviderType::Mock => {
                    ("authorization", format!("Bearer {key}"))
                }
            };
            // A provider's own `headers` may set the key header itself (a custom scheme).
            if !headers.contains_key(name) {
                let mut value = HeaderValue::from_str(&value)
                    .map_err(|_| AttemptError::upstream("provider key has invalid characters"))?;
                value.set_sensitive(true);
                headers.insert(name, value);
            }
            match tokio::time::timeout(first_byte, client.request(request)).await {
                Err(_) => Err(AttemptError::timeout(format!(
                    "no response within {first_byte:?}"
                ))),
                Ok(Err(e)) => Err(transport_error(&e)),
                Ok(Ok(response)) => {
                    Ok(response.map(|b| UnsyncBoxBody::new(b.map_err(BoxError::from))))
                }
            }
        }
    }
}

/// A body made of frames known in advance (the mock provider's answer).
struct FramesBody(std::collections::VecDeque<Bytes>);

impl Body for FramesBody {
    type Data = Bytes;
    type Error = BoxError;
    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Poll::Ready(self.get_mut().0.pop_front().map(|b| Ok(Frame::data(b))))
    }
}

async fn read_full(mut body: UpstreamBody, idle: Duration) -> Result<Bytes, AttemptError> {
    let mut parts: Vec<Bytes> = Vec::new();
    let mut total = 0usize;
    loop {
        match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => {
                return Err(AttemptError::timeout(format!(
                    "upstream body stalled for {idle:?}"
                )))
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Err(AttemptError::upstream(format!(
                    "upstream body failed ({e})"
                )))
            }
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    total += data.len();
                    if total > MAX_UPSTREAM_BODY {
                        return Err(AttemptError::upstream("upstream answer too large"));
                    }
                    parts.push(data);
                }
            }
        }
    }
    Ok(match parts.len() {
        0 => Bytes::new(),
        1 => parts.swap_remove(0),
        _ => {
            let mut all = BytesMut::with_capacity(total);
            for p in parts {
                all.extend_from_slice(&p);
            }
            all.freeze()
        }
    })
}

fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("text/event-stream"))
}

fn client_headers(upstream: &HeaderMap, stream: bool) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let content_type = upstream
        .get(header::CONTENT_TYPE)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("application/json"));
    headers.insert(header::CONTENT_TYPE, content_type);
    if stream {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    headers
}

/// Resolves `group` or pinned `group$N` (1-based) to the group and the 0-based model index.
fn resolve<'s>(
    snapshot: &'s Snapshot,
    model: &str,
) -> Result<(&'s Arc<crate::snapshot::Group>, Option<usize>), RouterError> {
    if let Some(group) = snapshot.group(model) {
        return Ok((group, None));
    }
    let Some((name, n)) = model.rsplit_once('$') else {
        return Err(RouterError::UnknownGroup(model.to_string()));
    };
    let group = snapshot
        .group(name)
        .ok_or_else(|| RouterError::UnknownGroup(model.to_string()))?;
    let count = group.model_count();
    let index = n.parse::<usize>().ok().filter(|i| (1..=count).contains(i));
    let Some(index) = index else {
        return Err(RouterError::bad_request(
            format!(
                "'{model}': the part after '$' pins one model of group '{name}' and must be a \
                 number from 1 to {count}"
            ),
            Some("model"),
        ));
    };
    if !group.pairs().iter().any(|p| p.model_index() == index - 1) {
        return Err(RouterError::bad_request(
            format!(
                "'{model}': model {index} of group '{name}' is not available (its provider has \
                 no usable key)"
            ),
            Some("model"),
        ));
    }
    Ok((group, Some(index - 1)))
}

/// Whether `kind` answers `endpoint` in its own API, with no translation of the operation
/// (chat-only providers answer `/v1/completions` through chat).
fn native(kind: ProviderType, endpoint: Endpoint) -> bool {
    endpoint == Endpoint::Chat || matches!(kind, ProviderType::Openai | ProviderType::Azure)
}

/// The request body for `provider`: the client's bytes with `model` replaced, or, for a
/// provider that speaks another format, the translated request.
fn body_for(
    request: &ChatRequest<'_>,
    provider: &Provider,
    model: &str,
) -> Result<Vec<u8>, RouterError> {
    let to_vec = |v: serde_json::Value| {
        serde_json::to_vec(&v).map_err(|e| RouterError::Internal(e.to_string()))
    };
    let kind = provider.kind();
    if !native(kind, request.endpoint()) {
        let object = request.to_object()?;
        return match request.endpoint() {
            Endpoint::Embeddings => to_vec(embeddings::request(&object, model)?),
            _ => {
                let chat = completions::request(&object, model)?;
                to_vec(chat_for(chat, provider, model)?)
            }
        };
    }
    match (request.dialect(), kind) {
        (Dialect::OpenAi, ProviderType::Anthropic | ProviderType::Gemini) => to_vec(chat_for(
            serde_json::Value::Object(request.to_object()?),
            provider,
            model,
        )?),
        (Dialect::Anthropic, ProviderType::Openai | ProviderType::Azure | ProviderType::Mock) => {
            let mut openai = anthropic_in::request(&request.to_object()?, model)?;
            // The completion limit goes in the field this provider's models take.
            let field = provider.max_tokens_field();
            if let Some(limit) = openai.as_object_mut().and_then(|o| o.remove("max_tokens")) {
                openai[field] = limit;
            }
            to_vec(openai)
        }
        (Dialect::Anthropic, ProviderType::Gemini) => {
            // Anthropic → OpenAI → Gemini.
            let openai = anthropic_in::request(&request.to_object()?, model)?;
            to_vec(chat_for(openai, provider, model)?)
        }
        // Same format on both sides: the client's bytes, `model` replaced.
        _ => Ok(request.upstream_body(model)),
    }
}

/// An OpenAI chat request in the format `provider` speaks.
fn chat_for(
    chat: serde_json::Value,
    provider: &Provider,
    model: &str,
) -> Result<serde_json::Value, RouterError> {
    let serde_json::Value::Object(object) = chat else {
        return Err(RouterError::Internal(
            "chat request is not an object".into(),
        ));
    };
    match Wire::of(provider.kind()) {
        Wire::Anthropic => anthropic::request(&object, model, provider.default_max_tokens()),
        Wire::Gemini => gemini::request_for(&object, model),
        Wire::OpenAi => Ok(serde_json::Value::Object(object)),
    }
}

/// Jittered exponential backoff: `base × 2^(n-1) × [0.5, 1.5)`, at most a minute.
fn backoff(base: Duration, n: u32) -> Duration {
    let exp = base.as_secs_f64() * f64::from(1u32 << n.saturating_sub(1).min(10));
    Duration::from_secs_f64((exp * (0.5 + fastrand::f64())).min(60.0))
}

/// Forwards a chat completions request on `snapshot`, failing over by the failure table:
/// a pair that failed is not tried again by this request, and after a 404 or an unreachable
/// host no key of that model on that provider is; attempts are bounded by count and by the
/// request deadline.
pub(crate) async fn chat_completions(
    snapshot: &Snapshot,
    body: &[u8],
    request_id: u64,
    dialect: Dialect,
    endpoint: Endpoint,
    client: &ClientHeaders,
) -> Result<ChatResponse, RouterError> {
    let request = ChatRequest::parse_for(body, dialect, endpoint)?;
    let (group, pinned) = resolve(snapshot, request.model())?;
    let resilience = snapshot.resilience();
    let deadline = crate::health::later(Instant::now(), resilience.request_timeout);
    let estimate = request.estimate_tokens();
    let mut excluded: Vec<usize> = Vec::new();
    let mut failures: Vec<FailedAttempt> = Vec::new();
    let mut last_timeout = false;
    let mut all_rate_limited = true;
    let mut last_failed_provider: Option<String> = None;
    let mut same_provider_retries = 0u32;
    let mut waited = Duration::ZERO;
    let mut refusal: Option<RouterError> = None;
    // Pairs whose provider does not offer this endpoint are no candidates at all.
    for (i, p) in group.pairs().iter().enumerate() {
        if p.provider().url(endpoint, p.model()).is_none() {
            excluded.push(i);
        }
    }
    let unsupported = excluded.len() == group.pairs().len();
    while failures.len() < resilience.max_attempts {
        let selection = match group.pick(snapshot, &excluded, pinned, estimate) {
            Ok(s) => s,
            Err(Unavailable::RateLimited { .. }) => break,
            Err(Unavailable::NoPair) => break,
        };
        let index = selection.pair_index();
        if last_failed_provider.as_deref() == Some(selection.provider().name()) {
            same_provider_retries += 1;
            let wait = backoff(resilience.retry_backoff, same_provider_retries);
            if crate::health::later(Instant::now(), wait) >= deadline {
                last_timeout = true;
                break;
            }
            tokio::time::sleep(wait).await;
            // Backing off from a failing upstream is not the router's own time either.
            waited += wait;
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            last_timeout = true;
            break;
        }
        let served = Served {
            group: group.name().to_string(),
            provider: selection.provider().name().to_string(),
            model: selection.model().to_string(),
            key_id: selection.key_id().to_string(),
            attempts: failures.len() + 1,
            upstream_wait: waited,
        };
        let upstream_body = match body_for(&request, selection.provider(), selection.model()) {
            Ok(b) => b,
            Err(e) => {
                // The request cannot be said to this provider (a field it has no place for):
                // not the pair's fault. Another provider of the group may take it as it is;
                // the refusal is the answer only if none can.
                let refused = selection.provider().clone();
                selection.release();
                for (i, p) in group.pairs().iter().enumerate() {
                    if Arc::ptr_eq(&p.provider, &refused) {
                        excluded.push(i);
                    }
                }
                refusal.get_or_insert(e);
                continue;
            }
        };
        let provider = selection.provider().clone();
        let attempt_started = Instant::now();
        let attempted = attempt(
            client,
            selection,
            upstream_body,
            &request,
            deadline,
            request_id,
            served,
        )
        .await;
        match attempted {
            Ok(response) => return Ok(response),
            Err((served, e)) => {
                // A failed attempt is time spent on the upstream.
                waited += attempt_started.elapsed();
                tracing::warn!(
                    provider = %served.provider, model = %served.model, key = %served.key_id,
                    outcome = %e.outcome, "upstream attempt failed"
                );
                excluded.push(index);
                if e.failure == Failure::ModelUnavailable {
                    for (i, p) in group.pairs().iter().enumerate() {
                        if Arc::ptr_eq(&p.provider, &provider) && p.model() == served.model {
                            excluded.push(i);
                        }
                    }
                }
                if !matches!(e.failure, Failure::RateLimited { .. }) {
                    all_rate_limited = false;
                }
                last_timeout = e.timeout;
                last_failed_provider = Some(served.provider.clone());
                failures.push(FailedAttempt {
                    provider: served.provider,
                    model: served.model,
                    key_id: served.key_id,
                    outcome: e.outcome,
                });
            }
        }
    }
    let group_name = group.name().to_string();
    if let (Some(refusal), true) = (refusal, failures.is_empty()) {
        return Err(refusal);
    }
    if unsupported && failures.is_empty() {
        return Err(RouterError::bad_request(
            format!(
                "no provider of '{group_name}' offers /v1/{}",
                endpoint.path()
            ),
            Some("model"),
        ));
    }
    // 429 only when every pair in scope is really cooling down after 429s (not merely because
    // the attempts ran out while untried pairs were healthy).
    let cooling = if all_rate_limited || failures.is_empty() {
        group.rate_limited_for(snapshot, pinned)
    } else {
        None
    };
    match cooling {
        Some(retry_after) => Err(RouterError::RateLimited {
            group: group_name,
            retry_after,
            attempts: failures,
        }),
        None => Err(RouterError::UpstreamFailed {
            group: group_name,
            attempts: failures,
            timeout: last_timeout,
        }),
    }
}

#[allow(clippy::too_many_arguments)]
async fn attempt(
    client: &ClientHeaders,
    selection: Selection,
    upstream_body: Vec<u8>,
    request: &ChatRequest<'_>,
    deadline: Instant,
    request_id: u64,
    mut served: Served,
) -> Result<ChatResponse, (Served, AttemptError)> {
    let provider = selection.provider().clone();
    let started = Instant::now();
    let remaining = deadline.saturating_duration_since(started);
    let first_byte = provider
        .first_byte_timeout()
        .min(provider.total_timeout().unwrap_or(Duration::MAX))
        .min(remaining);
    let response = match send(
        client,
        request.endpoint(),
        request.stream(),
        &selection,
        upstream_body,
        first_byte,
        request_id,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => {
            selection.fail(e.failure);
            return Err((served, e));
        }
    };
    let status = response.status();
    if !status.is_success() {
        if let Some(e) = status_error(status, response.headers()) {
            selection.fail(e.failure);
            return Err((served, e));
        }
    }
    let (parts, mut body) = response.into_parts();
    if status.is_success() && request.stream() && is_event_stream(&parts.headers) {
        // Wait for the first event before committing, so an upstream that fails before
        // sending anything can still be replaced.
        let first = match tokio::time::timeout_at(
            deadline.min(crate::health::later(Instant::now(), first_byte)),
            body.frame(),
        )
        .await
        {
            Err(_) => Err(AttemptError::timeout(format!(
                "no stream data within {first_byte:?}"
            ))),
            Ok(None) => Err(AttemptError::upstream("stream ended before any event")),
            Ok(Some(Err(e))) => Err(AttemptError::upstream(format!("stream failed ({e})"))),
            Ok(Some(Ok(frame))) => Ok(frame.into_data().unwrap_or_default()),
        };
        let first = match first {
            Ok(f) => f,
            Err(e) => {
                selection.fail(e.failure);
                return Err((served, e));
            }
        };
        // A stream that opens with an error event (Anthropic's `overloaded_error`) has sent the
        // client nothing yet: fail over rather than relay it.
        let opens_with_error = provider.kind() == ProviderType::Anthropic
            && first.trim_ascii_start().starts_with(b"event: error");
        if opens_with_error {
            let e = AttemptError::upstream("stream opened with an error event");
            selection.fail(e.failure);
            return Err((served, e));
        }
        // The upstream answered: a half-open breaker closes now, not when a long stream ends.
        selection.confirm_healthy();
        served.upstream_wait += started.elapsed();
        let wants_usage = request.client_wants_usage();
        let mode = match (request.dialect(), Wire::of(provider.kind())) {
            (Dialect::OpenAi, Wire::OpenAi) => StreamMode::OpenAi,
            (Dialect::OpenAi, Wire::Anthropic) => StreamMode::AnthropicToOpenAi(Box::new(
                anthropic::StreamTranslator::new(wants_usage),
            )),
            (Dialect::OpenAi, Wire::Gemini) => StreamMode::GeminiToOpenAi(Box::new(
                gemini::StreamTranslator::new(selection.model(), wants_usage),
            )),
            (Dialect::Anthropic, Wire::Anthropic) => StreamMode::Anthropic(serde_json::Map::new()),
            (Dialect::Anthropic, Wire::OpenAi) => StreamMode::OpenAiToAnthropic(Box::default()),
            (Dialect::Anthropic, Wire::Gemini) => StreamMode::GeminiToAnthropic(
                Box::new(gemini::StreamTranslator::new(selection.model(), true)),
                Box::default(),
            ),
        };
        let mut stream = ChatStream::new(
            first,
            body,
            selection,
            !request.client_wants_usage(),
            provider.idle_timeout(),
            mode,
        );
        stream.as_completions = request.endpoint() == Endpoint::Completions
            && !native(provider.kind(), Endpoint::Completions);
        stream.prompt_estimate = request.prompt_estimate();
        return Ok(ChatResponse {
            status,
            headers: client_headers(&parts.headers, true),
            body: ChatBody(BodyInner::Stream(Box::new(stream))),
            served,
        });
    }
    let read_deadline = match provider.total_timeout() {
        Some(total) => deadline.min(crate::health::later(started, total)),
        None => deadline,
    };
    let read =
        tokio::time::timeout_at(read_deadline, read_full(body, provider.idle_timeout())).await;
    let bytes = match read {
        Ok(Ok(b)) => {
            served.upstream_wait += started.elapsed();
            b
        }
        Ok(Err(e)) => {
            selection.fail(e.failure);
            return Err((served, e));
        }
        Err(_) => {
            let e = AttemptError::timeout("timed out while reading the answer");
            selection.fail(e.failure);
            return Err((served, e));
        }
    };
    let json_headers = client_headers(&HeaderMap::new(), false);
    let answer = || serde_json::from_slice::<serde_json::Value>(&bytes).ok();
    let model = served.model.clone();
    let mut charged = None;
    // An operation the provider does not offer itself (the prompt API through chat, OpenAI
    // embeddings on Gemini): never passed through as it came.
    let operation_translated = !native(provider.kind(), request.endpoint());
    let translated = match (
        request.dialect(),
        Wire::of(provider.kind()),
        status.is_success(),
    ) {
        (_, Wire::Gemini, ok) if request.endpoint() == Endpoint::Embeddings => {
            if ok {
                let object = request.to_object().unwrap_or_default();
                answer().and_then(|a| embeddings::response(&a, &object, &model))
            } else {
                Some((gemini::error_body(&bytes), TokenUsage::default()))
            }
        }
        // The prompt API answered in chat by an OpenAI-format provider (the mock).
        (Dialect::OpenAi, Wire::OpenAi, true) if operation_translated => {
            answer().map(|a| (a, usage_of_body(&bytes).unwrap_or_default()))
        }
        (Dialect::OpenAi, Wire::OpenAi, false) if operation_translated => {
            answer().map(|a| (a, TokenUsage::default()))
        }
        // Same format: bytes as they came, usage read from them.
        (Dialect::OpenAi, Wire::OpenAi, ok) | (Dialect::Anthropic, Wire::Anthropic, ok) => {
            if ok {
                let usage = if request.dialect() == Dialect::Anthropic {
                    let mut fields = serde_json::Map::new();
                    if let Some(a) = answer() {
                        anthropic_in::usage_in(&a, &mut fields);
                    }
                    anthropic_in::tokens(&fields)
                } else {
                    usage_of_body(&bytes).unwrap_or_default()
                };
                selection.succeed(usage);
                charged = Some(usage);
            } else {
                // A 4xx that is the request's own fault: relayed, not held against the pair.
                selection.release();
            }
            return Ok(ChatResponse {
                status,
                headers: client_headers(&parts.headers, false),
                body: ChatBody(BodyInner::Full(Some(bytes), charged)),
                served,
            });
        }
        (Dialect::OpenAi, Wire::Anthropic, true) => answer().map(|a| anthropic::response(&a)),
        (Dialect::OpenAi, Wire::Gemini, true) => answer().map(|a| gemini::response(&a, &model)),
        (Dialect::Anthropic, Wire::OpenAi, true) => answer().map(|a| {
            let usage = usage_of_body(&bytes).unwrap_or_default();
            (anthropic_in::response(&a), usage)
        }),
        (Dialect::Anthropic, Wire::Gemini, true) => answer().map(|a| {
            let (openai, usage) = gemini::response(&a, &model);
            (anthropic_in::response(&openai), usage)
        }),
        (Dialect::OpenAi, Wire::Anthropic, false) => {
            Some((anthropic::error_body(&bytes), TokenUsage::default()))
        }
        (Dialect::OpenAi, Wire::Gemini, false) => {
            Some((gemini::error_body(&bytes), TokenUsage::default()))
        }
        (Dialect::Anthropic, Wire::OpenAi, false) => Some((
            anthropic_in::error_from_openai(status.as_u16(), &bytes),
            TokenUsage::default(),
        )),
        (Dialect::Anthropic, Wire::Gemini, false) => Some((
            anthropic_in::error_from_openai(
                status.as_u16(),
                gemini::error_body(&bytes).to_string().as_bytes(),
            ),
            TokenUsage::default(),
        )),
    };
    let Some((mut body_json, usage)) = translated else {
        let e = AttemptError::upstream("unreadable answer from the provider");
        selection.fail(e.failure);
        return Err((served, e));
    };
    if operation_translated && request.endpoint() == Endpoint::Completions && status.is_success() {
        body_json = completions::response(&body_json);
    }
    let mut charged = None;
    if status.is_success() {
        selection.succeed(usage);
        charged = Some(usage);
    } else {
        // The request's own 4xx, in the client's error shape: not held against the pair.
        selection.release();
    }
    let (bytes, headers) = (Bytes::from(body_json.to_string()), json_headers);
    Ok(ChatResponse {
        status,
        headers,
        body: ChatBody(BodyInner::Full(Some(bytes), charged)),
        served,
    })
}

/// A relayed SSE stream: events are forwarded as received, usage is read on the way, the
/// usage-only chunk is dropped when the client did not ask for it, `[DONE]` is sent exactly
/// once, and a failure mid-stream becomes an error event and a clean end.
pub(crate) struct ChatStream {
    upstream: UpstreamBody,
    first: Option<Bytes>,
    scanner: SseScanner,
    selection: Option<Selection>,
    usage: Option<TokenUsage>,
    strip_usage: bool,
    done_seen: bool,
    upstream_error: bool,
    finished: bool,
    trailer: Option<Bytes>,
    idle: Duration,
    timer: Pin<Box<Sleep>>,
    mode: StreamMode,
    /// The client asked the prompt API of a chat-only provider: chat chunks go out as
    /// `text_completion` chunks.
    as_completions: bool,
    /// What the upstream streamed, for a charge when its final usage report never comes.
    meter: StreamMeter,
    prompt_estimate: u64,
    /// What was charged when the stream was settled.
    charged: Option<TokenUsage>,
}

/// The format an upstream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    OpenAi,
    Anthropic,
    Gemini,
}

impl Wire {
    fn of(kind: ProviderType) -> Self {
        match kind {
            ProviderType::Anthropic => Self::Anthropic,
            ProviderType::Gemini => Self::Gemini,
            ProviderType::Openai | ProviderType::Azure | ProviderType::Mock => Self::OpenAi,
        }
    }
}

/// Which event formats a stream goes between.
enum StreamMode {
    /// OpenAI in and out: events pass as they are.
    OpenAi,
    /// Anthropic upstream, OpenAI client.
    AnthropicToOpenAi(Box<anthropic::StreamTranslator>),
    /// Anthropic in and out: events pass as they are; usage is gathered from them.
    Anthropic(serde_json::Map<String, serde_json::Value>),
    /// OpenAI upstream, Anthropic client.
    OpenAiToAnthropic(Box<anthropic_in::StreamTranslator>),
    /// Gemini upstream, OpenAI client.
    GeminiToOpenAi(Box<gemini::StreamTranslator>),
    /// Gemini upstream, Anthropic client: through OpenAI chunks.
    GeminiToAnthropic(
        Box<gemini::StreamTranslator>,
        Box<anthropic_in::StreamTranslator>,
    ),
}

impl StreamMode {
    /// Whether the client reads Anthropic events (else OpenAI chunks and `[DONE]`).
    fn anthropic_out(&self) -> bool {
        matches!(
            self,
            Self::Anthropic(_) | Self::OpenAiToAnthropic(_) | Self::GeminiToAnthropic(..)
        )
    }
}

impl std::fmt::Debug for ChatStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatStream")
            .field("usage", &self.usage)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl ChatStream {
    fn new(
        first: Bytes,
        upstream: UpstreamBody,
        selection: Selection,
        strip_usage: bool,
        idle: Duration,
        mode: StreamMode,
    ) -> Self {
        Self {
            upstream,
            first: Some(first),
            scanner: SseScanner::new(),
            selection: Some(selection),
            usage: None,
            strip_usage,
            done_seen: false,
            upstream_error: false,
            finished: false,
            trailer: None,
            idle,
            timer: Box::pin(tokio::time::sleep(idle)),
            mode,
            as_completions: false,
            meter: StreamMeter::default(),
            prompt_estimate: 0,
            charged: None,
        }
    }

    /// The events to send for one upstream event when formats differ, or when Anthropic
    /// events pass through (their usage is read on the way).
    fn transcode(&mut self, event: Bytes, out: &mut Vec<Bytes>) {
        let Some(data) = event_data(&event).map(|d| d.into_owned()) else {
            if matches!(self.mode, StreamMode::Anthropic(_)) {
                out.push(event);
            }
            return;
        };
        match &mut self.mode {
            StreamMode::OpenAi => out.push(event),
            StreamMode::AnthropicToOpenAi(tr) => {
                for chunk in tr.event(&data) {
                    out.push(Bytes::from(format!("data: {chunk}\n\n")));
                }
                self.usage = tr.usage();
                self.upstream_error |= tr.failed;
                if tr.done && !self.done_seen {
                    self.done_seen = true;
                    out.push(Bytes::from_static(b"data: [DONE]\n\n"));
                }
            }
            StreamMode::Anthropic(usage) => {
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&data) {
                    anthropic_in::usage_in(&v, usage);
                    match v["type"].as_str() {
                        Some("message_stop") => self.done_seen = true,
                        Some("error") => self.upstream_error = true,
                        _ => {}
                    }
                }
                self.usage = Some(anthropic_in::tokens(usage));
                out.push(event);
            }
            StreamMode::GeminiToOpenAi(tr) => {
                match tr.event(&data) {
                    Ok(chunks) => {
                        for chunk in chunks {
                            out.push(Bytes::from(format!("data: {chunk}\n\n")));
                        }
                    }
                    Err(error) => {
                        self.upstream_error = true;
                        out.push(Bytes::from(format!("data: {error}\n\n")));
                    }
                }
                self.usage = tr.usage();
            }
            StreamMode::GeminiToAnthropic(g, a) => {
                let chunks = match g.event(&data) {
                    Ok(chunks) => chunks,
                    Err(error) => vec![error],
                };
                for chunk in chunks {
                    for (name, v) in a.event(chunk.to_string().as_bytes()) {
                        out.push(Bytes::from(format!("event: {name}\ndata: {v}\n\n")));
                    }
                }
                self.usage = g.usage();
                self.upstream_error |= a.failed;
            }
            StreamMode::OpenAiToAnthropic(tr) => {
                for (name, v) in tr.event(&data) {
                    out.push(Bytes::from(format!("event: {name}\ndata: {v}\n\n")));
                }
                self.usage = tr.usage();
                self.upstream_error |= tr.failed;
                self.done_seen |= tr.done;
            }
        }
    }

    /// Whether to forward an event; reads usage, `[DONE]` and error events on the way.
    fn keep(&mut self, event: &[u8]) -> bool {
        let Some(data) = event_data(event) else {
            return true;
        };
        let data = data.as_ref();
        if data.trim_ascii() == b"[DONE]" {
            let first = !self.done_seen;
            self.done_seen = true;
            return first;
        }
        if memchr::memmem::find(data, b"\"usage\"").is_some() {
            if let Ok(chunk) = serde_json::from_slice::<WithUsage>(data) {
                if let Some(u) = chunk.usage {
                    self.usage = Some(u.into());
                    let no_choices = chunk.choices.as_ref().is_none_or(Vec::is_empty);
                    if self.strip_usage && no_choices {
                        return false;
                    }
                }
            }
        }
        if data.trim_ascii_start().starts_with(b"{\"error\"") {
            self.upstream_error = true;
        }
        true
    }

    /// The bytes to send for one upstream frame, if any.
    fn process(&mut self, data: &[u8]) -> Option<Bytes> {
        let events = self.scanner.push(data);
        self.collect(events)
    }

    fn collect(&mut self, events: Vec<Bytes>) -> Option<Bytes> {
        let mut kept: Vec<Bytes> = Vec::with_capacity(events.len());
        for e in events {
            if let Some(data) = event_data(&e) {
                self.meter.observe(&data);
            }
            if !matches!(self.mode, StreamMode::OpenAi) {
                self.transcode(e, &mut kept);
            } else if self.keep(&e) {
                kept.push(e);
            }
        }
        if self.as_completions {
            kept = kept.into_iter().filter_map(as_completion_event).collect();
        }
        match kept.len() {
            0 => None,
            1 => kept.pop(),
            _ => {
                let mut out = BytesMut::with_capacity(kept.iter().map(Bytes::len).sum());
                for k in kept {
                    out.extend_from_slice(&k);
                }
                Some(out.freeze())
            }
        }
    }

    fn end(&mut self) {
        let tail = self.scanner.finish();
        let mut out = BytesMut::new();
        if let Some(tail) = tail {
            if let Some(b) = self.collect(vec![tail]) {
                out.extend_from_slice(&b);
                if !b.ends_with(b"\n\n") && !b.ends_with(b"\r\n\r\n") {
                    out.extend_from_slice(b"\n\n");
                }
            }
        }
        // Gemini's stream has no end marker: complete if the answer got its finish reason.
        let gemini_complete = match &self.mode {
            StreamMode::GeminiToOpenAi(g) | StreamMode::GeminiToAnthropic(g, _) => {
                Some(g.complete())
            }
            _ => None,
        };
        if let Some(complete) = gemini_complete {
            if !complete && !self.upstream_error {
                self.fail("upstream stream ended before it was complete".to_string());
                if let Some(trailer) = self.trailer.take() {
                    out.extend_from_slice(&trailer);
                }
                self.trailer = Some(out.freeze());
                return;
            }
            if !self.upstream_error {
                match &mut self.mode {
                    StreamMode::GeminiToOpenAi(g) => {
                        for chunk in g.finish() {
                            let event = Bytes::from(format!("data: {chunk}\n\n"));
                            let event = match self.as_completions {
                                true => as_completion_event(event),
                                false => Some(event),
                            };
                            out.extend_from_slice(&event.unwrap_or_default());
                        }
                    }
                    StreamMode::GeminiToAnthropic(g, a) => {
                        let mut chunks = g.finish();
                        chunks.push(serde_json::Value::Null);
                        for chunk in chunks {
                            let data = if chunk.is_null() {
                                "[DONE]".to_string()
                            } else {
                                chunk.to_string()
                            };
                            for (name, v) in a.event(data.as_bytes()) {
                                out.extend_from_slice(
                                    format!("event: {name}\ndata: {v}\n\n").as_bytes(),
                                );
                            }
                        }
                        self.done_seen = true;
                    }
                    _ => {}
                }
            }
        }
        // An OpenAI upstream that ended without [DONE] is complete all the same.
        if let StreamMode::OpenAiToAnthropic(tr) = &mut self.mode {
            if !tr.done && !tr.failed {
                for (name, v) in tr.event(b"[DONE]") {
                    out.extend_from_slice(format!("event: {name}\ndata: {v}\n\n").as_bytes());
                }
                self.done_seen = true;
            }
        }
        // An Anthropic stream that ended before `message_stop` was cut short.
        let anthropic_upstream = matches!(
            self.mode,
            StreamMode::AnthropicToOpenAi(_) | StreamMode::Anthropic(_)
        );
        if anthropic_upstream && !self.done_seen && !self.upstream_error {
            self.fail("upstream stream ended before it was complete".to_string());
            if let Some(trailer) = self.trailer.take() {
                out.extend_from_slice(&trailer);
            }
            self.trailer = Some(out.freeze());
            return;
        }
        // An OpenAI stream that completes ends with exactly one [DONE]; one that carried an
        // upstream error event ends with that event instead.
        if !self.mode.anthropic_out() && !self.done_seen && !self.upstream_error {
            out.extend_from_slice(b"data: [DONE]\n\n");
            self.done_seen = true;
        }
        let charge = self.charge();
        if let Some(selection) = self.selection.take() {
            self.charged = Some(charge);
            if self.upstream_error {
                selection.fail_after(Failure::Upstream, Some(charge));
            } else {
                selection.succeed(charge);
            }
        }
        self.finished = true;
        self.trailer = (!out.is_empty()).then(|| out.freeze());
    }

    /// Settles the stream if it has not ended (the client left: what was streamed is charged)
    /// and returns what was charged.
    fn settle(&mut self) -> Option<TokenUsage> {
        if let Some(selection) = self.selection.take() {
            let charge = self.charge();
            self.charged = Some(charge);
            if self.upstream_error {
                // An error event was relayed and the client left before the end: a failure.
                selection.fail_after(Failure::Upstream, Some(charge));
            } else {
                selection.succeed(charge);
            }
        }
        self.charged
    }

    /// Usage to charge: the upstream's report, or for what it did not cover, an estimate.
    fn charge(&self) -> TokenUsage {
        self.meter.charge(self.usage, self.prompt_estimate)
    }

    fn fail(&mut self, message: String) {
        if self.done_seen {
            // Everything arrived; a failure after [DONE] loses nothing.
            self.end();
            return;
        }
        tracing::warn!(error = %message, "upstream stream failed mid-way");
        let event = if self.mode.anthropic_out() {
            let e = anthropic_in::error("api_error", &format!("stream interrupted: {message}"));
            format!("event: error\ndata: {e}\n\n")
        } else {
            let e = serde_json::json!({
                "error": {
                    "message": message,
                    "type": "upstream_error",
                    "param": null,
                    "code": "stream_interrupted",
                }
            });
            format!("data: {e}\n\n")
        };
        let charge = self.charge();
        if let Some(selection) = self.selection.take() {
            self.charged = Some(charge);
            selection.fail_after(Failure::Upstream, Some(charge));
        }
        self.finished = true;
        self.trailer = Some(Bytes::from(event));
    }

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if let Some(first) = this.first.take() {
            if let Some(out) = this.process(&first) {
                return Poll::Ready(Some(Ok(Frame::data(out))));
            }
        }
        loop {
            if this.finished {
                return Poll::Ready(this.trailer.take().map(|b| Ok(Frame::data(b))));
            }
            match Pin::new(&mut this.upstream).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    let deadline = crate::health::later(Instant::now(), this.idle);
                    this.timer.as_mut().reset(deadline);
                    if let Ok(data) = frame.into_data() {
                        if let Some(out) = this.process(&data) {
                            return Poll::Ready(Some(Ok(Frame::data(out))));
                        }
                    }
                }
                Poll::Ready(Some(Err(e))) => this.fail(format!("upstream stream failed: {e}")),
                Poll::Ready(None) => this.end(),
                Poll::Pending => {
                    if this.timer.as_mut().poll(cx).is_ready() {
                        let idle = this.idle;
                        this.fail(format!("upstream sent nothing for {idle:?}"));
                        continue;
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

/// One OpenAI chat stream event as a prompt API event; `None` for one with nothing to say there.
fn as_completion_event(event: Bytes) -> Option<Bytes> {
    let Some(data) = event_data(&event) else {
        return Some(event);
    };
    if data.trim_ascii() == b"[DONE]" {
        return Some(event);
    }
    let Ok(chunk) = serde_json::from_slice::<serde_json::Value>(&data) else {
        return Some(event);
    };
    completions::chunk(&chunk).map(|c| Bytes::from(format!("data: {c}\n\n")))
}

impl Drop for ChatStream {
    fn drop(&mut self) {
        // The client went away mid-stream: the provider bills what it sent all the same.
        self.settle();
    }
}
