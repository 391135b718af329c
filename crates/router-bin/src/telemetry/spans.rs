//! A finished request as spans: its own (kind server) and one per upstream attempt (kind
//! client, its children), named and described as the GenAI semantic conventions say
//! (`gen_ai.*`), with the router's own facts under `llm_router.*`.

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use router_core::{AttemptSpan, Served, TokenUsage, Trace};
use std::time::SystemTime;

/// What is known of a request when it ends.
pub(crate) struct Facts<'a> {
    /// The endpoint's label (`chat`, `messages`, `completions`, `embeddings`, …).
    pub(crate) endpoint: &'static str,
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    pub(crate) request_id: &'a str,
    pub(crate) status: u16,
    /// The model (group) the client asked for, when known.
    pub(crate) requested_model: Option<&'a str>,
    pub(crate) group: Option<&'a str>,
    pub(crate) client: Option<&'a str>,
    pub(crate) served: Option<&'a Served>,
    pub(crate) usage: Option<TokenUsage>,
    pub(crate) attempts: usize,
    /// What the client was told, when the router refused or could not serve it.
    pub(crate) error: Option<&'a str>,
    pub(crate) started: SystemTime,
    pub(crate) ended: SystemTime,
}

/// `gen_ai.operation.name` of an endpoint.
fn operation(endpoint: &str) -> &str {
    match endpoint {
        "chat" | "messages" | "responses" => "chat",
        "completions" => "text_completion",
        other => other,
    }
}

/// `gen_ai.system` of a provider type, as the conventions name the well-known ones.
fn system(kind: &str) -> &str {
    match kind {
        "gemini" => "gcp.gemini",
        "azure" => "az.ai.openai",
        other => other,
    }
}

fn text(key: &'static str, value: &str) -> KeyValue {
    KeyValue::new(key, value.to_string())
}

fn number(key: &'static str, value: u64) -> KeyValue {
    KeyValue::new(key, i64::try_from(value).unwrap_or(i64::MAX))
}

fn usage_attributes(usage: Option<TokenUsage>) -> Vec<KeyValue> {
    usage.map_or_else(Vec::new, |u| {
        vec![
            number("gen_ai.usage.input_tokens", u.prompt_tokens),
            number("gen_ai.usage.output_tokens", u.completion_tokens),
        ]
    })
}

/// A span of `trace` whose id and parent's are `ids`.
fn span(
    trace: &Trace,
    (id, parent): ([u8; 8], Option<[u8; 8]>),
    kind: SpanKind,
    name: String,
    times: (SystemTime, SystemTime),
    attributes: Vec<KeyValue>,
    status: Status,
) -> SpanData {
    SpanData {
        span_context: SpanContext::new(
            TraceId::from_bytes(trace.trace_id()),
            SpanId::from_bytes(id),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: parent.map_or(SpanId::INVALID, SpanId::from_bytes),
        parent_span_is_remote: parent.is_some() && kind == SpanKind::Server,
        span_kind: kind,
        name: name.into(),
        start_time: times.0,
        end_time: times.1,
        attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status,
        instrumentation_scope: InstrumentationScope::builder("llm-router")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build(),
    }
}

/// The request's span, then its attempts'.
pub(super) fn of(trace: &Trace, facts: &Facts<'_>) -> Vec<SpanData> {
    let attempts = trace.attempts();
    let operation = operation(facts.endpoint);
    let asked = facts.requested_model.or(facts.group).unwrap_or("-");
    let mut attributes = vec![
        text("gen_ai.operation.name", operation),
        text("gen_ai.request.model", asked),
        text("http.request.method", facts.method),
        text("url.path", facts.path),
        number("http.response.status_code", u64::from(facts.status)),
        text("llm_router.request_id", facts.request_id),
        number("llm_router.attempts", facts.attempts as u64),
    ];
    if let Some(group) = facts.group {
        attributes.push(text("llm_router.group", group));
    }
    if let Some(client) = facts.client {
        attributes.push(text("llm_router.client", client));
    }
    let answered = attempts.iter().rev().find(|a| a.failure.is_none());
    if let (Some(served), Some(attempt)) = (facts.served, answered) {
        attributes.push(text("gen_ai.system", system(attempt.kind)));
        attributes.push(text("gen_ai.provider.name", system(attempt.kind)));
        attributes.push(text("gen_ai.response.model", &served.model));
        attributes.push(text("llm_router.provider", &served.provider));
    }
    attributes.extend(usage_attributes(facts.usage));
    let failed = facts.error.is_some() || facts.status >= 500;
    let outcome = facts.error.unwrap_or(if failed { "failed" } else { "ok" });
    attributes.push(text("llm_router.outcome", outcome));
    if failed {
        attributes.push(text("error.type", &facts.status.to_string()));
    }
    let status = if failed {
        Status::error(outcome.to_string())
    } else {
        Status::Unset
    };
    let mut spans = vec![span(
        trace,
        (trace.span_id(), trace.parent()),
        SpanKind::Server,
        format!("{operation} {asked}"),
        (facts.started, facts.ended),
        attributes,
        status,
    )];
    for a in &attempts {
        let usage = if Some(a) == answered {
            facts.usage
        } else {
            None
        };
        spans.push(attempt_span(trace, a, operation, usage));
    }
    spans
}

/// One attempt's span, a child of the request's; `usage` on the one that answered.
fn attempt_span(
    trace: &Trace,
    a: &AttemptSpan,
    operation: &str,
    usage: Option<TokenUsage>,
) -> SpanData {
    let mut attributes = vec![
        text("gen_ai.operation.name", operation),
        text("gen_ai.system", system(a.kind)),
        text("gen_ai.provider.name", system(a.kind)),
        text("gen_ai.request.model", &a.model),
        text("llm_router.provider", &a.provider),
        text("llm_router.key", &a.key_id),
        number("llm_router.attempt", a.number as u64),
        text("llm_router.outcome", a.failure.as_deref().unwrap_or("ok")),
    ];
    if let Some(status) = a.status {
        attributes.push(number("http.response.status_code", u64::from(status)));
    }
    if a.failure.is_none() {
        attributes.push(text("gen_ai.response.model", &a.model));
    }
    attributes.extend(usage_attributes(usage));
    let status = match &a.failure {
        Some(why) => Status::error(why.clone()),
        None => Status::Unset,
    };
    span(
        trace,
        (a.span_id, Some(trace.span_id())),
        SpanKind::Client,
        format!("{operation} {}", a.model),
        (a.started, a.ended),
        attributes,
        status,
    )
}
