//! What is known about a request when it ends: one access log line, the request metrics, a row
//! for the ledger's request log, and recent errors for the dashboard. A response body is
//! wrapped so that this happens when its last byte is sent (or its client leaves), with the
//! tokens charged and the time to the first byte.

use crate::app::App;
use crate::hooked::{BodyHook, Hooked};
use crate::ledger::RequestRow;
use crate::metrics::Finished;
use crate::ResBody;
use bytes::Bytes;
use router_core::{ChatBody, Served, TokenUsage};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Whether access lines are written for a plain-text log (see [`RequestLog::write_text_line`])
/// rather than as a structured event (which a JSON log, or colours on a terminal, need).
static ACCESS_AS_TEXT: AtomicBool = AtomicBool::new(false);

/// Sets how access lines are emitted (see [`ACCESS_AS_TEXT`]); the binary calls it when it sets
/// up logging.
pub fn access_lines_as_text(text: bool) {
    ACCESS_AS_TEXT.store(text, Relaxed);
}

/// Where the tokens charged for an answer land once its body is settled.
pub type UsageSlot = Arc<Mutex<Option<TokenUsage>>>;

/// A request's facts, gathered on its way and logged when it ends: by [`Observed`] when its
/// response ends, or, if the request is dropped before it has one (the client left, or the
/// shutdown deadline passed, while it waited), when it is dropped, with status 499.
pub struct RequestLog {
    pub(crate) app: Arc<App>,
    done: bool,
    pub(crate) request_id: String,
    pub(crate) method: http::Method,
    /// The request's target; only its path is logged.
    uri: http::Uri,
    pub(crate) endpoint: &'static str,
    pub(crate) started: Instant,
    /// The wall-clock time it began, when `telemetry` is on (its spans' start; the attempts'
    /// spans are stamped on the same clock, so they fall inside it).
    wall_started: Option<SystemTime>,
    /// When the response head was ready.
    pub(crate) head: Option<Instant>,
    pub(crate) status: u16,
    pub(crate) served: Option<Served>,
    /// The group of a failed request, when it named a configured one.
    pub(crate) group: Option<String>,
    pub(crate) attempts: usize,
    pub(crate) usage: Option<UsageSlot>,
    /// The named client whose key it came with.
    pub(crate) client: Option<String>,
    /// The model a failed request asked for, where its error knows it (a served one's is
    /// in `served`).
    pub(crate) requested_model: Option<String>,
    /// Whether the answer is a stream.
    pub(crate) stream: bool,
    /// What the client was told, for a request the router refused or could not serve.
    pub(crate) error: Option<String>,
    /// Its trace, when `telemetry` is on (reported when it ends, if sampled).
    pub(crate) trace: Option<Arc<router_core::Trace>>,
}

