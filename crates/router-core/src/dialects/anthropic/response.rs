//! A complete answer in the common form as an Anthropic message.

use serde_json::{json, Value};

/// A tool call id for an answer whose provider sent none (Anthropic requires one).
pub(super) fn new_tool_id() -> String {
    let mut id = String::from("toolu_");
    id.extend(std::iter::repeat_with(fastrand::alphanumeric).take(24));
    id
}

pub(super) fn stop_reason(finish: &Value) -> Value {
    match finish.as_str() {
        None => Value::Null,
        Some("length") => json!("max_tokens"),
        Some("tool_calls") | Some("function_call") => json!("tool_use"),
        Some("content_filter") => json!("refusal"),
        Some(_) => json!("end_turn"),
    }
}

/// OpenAI usage in Anthropic's terms: cached prompt tokens are reads and those written to
/// the cache (`cache_creation_input_tokens`) are writes, neither of them input.
pub(super) fn anthropic_usage(u: &Value) -> Value {
    let prompt = u["prompt_tokens"].as_u64().unwrap_or(0);
    let cached = u["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap_or(0)
        .min(prompt);
    let written = u["cache_creation_input_tokens"]
        .as_u64()
        .unwrap_or(0)
        .min(prompt - cached);
    json!({
        "input_tokens": prompt - cached - written,
        "output_tokens": u["completion_tokens"].as_u64().unwrap_or(0),
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": written,
    })
}

/// Translates a complete OpenAI answer into an Anthropic message.
pub(crate) fn response(answer: &Value) -> Value {
    let choice = &answer["choices"][0];
    let message = &choice["message"];
    let mut content = Vec::new();
    // Reasoning of OpenAI-compatible providers (`reasoning_content`) is Anthropic's thinking.
    if let Some(thinking) = reasoning_of(message) {
        content.push(json!({"type": "thinking", "thinking": thinking, "signature": ""}));
    }
    if let Some(text) = message["content"].as_str().filter(|t| !t.is_empty()) {
        content.push(json!({"type": "text", "text": text}));
    }
    let refusal = message["refusal"].as_str().filter(|r| !r.is_empty());
    if let Some(text) = refusal {
        content.push(json!({"type": "text", "text": text}));
    }
    for call in message["tool_calls"].as_array().into_iter().flatten() {
        let args = call["function"]["arguments"].as_str().unwrap_or("{}");
        let input: Value = serde_json::from_str(args).unwrap_or_else(|_| json!({}));
        let id = match call["id"].as_str().filter(|i| !i.is_empty()) {
            Some(id) => id.to_string(),
            None => new_tool_id(),
        };
        content.push(
            json!({"type": "tool_use", "id": id, "name": call["function"]["name"], "input": input}),
        );
    }
    json!({
        "id": answer["id"],
        "type": "message",
        "role": "assistant",
        "model": answer["model"],
        "content": content,
        // A forced tool choice ends with finish_reason "stop" on OpenAI: still a tool turn.
        "stop_reason": if message["tool_calls"].as_array().is_some_and(|c| !c.is_empty()) {
            json!("tool_use")
        } else if refusal.is_some() {
            json!("refusal")
        } else {
            stop_reason(&choice["finish_reason"])
        },
        "stop_sequence": null,
        "usage": anthropic_usage(&answer["usage"]),
    })
}

/// The reasoning text of an OpenAI-compatible message or delta, if any.
pub(super) fn reasoning_of(message: &Value) -> Option<&str> {
    ["reasoning_content", "reasoning"]
        .iter()
        .find_map(|k| message[*k].as_str())
        .filter(|r| !r.is_empty())
}
