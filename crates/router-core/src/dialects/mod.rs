//! Client dialects: one room per format a client may speak, registered in [`Dialect::room`].
//!
//! A room decodes the client's request into the common form (OpenAI's chat completions format)
//! and encodes answers, stream events and errors back into the client's format. When the
//! upstream speaks the client's own format (its [`WireFormat`]), the client's bytes pass through instead,
//! with only `model` replaced; the request is then never parsed beyond its first validation.

pub(crate) mod anthropic;
mod edit;
pub(crate) mod openai;
mod prompt;
mod request;
pub(crate) mod responses;
pub(crate) mod tags;
mod top_level;

pub use request::{ChatRequest, CompletionLimit, INLINE_DATA_TOKENS};

use crate::codec::StreamEncoder;
use crate::fields::Fields;
use crate::providers::WireFormat;
use crate::tenants::Client;
use crate::RouterError;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::{Map, Value};
use std::sync::Arc;

/// The operation a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Endpoint {
    /// `/v1/chat/completions` (and `/v1/messages`).
    #[default]
    Chat,
    /// `/v1/completions`, the legacy prompt API.
    Completions,
    /// `/v1/embeddings`.
    Embeddings,
    /// `/v1/messages/count_tokens`, Anthropic's count of a request's input tokens.
    CountTokens,
    /// `/v1/responses`, OpenAI's Responses API.
    Responses,
}

impl Endpoint {
    /// The path below the provider's base URL (`chat/completions`, `completions`,
    /// `embeddings`, `messages/count_tokens`).
    pub fn path(self) -> &'static str {
        match self {
            Self::Chat => "chat/completions",
            Self::Completions => "completions",
            Self::Embeddings => "embeddings",
            Self::CountTokens => "messages/count_tokens",
            Self::Responses => "responses",
        }
    }

    pub(crate) fn required(self) -> &'static str {
        match self {
            Self::Chat | Self::CountTokens => "messages",
            Self::Completions => "prompt",
            Self::Embeddings | Self::Responses => "input",
        }
    }
}

/// The format a request arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// OpenAI chat completions (`/v1/chat/completions`).
    #[default]
    OpenAi,
    /// Anthropic Messages (`/v1/messages`).
    Anthropic,
    /// OpenAI's Responses API (`/v1/responses`).
    Responses,
}

impl Dialect {
    /// Its room.
    pub(crate) fn room(self) -> &'static dyn ClientDialect {
        match self {
            Self::OpenAi => &openai::OpenAiChat,
            Self::Anthropic => &anthropic::AnthropicMessages,
            Self::Responses => &responses::Responses,
        }
    }
}

/// A client's request as it arrived: what it asks, in which format, and its headers.
#[derive(Debug, Clone, Copy)]
pub struct ClientRequest<'a> {
    /// The format it is in.
    pub dialect: Dialect,
    /// The operation it asks for.
    pub endpoint: Endpoint,
    /// Its body.
    pub body: &'a [u8],
    /// Its headers, when the caller has them: an upstream that speaks the client's own format
    /// gets the headers that format defines (Anthropic's `anthropic-version` and
    /// `anthropic-beta`).
    pub headers: Option<&'a HeaderMap>,
    /// The named client whose key it came with, if any: it is admitted against the client's
    /// groups, limits and budget, and charged to it.
    pub client: Option<&'a Arc<Client>>,
    /// The caller's id of the request (a server's `x-request-id`), named in the router's log
    /// lines about it: a failed upstream attempt, a stream broken mid-way.
    pub request_id: Option<&'a str>,
    /// The trace it belongs to, if the caller traces it: each upstream attempt is sent with a
    /// `traceparent` of its own, as the request span's child, and noted in it.
    pub trace: Option<&'a crate::Trace>,
}

impl<'a> ClientRequest<'a> {
    /// A request for `endpoint` in `dialect`, without headers.
    pub fn new(dialect: Dialect, endpoint: Endpoint, body: &'a [u8]) -> Self {
        Self {
            dialect,
            endpoint,
            body,
            headers: None,
            client: None,
            request_id: None,
            trace: None,
        }
    }

    /// An OpenAI chat completions request (`/v1/chat/completions`).
    pub fn chat(body: &'a [u8]) -> Self {
        Self::new(Dialect::OpenAi, Endpoint::Chat, body)
    }

    /// An Anthropic Messages request (`/v1/messages`).
    pub fn messages(body: &'a [u8]) -> Self {
        Self::new(Dialect::Anthropic, Endpoint::Chat, body)
    }

    /// A Responses API request (`/v1/responses`).
    pub fn responses(body: &'a [u8]) -> Self {
        Self::new(Dialect::Responses, Endpoint::Responses, body)
    }

    /// The same request with the client's headers.
    pub fn with_headers(self, headers: &'a HeaderMap) -> Self {
        Self {
            headers: Some(headers),
            ..self
        }
    }

    /// The same request from a named client (`None`: an unnamed key, or no authentication).
    pub fn with_client(self, client: Option<&'a Arc<Client>>) -> Self {
        Self { client, ..self }
    }

    /// The same request, traced in `trace` (see [`crate::Trace`]).
    pub fn traced(self, trace: &'a crate::Trace) -> Self {
        Self {
            trace: Some(trace),
            ..self
        }
    }

    /// The same request, known to the caller as `id` (its log lines name it).
    pub fn with_request_id(self, id: &'a str) -> Self {
        Self {
            request_id: Some(id),
            ..self
        }
    }
}

/// What a client dialect does; one implementation per room.
pub(crate) trait ClientDialect: Sync {
    /// The wire format of the providers that speak the client's own format, if any: their
    /// exchanges with the client pass the bytes through.
    fn wire(&self) -> Option<&'static dyn WireFormat>;
    /// The request in the common form for an upstream that performs `op`, for `model`; what it
    /// leaves out goes by the field policy in `fields`.
    fn decode(
        &self,
        request: &ChatRequest<'_>,
        op: Endpoint,
        model: &str,
        fields: &mut Fields,
    ) -> Result<Map<String, Value>, RouterError>;
    /// A complete answer to `op` in the common form, as the client reads it.
    fn encode_answer(&self, answer: Value, request: &ChatRequest<'_>, op: Endpoint) -> Value;
    /// An upstream's error answer (the request's own 4xx, as an OpenAI error body) as the
    /// client reads it.
    fn encode_error(&self, status: StatusCode, error: &Value) -> Value;
    /// An encoder of a stream in the common form into the client's events.
    fn stream_encoder(&self, request: &ChatRequest<'_>, op: Endpoint) -> Box<dyn StreamEncoder>;
    /// The router's own error, in the client's error shape.
    fn error_body(&self, error: &RouterError) -> Value;
    /// An error body as an event of the client's stream.
    fn stream_error_event(&self, body: &Value) -> Bytes;
}
