//! The router's errors in OpenAI's shape: `{"error":{"message","type","param","code"}}`.

use crate::RouterError;
use serde_json::{json, Value};

fn error_type(error: &RouterError) -> &'static str {
    match error {
        RouterError::BadRequest { .. }
        | RouterError::MethodNotAllowed(_)
        | RouterError::PayloadTooLarge { .. }
        | RouterError::RequestTimeout(_) => "invalid_request_error",
        RouterError::Unauthorized | RouterError::KeyRefused(_) => "authentication_error",
        RouterError::Forbidden { .. } | RouterError::AdminKeyRequired => "permission_denied",
        RouterError::QuotaExceeded(_) => "insufficient_quota",
        RouterError::ClientRateLimited { .. } => "rate_limit_exceeded",
        RouterError::UnknownGroup(_) | RouterError::NotFound(_) => "not_found_error",
        RouterError::UpstreamFailed { .. } | RouterError::StreamInterrupted(_) => "upstream_error",
        RouterError::RateLimited { .. } => "rate_limit_error",
        RouterError::ConfigInvalid { .. } => "invalid_config_error",
        RouterError::Internal(_) => "internal_error",
    }
}

fn code(error: &RouterError) -> Option<&'static str> {
    match error {
        RouterError::BadRequest { .. } => None,
        RouterError::Unauthorized | RouterError::KeyRefused(_) => Some("invalid_api_key"),
        RouterError::Forbidden { .. } => Some("permission_denied"),
        RouterError::AdminKeyRequired => Some("admin_key_required"),
        RouterError::QuotaExceeded(_) => Some("insufficient_quota"),
        RouterError::ClientRateLimited { .. } => Some("rate_limit_exceeded"),
        RouterError::UnknownGroup(_) => Some("model_not_found"),
        RouterError::NotFound(_) => Some("not_found"),
        RouterError::MethodNotAllowed(_) => Some("method_not_allowed"),
        RouterError::PayloadTooLarge { .. } => Some("request_too_large"),
        RouterError::RequestTimeout(_) => Some("request_timeout"),
        RouterError::UpstreamFailed { timeout: true, .. } => Some("upstream_timeout"),
        RouterError::UpstreamFailed { .. } => Some("upstream_failed"),
        RouterError::RateLimited { .. } => Some("rate_limit_exceeded"),
        RouterError::StreamInterrupted(_) => Some("stream_interrupted"),
        RouterError::ConfigInvalid { .. } => Some("config_invalid"),
        RouterError::Internal(_) => Some("internal_error"),
    }
}

/// The error as an OpenAI error object.
pub(super) fn body(error: &RouterError) -> Value {
    let param = match error {
        RouterError::BadRequest { param, .. } => param.clone(),
        _ => None,
    };
    json!({
        "error": {
            "message": error.client_message(),
            "type": error_type(error),
            "param": param,
            "code": code(error),
        }
    })
}
