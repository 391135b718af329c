//! A complete chat answer (the common form) as a Responses API `response` object, and the
//! pieces the stream encoder shares with it: usage, output items, the status.

use crate::json::now_secs;
use serde_json::{json, Map, Value};

/// A chat `usage` in Responses' terms.
pub(super) fn usage(u: &Value) -> Value {
    if !u.is_object() {
        return Value::Null;
    }
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    let input = n(&u["prompt_tokens"]);
    let output = n(&u["completion_tokens"]);
    let mut usage = json!({
        "input_tokens": input,
        "input_tokens_details": {"cached_tokens": n(&u["prompt_tokens_details"]["cached_tokens"])},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": n(&u["completion_tokens_details"]["reasoning_tokens"])},
        "total_tokens": u["total_tokens"].as_u64().unwrap_or(input + output),
    });
    // Prompt-cache writes, which the common form carries as `cache_creation_input_tokens`.
    let written = n(&u["cache_creation_input_tokens"]);
    if written > 0 {
        usage["input_tokens_details"]["cache_write_tokens"] = json!(written);
    }
    usage
}

/// The status a chat finish reason means, and why a response is incomplete.
pub(super) fn status(finish_reason: &Value) -> (&'static str, Value) {
    match finish_reason.as_str() {
        Some("length") => ("incomplete", json!({"reason": "max_output_tokens"})),
        Some("content_filter") => ("incomplete", json!({"reason": "content_filter"})),
        _ => ("completed", Value::Null),
    }
}

/// A reasoning item with one summary text.
pub(super) fn reasoning_item(id: &str, text: &str) -> Value {
    json!({"id": id, "type": "reasoning", "summary": [{"type": "summary_text", "text": text}]})
}

/// An assistant message item with one output text.
pub(super) fn message_item(id: &str, text: &str, status: &str) -> Value {
    json!({"id": id, "type": "message", "status": status, "role": "assistant",
           "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]})
}

/// A function call item.
pub(super) fn call_item(
    id: &str,
    call_id: &Value,
    name: &Value,
    arguments: &str,
    status: &str,
) -> Value {
    json!({"id": id, "type": "function_call", "status": status, "arguments": arguments,
           "call_id": call_id, "name": name})
}

/// The `response` object around `output`, with the fields every client reads.
pub(super) fn envelope(
    id: &str,
    model: &Value,
    created: u64,
    status: &str,
    output: Vec<Value>,
    usage: Value,
) -> Value {
    json!({
        "id": id, "object": "response", "created_at": created, "status": status,
        "model": model, "output": output, "usage": usage, "error": null,
        "incomplete_details": null, "parallel_tool_calls": true, "tool_choice": "auto",
        "tools": [], "metadata": {},
    })
}

/// A response id from a chat completion's id.
pub(super) fn response_id(chat_id: &Value) -> String {
    match chat_id.as_str().filter(|s| !s.is_empty()) {
        Some(id) if id.starts_with("resp_") => id.to_string(),
        Some(id) => format!("resp_{id}"),
        None => "resp_llm_router".to_string(),
    }
}

/// Translates a complete chat answer into a Responses `response`.
pub(crate) fn response(chat: &Value) -> Value {
    let choice = &chat["choices"][0];
    let message = &choice["message"];
    let id = response_id(&chat["id"]);
    let mut output = Vec::new();
    let reasoning = ["reasoning_content", "reasoning"]
        .iter()
        .find_map(|k| message[*k].as_str())
        .filter(|r| !r.is_empty());
    if let Some(text) = reasoning {
        output.push(reasoning_item(&format!("rs_{id}"), text));
    }
    let text = [&message["content"], &message["refusal"]]
        .iter()
        .filter_map(|v| v.as_str())
        .collect::<String>();
    if !text.is_empty() {
        output.push(message_item(&format!("msg_{id}"), &text, "completed"));
    }
    for (i, call) in message["tool_calls"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let f = &call["function"];
        output.push(call_item(
            &format!("fc_{id}_{i}"),
            &call["id"],
            &f["name"],
            f["arguments"]
                .as_str()
                .filter(|a| !a.is_empty())
                .unwrap_or("{}"),
            "completed",
        ));
    }
    let (status, incomplete) = status(&choice["finish_reason"]);
    let created = chat["created"].as_u64().unwrap_or_else(now_secs);
    let mut out = envelope(
        &id,
        &chat["model"],
        created,
        status,
        output,
        usage(&chat["usage"]),
    );
    out["incomplete_details"] = incomplete;
    out
}

/// The echo of the request's fields a client may read back (`instructions`, `tools`, ...).
pub(super) fn echo(out: &mut Value, request: &Map<String, Value>) {
    for key in [
        "instructions",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "temperature",
        "top_p",
        "max_output_tokens",
        "reasoning",
        "store",
        "text",
        "metadata",
        "user",
    ] {
        if let Some(v) = request.get(key).filter(|v| !v.is_null()) {
            out[key] = v.clone();
        }
    }
}
