//! The `mock` provider: answers in-process and deterministically, with no network and no key,
//! so the example config serves on a machine without provider keys. It echoes the last user
//! message, counts one token per whitespace-separated word (at least one per message), and
//! streams one chunk per word when asked.

use bytes::Bytes;
use serde_json::{json, Value};

/// A complete upstream-like answer: status, content type, body pieces.
pub(crate) struct MockAnswer {
    pub(crate) status: u16,
    pub(crate) content_type: &'static str,
    pub(crate) chunks: Vec<Bytes>,
}

fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
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
pub(crate) fn answer(body: &[u8], id_seed: u64) -> MockAnswer {
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
        .map(|m| text_of(&m["content"]))
        .unwrap_or_default();
    let reply = if reply.trim().is_empty() {
        "(mock provider: no user message)".to_string()
    } else {
        reply
    };
    let prompt_tokens: u64 = messages
        .iter()
        .map(|m| words(&text_of(&m["content"])).max(1))
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
