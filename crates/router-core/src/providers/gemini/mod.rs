//! `gemini`: Google's Gemini API — `{base_url}/models/{model}:generateContent` (or
//! `:streamGenerateContent?alt=sse`) with `x-goog-api-key`, and OpenAI embeddings on
//! `:batchEmbedContents`. Requests are translated to it and its answers back.

pub(crate) mod embeddings;
mod request;
mod response;
mod stream;
#[cfg(test)]
mod tests;

#[cfg(test)]
pub(crate) use request::request;
pub(crate) use request::request_for;
pub(crate) use response::{error_body, response, usage_of};
#[cfg(test)]
pub(crate) use stream::StreamTranslator;

use super::{path_segment, put_credential, Credential, Kind, WireFormat};
use crate::codec::{DecodedReader, StreamDecoder, StreamReader};
use crate::dialects::{ChatRequest, Endpoint};
use crate::fields::Fields;
use crate::snapshot::Provider;
use crate::usage::TokenUsage;
use crate::RouterError;
use http::HeaderMap;
use serde_json::{Map, Value};

/// The `gemini` kind.
pub(crate) struct Gemini;

/// Gemini's wire format.
struct GeminiWire;

static WIRE: GeminiWire = GeminiWire;

impl Kind for Gemini {
    fn name(&self) -> &'static str {
        "gemini"
    }
    fn official_base_url(&self) -> Option<&'static str> {
        Some("https://generativelanguage.googleapis.com/v1beta")
    }
    fn wire(&self, _op: Endpoint) -> &'static dyn WireFormat {
        &WIRE
    }
    /// Chat (and the prompt API and Responses through it), and embeddings.
    fn speaks_responses(&self, _base_url: &str) -> Option<bool> {
        None
    }
    fn operation(&self, _provider: &Provider, endpoint: Endpoint) -> Option<Endpoint> {
        match endpoint {
            Endpoint::Embeddings => Some(Endpoint::Embeddings),
            other => super::chat_only(other),
        }
    }
    fn url(&self, provider: &Provider, op: Endpoint, model: &str, stream: bool) -> String {
        let method = match (op, stream) {
            (Endpoint::Embeddings, _) => "batchEmbedContents",
            (_, true) => "streamGenerateContent?alt=sse",
            (_, false) => "generateContent",
        };
        format!(
            "{}/models/{}:{method}",
            provider.base_url(),
            path_segment(model)
        )
    }
    fn authorize(
        &self,
        _provider: &Provider,
        credential: Credential<'_>,
        _client: Option<&HeaderMap>,
        headers: &mut HeaderMap,
    ) -> Result<(), &'static str> {
        put_credential(headers, "x-goog-api-key", credential)
    }
    fn request(
        &self,
        op: Endpoint,
        common: Map<String, Value>,
        _provider: &Provider,
        model: &str,
        fields: &mut Fields,
    ) -> Result<Value, RouterError> {
        match op {
            Endpoint::Embeddings => embeddings::request(&common, model, fields),
            _ => request_for(&common, model, fields),
        }
    }
}

impl WireFormat for GeminiWire {
    fn name(&self) -> &'static str {
        "gemini"
    }
    fn answer(
        &self,
        op: Endpoint,
        answer: Value,
        request: &ChatRequest<'_>,
        model: &str,
    ) -> Option<(Value, TokenUsage)> {
        match op {
            Endpoint::Embeddings => {
                let asked = request.to_object().unwrap_or_default();
                embeddings::response(&answer, &asked, model)
            }
            _ => Some(response(&answer, model)),
        }
    }
    fn error(&self, body: &[u8]) -> Value {
        error_body(body)
    }
    fn passthrough_usage(&self, body: &[u8]) -> TokenUsage {
        crate::walk::field_value(body, "usageMetadata")
            .map(|meta| usage_of(&meta))
            .unwrap_or_default()
    }
    fn stream_reader(&self, _strip_usage: bool) -> Box<dyn StreamReader> {
        Box::new(DecodedReader::new(self.stream_decoder("")))
    }
    fn stream_decoder(&self, model: &str) -> Box<dyn StreamDecoder> {
        Box::new(stream::Decoder::new(model))
    }
}
