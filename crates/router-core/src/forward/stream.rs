//! A relayed stream: upstream events go to the client as they arrive, through the exchange's
//! [`Codec`] (as they came, or translated); usage is read on the way and charged when the
//! stream ends, breaks or is left by its client; a failure mid-stream becomes the client's
//! error event and a clean end.

use super::endings::{Cut, Ending, Endings};
use crate::codec::{Codec, Incomplete};
use crate::dialects::Dialect;
use crate::health::Failure;
use crate::meter::StreamMeter;
use crate::providers::UpstreamBody;
use crate::select::Selection;
use crate::sse::{event_data, SseScanner};
use crate::usage::TokenUsage;
use crate::{Redactor, RouterError};
use bytes::{Bytes, BytesMut};

use http_body::{Body, Frame};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// Events that may echo a secret (errors) are redacted; the searcher is built once.
static ERROR: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"error"));

/// A stream being relayed to a client.
pub(crate) struct ChatStream {
    upstream: UpstreamBody,
    /// The first frame, read before the stream was committed to.
    first: Option<Bytes>,
    scanner: SseScanner,
    /// Reused for each frame: the events it completed, and what goes out of them.
    events: Vec<Bytes>,
    kept: Vec<Bytes>,
    codec: Codec,
    /// The client's dialect, for the error event of a broken stream.
    dialect: Dialect,
    /// Held until the stream is settled.
    selection: Option<Selection>,
    finished: bool,
    /// What is left to send once the upstream is done.
    trailer: Option<Bytes>,
    /// A gap as long as the idle timeout, or the caller's cut (a server's shutdown).
    endings: Endings,
    /// What the upstream streamed, for a charge when its final usage report never comes.
    meter: StreamMeter,
    prompt_estimate: u64,
    /// What was charged when the stream was settled.
    charged: Option<TokenUsage>,
    /// Masks the config's secrets in the upstream's error events.
    redactor: Arc<Redactor>,
    /// What was sent, for the response cache, if it keeps this answer.
    recording: Option<Recording>,
    /// The caller's id of the request, named when the stream breaks.
    label: Option<Arc<str>>,
}

/// A stream's bytes as sent, kept once it has ended well.
struct Recording {
    keeper: crate::cache::Keeper,
    sent: BytesMut,
    /// It ended with everything the upstream had to say, and no error.
    whole: bool,
}

