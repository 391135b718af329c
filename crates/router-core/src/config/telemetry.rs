//! `telemetry:`: traces of the requests, sent to an OpenTelemetry collector.

use super::EnvString;
use serde::Deserialize;

/// Where and how the router reports its traces (OTLP over HTTP, protobuf). Off without
/// `otlp_endpoint`. Read at start.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// The collector's OTLP/HTTP endpoint, such as `http://otel-collector:4318` (spans go to
    /// its `/v1/traces`; a URL that already ends in `/v1/traces` is used as it is).
    #[serde(default)]
    pub otlp_endpoint: Option<EnvString>,
    /// The `service.name` of the spans (default `llm-router`).
    #[serde(default)]
    pub service_name: Option<EnvString>,
    /// The share of new traces recorded, from 0 to 1 (default 1). A request that comes with a
    /// `traceparent` follows its sampled flag.
    #[serde(default)]
    pub sample_ratio: Option<f64>,
}
