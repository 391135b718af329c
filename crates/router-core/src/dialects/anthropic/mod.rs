//! The Anthropic dialect: Messages requests (`/v1/messages`), as Claude Code and the
//! Anthropic SDKs send them. For an OpenAI-format upstream the request is translated into the
//! common form and the answer (complete, streamed, or an error) back into Anthropic's shapes.

mod error;
mod request;
mod response;
mod stream;
#[cfg(test)]
mod tests;

#[cfg(test)]
pub(crate) use request::request;
#[cfg(test)]
pub(crate) use response::response;
#[cfg(test)]
pub(crate) use stream::StreamTranslator;

use super::{ChatRequest, ClientDialect, Endpoint};
use crate::codec::StreamEncoder;
use crate::fields::Fields;
use crate::providers::{anthropic, WireFormat};
use crate::RouterError;
use bytes::Bytes;
use http::StatusCode;
use serde_json::{Map, Value};

/// The Anthropic dialect.
pub(crate) struct AnthropicMessages;

impl ClientDialect for AnthropicMessages {
    fn wire(&self) -> Option<&'static dyn WireFormat> {
        Some(&anthropic::WIRE)
    }
    fn decode(
        &self,
        request: &ChatRequest<'_>,
        _op: Endpoint,
        model: &str,
        fields: &mut Fields,
    ) -> Result<Map<String, Value>, RouterError> {
        match request::request(&request.to_object()?, model, fields)? {
            Value::Object(chat) => Ok(chat),
            _ => Err(RouterError::Internal(
                "chat request is not an object".into(),
            )),
        }
    }
    fn encode_answer(&self, answer: Value, _request: &ChatRequest<'_>, _op: Endpoint) -> Value {
        response::response(&answer)
    }
    fn encode_error(&self, status: StatusCode, error: &Value) -> Value {
        error::from_openai(status.as_u16(), error)
    }
    fn stream_encoder(&self, _request: &ChatRequest<'_>, _op: Endpoint) -> Box<dyn StreamEncoder> {
        Box::<stream::Encoder>::default()
    }
    fn error_body(&self, error: &RouterError) -> Value {
        error::body(error)
    }
    fn stream_error_event(&self, body: &Value) -> Bytes {
        Bytes::from(format!("event: error\ndata: {body}\n\n"))
    }
}
