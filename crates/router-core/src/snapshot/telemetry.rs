//! `telemetry:` as the binary uses it: the collector's URL checked, the defaults filled in.

use super::compile::Problems;
use crate::config::TelemetryConfig;

/// Where spans go and how many.
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetrySettings {
    /// The URL spans are posted to (`…/v1/traces`).
    pub traces_url: String,
    /// Their `service.name`.
    pub service_name: String,
    /// The share of new traces recorded.
    pub sample_ratio: f64,
}

/// The settings of `config`, or `None` when telemetry is off; a problem is reported.
pub(super) fn compile(
    config: &TelemetryConfig,
    problems: &mut Problems<'_>,
) -> Option<TelemetrySettings> {
    let endpoint = config
        .otlp_endpoint
        .as_ref()?
        .as_str()
        .trim_end_matches('/');
    if endpoint.is_empty() {
        return None;
    }
    let mut ok = true;
    // No credentials in it: they would be logged; a collector's token goes in
    // OTEL_EXPORTER_OTLP_HEADERS.
    let web = endpoint.parse::<http::Uri>().is_ok_and(|u| {
        matches!(u.scheme_str(), Some("http" | "https"))
            && u.host().is_some_and(|h| !h.is_empty())
            && !u.authority().is_some_and(|a| a.as_str().contains('@'))
    });
    if !web {
        problems.push(
            "telemetry.otlp_endpoint".into(),
            "must be an http:// or https:// URL with a host (the collector's OTLP/HTTP endpoint)",
        );
        ok = false;
    }
    let sample_ratio = config.sample_ratio.unwrap_or(1.0);
    if !(0.0..=1.0).contains(&sample_ratio) {
        problems.push("telemetry.sample_ratio".into(), "must be from 0 to 1");
        ok = false;
    }
    let service_name = (config.service_name.as_ref())
        .map(|s| s.as_str().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "llm-router".to_string());
    let traces_url = if endpoint.ends_with("/v1/traces") {
        endpoint.to_string()
    } else {
        format!("{endpoint}/v1/traces")
    };
    ok.then_some(TelemetrySettings {
        traces_url,
        service_name,
        sample_ratio,
    })
}
