//! Traces of the requests (`telemetry:`), over OTLP/HTTP: a span for each client request and
//! one for each upstream attempt, its child, with the GenAI semantic conventions' attributes.
//! A request's `traceparent` is continued (its trace, its sampled flag) and each attempt is
//! sent upstream with its own. The spans are made when the request ends and handed to the
//! SDK's batch processor, which exports them from a thread of its own: its queue is bounded
//! (2,048 spans; more are dropped), and nothing on a request's way waits for the collector.

mod export;
mod spans;

pub(crate) use spans::Facts;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanKind, TraceContextExt, TraceId};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SamplingDecision, ShouldSample, SpanProcessor,
};
use opentelemetry_sdk::Resource;
use router_core::{TelemetrySettings, Trace};
use std::time::Duration;

/// Longest wait for the collector to take one batch.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Most spans waiting for export.
const MAX_QUEUE: usize = 2048;

/// The router's traces, while `telemetry` is on.
#[derive(Debug)]
pub struct Telemetry {
    processor: BatchSpanProcessor,
    sampler: Sampler,
}

impl Telemetry {
    /// Starts the exporter for `settings`, on the current runtime.
    pub fn start(settings: &TelemetrySettings) -> Result<Self, String> {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(export::Export::new(EXPORT_TIMEOUT))
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(settings.traces_url.as_str())
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|e| format!("telemetry: {e}"))?;
        let batches = BatchConfigBuilder::default()
            .with_max_queue_size(MAX_QUEUE)
            .build();
        let mut processor = BatchSpanProcessor::builder(exporter)
            .with_batch_config(batches)
            .build();
        processor.set_resource(
            &Resource::builder()
                .with_service_name(settings.service_name.clone())
                .build(),
        );
        Ok(Self {
            processor,
            sampler: Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                settings.sample_ratio,
            ))),
        })
    }

    /// The trace of a request with `headers`: its `traceparent`'s, continued, or a new one;
    /// sampled as its parent says, else by `sample_ratio`.
    pub fn begin(&self, headers: &http::HeaderMap) -> Trace {
        let parent =
            TraceContextPropagator::new().extract(&opentelemetry_http::HeaderExtractor(headers));
        let remote = parent.span().span_context().clone();
        let trace_id = if remote.is_valid() {
            remote.trace_id()
        } else {
            TraceId::from_bytes(fastrand::u128(1..).to_be_bytes())
        };
        let sampled = self
            .sampler
            .should_sample(
                Some(&parent),
                trace_id,
                "request",
                &SpanKind::Server,
                &[],
                &[],
            )
            .decision
            == SamplingDecision::RecordAndSample;
        let parent_span = remote.is_valid().then(|| remote.span_id().to_bytes());
        Trace::new(
            trace_id.to_bytes(),
            fastrand::u64(1..).to_be_bytes(),
            sampled,
        )
        .with_parent(parent_span)
    }

    /// Hands the spans of a finished request to the exporter (a sampled one's).
    pub(crate) fn report(&self, trace: &Trace, facts: &Facts<'_>) {
        if !trace.sampled() {
            return;
        }
        for span in spans::of(trace, facts) {
            self.processor.on_end(span);
        }
    }

    /// Exports what waits, and waits for it (blocking: call it off the async threads).
    pub fn flush(&self) {
        if let Err(e) = self.processor.force_flush() {
            tracing::warn!("telemetry: spans not exported: {e}");
        }
    }
}
