//! The OpenAI dialect: chat completions, and the other OpenAI operations (`/v1/completions`,
//! `/v1/embeddings`). Its requests are the common form already; what this room adds is the
//! prompt API for upstreams that only chat, the usage chunk only for clients that ask for it,
//! and OpenAI's error shape.

pub(crate) mod completions;
mod error;
mod stream;

use super::{ChatRequest, ClientDialect, Endpoint};
use crate::codec::StreamEncoder;
use crate::fields::Fields;
use crate::providers::{openai, WireFormat};
use crate::RouterError;
use bytes::Bytes;
use http::StatusCode;
use serde_json::{Map, Value};

/// The OpenAI dialect.
pub(crate) struct OpenAiChat;

/// Whether a prompt API request goes to an upstream that performs `op` through chat.
fn through_chat(request: &ChatRequest<'_>, op: Endpoint) -> bool {
    request.endpoint() == Endpoint::Completions && op == Endpoint::Chat
}

impl ClientDialect for OpenAiChat {
    fn wire(&self) -> Option<&'static dyn WireFormat> {
        Some(&openai::WIRE)
    }
    fn decode(
        &self,
        request: &ChatRequest<'_>,
        op: Endpoint,
        model: &str,
        _fields: &mut Fields,
    ) -> Result<Map<String, Value>, RouterError> {
        let object = request.to_object()?;
        if !through_chat(request, op) {
            return Ok(object);
        }
        match completions::request(&object, model)? {
            Value::Object(chat) => Ok(chat),
            _ => Err(RouterError::Internal(
                "chat request is not an object".into(),
            )),
        }
    }
    fn encode_answer(&self, answer: Value, request: &ChatRequest<'_>, op: Endpoint) -> Value {
        if through_chat(request, op) {
            completions::response(&answer)
        } else {
            answer
        }
    }
    fn encode_error(&self, _status: StatusCode, error: &Value) -> Value {
        error.clone()
    }
    fn stream_encoder(&self, request: &ChatRequest<'_>, op: Endpoint) -> Box<dyn StreamEncoder> {
        Box::new(stream::Encoder::new(
            !request.client_wants_usage(),
            through_chat(request, op),
        ))
    }
    fn error_body(&self, error: &RouterError) -> Value {
        error::body(error)
    }
    fn stream_error_event(&self, body: &Value) -> Bytes {
        Bytes::from(format!("data: {body}\n\n"))
    }
}
