//! The answer relayed to the client: a complete body, or a stream (see [`super::stream`]),
//! with what answered it.

use super::failure::AttemptError;
use super::stream::ChatStream;
use crate::providers::UpstreamBody;
use crate::usage::TokenUsage;
use bytes::{Bytes, BytesMut};
use http::{header, HeaderMap, HeaderValue, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// Boxed error of an upstream body.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Largest non-streamed upstream answer accepted.
const MAX_UPSTREAM_BODY: usize = 64 * 1024 * 1024;

/// What answered a request. Its names are shared with the config's snapshot: a request
/// copies none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// The group asked for.
    pub group: Arc<str>,
    /// The model name the client sent, where it is not the group's name (a provider's bare
    /// model name, or `group$N`).
    pub requested: Option<String>,
    /// Provider name.
    pub provider: Arc<str>,
    /// Upstream model.
    pub model: Arc<str>,
    /// `provider#index` of the key used.
    pub key_id: Arc<str>,
    /// Attempts made, including the one that answered.
    pub attempts: usize,
    /// Time spent waiting on upstreams, over all attempts (failed attempts and backoff
    /// included): for the answer's head (and first event of a stream), and for a complete
    /// answer's body. The rest of the time to the response head is the router's own.
    pub upstream_wait: Duration,
    /// What the group's response cache did (`None` for a group without one): on a hit,
    /// `provider` is `cache`, `key_id` is `-` and no attempt was made.
    pub cache: Option<crate::cache::CacheOutcome>,
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

impl ChatResponse {
    /// Names the fields the translated request left out, in `x-llm-router-dropped`.
    pub(super) fn with_dropped(mut self, dropped: &[String]) -> Self {
        if dropped.is_empty() {
            return self;
        }
        if let Ok(value) = HeaderValue::from_str(&dropped.join(",")) {
            self.headers.insert(crate::fields::DROPPED_HEADER, value);
        }
        self
    }
}

impl ChatResponse {
    /// With these headers added (a named client's `x-ratelimit-*`).
    pub(super) fn with_headers(mut self, headers: &[(&'static str, String)]) -> Self {
        for (name, value) in headers {
            if let Ok(value) = HeaderValue::from_str(value) {
                self.headers.insert(*name, value);
            }
        }
        self
    }
}

/// The body of a [`ChatResponse`]: complete bytes, or a stream relayed as it arrives.
#[derive(Debug)]
pub struct ChatBody(BodyInner);

impl ChatBody {
    /// A complete answer, and the tokens charged for it (none for a relayed error).
    pub(super) fn complete(bytes: Bytes, charged: Option<TokenUsage>) -> Self {
        Self(BodyInner::Full(Some(bytes), charged))
    }

    /// An answer the router made itself, charging nothing.
    pub(crate) fn counted(bytes: Bytes) -> Self {
        Self(BodyInner::Full(Some(bytes), None))
    }

    /// A stream.
    pub(super) fn stream(stream: ChatStream) -> Self {
        Self(BodyInner::Stream(Box::new(stream)))
    }

    /// A kept stream given again, event by event, charging nothing.
    pub(crate) fn replay(events: &Bytes) -> Self {
        let mut scanner = crate::sse::SseScanner::new();
        let mut frames: VecDeque<Bytes> = scanner.push(events).into();
        frames.extend(scanner.finish());
        Self(BodyInner::Replay(frames))
    }

    /// Hands the body to `keeper` once it is whole: a complete answer now, a stream when it
    /// has ended well (never if it breaks, is cut or is left by its client).
    pub(crate) fn keep_with(&mut self, keeper: crate::cache::Keeper) {
        match &mut self.0 {
            BodyInner::Full(Some(bytes), _) => keeper.keep(bytes.clone()),
            BodyInner::Stream(stream) => stream.record(keeper),
            BodyInner::Full(None, _) | BodyInner::Replay(_) => {}
        }
    }
}

#[derive(Debug)]
enum BodyInner {
    /// A complete answer and the tokens charged for it.
    Full(Option<Bytes>, Option<TokenUsage>),
    Stream(Box<ChatStream>),
    /// A kept stream's events, still to send.
    Replay(VecDeque<Bytes>),
}

impl ChatBody {
    /// Whether this is a streamed (SSE) body.
    pub fn is_stream(&self) -> bool {
        matches!(self.0, BodyInner::Stream(_) | BodyInner::Replay(_))
    }

    /// The length when complete (not a stream).
    pub fn len(&self) -> Option<usize> {
        match &self.0 {
            BodyInner::Full(b, _) => Some(b.as_ref().map_or(0, Bytes::len)),
            BodyInner::Stream(_) | BodyInner::Replay(_) => None,
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
            BodyInner::Replay(_) => None,
        }
    }

    /// Ends a stream when `cut` completes (a server's shutdown deadline, say): the client gets
    /// an error event in its dialect carrying the message `cut` gives, and what was streamed
    /// is charged, as for a client that left; the pair is not blamed. Nothing for a complete
    /// answer, or a stream that ends first.
    pub fn cut_when(&mut self, cut: impl Future<Output = String> + Send + 'static) {
        if let BodyInner::Stream(s) = &mut self.0 {
            s.cut_when(Box::pin(cut));
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
            BodyInner::Replay(events) => {
                Poll::Ready(events.pop_front().map(|e| Ok(Frame::data(e))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            BodyInner::Full(b, _) => b.is_none(),
            BodyInner::Stream(_) => false,
            BodyInner::Replay(events) => events.is_empty(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            BodyInner::Full(b, _) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            BodyInner::Stream(_) | BodyInner::Replay(_) => SizeHint::default(),
        }
    }
}

pub(super) async fn read_full(
    mut body: UpstreamBody,
    idle: Duration,
) -> Result<Bytes, AttemptError> {
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

pub(super) fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("text/event-stream"))
}

pub(super) fn client_headers(upstream: &HeaderMap, stream: bool) -> HeaderMap {
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
