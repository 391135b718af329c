//! A request's place in a distributed trace (W3C Trace Context), for the upstream calls the
//! router makes for it: each attempt gets a span id of its own, sent upstream in
//! `traceparent` as the request's child, and is noted (who answered, when, how it went) for
//! the caller, which reports the spans (the binary, over OTLP).

use std::sync::Mutex;
use std::time::SystemTime;

/// The trace a request belongs to and the span that stands for it in the router. Give it
/// with [`crate::ClientRequest::traced`]; read the attempts back with [`Trace::attempts`].
#[derive(Debug)]
pub struct Trace {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    /// The span of the caller's that the request's continues (its `traceparent`), if any.
    parent: Option<[u8; 8]>,
    sampled: bool,
    attempts: Mutex<Vec<AttemptSpan>>,
}

/// One upstream attempt, as a child span of the request's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptSpan {
    /// Its span id, the one sent upstream in `traceparent`.
    pub span_id: [u8; 8],
    /// Its place among the request's attempts, from 1.
    pub number: usize,
    /// The provider's name.
    pub provider: String,
    /// The provider's type (`openai`, `azure`, `anthropic`, `gemini`, `mock`).
    pub kind: &'static str,
    /// The upstream model.
    pub model: String,
    /// The key's id (`provider#index`).
    pub key_id: String,
    /// When it was sent.
    pub started: SystemTime,
    /// When it was decided: the answer read whole, a stream's first event, or the failure.
    pub ended: SystemTime,
    /// The upstream's status, when it answered with one.
    pub status: Option<u16>,
    /// Why it failed, if it did (as the client would be told).
    pub failure: Option<String>,
}

impl Trace {
    /// The request's span `span_id` in trace `trace_id`, sampled or not (an unsampled trace
    /// is still passed on upstream, with its flag).
    pub fn new(trace_id: [u8; 16], span_id: [u8; 8], sampled: bool) -> Self {
        Self {
            trace_id,
            span_id,
            parent: None,
            sampled,
            attempts: Mutex::new(Vec::new()),
        }
    }
    /// The same, continuing the caller's span `parent` (from its `traceparent`), if any.
    pub fn with_parent(self, parent: Option<[u8; 8]>) -> Self {
        Self { parent, ..self }
    }
    /// The caller's span the request's continues, if any.
    pub fn parent(&self) -> Option<[u8; 8]> {
        self.parent
    }
    /// The trace id.
    pub fn trace_id(&self) -> [u8; 16] {
        self.trace_id
    }
    /// The request span's id: the attempts' parent.
    pub fn span_id(&self) -> [u8; 8] {
        self.span_id
    }
    /// Whether the trace is sampled (its spans are to be reported).
    pub fn sampled(&self) -> bool {
        self.sampled
    }
    /// The attempts made so far, in order.
    pub fn attempts(&self) -> Vec<AttemptSpan> {
        self.attempts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A new span id for an attempt (random, never all zeros), and the `traceparent` value
    /// that names it as the request's child.
    pub(crate) fn child(&self) -> ([u8; 8], String) {
        let id = fastrand::u64(1..).to_be_bytes();
        let value = format!(
            "00-{}-{}-{}",
            hex::encode(self.trace_id),
            hex::encode(id),
            if self.sampled { "01" } else { "00" }
        );
        (id, value)
    }

    pub(crate) fn note(&self, attempt: AttemptSpan) {
        (self.attempts.lock().unwrap_or_else(|p| p.into_inner())).push(attempt);
    }
}
