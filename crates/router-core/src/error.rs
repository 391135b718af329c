//! Errors a client can see, each knowing its origin, and [`RouterError::reply`]: the one
//! function that turns any of them into what the client gets, in its dialect's shape.

use crate::dialects::Dialect;
use http::StatusCode;
use serde_json::Value;

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

/// An error that ends a request (or a stream). [`RouterError::reply`] is the only mapping to
/// what a client sees; nothing internal (no key, no upstream body) reaches it. `Display` is the
/// message a client may see, but for [`RouterError::Internal`], whose detail is for the log.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RouterError {
    /// The request is malformed (400). `param` names the offending field when there is one.
    #[error("{message}")]
    BadRequest {
        /// What was wrong.
        message: String,
        /// The field at fault, if any.
        param: Option<String>,
    },
    /// The client's key is missing or wrong (401).
    #[error("missing or invalid API key: send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'")]
    Unauthorized,
    /// A named client's key that is disabled or expired (401); the message says which, never
    /// the key.
    #[error("{0}")]
    KeyRefused(String),
    /// A client key was presented to an admin endpoint, which takes the admin key (403).
    #[error("admin key required: this endpoint takes the config's admin_key, and the key sent is a client key")]
    AdminKeyRequired,
    /// A named client asked for a group it may not use (403).
    #[error("client '{client}' may not use the model '{group}' (see its groups in the config)")]
    Forbidden {
        /// The client's name.
        client: String,
        /// The group asked for.
        group: String,
    },
    /// A client's or team's budget has no room for the request (429, `insufficient_quota`).
    #[error("{0}")]
    QuotaExceeded(String),
    /// A client's or team's rate limit is reached (429, with `Retry-After` and OpenAI's
    /// `x-ratelimit-*` headers).
    #[error("{message}")]
    ClientRateLimited {
        /// Which limit, and when to retry.
        message: String,
        /// Time until a request may come.
        retry_after: std::time::Duration,
        /// OpenAI's `x-ratelimit-*` headers.
        headers: Vec<(&'static str, String)>,
    },
    /// No group with this name (404).
    #[error("the model '{0}' does not exist on this router")]
    UnknownGroup(String),
    /// No such route (404).
    #[error("no route for '{0}'")]
    NotFound(String),
    /// The route exists but not for this method (405).
    #[error("method {0} is not allowed on this route")]
    MethodNotAllowed(String),
    /// The request body is over the configured limit (413).
    #[error("request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },
    /// The request body did not arrive in time (408): `what` says which limit it missed.
    #[error("the request body did not arrive in time: {0}")]
    RequestTimeout(String),
    /// Every upstream option failed (502), or the last failure was a timeout (504).
    #[error("{}", upstream_failed(group, attempts))]
    UpstreamFailed {
        /// The group that was asked for.
        group: String,
        /// Each attempt, in order.
        attempts: Vec<FailedAttempt>,
        /// Whether the last failure was a timeout.
        timeout: bool,
    },
    /// Every pair of the group is cooling down after 429s (429, with `Retry-After`).
    #[error("{}", rate_limited(group, *retry_after, attempts))]
    RateLimited {
        /// The group that was asked for.
        group: String,
        /// When the first pair is usable again.
        retry_after: std::time::Duration,
        /// Attempts made by this request, if any.
        attempts: Vec<FailedAttempt>,
    },
    /// A stream broke after its first event reached the client (sent as its last event).
    #[error("{0}")]
    StreamInterrupted(String),
    /// A config that was asked to be reloaded cannot be used (422); the running one keeps
    /// serving.
    #[error("config not reloaded; still serving generation {generation}: {problems}")]
    ConfigInvalid {
        /// The generation still serving.
        generation: u64,
        /// What is wrong with the file.
        problems: String,
    },
    /// A fault of the router (500). The detail is logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
}

/// What a client gets for an error: the status, the headers it calls for, and the body in the
/// client's dialect.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorReply {
    /// The HTTP status.
    pub status: StatusCode,
    /// Seconds for `Retry-After`, when the client should wait.
    pub retry_after: Option<u64>,
    /// Whether to ask for credentials (`WWW-Authenticate: Bearer`).
    pub ask_credentials: bool,
    /// More headers (OpenAI's `x-ratelimit-*` for a client's rate limit).
    pub headers: Vec<(&'static str, String)>,
    /// The body: an error object in the client's dialect.
    pub body: Value,
}

