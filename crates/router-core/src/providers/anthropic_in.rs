//! Requests that arrive in Anthropic's Messages format (`/v1/messages`) for a provider that
//! speaks OpenAI's: the request is translated to a chat completion, and the answer (complete,
//! streamed, or an error) back into Anthropic's shapes. As the other way, a field without a
//! counterpart is refused with a 400 that names it.

use super::bad;
use crate::{RouterError, TokenUsage};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// Text of Anthropic content that may only hold text (system, tool results).
fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn image_part(block: &Value, path: &str) -> Result<Value, RouterError> {
    let source = &block["source"];
    let url = match source["type"].as_str() {
        Some("base64") => format!(
            "data:{};base64,{}",
            source["media_type"].as_str().unwrap_or("image/png"),
            source["data"].as_str().unwrap_or("")
        ),
        Some("url") => source["url"].as_str().unwrap_or("").to_string(),
        other => {
            return Err(bad(
                format!("{path}: image source {other:?} is not supported"),
                "messages",
            ))
        }
    };
    Ok(json!({"type": "image_url", "image_url": {"url": url}}))
}

/// Anthropic's `thinking` as OpenAI's `reasoning_effort`: a budget under 4,096 tokens is
/// `low`, under 16,384 `medium`, else `high`; `adaptive` leaves the effort to the model and
/// `disabled` asks for nothing.
fn reasoning_effort(thinking: &Value) -> Result<Option<&'static str>, RouterError> {
    match thinking["type"].as_str() {
        Some("disabled") | Some("adaptive") => Ok(None),
        Some("enabled") => {
            let budget = thinking["budget_tokens"].as_u64().ok_or_else(|| {
                bad(
                    "thinking.budget_tokens must be a positive integer".into(),
                    "thinking",
                )
            })?;
            Ok(Some(match budget {
                0..4096 => "low",
                4096..16384 => "medium",
                _ => "high",
            }))
        }
        _ => Err(bad(
            format!("thinking {thinking} is not understood"),
            "thinking",
        )),
    }
}

/// A tool call id for an answer whose provider sent none (Anthropic requires one).
fn new_tool_id() -> String {
    let mut id = String::from("toolu_");
    id.extend(std::iter::repeat_with(fastrand::alphanumeric).take(24));
    id
}

/// The Anthropic error type for an upstream status (OpenAI's own types, such as
/// `server_error`, mean nothing to an Anthropic client).
fn error_type(status: u16) -> &'static str {
    match status {
        400 | 422 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        _ => "api_error",
    }
}

/// The Anthropic error type for an error event in an OpenAI-format (or Gemini) stream, which
/// has no status to go by: Anthropic's own types are kept, rate limits and overload are
/// recognised, anything else is an `api_error`.
fn stream_error_type(kind: &str) -> &'static str {
    match kind {
        "invalid_request_error" => "invalid_request_error",
        "rate_limit_error"
        | "rate_limit_exceeded"
        | "RESOURCE_EXHAUSTED"
        | "insufficient_quota" => "rate_limit_error",
        "overloaded_error" | "UNAVAILABLE" => "overloaded_error",
        _ => "api_error",
    }
}