impl std::fmt::Debug for ChatStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatStream")
            .field("usage", &self.codec.usage())
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl ChatStream {
    /// A stream whose first frame `first` arrived; the rest comes from `upstream`. `idle` is
    /// the longest gap allowed between two frames.
    pub(crate) fn new(
        first: Bytes,
        upstream: UpstreamBody,
        selection: Selection,
        codec: Codec,
        dialect: Dialect,
        idle: Duration,
        prompt_estimate: u64,
    ) -> Self {
        Self {
            upstream,
            first: Some(first),
            scanner: SseScanner::new(),
            events: Vec::new(),
            kept: Vec::new(),
            codec,
            dialect,
            selection: Some(selection),
            finished: false,
            trailer: None,
            endings: Endings::new(idle),
            meter: StreamMeter::default(),
            prompt_estimate,
            charged: None,
            redactor: Arc::default(),
            recording: None,
            label: None,
        }
    }

    /// Hands what is sent to `keeper` once the stream has ended well and its last byte is
    /// out (see [`crate::cache`]).
    pub(crate) fn record(&mut self, keeper: crate::cache::Keeper) {
        self.recording = Some(Recording {
            keeper,
            sent: BytesMut::new(),
            whole: false,
        });
    }

    /// `out`, to the client (and to the recording, unless it grew past what is kept).
    fn send(&mut self, out: Bytes) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(recording) = &mut self.recording {
            if recording.sent.len() + out.len() > crate::cache::MAX_ENTRY_BYTES {
                self.recording = None;
            } else {
                recording.sent.extend_from_slice(&out);
            }
        }
        Poll::Ready(Some(Ok(Frame::data(out))))
    }

    /// The stream is over and its last byte out: a whole one is kept.
    fn over(&mut self) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(recording) = self.recording.take().filter(|r| r.whole) {
            recording.keeper.keep(recording.sent.freeze());
        }
        Poll::Ready(None)
    }

    /// The stream with no upstream event over `limit` bytes: a longer one breaks it.
    pub(crate) fn limited(mut self, limit: usize) -> Self {
        self.scanner = SseScanner::with_limit(limit);
        self
    }

    /// The stream of the request the caller knows as `label`, named in its log lines.
    pub(crate) fn labelled(mut self, label: Option<Arc<str>>) -> Self {
        self.label = label;
        self
    }

    /// The stream with its upstream's error events passed through `redactor`.
    pub(crate) fn redacting(mut self, redactor: Arc<Redactor>) -> Self {
        self.redactor = redactor;
        self
    }

    /// The stream, ended by `cut` when it completes (see [`ChatStream::cut_now`]).
    pub(crate) fn cut_when(&mut self, cut: Cut) {
        self.endings.cut_when(cut);
    }

    /// Ends the stream now, not by the upstream's fault: the client gets its dialect's error
    /// event with `message`, and what was streamed is charged as a client that left would be.
    fn cut_now(&mut self, message: String) {
        if self.finished {
            return;
        }
        if self.codec.done() {
            self.end();
            return;
        }
        let event = self.error_event(message);
        self.settle();
        self.finished = true;
        self.trailer = Some(event);
    }

    /// The bytes to send for one upstream frame, if any.
    fn process(&mut self, data: &[u8]) -> Option<Bytes> {
        let mut events = std::mem::take(&mut self.events);
        self.scanner.push_into(data, &mut events);
        let out = self.collect(&mut events);
        self.events = events;
        if self.scanner.too_large() && !self.finished {
            // What came before it goes out; the stream ends with the client's error event.
            self.fail(
                "the upstream sent a stream event over the size limit (server.max_event_bytes)"
                    .into(),
            );
        }
        out
    }

    /// What goes out for `events` (which it empties).
    fn collect(&mut self, events: &mut Vec<Bytes>) -> Option<Bytes> {
        let mut kept = std::mem::take(&mut self.kept);
        for event in events.drain(..) {
            // An upstream may echo the key it got in an error; no other event could know it.
            let event = if ERROR.find(&event).is_some() {
                self.redactor.redact_bytes(event)
            } else {
                event
            };
            let data = event_data(&event);
            if let Some(data) = &data {
                self.meter.observe(data);
            }
            self.codec.relay(event.clone(), data.as_deref(), &mut kept);
        }
        let out = join(&mut kept);
        self.kept = kept;
        out
    }

    fn end(&mut self) {
        let mut out: Vec<Bytes> = Vec::new();
        if let Some(tail) = self.scanner.finish() {
            if let Some(b) = self.collect(&mut vec![tail]) {
                let terminated = b.ends_with(b"\n\n") || b.ends_with(b"\r\n\r\n");
                out.push(b);
                if !terminated {
                    out.push(Bytes::from_static(b"\n\n"));
                }
            }
        }
        // A stream that carried an upstream error event ends with that event.
        if !self.codec.failed() && self.codec.end(&mut out) == Err(Incomplete) {
            self.fail("upstream stream ended before it was complete".to_string());
            out.extend(self.trailer.take());
            self.trailer = join(&mut out);
            return;
        }
        let charge = self.charge();
        if let Some(selection) = self.selection.take() {
            self.charged = Some(charge);
            if self.codec.failed() {
                selection.fail_after(Failure::Upstream, Some(charge));
            } else {
                selection.succeed(charge);
            }
        }
        if let Some(recording) = &mut self.recording {
            recording.whole = !self.codec.failed();
        }
        self.finished = true;
        self.trailer = join(&mut out);
    }

    /// Settles the stream if it has not ended (the client left: what was streamed is charged)
    /// and returns what was charged.
    pub(crate) fn settle(&mut self) -> Option<TokenUsage> {
        if let Some(selection) = self.selection.take() {
            let charge = self.charge();
            self.charged = Some(charge);
            if self.codec.failed() {
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
        self.meter.charge(self.codec.usage(), self.prompt_estimate)
    }

    fn fail(&mut self, message: String) {
        if self.codec.done() {
            // Everything arrived; a failure after the end loses nothing.
            self.end();
            return;
        }
        tracing::warn!(
            request_id = %self.label.as_deref().unwrap_or("-"),
            error = %message,
            "upstream stream failed mid-way"
        );
        if let Some(selection) = &self.selection {
            selection.note_error(&message);
        }
        let event = self.error_event(message);
        let charge = self.charge();
        if let Some(selection) = self.selection.take() {
            self.charged = Some(charge);
            selection.fail_after(Failure::Upstream, Some(charge));
        }
        self.finished = true;
        self.trailer = Some(event);
    }

    /// The last event of a stream broken by `message`, in the client's dialect.
    fn error_event(&mut self, message: String) -> Bytes {
        let body = RouterError::StreamInterrupted(message)
            .reply(self.dialect)
            .body;
        let mut events = Vec::new();
        if self.codec.interrupt(&body, &mut events) {
            join(&mut events).unwrap_or_default()
        } else {
            self.dialect.room().stream_error_event(&body)
        }
    }

    pub(crate) fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if let Some(first) = this.first.take() {
            if let Some(out) = this.process(&first) {
                return this.send(out);
            }
        }
        loop {
            if this.finished {
                return match this.trailer.take() {
                    Some(last) => this.send(last),
                    None => this.over(),
                };
            }
            match Pin::new(&mut this.upstream).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    this.endings.heard();
                    if let Ok(data) = frame.into_data() {
                        if let Some(out) = this.process(&data) {
                            return this.send(out);
                        }
                    }
                }
                Poll::Ready(Some(Err(e))) => this.fail(format!("upstream stream failed: {e}")),
                Poll::Ready(None) => this.end(),
                Poll::Pending => match this.endings.poll(cx) {
                    Poll::Ready(Ending::Cut(message)) => this.cut_now(message),
                    Poll::Ready(Ending::Idle(idle)) => {
                        this.fail(format!("upstream sent nothing for {idle:?}"));
                    }
                    Poll::Pending => return Poll::Pending,
                },
            }
        }
    }
}

/// Pieces as one frame (which takes them out); `None` when there are none.
fn join(pieces: &mut Vec<Bytes>) -> Option<Bytes> {
    match pieces.len() {
        0 => None,
        1 => pieces.pop(),
        _ => {
            let mut out = BytesMut::with_capacity(pieces.iter().map(Bytes::len).sum());
            for p in pieces.drain(..) {
                out.extend_from_slice(&p);
            }
            Some(out.freeze())
        }
    }
}

impl Drop for ChatStream {
    fn drop(&mut self) {
        // The client went away mid-stream: the provider bills what it sent all the same.
        self.settle();
    }
}