impl RouterError {
    /// A 400 with a message and an optional offending field.
    pub fn bad_request(message: impl Into<String>, param: Option<&str>) -> Self {
        Self::BadRequest {
            message: message.into(),
            param: param.map(str::to_string),
        }
    }

    /// No group named `model` (404); a name over 120 bytes is clipped to its start and length.
    pub fn unknown_group(model: &str) -> Self {
        Self::UnknownGroup(clip(model))
    }

    /// No route for `path` (404); a path over 120 bytes is clipped to its start and length.
    pub fn not_found(path: &str) -> Self {
        Self::NotFound(clip(path))
    }

    /// The model the request asked for, where the error knows it (for the access log).
    pub fn model(&self) -> Option<&str> {
        match self {
            Self::UnknownGroup(model)
            | Self::Forbidden { group: model, .. }
            | Self::UpstreamFailed { group: model, .. }
            | Self::RateLimited { group: model, .. } => Some(model),
            _ => None,
        }
    }

    /// Where the error came from.
    pub fn origin(&self) -> Origin {
        match self {
            Self::UpstreamFailed { .. } | Self::RateLimited { .. } | Self::StreamInterrupted(_) => {
                Origin::Upstream
            }
            Self::Internal(_) => Origin::Internal,
            _ => Origin::Client,
        }
    }

    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized | Self::KeyRefused(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } | Self::AdminKeyRequired => StatusCode::FORBIDDEN,
            Self::QuotaExceeded(_) | Self::ClientRateLimited { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::UnknownGroup(_) | Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::UpstreamFailed { timeout: true, .. } => StatusCode::GATEWAY_TIMEOUT,
            Self::UpstreamFailed { .. } | Self::StreamInterrupted(_) => StatusCode::BAD_GATEWAY,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::ConfigInvalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message a client may see.
    pub fn client_message(&self) -> String {
        match self {
            Self::Internal(_) => "internal error in the router".to_string(),
            other => other.to_string(),
        }
    }

    /// Seconds for a `Retry-After` header, when the error has one.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after, .. } | Self::ClientRateLimited { retry_after, .. } => {
                Some(retry_after_secs(*retry_after))
            }
            _ => None,
        }
    }

    /// The one function that turns an error into what the client gets: the status, headers
    /// and body in `dialect`'s shape. The server's error responses, the reload endpoint's and
    /// the last event of a broken stream all come from here.
    pub fn reply(&self, dialect: Dialect) -> ErrorReply {
        ErrorReply {
            status: self.status(),
            retry_after: self.retry_after_secs(),
            ask_credentials: matches!(self, Self::Unauthorized | Self::KeyRefused(_)),
            headers: match self {
                Self::ClientRateLimited { headers, .. } => headers.clone(),
                _ => Vec::new(),
            },
            body: dialect.room().error_body(self),
        }
    }
}

/// What a client sent, as an error message quotes it: whole up to 120 bytes, else its start
/// and its length, so a 10 KB name does not come back as a 10 KB error.
pub(crate) fn clip(text: &str) -> String {
    const MAX: usize = 120;
    if text.len() <= MAX {
        return text.to_string();
    }
    let mut end = 80;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &text[..end], text.len())
}

fn tried(attempts: &[FailedAttempt]) -> String {
    attempts
        .iter()
        .map(|a| format!("{}/{} ({}): {}", a.provider, a.model, a.key_id, a.outcome))
        .collect::<Vec<_>>()
        .join(", ")
}

fn upstream_failed(group: &str, attempts: &[FailedAttempt]) -> String {
    if attempts.is_empty() {
        format!(
            "no usable upstream for '{group}': every key is disabled after 401/403 from the \
             upstream (fix the keys and reload the config)"
        )
    } else {
        format!(
            "all upstream attempts for '{group}' failed; tried {}",
            tried(attempts)
        )
    }
}

fn rate_limited(
    group: &str,
    retry_after: std::time::Duration,
    attempts: &[FailedAttempt],
) -> String {
    let mut m = format!(
        "every upstream key for '{group}' is rate limited; retry after {}s",
        retry_after_secs(retry_after)
    );
    if !attempts.is_empty() {
        m.push_str(&format!("; tried {}", tried(attempts)));
    }
    m
}

/// Whole seconds, rounded up, at least 1.
fn retry_after_secs(d: std::time::Duration) -> u64 {
    (d.as_millis().div_ceil(1000) as u64).max(1)
}
