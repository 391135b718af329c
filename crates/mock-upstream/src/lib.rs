//! An in-process upstream for tests, benchmarks and demos. It serves OpenAI's
//! `POST /v1/chat/completions`, `/v1/completions`, `/v1/embeddings` and `/v1/responses`
//! (and Azure's paths for them), Anthropic's `/v1/messages` and Gemini's `generateContent`, each
//! in its provider's wire format, on a loopback port (plain HTTP, or TLS with a generated
//! certificate); it records every request it sees, reports token usage, and misbehaves on
//! command. Asked to "use a tool", it calls one (see `tools`), and answers a tool's result with
//! text that repeats it.
//!
//! Its answers: the reply is `mock says: ` + the last user message; prompt tokens are
//! `1 + (bytes of all message texts) / 4`, completion tokens one per reply word. A stream sends a
//! role chunk, one chunk per word, a finish chunk, the usage chunk when
//! `stream_options.include_usage` is true, then `data: [DONE]`. A request with
//! `reasoning_effort` also gets `reasoning_content` ("reasoning at {effort} effort"), before the
//! text when streamed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod anthropic;
mod faults;
mod gemini;
mod oauth;
mod openai;
pub use oauth::{Form, TokenEndpoint};
mod other;
mod prose;
pub use prose::prose;
mod proxy;
pub use proxy::{ConnectProxy, TunnelAsked};
mod responses;
mod serve;
pub use serve::{serve, Asked};
mod stream;
mod tls;
pub use tls::{test_certificates, TestCertificates};
mod tools;

pub(crate) use stream::stream;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Notify;

type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// A request the mock received.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    /// Request path.
    pub path: String,
    /// Request headers.
    pub headers: HeaderMap,
    /// Raw body.
    pub body: Bytes,
    /// HTTP version the request came in.
    pub version: http::Version,
}

impl SeenRequest {
    /// The body as JSON (`Value::Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    /// The key sent, whichever header carried it (`Authorization: Bearer`, `x-api-key`,
    /// `api-key`).
    pub fn key(&self) -> Option<String> {
        self.bearer().or_else(|| {
            ["x-api-key", "api-key", "x-goog-api-key"]
                .iter()
                .find_map(|h| self.headers.get(*h)?.to_str().ok().map(str::to_string))
        })
    }

    /// The bearer token sent, if any.
    pub fn bearer(&self) -> Option<String> {
        self.headers
            .get("authorization")?
            .to_str()
            .ok()?
            .strip_prefix("Bearer ")
            .map(str::to_string)
    }
}

/// What a [`Rule`] does to a request it matches.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Answer with this status and an OpenAI error body.
    Status(u16),
    /// Answer with this status and a `Retry-After` header of this value.
    StatusRetryAfter(u16, String),
    /// Wait this long before answering normally.
    Delay(Duration),
    /// Wait until the gate is open (the sender sends `true`), then answer normally: a test
    /// holds requests in flight for as long as it needs.
    Gate(Gate),
    /// Send the headers and part of a complete answer, then reset the connection.
    ResetBody,
    /// Stream normally but reset the connection after this many chunks.
    CutStreamAfter(usize),
    /// Answer 200 with this text as an event stream (an error event, say).
    EventStream(String),
    /// Answer 200 as an event stream: `head` (whole events, or nothing), then `bytes` bytes of
    /// one line that never ends, in 64 KiB chunks, sent as fast as the client reads them.
    Flood {
        /// What comes first.
        head: String,
        /// How much of the endless line to send.
        bytes: usize,
    },
    /// Answer with this status and an OpenAI error body whose message repeats the key the
    /// request carried, as a careless upstream does (`you sent auth Bearer sk-…`).
    EchoKey(u16),
}

/// The receiving end of a gate (see [`Fault::Gate`]); gates are equal when they are the same.
#[derive(Debug, Clone)]
pub struct Gate(pub tokio::sync::watch::Receiver<bool>);

impl PartialEq for Gate {
    fn eq(&self, other: &Self) -> bool {
        self.0.same_channel(&other.0)
    }
}

/// A fault applied to the requests that match a key and/or a model.
#[derive(Debug, Clone)]
pub struct Rule {
    key: Option<String>,
    model: Option<String>,
    fault: Fault,
    every: usize,
    times: Option<usize>,
    seen: usize,
}

