//! A complete Anthropic answer, or an Anthropic error, in the common form.

use super::usage::Usage;
use crate::json::now_secs;
use crate::usage::TokenUsage;
use serde_json::{json, Value};

pub(super) fn finish_reason(stop_reason: &Value) -> Value {
    match stop_reason.as_str() {
        None => Value::Null,
        Some("max_tokens") | Some("model_context_window_exceeded") => json!("length"),
        Some("tool_use") => json!("tool_calls"),
        Some("refusal") => json!("content_filter"),
        Some(_) => json!("stop"),
    }
}

/// Usage in OpenAI's terms: cache reads as `prompt_tokens_details.cached_tokens`, and cache
/// writes, which OpenAI's format has no field for, as `cache_creation_input_tokens` (the name
/// OpenAI-compatible gateways use) when there are any.
pub(super) fn openai_usage(u: TokenUsage) -> Value {
    let mut usage = json!({
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cache_read_tokens},
    });
    if u.cache_write_tokens > 0 {
        usage["cache_creation_input_tokens"] = json!(u.cache_write_tokens);
    }
    usage
}

/// Translates a complete Anthropic answer into an OpenAI `chat.completion`.
pub(crate) fn response(answer: &Value) -> (Value, TokenUsage) {
    let mut text = String::new();
    let mut thinking = String::new();
    let mut tool_calls = Vec::new();
    for block in answer["content"].as_array().into_iter().flatten() {
        match block["type"].as_str() {
            Some("text") => text.push_str(block["text"].as_str().unwrap_or("")),
            // Thinking goes where OpenAI-compatible APIs put reasoning.
            Some("thinking") => thinking.push_str(block["thinking"].as_str().unwrap_or("")),
            Some("tool_use") => tool_calls.push(json!({
                "id": block["id"],
                "type": "function",
                "function": {
                    "name": block["name"],
                    "arguments": block["input"].to_string(),
                },
            })),
            _ => {}
        }
    }
    let usage = Usage::of(answer).tokens();
    let mut message = json!({
        "role": "assistant",
        "content": if text.is_empty() && !tool_calls.is_empty() { Value::Null } else { json!(text) },
    });
    if !tool_calls.is_empty() {
        message["tool_calls"] = Value::Array(tool_calls);
    }
    if !thinking.is_empty() {
        message["reasoning_content"] = json!(thinking);
    }
    let out = json!({
        "id": answer["id"],
        "object": "chat.completion",
        "created": now_secs(),
        "model": answer["model"],
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_reason(&answer["stop_reason"]),
        }],
        "usage": openai_usage(usage),
    });
    (out, usage)
}

/// An Anthropic error body (`{"type":"error","error":{...}}`) in OpenAI's shape.
pub(crate) fn error_body(body: &[u8]) -> Value {
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let e = &parsed["error"];
    json!({
        "error": {
            "message": e["message"].as_str().unwrap_or("upstream error"),
            "type": e["type"].as_str().unwrap_or("upstream_error"),
            "param": null,
            "code": null,
        }
    })
}
