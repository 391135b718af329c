//! One attempt: send the request to the picked pair, classify what comes back, and commit to
//! the answer (a complete body, or a stream once its first event arrived).

use super::failure::{status_error, transport_error, AttemptError};
use super::relay::{client_headers, is_event_stream, read_full, ChatBody, ChatResponse, Served};
use super::stream::ChatStream;
use crate::exchange::Exchange;
use crate::providers::{Credential, UpstreamBody};
use crate::select::Selection;
use crate::snapshot::{Provider, Transport};
use crate::sse::SseScanner;
use crate::{Redactor, Secret};
use bytes::{Bytes, BytesMut};
use http::{header, HeaderMap, HeaderValue, Request};
use http_body_util::{BodyExt, Full};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// A failed attempt: what answered (for the error message) and why it failed.
pub(super) type Failed = (Served, AttemptError);

/// An attempt in flight.
struct Attempt<'a> {
    exchange: &'a Exchange<'a>,
    selection: Selection,
    provider: Arc<Provider>,
    served: Served,
    started: Instant,
    deadline: Instant,
    first_byte: Duration,
    /// The caller's id of the request, for a broken stream's log line.
    label: Option<&'a str>,
    /// The OAuth access token the answer came for, masked in the upstream's error words like
    /// a configured key.
    token: Option<Secret>,
}

/// Sends `body` to the pair `selection` holds and relays the answer, settling the selection
/// by the outcome; in a traced request, as a span of its own, which the upstream is told of
/// (`traceparent`) and the trace notes.
pub(super) async fn attempt(
    exchange: &Exchange<'_>,
    selection: Selection,
    body: Vec<u8>,
    deadline: Instant,
    ids: &super::RequestIds<'_>,
    served: Served,
) -> Result<ChatResponse, Failed> {
    let Some(trace) = ids.trace else {
        return run(exchange, selection, body, deadline, ids, served).await;
    };
    let provider = selection.provider().clone();
    let (span_id, traceparent) = trace.child();
    let ids = super::RequestIds {
        traceparent: Some(traceparent),
        ..*ids
    };
    let (sent, number) = (std::time::SystemTime::now(), served.attempts);
    let outcome = run(exchange, selection, body, deadline, &ids, served).await;
    trace.note(span(&outcome, &provider, span_id, sent, number));
    outcome
}

/// One attempt, untraced or with its `traceparent` in `ids`.
async fn run(
    exchange: &Exchange<'_>,
    selection: Selection,
    body: Vec<u8>,
    deadline: Instant,
    ids: &super::RequestIds<'_>,
    served: Served,
) -> Result<ChatResponse, Failed> {
    let provider = selection.provider().clone();
    let started = Instant::now();
    let remaining = deadline.saturating_duration_since(started);
    let first_byte = provider
        .first_byte_timeout()
        .min(provider.total_timeout().unwrap_or(Duration::MAX))
        .min(remaining);
    let mut attempt = Attempt {
        exchange,
        selection,
        provider,
        served,
        started,
        deadline,
        first_byte,
        label: ids.label,
        token: None,
    };
    let body = Bytes::from(body);
    let mut sent = send(&attempt, body.clone(), ids, None).await;
    // An OAuth token the upstream refused (revoked, or expired early): renewed once, and the
    // call sent again with the new one.
    let refused = match (&sent, attempt.selection.credential()) {
        (Ok((response, Some(used))), Some(credential))
            if response.status() == http::StatusCode::UNAUTHORIZED =>
        {
            Some((credential.clone(), used.clone()))
        }
        _ => None,
    };
    if let Some((credential, used)) = refused {
        drop(sent);
        let renewed = match credential.renew_refused(&used).await {
            Ok(token) => token,
            Err(fault) => return Err(attempt.fail(AttemptError::credential(fault))),
        };
        sent = send(&attempt, body, ids, Some(renewed)).await;
    }
    let response = match sent {
        Ok((r, token)) => {
            attempt.token = token;
            r
        }
        Err(e) => return Err(attempt.fail(e)),
    };
    let status = response.status();
    if !status.is_success() {
        if let Some(e) = status_error(status, response.headers()) {
            return Err(attempt.fail(e));
        }
    }
    let (parts, body) = response.into_parts();
    if status.is_success() && exchange.request().stream() && is_event_stream(&parts.headers) {
        attempt.stream(status, &parts.headers, body).await
    } else {
        attempt.complete(status, &parts.headers, body).await
    }
}

