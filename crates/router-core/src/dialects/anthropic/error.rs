//! Errors in Anthropic's shape: `{"type":"error","error":{"type","message"}}`, for the
//! router's own errors and for upstream errors translated from the common form.

use crate::RouterError;
use serde_json::{json, Value};

/// The Anthropic error type for an upstream status (OpenAI's own types, such as
/// `server_error`, mean nothing to an Anthropic client).
fn error_type(status: u16) -> &'static str {
    match status {
        400 | 422 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        _ => "api_error",
    }
}

/// The Anthropic error type for an error event in an OpenAI-format (or Gemini) stream, which
/// has no status to go by: Anthropic's own types are kept, rate limits and overload are
/// recognised, anything else is an `api_error`.
pub(super) fn stream_error_type(kind: &str) -> &'static str {
    match kind {
        "invalid_request_error" => "invalid_request_error",
        "rate_limit_error"
        | "rate_limit_exceeded"
        | "RESOURCE_EXHAUSTED"
        | "insufficient_quota" => "rate_limit_error",
        "overloaded_error" | "UNAVAILABLE" => "overloaded_error",
        _ => "api_error",
    }
}

/// An Anthropic error body.
pub(super) fn error(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

/// An OpenAI error body (`{"error":{...}}`) answered with `status`, in Anthropic's shape.
pub(super) fn from_openai(status: u16, body: &Value) -> Value {
    error(
        error_type(status),
        body["error"]["message"]
            .as_str()
            .unwrap_or("upstream error"),
    )
}

/// The router's own error in Anthropic's shape. A broken stream says so in its message, as
/// the shape has no code to say it with.
pub(super) fn body(e: &RouterError) -> Value {
    let kind = match e {
        RouterError::BadRequest { .. }
        | RouterError::MethodNotAllowed(_)
        | RouterError::RequestTimeout(_)
        | RouterError::ConfigInvalid { .. } => "invalid_request_error",
        RouterError::Unauthorized | RouterError::KeyRefused(_) => "authentication_error",
        RouterError::Forbidden { .. } | RouterError::AdminKeyRequired => "permission_error",
        RouterError::UnknownGroup(_) | RouterError::NotFound(_) => "not_found_error",
        RouterError::PayloadTooLarge { .. } => "request_too_large",
        RouterError::RateLimited { .. }
        | RouterError::QuotaExceeded(_)
        | RouterError::ClientRateLimited { .. } => "rate_limit_error",
        RouterError::UpstreamFailed { .. }
        | RouterError::StreamInterrupted(_)
        | RouterError::Internal(_) => "api_error",
    };
    let message = match e {
        RouterError::StreamInterrupted(m) => format!("stream interrupted: {m}"),
        other => other.client_message(),
    };
    error(kind, &message)
}
