//! `anthropic`: Anthropic's Messages API (`{base_url}/messages`, `x-api-key`,
//! `anthropic-version`). OpenAI-format requests are translated to it and its answers back;
//! an Anthropic client's requests pass as they are.

mod request;
mod response;
mod stream;
#[cfg(test)]
mod tests;
mod usage;

pub(crate) use request::request;
pub(crate) use response::{error_body, response};
#[cfg(test)]
pub(crate) use stream::StreamTranslator;
pub(crate) use usage::Usage;

use super::{put_credential, Credential, Kind, WireFormat};
use crate::codec::{StreamDecoder, StreamReader};
use crate::dialects::{ChatRequest, Endpoint};
use crate::fields::Fields;
use crate::snapshot::Provider;
use crate::usage::TokenUsage;
use crate::RouterError;
use http::{HeaderMap, HeaderValue};
use serde_json::{Map, Value};

/// The `anthropic` kind.
pub(crate) struct Anthropic;

/// Anthropic's wire format.
pub(crate) struct AnthropicWire;

/// The format Anthropic answers in (and Anthropic clients speak).
pub(crate) static WIRE: AnthropicWire = AnthropicWire;

impl Kind for Anthropic {
    fn name(&self) -> &'static str {
        "anthropic"
    }
    fn official_base_url(&self) -> Option<&'static str> {
        Some("https://api.anthropic.com/v1")
    }
    fn wire(&self, _op: Endpoint) -> &'static dyn WireFormat {
        &WIRE
    }
    /// Chat (and the prompt API through it), and counting a request's tokens.
    fn speaks_responses(&self, _base_url: &str) -> Option<bool> {
        None
    }
    fn operation(&self, _provider: &Provider, endpoint: Endpoint) -> Option<Endpoint> {
        match endpoint {
            Endpoint::CountTokens => Some(Endpoint::CountTokens),
            other => super::chat_only(other),
        }
    }
    fn url(&self, provider: &Provider, op: Endpoint, _model: &str, _stream: bool) -> String {
        match op {
            Endpoint::CountTokens => format!("{}/messages/count_tokens", provider.base_url()),
            _ => format!("{}/messages", provider.base_url()),
        }
    }
    fn url_per_operation(&self) -> bool {
        true
    }
    /// The client's own `anthropic-version` and `anthropic-beta` win over the provider's: its
    /// body was written for them.
    fn authorize(
        &self,
        provider: &Provider,
        credential: Credential<'_>,
        client: Option<&HeaderMap>,
        headers: &mut HeaderMap,
    ) -> Result<(), &'static str> {
        let version = match client.and_then(|h| h.get("anthropic-version")) {
            Some(v) => v.clone(),
            None => HeaderValue::from_str(provider.anthropic_version())
                .map_err(|_| "anthropic_version has invalid characters")?,
        };
        headers.insert("anthropic-version", version);
        if let Some(beta) = client.and_then(|h| h.get("anthropic-beta")) {
            headers.insert("anthropic-beta", beta.clone());
        }
        put_credential(headers, "x-api-key", credential)
    }
    fn request(
        &self,
        _op: Endpoint,
        common: Map<String, Value>,
        provider: &Provider,
        model: &str,
        fields: &mut Fields,
    ) -> Result<Value, RouterError> {
        request(&common, model, provider.default_max_tokens(), fields)
    }
}

impl WireFormat for AnthropicWire {
    fn name(&self) -> &'static str {
        "anthropic"
    }
    fn answer(
        &self,
        _op: Endpoint,
        answer: Value,
        _request: &ChatRequest<'_>,
        _model: &str,
    ) -> Option<(Value, TokenUsage)> {
        Some(response(&answer))
    }
    fn error(&self, body: &[u8]) -> Value {
        error_body(body)
    }
    fn passthrough_usage(&self, body: &[u8]) -> TokenUsage {
        let mut usage = Usage::default();
        if let Some(counts) = crate::walk::field_value(body, "usage") {
            usage.read_counts(&counts);
        }
        usage.tokens()
    }
    fn stream_reader(&self, _strip_usage: bool) -> Box<dyn StreamReader> {
        Box::<stream::Reader>::default()
    }
    fn stream_decoder(&self, _model: &str) -> Box<dyn StreamDecoder> {
        Box::new(stream::Decoder::new())
    }
    /// An `overloaded_error` (say) before anything else.
    fn opens_with_error(&self, first: &[u8]) -> bool {
        first.trim_ascii_start().starts_with(b"event: error")
    }
}