/// What attempt `number`, sent at `sent` to `provider` as span `span_id`, came to, as a span
/// of the request's trace.
fn span(
    outcome: &Result<ChatResponse, Failed>,
    provider: &Provider,
    span_id: [u8; 8],
    sent: std::time::SystemTime,
    number: usize,
) -> crate::AttemptSpan {
    let (served, status, failure) = match outcome {
        Ok(answer) => (&answer.served, Some(answer.status.as_u16()), None),
        Err((served, e)) => (served, e.status, Some(e.outcome.clone())),
    };
    crate::AttemptSpan {
        span_id,
        number,
        provider: served.provider.to_string(),
        kind: provider.kind().name(),
        model: served.model.to_string(),
        key_id: served.key_id.to_string(),
        started: sent,
        ended: std::time::SystemTime::now(),
        status,
        failure,
    }
}

/// The request to the upstream: in process for a local kind, else over HTTP with the key, or
/// with `bearer` (else the credential's current token) for an OAuth credential. Returns the
/// answer and the token sent, if one was.
async fn send(
    attempt: &Attempt<'_>,
    body: Bytes,
    ids: &super::RequestIds<'_>,
    bearer: Option<Secret>,
) -> Result<(http::Response<UpstreamBody>, Option<Secret>), AttemptError> {
    let provider = &attempt.provider;
    let client = match &provider.transport {
        Transport::Local => {
            return (provider.kind().room())
                .answer_locally(&body, ids.number)
                .map(|answer| (answer, None))
                .ok_or_else(|| AttemptError::upstream("the provider has no local answer"))
        }
        Transport::Http(client) => client,
    };
    let bearer = match (bearer, attempt.selection.credential()) {
        (None, Some(credential)) => {
            Some(credential.token().await.map_err(AttemptError::credential)?)
        }
        (bearer, _) => bearer,
    };
    let bad =
        |e: &dyn std::fmt::Display| AttemptError::upstream(format!("bad upstream request: {e}"));
    let uri = (attempt.exchange)
        .uri(provider, attempt.selection.model())
        .map_err(|e| bad(&e))?;
    let mut request = Request::post(uri)
        .body(Full::new(body))
        .map_err(|e| bad(&e))?;
    let headers = request.headers_mut();
    if let Some(host) = provider.target.host() {
        headers.insert(header::HOST, host.clone());
    }
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
    if let Some(traceparent) = &ids.traceparent {
        let value = HeaderValue::from_str(traceparent)
            .map_err(|_| AttemptError::upstream("bad traceparent"))?;
        headers.insert("traceparent", value);
    }
    let credential = match &bearer {
        Some(token) => Credential::Bearer(token),
        None => Credential::Key(attempt.selection.key()),
    };
    (attempt.exchange)
        .authorize(provider, credential, headers)
        .map_err(AttemptError::upstream)?;
    let first_byte = attempt.first_byte;
    match tokio::time::timeout(first_byte, client.request(request)).await {
        Err(_) => Err(AttemptError::timeout(format!(
            "no response within {first_byte:?}"
        ))),
        Ok(Err(e)) => Err(transport_error(&e)),
        Ok(Ok(response)) => Ok((
            response.map(|b| b.map_err(super::BoxError::from).boxed_unsync()),
            bearer,
        )),
    }
}

/// The stream's bytes up to its first complete event (or its end, if it ends first); an event
/// over `limit` bytes fails the attempt.
async fn first_event(body: &mut UpstreamBody, limit: usize) -> Result<Bytes, AttemptError> {
    let mut probe = SseScanner::with_limit(limit);
    let mut head = BytesMut::new();
    loop {
        match body.frame().await {
            None if head.is_empty() => {
                return Err(AttemptError::upstream("stream ended before any event"))
            }
            None => return Ok(head.freeze()),
            Some(Err(e)) => return Err(AttemptError::upstream(format!("stream failed ({e})"))),
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                let complete = !probe.push(&data).is_empty();
                if probe.too_large() {
                    return Err(AttemptError::upstream(format!(
                        "the stream's first event is over {limit} bytes (server.max_event_bytes)"
                    )));
                }
                if head.is_empty() && complete {
                    // The usual case: the first frame holds an event; no copy.
                    return Ok(data);
                }
                head.extend_from_slice(&data);
                if complete {
                    return Ok(head.freeze());
                }
            }
        }
    }
}

