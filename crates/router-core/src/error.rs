//! Errors a client can see, each knowing its origin, and their one mapping to an HTTP status
//! and an OpenAI-shaped body.

use http::StatusCode;
use serde_json::json;
use std::fmt;

/// Where an error came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The client's request was wrong.
    Client,
    /// Every upstream option failed.
    Upstream,
    /// A fault of the router itself.
    Internal,
}

/// One upstream attempt that did not succeed, as shown in an error message (names only, never a key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedAttempt {
    /// Provider name from the config.
    pub provider: String,
    /// Upstream model name.
    pub model: String,
    /// Key identifier: provider name plus the key's index (`openai#1`).
    pub key_id: String,
    /// What went wrong: an HTTP status (`status 503`) or a transport failure (`timeout before first byte`).
    pub outcome: String,
}

/// An error that ends a request. [`RouterError::status`] and [`RouterError::body`] are the only
/// mapping to HTTP; nothing internal (no key, no upstream body) reaches the client.
#[derive(Debug, Clone, PartialEq)]
pub enum RouterError {
    /// The request is malformed (400). `param` names the offending field when there is one.
    BadRequest {
        /// What was wrong.
        message: String,
        /// The field at fault, if any.
        param: Option<String>,
    },
    /// The client's key is missing or wrong (401).
    Unauthorized,
    /// No group with this name (404).
    UnknownGroup(String),
    /// No such route (404).
    NotFound(String),
    /// The route exists but not for this method (405).
    MethodNotAllowed(String),
    /// The request body is over the configured limit (413).
    PayloadTooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },
    /// Every upstream option failed (502), or the last failure was a timeout (504).
    UpstreamFailed {
        /// The group that was asked for.
        group: String,
        /// Each attempt, in order.
        attempts: Vec<FailedAttempt>,
        /// Whether the last failure was a timeout.
        timeout: bool,
    },
    /// Every pair of the group is cooling down after 429s (429, with `Retry-After`).
    RateLimited {
        /// The group that was asked for.
        group: String,
        /// When the first pair is usable again.
        retry_after: std::time::Duration,
        /// Attempts made by this request, if any.
        attempts: Vec<FailedAttempt>,
    },
    /// A fault of the router (500). The detail is logged, not sent.
    Internal(String),
}

impl RouterError {
    /// A 400 with a message and an optional offending field.
    pub fn bad_request(message: impl Into<String>, param: Option<&str>) -> Self {
        Self::BadRequest {
            message: message.into(),
            param: param.map(str::to_string),
        }
    }

    /// Where the error came from.
    pub fn origin(&self) -> Origin {
        match self {
            Self::UpstreamFailed { .. } | Self::RateLimited { .. } => Origin::Upstream,
            Self::Internal(_) => Origin::Internal,
            _ => Origin::Client,
        }
    }

    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::UnknownGroup(_) | Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UpstreamFailed { timeout: true, .. } => StatusCode::GATEWAY_TIMEOUT,
            Self::UpstreamFailed { .. } => StatusCode::BAD_GATEWAY,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_type(&self) -> &'static str {
        match self {
            Self::BadRequest { .. } | Self::MethodNotAllowed(_) | Self::PayloadTooLarge { .. } => {
                "invalid_request_error"
            }
            Self::Unauthorized => "authentication_error",
            Self::UnknownGroup(_) | Self::NotFound(_) => "not_found_error",
            Self::UpstreamFailed { .. } => "upstream_error",
            Self::RateLimited { .. } => "rate_limit_error",
            Self::Internal(_) => "internal_error",
        }
    }

    fn code(&self) -> Option<&'static str> {
        match self {
            Self::BadRequest { .. } => None,
            Self::Unauthorized => Some("invalid_api_key"),
            Self::UnknownGroup(_) => Some("model_not_found"),
            Self::NotFound(_) => Some("not_found"),
            Self::MethodNotAllowed(_) => Some("method_not_allowed"),
            Self::PayloadTooLarge { .. } => Some("request_too_large"),
            Self::UpstreamFailed { timeout: true, .. } => Some("upstream_timeout"),
            Self::UpstreamFailed { .. } => Some("upstream_failed"),
            Self::RateLimited { .. } => Some("rate_limit_exceeded"),
            Self::Internal(_) => Some("internal_error"),
        }
    }

    /// The message a client may see.
    pub fn client_message(&self) -> String {
        match self {
            Self::BadRequest { message, .. } => message.clone(),
            Self::Unauthorized => {
                "missing or invalid API key: send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'".to_string()
            }
            Self::UnknownGroup(g) => format!("the model '{g}' does not exist on this router"),
            Self::NotFound(path) => format!("no route for '{path}'"),
            Self::MethodNotAllowed(m) => format!("method {m} is not allowed on this route"),
            Self::PayloadTooLarge { limit } => {
                format!("request body is larger than the limit of {limit} bytes")
            }
            Self::UpstreamFailed {
                group, attempts, ..
            } => {
                if attempts.is_empty() {
                    format!(
                        "no usable upstream for '{group}': every key is disabled after 401/403 \
                         from the upstream (fix the keys and reload the config)"
                    )
                } else {
                    format!(
                        "all upstream attempts for '{group}' failed; tried {}",
                        tried(attempts)
                    )
                }
            }
            Self::RateLimited {
                group,
                retry_after,
                attempts,
            } => {
                let mut m = format!(
                    "every upstream key for '{group}' is rate limited; retry after {}s",
                    retry_after_secs(*retry_after)
                );
                if !attempts.is_empty() {
                    m.push_str(&format!("; tried {}", tried(attempts)));
                }
                m
            }
            Self::Internal(_) => "internal error in the router".to_string(),
        }
    }

    /// The same error in Anthropic's shape (`/v1/messages`):
    /// `{"type":"error","error":{"type","message"}}`.
    pub fn anthropic_body(&self) -> serde_json::Value {
        let kind = match self {
            Self::BadRequest { .. } | Self::MethodNotAllowed(_) => "invalid_request_error",
            Self::Unauthorized => "authentication_error",
            Self::UnknownGroup(_) | Self::NotFound(_) => "not_found_error",
            Self::PayloadTooLarge { .. } => "request_too_large",
            Self::RateLimited { .. } => "rate_limit_error",
            Self::UpstreamFailed { .. } | Self::Internal(_) => "api_error",
        };
        json!({"type": "error", "error": {"type": kind, "message": self.client_message()}})
    }

    /// Seconds for a `Retry-After` header, when the error has one.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after, .. } => Some(retry_after_secs(*retry_after)),
            _ => None,
        }
    }

    /// The OpenAI-shaped body: `{"error":{"message","type","param","code"}}`.
    pub fn body(&self) -> serde_json::Value {
        let param = match self {
            Self::BadRequest { param, .. } => param.clone(),
            _ => None,
        };
        json!({
            "error": {
                "message": self.client_message(),
                "type": self.error_type(),
                "param": param,
                "code": self.code(),
            }
        })
    }
}

fn tried(attempts: &[FailedAttempt]) -> String {
    attempts
        .iter()
        .map(|a| format!("{}/{} ({}): {}", a.provider, a.model, a.key_id, a.outcome))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whole seconds, rounded up, at least 1.
fn retry_after_secs(d: std::time::Duration) -> u64 {
    (d.as_millis().div_ceil(1000) as u64).max(1)
}

impl fmt::Display for RouterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Internal(detail) => write!(f, "internal error: {detail}"),
            other => f.write_str(&other.client_message()),
        }
    }
}

impl std::error::Error for RouterError {}