impl RequestLog {
    /// The access line of a text log, as `tracing`'s text format writes the structured event
    /// (`<time>  INFO access: key=value …`), written straight to stderr: formatting the event
    /// through tracing-subscriber cost three times as much (callgrind: about 22,000
    /// instructions a line against 7,000), a sixth of all the router's instructions per
    /// request. The values are the same as the event's: from the config, or checked (request
    /// id) or parsed (method, path) already.
    fn write_text_line(
        &self,
        latency: Duration,
        ttft: Option<Duration>,
        overhead: Option<Duration>,
        group: Option<&str>,
        attempts: usize,
        usage: Option<TokenUsage>,
    ) {
        use std::io::Write as _;
        let (prompt, completion) = usage.map_or((0, 0), |u| (u.prompt_tokens, u.completion_tokens));
        // Pieces pushed as they are and integers through `itoa`: `write!` costs as much as
        // a cached answer's whole access line.
        let mut line = String::with_capacity(320);
        let _ = write!(
            line,
            "{}",
            humantime::format_rfc3339_micros(std::time::SystemTime::now())
        );
        for piece in [
            "  INFO access: request_id=",
            &self.request_id,
            " method=",
            self.method.as_str(),
            " path=",
            self.path(),
            " status=",
            itoa::Buffer::new().format(self.status),
        ] {
            line.push_str(piece);
        }
        if let Some(client) = &self.client {
            // A client's name is the operator's text: written as tracing writes a `&str`.
            let _ = write!(line, " client={client:?}");
        }
        match &self.served {
            Some(s) => {
                line.push_str(" group=");
                line.push_str(&s.group);
                if let Some(asked) = &s.requested {
                    // The client's text: quoted and escaped as tracing writes a `&str`.
                    let _ = write!(line, " requested_model={asked:?}");
                }
                for (name, value) in [
                    (" provider=", &*s.provider),
                    (" model=", &s.model),
                    (" key=", &s.key_id),
                    (" attempts=", itoa::Buffer::new().format(s.attempts)),
                    (" stream=", if self.stream { "true" } else { "false" }),
                    (" prompt_tokens=", itoa::Buffer::new().format(prompt)),
                    (
                        " completion_tokens=",
                        itoa::Buffer::new().format(completion),
                    ),
                ] {
                    line.push_str(name);
                    line.push_str(value);
                }
                line.push_str(" latency_ms=");
                write_ms(&mut line, latency);
                if let Some(t) = ttft {
                    line.push_str(" ttft_ms=");
                    write_ms(&mut line, t);
                }
                if let Some(o) = overhead {
                    line.push_str(" overhead_us=");
                    line.push_str(itoa::Buffer::new().format(o.as_micros() as u64));
                }
                if let Some(cache) = self.cache() {
                    line.push_str(" cache=");
                    line.push_str(cache);
                }
            }
            None => {
                // Plain `&str` fields, which tracing writes quoted.
                let _ = write!(line, " group={:?}", group.unwrap_or("-"));
                if let Some(asked) = &self.requested_model {
                    let _ = write!(line, " requested_model={asked:?}");
                }
                line.push_str(" attempts=");
                line.push_str(itoa::Buffer::new().format(attempts));
                line.push_str(" latency_ms=");
                write_ms(&mut line, latency);
                if let Some(error) = &self.error {
                    let _ = write!(line, " error={error:?}");
                }
            }
        }
        line.push('\n');
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    /// A new log for a request that began at `started`.
    pub(crate) fn new(
        app: Arc<App>,
        request_id: String,
        method: http::Method,
        uri: http::Uri,
        endpoint: &'static str,
        started: Instant,
    ) -> Self {
        app.metrics.started();
        let wall_started = app.telemetry.as_ref().map(|_| SystemTime::now());
        Self {
            wall_started,
            app,
            done: false,
            request_id,
            method,
            endpoint,
            uri,
            started,
            head: None,
            status: 0,
            served: None,
            group: None,
            client: None,
            attempts: 0,
            usage: None,
            requested_model: None,
            stream: false,
            error: None,
            trace: None,
        }
    }

    /// What the group's response cache did, if it has one.
    fn cache(&self) -> Option<&'static str> {
        self.served
            .as_ref()?
            .cache
            .map(router_core::CacheOutcome::as_str)
    }

    /// The model the client asked for: a served request's (its group's name unless it named
    /// another), else what a failed request's error knows.
    /// The request's path (its query left out: it may hold a key).
    pub(crate) fn path(&self) -> &str {
        self.uri.path()
    }

    fn asked_model(&self) -> Option<&str> {
        match &self.served {
            Some(s) => Some(s.requested.as_deref().unwrap_or(&s.group)),
            None => self.requested_model.as_deref(),
        }
    }

    /// The group, for its row: shared with the snapshot when the request was served (`-`
    /// when none was resolved).
    fn shared_group(&self) -> Arc<str> {
        match (&self.served, &self.group) {
            (Some(s), _) => s.group.clone(),
            (None, Some(group)) => group.as_str().into(),
            (None, None) => "-".into(),
        }
    }

    /// [`Self::asked_model`], for its row: shared when it is the group's name.
    fn shared_asked_model(&self) -> Option<Arc<str>> {
        match &self.served {
            Some(Served {
                requested: None,
                group,
                ..
            }) => Some(group.clone()),
            _ => self.asked_model().map(Arc::from),
        }
    }