impl Attempt<'_> {
    /// The attempt failed: the pair's health learns why.
    fn fail(self, e: AttemptError) -> Failed {
        self.selection.observe_latency(self.started.elapsed(), true);
        self.selection.note_error(&e.outcome);
        self.selection.fail(e.failure);
        (self.served, e)
    }

    /// A stream: wait for its first complete event before committing, so an upstream that
    /// fails (or sends an endless line) before the client got anything can still be replaced.
    async fn stream(
        mut self,
        status: http::StatusCode,
        headers: &HeaderMap,
        mut body: UpstreamBody,
    ) -> Result<ChatResponse, Failed> {
        let until = self
            .deadline
            .min(crate::health::later(Instant::now(), self.first_byte));
        let first = match tokio::time::timeout_at(
            until,
            first_event(&mut body, self.provider.max_event_bytes()),
        )
        .await
        {
            Err(_) => Err(AttemptError::timeout(format!(
                "no stream event within {:?}",
                self.first_byte
            ))),
            Ok(first) => first,
        };
        let first = match first {
            Ok(f) => f,
            Err(e) => return Err(self.fail(e)),
        };
        // A stream that opens with an error event (Anthropic's `overloaded_error`) has sent the
        // client nothing yet: fail over rather than relay it.
        if self.exchange.opens_with_error(&first) {
            return Err(self.fail(AttemptError::upstream("stream opened with an error event")));
        }
        // The upstream answered: a half-open breaker closes now, not when a long stream ends.
        self.selection.confirm_healthy();
        self.selection
            .observe_latency(self.started.elapsed(), false);
        self.served.upstream_wait += self.started.elapsed();
        let codec = self.exchange.stream(self.selection.model());
        let stream = ChatStream::new(
            first,
            body,
            self.selection,
            codec,
            self.exchange.request().dialect(),
            self.provider.idle_timeout(),
            self.exchange.request().prompt_estimate(),
        )
        .redacting(match &self.token {
            Some(token) => Arc::new(self.exchange.redactor().and(token)),
            None => self.exchange.redactor().clone(),
        })
        .limited(self.provider.max_event_bytes())
        .labelled(self.label.map(Arc::from));
        Ok(ChatResponse {
            status,
            headers: client_headers(headers, true),
            body: ChatBody::stream(stream),
            served: self.served,
        })
    }

    /// A complete answer: read it whole (within the provider's total and the request's
    /// deadline), then relay it as it came or translated.
    async fn complete(
        mut self,
        status: http::StatusCode,
        headers: &HeaderMap,
        body: UpstreamBody,
    ) -> Result<ChatResponse, Failed> {
        let read_deadline = match self.provider.total_timeout() {
            Some(total) => self.deadline.min(crate::health::later(self.started, total)),
            None => self.deadline,
        };
        let idle = self.provider.idle_timeout();
        let bytes = match tokio::time::timeout_at(read_deadline, read_full(body, idle)).await {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => return Err(self.fail(e)),
            Err(_) => {
                return Err(self.fail(AttemptError::timeout("timed out while reading the answer")))
            }
        };
        self.served.upstream_wait += self.started.elapsed();
        // The configured secrets are masked in `answer`; the token sent, here.
        let bytes = match &self.token {
            Some(token) if !status.is_success() => {
                Redactor::default().and(token).redact_bytes(bytes)
            }
            _ => bytes,
        };
        let Some((bytes, usage)) = self.exchange.answer(status, bytes, &self.served.model) else {
            return Err(self.fail(AttemptError::upstream(
                "unreadable answer from the provider",
            )));
        };
        let charged = if status.is_success() {
            self.selection
                .observe_latency(self.started.elapsed(), false);
            self.selection.succeed(usage);
            Some(usage)
        } else {
            // The request's own 4xx, relayed in the client's shape: not held against the pair.
            self.selection.release();
            None
        };
        let headers = if self.exchange.passthrough() {
            client_headers(headers, false)
        } else {
            client_headers(&HeaderMap::new(), false)
        };
        Ok(ChatResponse {
            status,
            headers,
            body: ChatBody::complete(bytes, charged),
            served: self.served,
        })
    }
}
