//! A complete Gemini answer, or a Gemini error, in the common form.

use super::request::{to_id_safe, SIGNATURE_MARK};
use crate::json::now_secs;
use crate::usage::TokenUsage;
use serde_json::{json, Value};

pub(super) fn finish_reason(reason: &Value, called: bool) -> Value {
    match reason.as_str() {
        None => Value::Null,
        Some(_) if called => json!("tool_calls"),
        Some("MAX_TOKENS") => json!("length"),
        Some("SAFETY")
        | Some("RECITATION")
        | Some("BLOCKLIST")
        | Some("PROHIBITED_CONTENT")
        | Some("SPII") => json!("content_filter"),
        Some(_) => json!("stop"),
    }
}

/// Token counts from `usageMetadata` (thinking tokens are completion tokens).
pub(crate) fn usage_of(meta: &Value) -> TokenUsage {
    let n = |k: &str| meta[k].as_u64().unwrap_or(0);
    let prompt = n("promptTokenCount");
    let completion = n("candidatesTokenCount") + n("thoughtsTokenCount");
    TokenUsage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: meta["totalTokenCount"]
            .as_u64()
            .unwrap_or(prompt + completion),
        cache_read_tokens: n("cachedContentTokenCount"),
        cache_write_tokens: 0,
    }
}

pub(super) fn openai_usage(meta: &Value) -> Value {
    let u = usage_of(meta);
    json!({
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
        "prompt_tokens_details": {"cached_tokens": meta["cachedContentTokenCount"].as_u64().unwrap_or(0)},
    })
}

/// What a candidate's parts say.
pub(super) struct Said {
    pub(super) text: String,
    /// Thought summaries (`thought: true` parts), as OpenAI-compatible `reasoning_content`.
    pub(super) reasoning: String,
    pub(super) calls: Vec<Value>,
}

/// Text, reasoning and tool calls of a candidate's parts; `first_index` numbers the calls.
pub(super) fn parts_of(candidate: &Value, first_index: usize) -> Said {
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    for part in candidate["content"]["parts"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if part["thought"] == json!(true) {
            reasoning.push_str(part["text"].as_str().unwrap_or(""));
            continue;
        }
        if let Some(t) = part["text"].as_str() {
            text.push_str(t);
        }
        if let Some(call) = part.get("functionCall") {
            let index = first_index + calls.len();
            let mut id = call["id"]
                .as_str()
                .map_or_else(|| format!("call_{index}"), str::to_string);
            // Gemini 3 wants a call's thought signature back with it in the next turn: it
            // travels in the call id, which OpenAI and Anthropic clients echo unchanged.
            if let Some(signature) = part["thoughtSignature"].as_str() {
                id = format!("{id}{SIGNATURE_MARK}{}", to_id_safe(signature));
            }
            calls.push(json!({
                "index": index, "id": id, "type": "function",
                "function": {"name": call["name"], "arguments": call["args"].to_string()},
            }));
        }
    }
    Said {
        text,
        reasoning,
        calls,
    }
}

/// Translates a complete Gemini answer into an OpenAI `chat.completion` for `model`.
pub(crate) fn response(answer: &Value, model: &str) -> (Value, TokenUsage) {
    let candidate = &answer["candidates"][0];
    let Said {
        text,
        reasoning,
        mut calls,
    } = parts_of(candidate, 0);
    for c in &mut calls {
        if let Some(o) = c.as_object_mut() {
            o.remove("index");
        }
    }
    let mut message = json!({"role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { json!(text) }});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls.clone());
    }
    if !reasoning.is_empty() {
        message["reasoning_content"] = json!(reasoning);
    }
    let out = json!({
        "id": answer["responseId"].as_str().map_or_else(|| "chatcmpl-gemini".to_string(), |id| format!("chatcmpl-{id}")),
        "object": "chat.completion",
        "created": now_secs(),
        "model": answer["modelVersion"].as_str().unwrap_or(model),
        "choices": [{"index": 0, "message": message, "logprobs": null,
                     "finish_reason": finish_reason(&candidate["finishReason"], !calls.is_empty())}],
        "usage": openai_usage(&answer["usageMetadata"]),
    });
    (out, usage_of(&answer["usageMetadata"]))
}

/// A Gemini error body (`{"error":{"code","message","status"}}`) in OpenAI's shape.
pub(crate) fn error_body(body: &[u8]) -> Value {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let e = &v["error"];
    json!({"error": {
        "message": e["message"].as_str().unwrap_or("upstream error"),
        "type": e["status"].as_str().unwrap_or("upstream_error"),
        "param": null, "code": null,
    }})
}