    /// Hands its spans to the exporter, when `telemetry` is on and its trace is sampled.
    fn report_trace(
        &self,
        latency: Duration,
        group: Option<&str>,
        usage: Option<TokenUsage>,
        attempts: usize,
    ) {
        let (Some(trace), Some(telemetry), Some(started)) =
            (&self.trace, &self.app.telemetry, self.wall_started)
        else {
            return;
        };
        telemetry.report(
            trace,
            &crate::telemetry::Facts {
                endpoint: self.endpoint,
                method: self.method.as_str(),
                path: self.path(),
                request_id: &self.request_id,
                status: self.status,
                requested_model: self.asked_model(),
                group,
                client: self.client.as_deref(),
                served: self.served.as_ref(),
                usage,
                attempts,
                error: self.error.as_deref(),
                started,
                ended: started + latency,
            },
        );
    }

    fn finish(&mut self, first_byte: Option<Instant>) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let app = self.app.clone();
        let ended = Instant::now();
        let latency = ended.duration_since(self.started);
        let ttft = first_byte.map(|t| t.duration_since(self.started));
        let usage = self
            .usage
            .as_ref()
            .and_then(|slot| *slot.lock().unwrap_or_else(|p| p.into_inner()));
        let overhead = match (&self.served, self.head) {
            (Some(s), Some(head)) => Some(
                head.duration_since(self.started)
                    .saturating_sub(s.upstream_wait),
            ),
            _ => None,
        };
        let group = self
            .served
            .as_ref()
            .map(|s| &*s.group)
            .or(self.group.as_deref());
        let attempts = self.served.as_ref().map_or(self.attempts, |s| s.attempts);
        app.metrics.finished(&Finished {
            client: self.client.as_deref(),
            endpoint: self.endpoint,
            group,
            served: self.served.as_ref().map(|s| (&*s.provider, &*s.model)),
            status: self.status,
            attempts,
            latency: latency.as_secs_f64(),
            ttft: ttft.map(|t| t.as_secs_f64()),
            overhead: overhead.map(|o| o.as_secs_f64()),
            cache: self.cache(),
        });
        let (prompt, completion) = usage.map_or((0, 0), |u| (u.prompt_tokens, u.completion_tokens));
        // Never content, never a key: key ids (`provider#index`) only.
        if ACCESS_AS_TEXT.load(Relaxed) {
            if tracing::enabled!(target: "access", tracing::Level::INFO) {
                self.write_text_line(latency, ttft, overhead, group, attempts, usage);
            }
        } else {
            match &self.served {
                Some(s) => tracing::info!(
                    target: "access",
                    request_id = %self.request_id, method = %self.method, path = %self.path(),
                    status = self.status, client = self.client.as_deref(), group = %s.group,
                    requested_model = s.requested.as_deref(), provider = %s.provider,
                    model = %s.model, key = %s.key_id, attempts = s.attempts, stream = self.stream,
                    prompt_tokens = prompt, completion_tokens = completion,
                    latency_ms = ms(latency), ttft_ms = ttft.map(ms),
                    overhead_us = overhead.map(|o| o.as_micros() as u64), cache = self.cache(),
                ),
                None => tracing::info!(
                    target: "access",
                    request_id = %self.request_id, method = %self.method, path = %self.path(),
                    status = self.status, client = self.client.as_deref(), group = group.unwrap_or("-"),
                    requested_model = self.requested_model.as_deref(), attempts,
                    latency_ms = ms(latency), error = self.error.as_deref(),
                ),
            }
        }
        self.report_trace(latency, group, usage, attempts);
        if self.endpoint != crate::routes::ADMIN && app.keeps_requests() {
            // Priced as the client's tab priced it: the table of the config serving now.
            let picodollars = match (&self.served, usage) {
                (Some(s), Some(u)) => (app.router.snapshot().prices())
                    .get(&s.provider, &s.model)
                    .map_or(0, |p| p.cost(&u)),
                _ => 0,
            };
            app.record_request(RequestRow {
                at_ms: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64),
                // Its last use: the log is done.
                request_id: std::mem::take(&mut self.request_id),
                group: self.shared_group(),
                requested_model: self.shared_asked_model(),
                provider: self.served.as_ref().map(|s| s.provider.clone()),
                model: self.served.as_ref().map(|s| s.model.clone()),
                key: self.served.as_ref().map(|s| s.key_id.clone()),
                prompt_tokens: prompt,
                completion_tokens: completion,
                cache_read_tokens: usage.map_or(0, |u| u.cache_read_tokens),
                cache_write_tokens: usage.map_or(0, |u| u.cache_write_tokens),
                status: self.status,
                latency_ms: ms(latency),
                ttft_ms: ttft.map(ms),
                attempts,
                stream: self.stream,
                error: self.error.clone(),
                client: self.client.clone(),
                endpoint: self.endpoint,
                picodollars,
                cache: self.cache(),
            });
        }
    }
}