impl Rule {
    /// A rule applying `fault` to every request.
    pub fn new(fault: Fault) -> Self {
        Self {
            key: None,
            model: None,
            fault,
            every: 1,
            times: None,
            seen: 0,
        }
    }
    /// Only requests sent with this bearer key.
    pub fn key(mut self, key: &str) -> Self {
        self.key = Some(key.to_string());
        self
    }
    /// Only requests for this upstream model.
    pub fn model(mut self, model: &str) -> Self {
        self.model = Some(model.to_string());
        self
    }
    /// Only every `n`-th matching request (2: the second, fourth, ...).
    pub fn every(mut self, n: usize) -> Self {
        self.every = n.max(1);
        self
    }
    /// At most `n` times.
    pub fn times(mut self, n: usize) -> Self {
        self.times = Some(n);
        self
    }
}

#[derive(Default)]
pub(crate) struct State {
    rules: Mutex<Vec<Rule>>,
    requests: Mutex<Vec<SeenRequest>>,
    tokens_reported: AtomicU64,
    fail_next: Mutex<Vec<u16>>,
    chunk_delay_ms: AtomicU64,
    response_delay_ms: AtomicU64,
    cut_after: Mutex<Option<usize>>,
    hold_last_chunk: std::sync::atomic::AtomicBool,
    /// Keep only the last request seen (for long benchmark runs).
    keep_last_only: std::sync::atomic::AtomicBool,
    request_count: AtomicU64,
    release: Notify,
    streams_finished: AtomicUsize,
    streams_cancelled: AtomicUsize,
    /// Prompt tokens reported as read from and written to the prompt cache.
    cache_tokens: Mutex<(u64, u64)>,
}

/// A running mock upstream; stops when dropped.
pub struct MockUpstream {
    addr: SocketAddr,
    tls: bool,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MockUpstream {
    /// Starts a plain HTTP mock on `127.0.0.1:0`.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_inner(None).await
    }

    /// Starts a TLS mock (HTTP/1.1 and HTTP/2 by ALPN) with a certificate for `localhost`
    /// signed by a generated CA; returns the mock and the CA certificate as PEM.
    pub async fn start_tls() -> std::io::Result<(Self, String)> {
        let (acceptor, ca_pem) = tls::acceptor()?;
        Ok((Self::start_inner(Some(acceptor)).await?, ca_pem))
    }

    async fn start_inner(tls: Option<tokio_rustls::TlsAcceptor>) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State::default());
        let is_tls = tls.is_some();
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                // Each SSE event goes out as it is written, as a real provider's do.
                let _ = stream.set_nodelay(true);
                let st = st.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let st = st.clone();
                        async move { Ok::<_, Infallible>(handle(st, req).await) }
                    });
                    let builder = auto::Builder::new(TokioExecutor::new());
                    match tls {
                        Some(acceptor) => {
                            if let Ok(s) = acceptor.accept(stream).await {
                                let _ = builder.serve_connection(TokioIo::new(s), svc).await;
                            }
                        }
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                        }
                    }
                });
            }
        });
        Ok(Self {
            addr,
            tls: is_tls,
            state,
            task,
        })
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL to configure as a provider's `base_url` (ends in `/v1`).
    pub fn base_url(&self) -> String {
        if self.tls {
            format!("https://localhost:{}/v1", self.addr.port())
        } else {
            format!("http://{}/v1", self.addr)
        }
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.state.requests.lock().unwrap().clone()
    }

    /// How many requests arrived (kept or not: see [`MockUpstream::keep_last_request_only`]).
    pub fn request_count(&self) -> u64 {
        self.state.request_count.load(SeqCst)
    }

    /// Σ `total_tokens` reported in answers (complete ones and usage chunks sent).
    pub fn tokens_reported(&self) -> u64 {
        self.state.tokens_reported.load(SeqCst)
    }

    /// Answer the next requests with these statuses (in order) and an OpenAI error body.
    pub fn fail_next(&self, statuses: &[u16]) {
        self.state
            .fail_next
            .lock()
            .unwrap()
            .extend_from_slice(statuses);
    }

    /// Pause between stream chunks.
    pub fn set_chunk_delay(&self, delay: Duration) {
        self.state
            .chunk_delay_ms
            .store(delay.as_millis() as u64, SeqCst);
    }

    /// Adds a fault rule; the first rule that matches and is due applies.
    pub fn add_rule(&self, rule: Rule) {
        self.state.rules.lock().unwrap().push(rule);
    }

    /// Removes every rule.
    pub fn clear_rules(&self) {
        self.state.rules.lock().unwrap().clear();
    }

    /// Requests seen with this bearer key (and model, if given).
    pub fn count(&self, key: &str, model: Option<&str>) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.key().as_deref() == Some(key))
            .filter(|r| model.is_none_or(|m| r.json()["model"] == m))
            .count()
    }

    /// Wait this long before answering (before the response headers).
    pub fn set_response_delay(&self, delay: Duration) {
        self.state
            .response_delay_ms
            .store(delay.as_millis() as u64, SeqCst);
    }

    /// The next stream breaks (the connection is reset) after sending `chunks` chunks.
    pub fn cut_next_stream_after(&self, chunks: usize) {
        *self.state.cut_after.lock().unwrap() = Some(chunks);
    }

    /// Keeps only the last request in [`MockUpstream::requests`] (for long benchmark runs,
    /// whose every request would otherwise be kept).
    pub fn keep_last_request_only(&self) {
        self.state.keep_last_only.store(true, SeqCst);
        self.state.requests.lock().unwrap().clear();
    }

    /// Streams hold their last chunk (`[DONE]`) until [`MockUpstream::release`] is called.
    pub fn hold_last_chunk(&self, hold: bool) {
        self.state.hold_last_chunk.store(hold, SeqCst);
    }

    /// Lets held streams send their last chunk.
    pub fn release(&self) {
        self.state.release.notify_waiters();
    }

    /// Reports `read` prompt tokens as read from the prompt cache and `write` as written to it
    /// (OpenAI: `prompt_tokens_details.cached_tokens`, and `cache_creation_input_tokens` as
    /// OpenAI-compatible gateways do; Anthropic: `cache_read_input_tokens` and
    /// `cache_creation_input_tokens`), out of the prompt's tokens.
    pub fn set_cache_tokens(&self, read: u64, write: u64) {
        *self.state.cache_tokens.lock().unwrap() = (read, write);
    }

    /// Streams that sent everything, `[DONE]` included.
    pub fn streams_finished(&self) -> usize {
        self.state.streams_finished.load(SeqCst)
    }

    /// Streams whose client went away before the end.
    pub fn streams_cancelled(&self) -> usize {
        self.state.streams_cancelled.load(SeqCst)
    }
}

