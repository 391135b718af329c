//! The `mock` provider: answers in-process and deterministically, with no network and no key,
//! so the example config serves on a machine without provider keys. It echoes the last user
//! message, counts one token per whitespace-separated word (at least one per message), and
//! streams one chunk per word when asked.

use super::{chat_only, Kind, UpstreamBody};
use crate::dialects::Endpoint;
use crate::forward::BoxError;
use crate::json::text_of;
use crate::snapshot::Provider;
use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};
use http_body::{Body, Frame};
use http_body_util::combinators::UnsyncBoxBody;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The `mock` kind.
pub(crate) struct Mock;

impl Kind for Mock {
    fn name(&self) -> &'static str {
        "mock"
    }
    fn speaks_responses(&self, _base_url: &str) -> Option<bool> {
        None
    }
    fn operation(&self, _provider: &Provider, endpoint: Endpoint) -> Option<Endpoint> {
        chat_only(endpoint)
    }
    fn is_local(&self) -> bool {
        true
    }
    fn url(&self, _provider: &Provider, _op: Endpoint, _model: &str, _stream: bool) -> String {
        "mock://chat/completions".to_string()
    }
    fn answer_locally(&self, body: &[u8], request_id: u64) -> Option<http::Response<UpstreamBody>> {
        let answer = answer(body, request_id);
        let mut response =
            http::Response::new(UnsyncBoxBody::new(FramesBody(answer.chunks.into())));
        *response.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(answer.content_type),
        );
        Some(response)
    }
}

/// A body made of frames known in advance.
struct FramesBody(VecDeque<Bytes>);

impl Body for FramesBody {
    type Data = Bytes;
    type Error = BoxError;
    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Poll::Ready(self.get_mut().0.pop_front().map(|b| Ok(Frame::data(b))))
    }
}

/// A complete upstream-like answer: status, content type, body pieces.
struct MockAnswer {
    status: u16,
    content_type: &'static str,
    chunks: Vec<Bytes>,
}

fn words(s: &str) -> u64 {
    s.split_whitespace().count() as u64
}

fn error(status: u16, message: &str) -> MockAnswer {
    let body =
        json!({"error": {"message": message, "type": "invalid_request_error", "code": null}});
    MockAnswer {
        status,
        content_type: "application/json",
        chunks: vec![Bytes::from(body.to_string())],
    }
}

/// Answers a chat completions request body (already rewritten for the upstream).
fn answer(body: &[u8], id_seed: u64) -> MockAnswer {
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return error(400, "mock provider: body is not JSON");
    };
    let model = request["model"].as_str().unwrap_or("mock").to_string();
    let Some(messages) = request["messages"].as_array() else {
        return error(400, "mock provider: 'messages' must be an array");
    };
    let reply = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .map(|m| text_of(&m["content"], " "))
        .unwrap_or_default();
    let reply = if reply.trim().is_empty() {
        "(mock provider: no user message)".to_string()
    } else {
        reply
    };
    let prompt_tokens: u64 = messages
        .iter()
        .map(|m| words(&text_of(&m["content"], " ")).max(1))
        .sum();
    let completion_tokens = words(&reply).max(1);
    let usage = json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    });
    let id = format!("chatcmpl-mock-{id_seed}");
    let created = 0;
    if request["stream"] != Value::Bool(true) {
        let body = json!({
            "id": id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": reply},
                "finish_reason": "stop",
            }],
            "usage": usage,
        });
        return MockAnswer {
            status: 200,
            content_type: "application/json",
            chunks: vec![Bytes::from(body.to_string())],
        };
    }
    let include_usage = request["stream_options"]["include_usage"] == Value::Bool(true);
    let chunk = |delta: Value, finish: Value| {
        let c = json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        });
        Bytes::from(format!("data: {c}\n\n"))
    };
    let mut chunks = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    let pieces: Vec<&str> = reply.split_inclusive(' ').collect();
    for piece in pieces {
        chunks.push(chunk(json!({"content": piece}), Value::Null));
    }
    chunks.push(chunk(json!({}), json!("stop")));
    if include_usage {
        let c = json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [], "usage": usage,
        });
        chunks.push(Bytes::from(format!("data: {c}\n\n")));
    }
    chunks.push(Bytes::from_static(b"data: [DONE]\n\n"));
    MockAnswer {
        status: 200,
        content_type: "text/event-stream",
        chunks,
    }
}
