//! The Responses dialect (`POST /v1/responses`), as Codex and the OpenAI SDKs' `responses`
//! speak it. To a provider that speaks Responses too (OpenAI's own API, Azure, or one set
//! `responses: native`) the bytes pass through; to any other the request is translated into the
//! common form, and the answer, complete or as Responses' event sequence, back.

mod request;
mod response;
mod stream;
#[cfg(test)]
mod tests;

pub(crate) use request::request;
pub(crate) use response::response;
pub(crate) use stream::Encoder;

use super::{ChatRequest, ClientDialect, Endpoint};
use crate::codec::StreamEncoder;
use crate::fields::Fields;
use crate::providers::{openai, WireFormat};
use crate::RouterError;
use bytes::Bytes;
use http::StatusCode;
use serde_json::{json, Map, Value};

/// The Responses dialect.
pub(crate) struct Responses;

impl ClientDialect for Responses {
    fn wire(&self) -> Option<&'static dyn WireFormat> {
        Some(&openai::RESPONSES_WIRE)
    }
    fn decode(
        &self,
        request: &ChatRequest<'_>,
        _op: Endpoint,
        model: &str,
        fields: &mut Fields,
    ) -> Result<Map<String, Value>, RouterError> {
        match self::request(&request.to_object()?, model, fields)? {
            Value::Object(chat) => Ok(chat),
            _ => Err(RouterError::Internal(
                "chat request is not an object".into(),
            )),
        }
    }
    fn encode_answer(&self, answer: Value, request: &ChatRequest<'_>, _op: Endpoint) -> Value {
        let mut out = response(&answer);
        if let Ok(asked) = request.to_object() {
            response::echo(&mut out, &asked);
        }
        out
    }
    /// Responses errors have chat's shape.
    fn encode_error(&self, _status: StatusCode, error: &Value) -> Value {
        error.clone()
    }
    fn stream_encoder(&self, _request: &ChatRequest<'_>, _op: Endpoint) -> Box<dyn StreamEncoder> {
        Box::<Encoder>::default()
    }
    /// Responses errors have chat's shape.
    fn error_body(&self, error: &RouterError) -> Value {
        super::Dialect::OpenAi.room().error_body(error)
    }
    /// An `error` event, in the documented flat shape.
    fn stream_error_event(&self, body: &Value) -> Bytes {
        let e = &body["error"];
        let event = json!({"type": "error", "code": e["code"], "message": e["message"], "param": e["param"]});
        Bytes::from(format!("event: error\ndata: {event}\n\n"))
    }
}