pub(crate) fn full(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(
            Full::new(body.into())
                .map_err(|never| match never {})
                .boxed_unsync(),
        )
        .unwrap()
}

fn error(status: u16, message: &str) -> Response<Body> {
    let body =
        json!({"error": {"message": message, "type": "mock_error", "param": null, "code": status}});
    full(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        "application/json",
        body.to_string(),
    )
}

pub(crate) fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let headers = req.headers().clone();
    let version = req.version();
    let Ok(body) = req.into_body().collect().await else {
        return error(400, "unreadable body");
    };
    let body = body.to_bytes();
    let seen = SeenRequest {
        path: path.clone(),
        headers,
        body: body.clone(),
        version,
    };
    {
        let mut requests = state.requests.lock().unwrap();
        if state.keep_last_only.load(SeqCst) {
            requests.clear();
        }
        requests.push(seen.clone());
        state.request_count.fetch_add(1, SeqCst);
    }
    let delay = state.response_delay_ms.load(SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let cut_stream = match faults::apply(&state, &seen).await {
        Ok(cut) => cut,
        Err(response) => return response,
    };
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return error(400, "body is not JSON");
    };
    // Azure: /openai/deployments/{deployment}/{operation}
    let (azure_deployment, operation) = match path.strip_prefix("/openai/deployments/") {
        Some(rest) => match rest.split_once('/') {
            Some((d, op)) => (Some(d.to_string()), format!("/v1/{op}")),
            None => (None, path.clone()),
        },
        None => (None, path.clone()),
    };
    // Azure ignores the body's model: the deployment in the path decides.
    let model =
        azure_deployment.unwrap_or_else(|| request["model"].as_str().unwrap_or("").to_string());
    if let Some(rest) = path.strip_prefix("/v1beta/models/") {
        return gemini::answer(state, rest, &request, &seen.headers, cut_stream);
    }
    match operation.as_str() {
        "/v1/embeddings" => other::embeddings(state, &request, model),
        "/v1/completions" => other::completions(state, &request, model, cut_stream),
        "/v1/messages" if path == "/v1/messages" => {
            anthropic::answer(state, &request, &seen.headers, cut_stream)
        }
        "/v1/messages/count_tokens" if path == operation => {
            anthropic::count_tokens(&request, &seen.headers)
        }
        "/v1/chat/completions" => openai::answer(state, &request, model, cut_stream),
        "/v1/responses" | "/openai/v1/responses" => {
            responses::answer(state, &request, model, cut_stream)
        }
        _ => error(404, "unknown path"),
    }
}