impl Drop for RequestLog {
    fn drop(&mut self) {
        if !self.done {
            // Dropped before its response existed: what nginx logs as 499.
            if self.status == 0 {
                self.status = 499;
            }
            self.finish(None);
        }
    }
}

/// Puts the tokens charged for a chat answer into its slot when the body ends or is dropped.
pub(crate) struct Settle(UsageSlot);

impl BodyHook<ChatBody> for Settle {
    fn finish(&mut self, mut body: ChatBody) {
        // A stream its client left is settled now: what was streamed is charged.
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = body.settle_usage();
    }
}

/// `body`, and the slot that receives the tokens charged for it once it is settled.
pub(crate) fn settling(body: ChatBody) -> (Hooked<ChatBody, Settle>, UsageSlot) {
    let slot = UsageSlot::default();
    (Hooked::new(body, Settle(slot.clone())), slot)
}

/// Notes when the first byte leaves, and logs the request when the body ends or is dropped.
pub(crate) struct Observe {
    log: Box<RequestLog>,
    first_byte: Option<Instant>,
}

impl BodyHook<ResBody> for Observe {
    fn on_data(&mut self, data: Bytes) -> Bytes {
        if self.first_byte.is_none() && !data.is_empty() {
            self.first_byte = Some(Instant::now());
        }
        data
    }
    fn finish(&mut self, inner: ResBody) {
        // The inner body first: a stream left by its client is settled (and charged) now.
        drop(inner);
        self.log.finish(self.first_byte);
    }
}

/// The outermost response body: `inner`, logged by `log` when it ends.
pub(crate) fn observed(inner: ResBody, log: RequestLog) -> Hooked<ResBody, Observe> {
    Hooked::new(
        inner,
        Observe {
            log: Box::new(log),
            first_byte: None,
        },
    )
}

/// A duration in milliseconds to the microsecond, so a log shows `0.047`, not the float noise
/// of `0.046962000000000004`.
fn ms(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

/// Writes [`ms`] of `d` as `{:?}` writes that float (`0.047`, `1.5`, `2.0`), from its
/// integers: formatting the float cost about 550 instructions each.
fn write_ms(out: &mut String, d: Duration) {
    let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    let (whole, fraction) = (micros / 1000, micros % 1000);
    out.push_str(itoa::Buffer::new().format(whole));
    out.push('.');
    if fraction == 0 {
        out.push('0');
        return;
    }
    // Three digits, then the trailing zeros dropped: `.5`, `.05`, `.005`, `.123`.
    let digits = [fraction / 100, fraction / 10 % 10, fraction % 10].map(|d| b'0' + d as u8);
    let len = 3 - digits.iter().rev().take_while(|&&d| d == b'0').count();
    out.push_str(std::str::from_utf8(&digits[..len]).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::{ms, write_ms};
    use std::time::Duration;

    /// The text line's milliseconds are the float's own `{:?}`, as the structured event
    /// writes them.
    #[test]
    fn milliseconds_are_written_as_the_float_would_be() {
        let mut micros: Vec<u64> = vec![0, 1, 10, 100, 999, 1_000, 1_001, 1_010, 1_500, 2_000];
        micros.extend([47, 12_345, 100_000, 3_600_000_000, 86_400_000_123]);
        // A spread of values of every size, from a fixed sequence.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            micros.push(x >> (x % 40 + 20));
        }
        for m in micros {
            let d = Duration::from_micros(m);
            let mut out = String::new();
            write_ms(&mut out, d);
            assert_eq!(out, format!("{:?}", ms(d)), "{m} µs");
        }
    }
}