/// Translates an Anthropic Messages request into an OpenAI chat request for `model`.
pub(crate) fn request(anthropic: &Map<String, Value>, model: &str) -> Result<Value, RouterError> {
    let mut out = Map::new();
    out.insert("model".into(), json!(model));
    let mut messages: Vec<Value> = Vec::new();
    let mut parallel: Option<bool> = None;
    for (key, value) in anthropic {
        match key.as_str() {
            "model" | "messages" | "system" => {}
            "max_tokens" | "temperature" | "top_p" => {
                out.insert(key.clone(), value.clone());
            }
            "stream" => {
                out.insert("stream".into(), value.clone());
                if value == &json!(true) {
                    out.insert("stream_options".into(), json!({"include_usage": true}));
                }
            }
            "thinking" => {
                if let Some(effort) = reasoning_effort(value)? {
                    out.insert("reasoning_effort".into(), json!(effort));
                }
            }
            "stop_sequences" => {
                out.insert("stop".into(), value.clone());
            }
            "metadata" => {
                if let Some(user) = value.get("user_id") {
                    out.insert("user".into(), user.clone());
                }
            }
            "tools" => {
                let mut tools = Vec::new();
                for (i, t) in value.as_array().into_iter().flatten().enumerate() {
                    if t.get("input_schema").is_none() {
                        return Err(bad(
                            format!("tools[{i}]: only custom tools (with input_schema) can be sent to an OpenAI-compatible provider"),
                            "tools",
                        ));
                    }
                    let mut f = Map::new();
                    f.insert("name".into(), t["name"].clone());
                    if let Some(d) = t.get("description") {
                        f.insert("description".into(), d.clone());
                    }
                    f.insert("parameters".into(), t["input_schema"].clone());
                    tools.push(json!({"type": "function", "function": f}));
                }
                out.insert("tools".into(), Value::Array(tools));
            }
            "tool_choice" => {
                let choice = match value["type"].as_str() {
                    Some("auto") => json!("auto"),
                    Some("any") => json!("required"),
                    Some("none") => json!("none"),
                    Some("tool") => json!({"type": "function", "function": {"name": value["name"]}}),
                    _ => return Err(bad(format!("tool_choice {value} is not understood"), "tool_choice")),
                };
                if value["disable_parallel_tool_use"] == json!(true) {
                    parallel = Some(false);
                }
                out.insert("tool_choice".into(), choice);
            }
            other => {
                return Err(bad(
                    format!("the field '{other}' cannot be translated for an OpenAI-compatible provider; remove it or route to an Anthropic one"),
                    other,
                ))
            }
        }
    }
    if let Some(p) = parallel {
        out.insert("parallel_tool_calls".into(), json!(p));
    }
    match anthropic.get("system") {
        None | Some(Value::Null) => {}
        Some(system) => messages.push(json!({"role": "system", "content": text_of(system)})),
    }
    let Some(list) = anthropic.get("messages").and_then(Value::as_array) else {
        return Err(bad("'messages' must be an array".into(), "messages"));
    };
    for (i, m) in list.iter().enumerate() {
        let path = format!("messages[{i}]");
        let role = m["role"].as_str();
        let blocks: Vec<Value> = match &m["content"] {
            Value::String(s) => vec![json!({"type": "text", "text": s})],
            Value::Array(b) => b.clone(),
            _ => {
                return Err(bad(
                    format!("{path}.content must be a string or an array"),
                    "messages",
                ))
            }
        };
        match role {
            Some("user") => {
                let mut parts = Vec::new();
                for (j, b) in blocks.iter().enumerate() {
                    match b["type"].as_str() {
                        Some("text") => parts.push(json!({"type": "text", "text": b["text"]})),
                        Some("image") => parts.push(image_part(b, &format!("{path}.content[{j}]"))?),
                        Some("tool_result") => {
                            if b["content"].as_array().is_some_and(|c| c.iter().any(|x| x["type"] != "text")) {
                                return Err(bad(
                                    format!("{path}.content[{j}]: a tool_result with images or documents cannot be sent to an OpenAI-compatible provider"),
                                    "messages",
                                ));
                            }
                            let mut text = text_of(&b["content"]);
                            if b["is_error"] == json!(true) {
                                text = format!("Error: {text}");
                            }
                            messages.push(json!({"role": "tool", "tool_call_id": b["tool_use_id"], "content": text}));
                        }
                        other => {
                            return Err(bad(
                                format!("{path}.content[{j}]: block type {other:?} cannot be sent to an OpenAI-compatible provider"),
                                "messages",
                            ))
                        }
                    }
                }
                if !parts.is_empty() {
                    let content = match (parts.len(), parts[0]["type"].as_str()) {
                        (1, Some("text")) => parts[0]["text"].clone(),
                        _ => Value::Array(parts),
                    };
                    messages.push(json!({"role": "user", "content": content}));
                }
            }
            Some("assistant") => {
                let mut text = String::new();
                let mut calls = Vec::new();
                for b in &blocks {
                    match b["type"].as_str() {
                        Some("text") => text.push_str(b["text"].as_str().unwrap_or("")),
                        Some("tool_use") => calls.push(json!({
                            "id": b["id"], "type": "function",
                            "function": {"name": b["name"], "arguments": b["input"].to_string()},
                        })),
                        // Thinking has no place in an OpenAI conversation's history.
                        Some("thinking") | Some("redacted_thinking") => {}
                        other => {
                            return Err(bad(
                                format!("{path}: block type {other:?} cannot be sent to an OpenAI-compatible provider"),
                                "messages",
                            ))
                        }
                    }
                }
                let mut msg = json!({"role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { json!(text) }});
                if !calls.is_empty() {
                    msg["tool_calls"] = Value::Array(calls);
                }
                messages.push(msg);
            }
            other => {
                return Err(bad(
                    format!("{path}.role {other:?} is not supported"),
                    "messages",
                ))
            }
        }
    }
    out.insert("messages".into(), Value::Array(messages));
    Ok(Value::Object(out))
}

fn stop_reason(finish: &Value) -> Value {
    match finish.as_str() {
        None => Value::Null,
        Some("length") => json!("max_tokens"),
        Some("tool_calls") | Some("function_call") => json!("tool_use"),
        Some("content_filter") => json!("refusal"),
        Some(_) => json!("end_turn"),
    }
}

/// OpenAI usage in Anthropic's terms: cached prompt tokens are reads, not input.
fn anthropic_usage(u: &Value) -> Value {
    let prompt = u["prompt_tokens"].as_u64().unwrap_or(0);
    let cached = u["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap_or(0)
        .min(prompt);
    json!({
        "input_tokens": prompt - cached,
        "output_tokens": u["completion_tokens"].as_u64().unwrap_or(0),
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": 0,
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

/// An Anthropic error body.
pub(crate) fn error(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

/// An OpenAI error body (`{"error":{...}}`) answered with `status`, in Anthropic's shape.
pub(crate) fn error_from_openai(status: u16, body: &[u8]) -> Value {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    error(
        error_type(status),
        v["error"]["message"].as_str().unwrap_or("upstream error"),
    )
}

/// The reasoning text of an OpenAI-compatible message or delta, if any.
fn reasoning_of(message: &Value) -> Option<&str> {
    ["reasoning_content", "reasoning"]
        .iter()
        .find_map(|k| message[*k].as_str())
        .filter(|r| !r.is_empty())
}

/// Usage of an Anthropic answer or stream event (`usage` at the top or in `message`).
pub(crate) fn usage_in(value: &Value, into: &mut Map<String, Value>) {
    for u in [&value["usage"], &value["message"]["usage"]] {
        if let Some(u) = u.as_object() {
            for (k, v) in u {
                if v.is_u64() {
                    into.insert(k.clone(), v.clone());
                }
            }
        }
    }
}

/// Token counts from Anthropic usage fields.
pub(crate) fn tokens(u: &Map<String, Value>) -> TokenUsage {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    let prompt =
        n("input_tokens") + n("cache_creation_input_tokens") + n("cache_read_input_tokens");
    let completion = n("output_tokens");
    TokenUsage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: prompt + completion,
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Block {
    Thinking,
    Text,
    Tool,
}

/// Turns OpenAI chunks into Anthropic's event sequence: `message_start`, per block
/// `content_block_start`/`delta`/`stop`, `message_delta` (stop reason and usage),
/// `message_stop`.
#[derive(Debug, Default)]
pub(crate) struct StreamTranslator {
    started: bool,
    open: Option<(usize, Block)>,
    next_block: usize,
    /// OpenAI tool call index → Anthropic block index.
    tools: HashMap<u64, usize>,
    /// OpenAI tool call index → its id.
    tool_ids: HashMap<u64, String>,
    finish: Value,
    /// The answer was a refusal (`delta.refusal`).
    refused: bool,
    usage: Value,
    pub(crate) done: bool,
    pub(crate) failed: bool,
}

fn ev(kind: &str, data: Value) -> (String, Value) {
    (kind.to_string(), data)
}

impl StreamTranslator {
    pub(crate) fn usage(&self) -> Option<TokenUsage> {
        let u = &self.usage;
        u.is_object().then(|| TokenUsage {
            prompt_tokens: u["prompt_tokens"].as_u64().unwrap_or(0),
            completion_tokens: u["completion_tokens"].as_u64().unwrap_or(0),
            total_tokens: u["total_tokens"].as_u64().unwrap_or(
                u["prompt_tokens"].as_u64().unwrap_or(0)
                    + u["completion_tokens"].as_u64().unwrap_or(0),
            ),
        })
    }

    fn close(&mut self, out: &mut Vec<(String, Value)>) {
        if let Some((index, _)) = self.open.take() {
            out.push(ev(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": index}),
            ));
        }
    }

    fn open(&mut self, kind: Block, start: Value, out: &mut Vec<(String, Value)>) -> usize {
        self.close(out);
        let index = self.next_block;
        self.next_block += 1;
        self.open = Some((index, kind));
        out.push(ev(
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": start}),
        ));
        index
    }

    /// Anthropic events `(event name, data)` for one OpenAI event's data (`[DONE]` included).
    pub(crate) fn event(&mut self, data: &[u8]) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        if data.trim_ascii() == b"[DONE]" {
            self.finish_message(&mut out);
            return out;
        }
        let Ok(chunk) = serde_json::from_slice::<Value>(data) else {
            return out;
        };
        if let Some(e) = chunk.get("error") {
            self.failed = true;
            out.push(ev(
                "error",
                error(
                    stream_error_type(e["type"].as_str().unwrap_or("")),
                    e["message"].as_str().unwrap_or("upstream error"),
                ),
            ));
            return out;
        }
        let no_choices = chunk["choices"].as_array().is_none_or(|c| c.is_empty());
        if !self.started && no_choices && !chunk["usage"].is_object() {
            // Azure opens with a content-filter chunk: no choices, empty id and model.
            return out;
        }
        if !self.started {
            self.started = true;
            out.push(ev("message_start", json!({"type": "message_start", "message": {
                "id": chunk["id"], "type": "message", "role": "assistant", "model": chunk["model"],
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": 0, "output_tokens": 0},
            }})));
        }
        if chunk["usage"].is_object() {
            self.usage = chunk["usage"].clone();
        }
        let choice = &chunk["choices"][0];
        let delta = &choice["delta"];
        if let Some(thinking) = reasoning_of(delta) {
            let index = match self.open {
                Some((i, Block::Thinking)) => i,
                _ => self.open(
                    Block::Thinking,
                    json!({"type": "thinking", "thinking": "", "signature": ""}),
                    &mut out,
                ),
            };
            out.push(ev("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "thinking_delta", "thinking": thinking}})));
        }
        let refusal = delta["refusal"].as_str().filter(|t| !t.is_empty());
        self.refused |= refusal.is_some();
        let text = delta["content"].as_str().filter(|t| !t.is_empty());
        for text in [text, refusal].into_iter().flatten() {
            let index = match self.open {
                Some((i, Block::Text)) => i,
                _ => self.open(Block::Text, json!({"type": "text", "text": ""}), &mut out),
            };
            out.push(ev("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}})));
        }
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            let tool = call["index"].as_u64().unwrap_or(0);
            let id = call["id"].as_str().filter(|i| !i.is_empty());
            let known = self.tools.get(&tool).copied();
            let same_call = match (known, id) {
                (Some(_), None) => true,
                (Some(_), Some(id)) => self.tool_ids.get(&tool).is_some_and(|k| k == id),
                (None, _) => false,
            };
            let index = match known {
                Some(i) if same_call => i,
                _ => {
                    if let Some(id) = id {
                        self.tool_ids.insert(tool, id.to_string());
                    }
                    let id = id.map_or_else(new_tool_id, str::to_string);
                    let start = json!({"type": "tool_use", "id": id, "name": call["function"]["name"], "input": {}});
                    let i = self.open(Block::Tool, start, &mut out);
                    self.tools.insert(tool, i);
                    i
                }
            };
            if let Some(args) = call["function"]["arguments"]
                .as_str()
                .filter(|a| !a.is_empty())
            {
                out.push(ev("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": args}})));
            }
        }
        if !choice["finish_reason"].is_null() {
            self.finish = if self.tools.is_empty() {
                choice["finish_reason"].clone()
            } else {
                // A forced tool choice ends with "stop" on OpenAI: still a tool turn.
                json!("tool_calls")
            };
            self.close(&mut out);
        }
        out
    }

    fn finish_message(&mut self, out: &mut Vec<(String, Value)>) {
        if self.done {
            return;
        }
        self.close(out);
        let usage = anthropic_usage(&self.usage);
        let reason = if self.refused && self.tools.is_empty() {
            json!("refusal")
        } else {
            stop_reason(&self.finish)
        };
        out.push(ev("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": null}, "usage": usage})));
        out.push(ev("message_stop", json!({"type": "message_stop"})));
        self.done = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translates_a_messages_request() {
        let r = json!({
            "model": "g", "max_tokens": 100, "system": [{"type": "text", "text": "be brief"}],
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "BBBB"}},
                ]},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "s"},
                    {"type": "tool_use", "id": "toolu_1", "name": "look", "input": {"q": 1}},
                ]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "a cat"}]},
            ],
            "temperature": 0, "stop_sequences": ["X"], "stream": true,
            "tools": [{"name": "look", "description": "d", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
            "metadata": {"user_id": "u"},
        });
        let out = request(r.as_object().unwrap(), "gpt-x").unwrap();
        assert_eq!(out["model"], "gpt-x");
        assert_eq!(out["max_tokens"], 100);
        assert_eq!(out["temperature"], 0);
        assert_eq!(out["stop"], json!(["X"]));
        assert_eq!(out["stream_options"], json!({"include_usage": true}));
        assert_eq!(out["tool_choice"], "required");
        assert_eq!(out["parallel_tool_calls"], false);
        assert_eq!(out["user"], "u");
        assert_eq!(
            out["tools"][0]["function"]["parameters"],
            json!({"type": "object"})
        );
        let m = out["messages"].as_array().unwrap();
        assert_eq!(m[0], json!({"role": "system", "content": "be brief"}));
        assert_eq!(
            m[1]["content"][1]["image_url"]["url"],
            "data:image/jpeg;base64,BBBB"
        );
        assert_eq!(m[2]["tool_calls"][0]["function"]["arguments"], "{\"q\":1}");
        assert_eq!(
            m[3],
            json!({"role": "tool", "tool_call_id": "toolu_1", "content": "a cat"})
        );
        let bad = json!({"model": "g", "messages": [], "top_k": 5});
        assert!(
            matches!(request(bad.as_object().unwrap(), "m"), Err(RouterError::BadRequest { param: Some(p), .. }) if p == "top_k")
        );
    }

    #[test]
    fn forced_tool_choice_is_a_tool_turn() {
        let answer = json!({"id": "c", "model": "m", "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}}]});
        assert_eq!(response(&answer)["stop_reason"], "tool_use");
        let mut t = StreamTranslator::default();
        let mut names = Vec::new();
        for c in [
            json!({"id": "c", "model": "m", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "f", "arguments": "{\"a\""}}]}}]}),
            // Some servers repeat the id on every delta: still one block.
            json!({"id": "c", "model": "m", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1", "function": {"arguments": ":1}"}}]}}]}),
            json!({"id": "c", "model": "m", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
        ] {
            names.extend(t.event(c.to_string().as_bytes()));
        }
        names.extend(t.event(b"[DONE]"));
        let starts = names
            .iter()
            .filter(|(n, _)| n == "content_block_start")
            .count();
        assert_eq!(starts, 1);
        let delta = names.iter().find(|(n, _)| n == "message_delta").unwrap();
        assert_eq!(delta.1["delta"]["stop_reason"], "tool_use");
    }

    #[test]
    fn azure_filter_chunk_does_not_open_the_message() {
        let mut t = StreamTranslator::default();
        let filter = json!({"id": "", "model": "", "choices": [], "prompt_filter_results": [{"prompt_index": 0}]});
        assert!(t.event(filter.to_string().as_bytes()).is_empty());
        let out = t.event(json!({"id": "chatcmpl-1", "model": "gpt", "choices": [{"index": 0, "delta": {"content": "hi"}}]}).to_string().as_bytes());
        assert_eq!(out[0].1["message"]["id"], "chatcmpl-1");
        assert_eq!(out[0].1["message"]["model"], "gpt");
    }

    #[test]
    fn tool_results_keep_errors_and_refuse_images() {
        let with = |content: Value, is_error: bool| {
            json!({"model": "g", "max_tokens": 5, "messages": [{"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": content, "is_error": is_error}]}]})
        };
        let out = request(with(json!("boom"), true).as_object().unwrap(), "m").unwrap();
        assert_eq!(out["messages"][0]["content"], "Error: boom");
        let img = json!([{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "A"}}]);
        assert!(matches!(
            request(with(img, false).as_object().unwrap(), "m"),
            Err(RouterError::BadRequest { .. })
        ));
        let off = json!({"model": "g", "max_tokens": 5, "thinking": {"type": "disabled"}, "messages": []});
        assert!(request(off.as_object().unwrap(), "m").is_ok());
    }

    #[test]
    fn translates_chunks_into_the_full_event_sequence() {
        let mut t = StreamTranslator::default();
        let chunks = [
            json!({"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]}),
            json!({"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": null}]}),
            json!({"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}]}, "finish_reason": null}]}),
            json!({"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"a\":1}"}}]}, "finish_reason": null}]}),
            json!({"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
            json!({"id": "c1", "model": "m", "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}}),
        ];
        let mut events: Vec<(String, Value)> = chunks
            .iter()
            .flat_map(|c| t.event(c.to_string().as_bytes()))
            .collect();
        events.extend(t.event(b"[DONE]"));
        let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop",
            ]
        );
        assert_eq!(
            events[4].1["content_block"],
            json!({"type": "tool_use", "id": "call_1", "name": "f", "input": {}})
        );
        assert_eq!(
            events[5].1["delta"],
            json!({"type": "input_json_delta", "partial_json": "{\"a\":1}"})
        );
        assert_eq!(events[7].1["delta"]["stop_reason"], "tool_use");
        assert_eq!(events[7].1["usage"]["output_tokens"], 4);
        assert_eq!(events[7].1["usage"]["input_tokens"], 9);
        assert!(t.done);
        assert_eq!(t.usage().unwrap().total_tokens, 13);
    }

    #[test]
    fn thinking_becomes_reasoning_effort() {
        let with = |thinking: Value| {
            let r = json!({"model": "g", "max_tokens": 20000, "thinking": thinking,
                           "messages": [{"role": "user", "content": "x"}]});
            request(r.as_object().unwrap(), "m")
        };
        let effort = |budget: u64| {
            with(json!({"type": "enabled", "budget_tokens": budget})).unwrap()["reasoning_effort"]
                .clone()
        };
        assert_eq!(effort(1024), "low");
        assert_eq!(effort(4096), "medium");
        assert_eq!(effort(16384), "high");
        for quiet in ["disabled", "adaptive"] {
            let out = with(json!({"type": quiet})).unwrap();
            assert!(out.get("reasoning_effort").is_none(), "{quiet}");
        }
        assert!(matches!(
            with(json!({"type": "enabled"})),
            Err(RouterError::BadRequest { .. })
        ));
        assert!(matches!(
            with(json!({"type": "sometimes"})),
            Err(RouterError::BadRequest { .. })
        ));
    }

    #[test]
    fn error_types_follow_the_status() {
        let body = br#"{"error":{"message":"boom","type":"server_error"}}"#;
        for (status, kind) in [
            (400, "invalid_request_error"),
            (401, "authentication_error"),
            (403, "permission_error"),
            (404, "not_found_error"),
            (413, "request_too_large"),
            (429, "rate_limit_error"),
            (500, "api_error"),
            (529, "overloaded_error"),
        ] {
            let e = error_from_openai(status, body);
            assert_eq!(e["error"]["type"], kind, "{status}");
            assert_eq!(e["error"]["message"], "boom");
        }
    }

    #[test]
    fn reasoning_refusals_and_missing_ids_in_answers() {
        let answer = json!({"id": "c", "model": "m", "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": null, "reasoning_content": "Think.",
                        "refusal": "I can't help with that."}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4}});
        let out = response(&answer);
        assert_eq!(
            out["content"],
            json!([{"type": "thinking", "thinking": "Think.", "signature": ""},
                   {"type": "text", "text": "I can't help with that."}])
        );
        assert_eq!(out["stop_reason"], "refusal");

        let answer = json!({"id": "c", "model": "m", "choices": [{"index": 0, "finish_reason": "tool_calls",
            "message": {"role": "assistant", "content": null, "tool_calls": [
                {"type": "function", "function": {"name": "f", "arguments": "{}"}}]}}]});
        let id = response(&answer)["content"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(id.starts_with("toolu_") && id.len() == 30, "{id}");

        let mut t = StreamTranslator::default();
        let mut events = Vec::new();
        for chunk in [
            r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{"role":"assistant","reasoning_content":"Hm"}}]}"#,
            r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{"reasoning_content":"m."}}]}"#,
            r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{"refusal":"No."}}]}"#,
            r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
            "[DONE]",
        ] {
            events.extend(t.event(chunk.as_bytes()));
        }
        let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(
            events[1].1["content_block"],
            json!({"type": "thinking", "thinking": "", "signature": ""})
        );
        assert_eq!(
            events[3].1["delta"],
            json!({"type": "thinking_delta", "thinking": "m."})
        );
        assert_eq!(
            events[6].1["delta"],
            json!({"type": "text_delta", "text": "No."})
        );
        assert_eq!(events[8].1["delta"]["stop_reason"], "refusal");

        let mut t = StreamTranslator::default();
        let events = t.event(br#"{"id":"c","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"type":"function","function":{"name":"f","arguments":""}}]}}]}"#);
        let id = events[1].1["content_block"]["id"].as_str().unwrap();
        assert!(id.starts_with("toolu_"), "{id}");
    }

    #[test]
    fn stream_error_events_get_anthropic_types() {
        for (upstream, kind) in [
            ("server_error", "api_error"),
            ("RESOURCE_EXHAUSTED", "rate_limit_error"),
            ("UNAVAILABLE", "overloaded_error"),
            ("invalid_request_error", "invalid_request_error"),
        ] {
            let mut t = StreamTranslator::default();
            let chunk = json!({"error": {"message": "boom", "type": upstream}}).to_string();
            let events = t.event(chunk.as_bytes());
            assert_eq!(events[0].0, "error");
            assert_eq!(events[0].1["error"]["type"], kind, "{upstream}");
            assert!(t.failed);
        }
    }
}
