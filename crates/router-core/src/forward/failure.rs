//! What a failed attempt means: for the client's error message, for the pair's health (see
//! [`Failure`]), and for how far the request fails over.

use crate::health::Failure;
use http::{header, HeaderMap, StatusCode};
use std::time::Duration;

/// Why one attempt failed: what to tell the client, what it means for the pair, and how far
/// to fail over.
pub(crate) struct AttemptError {
    /// What happened, for the client and the log.
    pub(crate) outcome: String,
    /// What it means for the pair.
    pub(crate) failure: Failure,
    /// Whether it was a timeout.
    pub(crate) timeout: bool,
    /// The upstream's status, when it answered with one.
    pub(crate) status: Option<u16>,
}

impl AttemptError {
    pub(crate) fn upstream(outcome: impl Into<String>) -> Self {
        Self {
            outcome: outcome.into(),
            failure: Failure::Upstream,
            timeout: false,
            status: None,
        }
    }
    /// No token for the key's OAuth credential: a refusal rests the key, an endpoint that did
    /// not answer counts for the breaker.
    pub(crate) fn credential(fault: crate::oauth::Fault) -> Self {
        Self {
            failure: if fault.refused {
                Failure::CredentialRefused {
                    pause: crate::oauth::REFUSED_PAUSE,
                }
            } else {
                Failure::Upstream
            },
            outcome: fault.message,
            timeout: false,
            status: None,
        }
    }
    pub(crate) fn timeout(outcome: impl Into<String>) -> Self {
        Self {
            outcome: outcome.into(),
            failure: Failure::Upstream,
            timeout: true,
            status: None,
        }
    }
}

/// Classifies a transport error: a refused connection or a failed DNS lookup makes the model on
/// that provider unavailable; a connect timeout and anything else count for the breaker.
pub(crate) fn transport_error(e: &hyper_util::client::legacy::Error) -> AttemptError {
    let mut detail = String::new();
    let mut refused = false;
    let mut dns = false;
    let mut timed_out = false;
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        dns |= text.starts_with("dns error");
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            refused |= io.kind() == std::io::ErrorKind::ConnectionRefused;
            timed_out |= io.kind() == std::io::ErrorKind::TimedOut;
        }
        detail = text;
        source = s.source();
    }
    if e.is_connect() && (refused || dns) {
        AttemptError {
            outcome: format!("connection failed ({detail})"),
            failure: Failure::ModelUnavailable,
            timeout: false,
            status: None,
        }
    } else if e.is_connect() && timed_out {
        AttemptError::timeout("connect timeout")
    } else if e.is_connect() {
        AttemptError::upstream(format!("connection failed ({detail})"))
    } else if detail.is_empty() {
        AttemptError::upstream(format!("transport error ({e})"))
    } else {
        AttemptError::upstream(format!("transport error ({detail})"))
    }
}

/// `Retry-After`: delay-seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(
        date.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// What an upstream error status means; `None` for a 4xx that is the request's own fault.
pub(crate) fn status_error(status: StatusCode, headers: &HeaderMap) -> Option<AttemptError> {
    let failure = match status.as_u16() {
        429 => Failure::RateLimited {
            retry_after: retry_after(headers),
        },
        401 | 403 => Failure::Unauthorized,
        404 => Failure::ModelUnavailable,
        408 => Failure::Upstream,
        s if s >= 500 => Failure::Upstream,
        _ => return None,
    };
    Some(AttemptError {
        outcome: format!("status {}", status.as_u16()),
        failure,
        timeout: false,
        status: Some(status.as_u16()),
    })
}

/// Jittered exponential backoff: `base × 2^(n-1) × [0.5, 1.5)`, at most a minute.
pub(crate) fn backoff(base: Duration, n: u32) -> Duration {
    let exp = base.as_secs_f64() * f64::from(1u32 << n.saturating_sub(1).min(10));
    Duration::from_secs_f64((exp * (0.5 + fastrand::f64())).min(60.0))
}
