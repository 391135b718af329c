//! Anthropic Messages API ⇄ OpenAI chat completions: the request one way, the answer (complete,
//! streamed, or an error) the other. Every OpenAI field is either translated or, when Anthropic
//! has no counterpart, refused with a 400 that names it: nothing is dropped silently.

use super::{bad, check_detail, check_message_fields, now_secs};
use crate::{RouterError, TokenUsage};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// Text of an OpenAI `content` that may only hold text (system and tool messages).
fn text_only(content: &Value, path: &str) -> Result<String, RouterError> {
    match content {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => {
            let mut texts = Vec::new();
            for (i, part) in parts.iter().enumerate() {
                match (part["type"].as_str(), part["text"].as_str()) {
                    (Some("text"), Some(t)) => texts.push(t),
                    _ => {
                        return Err(bad(
                            format!("{path}[{i}]: only text parts can be sent to an Anthropic provider here"),
                            path,
                        ))
                    }
                }
            }
            Ok(texts.join("\n"))
        }
        _ => Err(bad(
            format!("{path} must be a string or an array of parts"),
            path,
        )),
    }
}

/// An OpenAI `image_url` part as an Anthropic `image` block.
fn image_block(part: &Value, path: &str) -> Result<Value, RouterError> {
    check_detail(part, path, "an Anthropic provider")?;
    let url = part["image_url"]["url"]
        .as_str()
        .or_else(|| part["image_url"].as_str())
        .ok_or_else(|| bad(format!("{path}.image_url.url is missing"), path))?;
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest
            .split_once(',')
            .ok_or_else(|| bad(format!("{path}: malformed data URL"), path))?;
        let media_type = meta
            .strip_suffix(";base64")
            .ok_or_else(|| bad(format!("{path}: only base64 data URLs are supported"), path))?;
        Ok(
            json!({"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}),
        )
    } else if url.starts_with("http://") || url.starts_with("https://") {
        Ok(json!({"type": "image", "source": {"type": "url", "url": url}}))
    } else {
        Err(bad(
            format!("{path}: image URL must be http(s) or a data URL"),
            path,
        ))
    }
}

/// User content: a string stays a string; parts become text and image blocks.
fn user_content(content: &Value, path: &str) -> Result<Value, RouterError> {
    match content {
        Value::String(s) => Ok(Value::String(s.clone())),
        Value::Array(parts) => {
            let mut blocks = Vec::new();
            for (i, part) in parts.iter().enumerate() {
                let p = format!("{path}[{i}]");
                match part["type"].as_str() {
                    Some("text") => blocks.push(json!({"type": "text", "text": part["text"]})),
                    Some("image_url") => blocks.push(image_block(part, &p)?),
                    other => {
                        return Err(bad(
                            format!("{p}: content part type {other:?} cannot be sent to an Anthropic provider"),
                            path,
                        ))
                    }
                }
            }
            Ok(Value::Array(blocks))
        }
        _ => Err(bad(
            format!("{path} must be a string or an array of parts"),
            path,
        )),
    }
}

/// A function's `parameters` as Anthropic's `input_schema`, which must describe an object:
/// none means no parameters, and an object schema that leaves out its `type` gets it.
fn input_schema(parameters: &Value, tool: usize) -> Result<Value, RouterError> {
    match parameters {
        Value::Null => Ok(json!({"type": "object", "properties": {}})),
        Value::Object(schema) => match schema.get("type") {
            None => {
                let mut schema = schema.clone();
                schema.insert("type".into(), json!("object"));
                Ok(Value::Object(schema))
            }
            Some(t) if t == "object" => Ok(parameters.clone()),
            Some(t) => Err(bad(
                format!("tools[{tool}].function.parameters must describe an object (its type is {t}), as an Anthropic provider requires"),
                "tools",
            )),
        },
        _ => Err(bad(
            format!("tools[{tool}].function.parameters must be a JSON Schema object"),
            "tools",
        )),
    }
}

/// The smallest thinking budget Anthropic accepts.
const MIN_THINKING_BUDGET: u64 = 1024;

/// The smallest output limit of current Claude models: a raised `max_tokens` stays within it.
const MAX_OUTPUT_TOKENS: u64 = 32_000;

/// Translates an OpenAI chat request into an Anthropic Messages request for `model`.
pub(crate) fn request(
    openai: &Map<String, Value>,
    model: &str,
    default_max_tokens: u64,
) -> Result<Value, RouterError> {
    let mut out = Map::new();
    out.insert("model".into(), json!(model));
    let mut system: Vec<String> = Vec::new();
    let mut messages: Vec<Value> = Vec::new();
    let mut parallel_tools: Option<bool> = None;
    let mut tool_choice: Option<Value> = None;
    let mut thinking_budget: Option<u64> = None;
    for (key, value) in openai {
        // `null` means "not set" in OpenAI's API.
        if value.is_null() {
            continue;
        }
        match key.as_str() {
            "model" | "messages" | "stream_options" => {}
            // Values that ask for nothing beyond the default are no reason to refuse.
            "presence_penalty" | "frequency_penalty" if value.as_f64() == Some(0.0) => {}
            "logprobs" if value == &json!(false) => {}
            "response_format" if value["type"] == "text" => {}
            "stream" => {
                out.insert("stream".into(), value.clone());
            }
            "max_tokens" | "max_completion_tokens" => {
                if !value.is_null() {
                    out.insert("max_tokens".into(), value.clone());
                }
            }
            "temperature" | "top_p" => {
                if !value.is_null() {
                    out.insert(key.clone(), value.clone());
                }
            }
            "stop" => match value {
                Value::Null => {}
                Value::String(s) => {
                    out.insert("stop_sequences".into(), json!([s]));
                }
                Value::Array(_) => {
                    out.insert("stop_sequences".into(), value.clone());
                }
                _ => return Err(bad("'stop' must be a string or an array".into(), "stop")),
            },
            "user" => {
                out.insert("metadata".into(), json!({"user_id": value}));
            }
            "n" if value == &json!(1) || value.is_null() => {}
            "reasoning_effort" => {
                thinking_budget = match value.as_str() {
                    Some("none") => None,
                    Some("minimal") | Some("low") => Some(1024),
                    Some("medium") => Some(4096),
                    Some("high") => Some(16384),
                    Some("xhigh") => Some(32768),
                    _ => {
                        return Err(bad(
                            format!("reasoning_effort {value} is not understood"),
                            "reasoning_effort",
                        ))
                    }
                }
            }
            "parallel_tool_calls" => parallel_tools = value.as_bool(),
            "tools" => {
                let mut tools = Vec::new();
                for (i, tool) in value.as_array().into_iter().flatten().enumerate() {
                    if tool["type"] != "function" {
                        return Err(bad(
                            format!("tools[{i}]: only function tools can be sent to an Anthropic provider"),
                            "tools",
                        ));
                    }
                    let f = &tool["function"];
                    let mut t = Map::new();
                    t.insert("name".into(), f["name"].clone());
                    if let Some(d) = f.get("description").filter(|d| !d.is_null()) {
                        t.insert("description".into(), d.clone());
                    }
                    t.insert("input_schema".into(), input_schema(&f["parameters"], i)?);
                    // Strict tool use: the input is held to the schema on both APIs.
                    if f.get("strict") == Some(&json!(true)) {
                        t.insert("strict".into(), json!(true));
                    }
                    tools.push(Value::Object(t));
                }
                out.insert("tools".into(), Value::Array(tools));
            }
            "tool_choice" => {
                tool_choice = Some(match value {
                    Value::String(s) if s == "auto" => json!({"type": "auto"}),
                    Value::String(s) if s == "required" => json!({"type": "any"}),
                    Value::String(s) if s == "none" => json!({"type": "none"}),
                    Value::Object(o) if o.get("type") == Some(&json!("function")) => {
                        json!({"type": "tool", "name": value["function"]["name"]})
                    }
                    _ => return Err(bad(format!("tool_choice {value} is not understood"), "tool_choice")),
                })
            }
            other => {
                return Err(bad(
                    format!("the field '{other}' cannot be translated for an Anthropic provider; remove it or route to an OpenAI-compatible one"),
                    other,
                ))
            }
        }
    }
    let has_tools = out
        .get("tools")
        .and_then(Value::as_array)
        .is_some_and(|t| !t.is_empty());
    if parallel_tools == Some(false) && has_tools {
        let choice = tool_choice.get_or_insert_with(|| json!({"type": "auto"}));
        // `none` takes no other field.
        if choice["type"] != "none" {
            choice["disable_parallel_tool_use"] = json!(true);
        }
    }
    if let Some(choice) = tool_choice {
        out.insert("tool_choice".into(), choice);
    }
    let client_limit = out.get("max_tokens").and_then(Value::as_u64);
    out.entry("max_tokens").or_insert(json!(default_max_tokens));

    let Some(list) = openai.get("messages").and_then(Value::as_array) else {
        return Err(bad("'messages' must be an array".into(), "messages"));
    };
    for (i, m) in list.iter().enumerate() {
        let path = format!("messages[{i}]");
        check_message_fields(m, &path, "an Anthropic provider")?;
        match m["role"].as_str() {
            Some("system") | Some("developer") => {
                system.push(text_only(&m["content"], &format!("{path}.content"))?)
            }
            Some("user") => messages.push(json!({
                "role": "user",
                "content": user_content(&m["content"], &format!("{path}.content"))?,
            })),
            Some("assistant") => {
                let mut blocks = Vec::new();
                let text = text_only(&m["content"], &format!("{path}.content"))?;
                if !text.is_empty() {
                    blocks.push(json!({"type": "text", "text": text}));
                }
                // An earlier refusal is what the assistant said.
                if let Some(refusal) = m["refusal"].as_str().filter(|r| !r.is_empty()) {
                    blocks.push(json!({"type": "text", "text": refusal}));
                }
                for (j, call) in m["tool_calls"].as_array().into_iter().flatten().enumerate() {
                    let args = call["function"]["arguments"].as_str().unwrap_or("{}");
                    let input: Value =
                        serde_json::from_str(if args.trim().is_empty() { "{}" } else { args })
                            .map_err(|_| {
                                bad(
                            format!("{path}.tool_calls[{j}].function.arguments is not valid JSON"),
                            "messages",
                        )
                            })?;
                    blocks.push(json!({
                        "type": "tool_use",
                        "id": tool_id(&call["id"], &format!("{path}.tool_calls[{j}].id"))?,
                        "name": call["function"]["name"],
                        "input": input,
                    }));
                }
                // Anthropic refuses empty text blocks: an empty assistant turn is left out.
                if !blocks.is_empty() {
                    messages.push(json!({"role": "assistant", "content": blocks}));
                }
            }
            Some("tool") => {
                let result = json!({
                    "type": "tool_result",
                    "tool_use_id": tool_id(&m["tool_call_id"], &format!("{path}.tool_call_id"))?,
                    "content": text_only(&m["content"], &format!("{path}.content"))?,
                });
                // Consecutive tool results go into one user turn.
                match messages.last_mut() {
                    Some(last)
                        if last["role"] == "user"
                            && last["content"]
                                .as_array()
                                .is_some_and(|c| c.iter().all(|b| b["type"] == "tool_result")) =>
                    {
                        if let Some(c) = last["content"].as_array_mut() {
                            c.push(result);
                        }
                    }
                    _ => messages.push(json!({"role": "user", "content": [result]})),
                }
            }
            other => {
                return Err(bad(
                    format!("{path}.role {other:?} is not supported"),
                    "messages",
                ))
            }
        }
    }
    if !system.is_empty() {
        out.insert("system".into(), json!(system.join("\n\n")));
    }
    // Anthropic takes back a tool-use turn made while thinking only with its signed thinking
    // block, which an OpenAI conversation cannot carry: such a turn continues without thinking.
    let in_tool_loop = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "assistant")
        .and_then(|m| m["content"].as_array())
        .is_some_and(|blocks| blocks.iter().any(|b| b["type"] == "tool_use"));
    if let Some(budget) = thinking_budget.filter(|_| !in_tool_loop) {
        if let Some(t) = out.get("temperature").filter(|t| t.as_f64() != Some(1.0)) {
            return Err(bad(
                format!("temperature {t} cannot be sent with reasoning_effort to an Anthropic provider (thinking requires temperature 1)"),
                "temperature",
            ));
        }
        if out
            .get("tool_choice")
            .is_some_and(|c| c["type"] == "any" || c["type"] == "tool")
        {
            return Err(bad(
                "a forced tool_choice cannot be sent with reasoning_effort to an Anthropic provider (thinking allows only auto or none)".into(),
                "tool_choice",
            ));
        }
        let max_tokens = match client_limit {
            // Both APIs count reasoning within the completion limit: the budget stays below it.
            Some(max) => max,
            // No limit set: the default is for the answer and the budget comes on top, within
            // the smallest output limit of current models.
            None => default_max_tokens
                .saturating_add(budget)
                .min(MAX_OUTPUT_TOKENS),
        };
        let budget = budget.min(max_tokens.saturating_sub(1));
        if budget < MIN_THINKING_BUDGET {
            return Err(bad(
                format!("reasoning_effort needs max_tokens above {MIN_THINKING_BUDGET} on an Anthropic provider (thinking takes at least {MIN_THINKING_BUDGET} tokens)"),
                "reasoning_effort",
            ));
        }
        out.insert(
            "thinking".into(),
            json!({"type": "enabled", "budget_tokens": budget}),
        );
        out.insert("max_tokens".into(), json!(max_tokens));
    }

    out.insert("messages".into(), Value::Array(messages));
    Ok(Value::Object(out))
}

/// A tool call id as Anthropic accepts it (`^[a-zA-Z0-9_-]+$`). Ids made by other providers
/// (`functions.lookup:0`) are rewritten the same way wherever they appear, so a call and its
/// result still match; a short hash of the original keeps two rewritten ids apart.
fn tool_id(id: &Value, path: &str) -> Result<String, RouterError> {
    let Some(id) = id.as_str().filter(|i| !i.is_empty()) else {
        return Err(bad(format!("{path} is missing"), "messages"));
    };
    let valid = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if id.chars().all(valid) {
        return Ok(id.to_string());
    }
    use sha2::Digest;
    let hash = sha2::Sha256::digest(id.as_bytes());
    let clean: String = id.chars().map(|c| if valid(c) { c } else { '_' }).collect();
    Ok(format!("{clean}_{}", hex::encode(&hash[..4])))
}

fn finish_reason(stop_reason: &Value) -> Value {
    match stop_reason.as_str() {
        None => Value::Null,
        Some("max_tokens") | Some("model_context_window_exceeded") => json!("length"),
        Some("tool_use") => json!("tool_calls"),
        Some("refusal") => json!("content_filter"),
        Some(_) => json!("stop"),
    }
}

/// Anthropic usage as token counts: prompt includes cache creation and cache reads.
fn usage_of(u: &Value) -> TokenUsage {
    let n = |k: &str| u[k].as_u64().unwrap_or(0);
    let prompt =
        n("input_tokens") + n("cache_creation_input_tokens") + n("cache_read_input_tokens");
    let completion = n("output_tokens");
    TokenUsage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: prompt + completion,
    }
}

fn openai_usage(u: TokenUsage, cached: u64) -> Value {
    json!({
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
        "prompt_tokens_details": {"cached_tokens": cached},
    })
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
    let usage = usage_of(&answer["usage"]);
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
        "usage": openai_usage(usage, answer["usage"]["cache_read_input_tokens"].as_u64().unwrap_or(0)),
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

/// Turns an Anthropic event stream into OpenAI chunks, event by event.
#[derive(Debug, Default)]
pub(crate) struct StreamTranslator {
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
    /// Anthropic content block index → OpenAI tool call index.
    tools: HashMap<u64, usize>,
    usage: Value,
    /// `message_stop` arrived: the stream is complete.
    pub(crate) done: bool,
    /// An `error` event arrived.
    pub(crate) failed: bool,
}

impl StreamTranslator {
    pub(crate) fn new(include_usage: bool) -> Self {
        Self {
            include_usage,
            created: now_secs(),
            usage: json!({}),
            ..Self::default()
        }
    }

    pub(crate) fn usage(&self) -> Option<TokenUsage> {
        (!self.usage.as_object().is_none_or(|u| u.is_empty())).then(|| usage_of(&self.usage))
    }

    fn chunk(&self, delta: Value, finish: Value) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        })
    }

    fn merge_usage(&mut self, u: &Value) {
        if let (Some(dst), Some(src)) = (self.usage.as_object_mut(), u.as_object()) {
            for (k, v) in src {
                if !v.is_null() {
                    dst.insert(k.clone(), v.clone());
                }
            }
        }
    }

    /// The OpenAI events (as JSON) for one Anthropic event's data.
    pub(crate) fn event(&mut self, data: &[u8]) -> Vec<Value> {
        let Ok(event) = serde_json::from_slice::<Value>(data) else {
            return Vec::new();
        };
        match event["type"].as_str() {
            Some("message_start") => {
                let m = &event["message"];
                self.id = m["id"].as_str().unwrap_or("").to_string();
                self.model = m["model"].as_str().unwrap_or("").to_string();
                self.merge_usage(&m["usage"]);
                vec![self.chunk(json!({"role": "assistant", "content": ""}), Value::Null)]
            }
            Some("content_block_start") => {
                let block = &event["content_block"];
                match block["type"].as_str() {
                    Some("tool_use") => {
                        let index = self.tools.len();
                        self.tools
                            .insert(event["index"].as_u64().unwrap_or(0), index);
                        vec![self.chunk(
                            json!({"tool_calls": [{
                                "index": index, "id": block["id"], "type": "function",
                                "function": {"name": block["name"], "arguments": ""},
                            }]}),
                            Value::Null,
                        )]
                    }
                    Some("text") if block["text"].as_str().is_some_and(|t| !t.is_empty()) => {
                        vec![self.chunk(json!({"content": block["text"]}), Value::Null)]
                    }
                    _ => Vec::new(),
                }
            }
            Some("content_block_delta") => {
                let delta = &event["delta"];
                match delta["type"].as_str() {
                    Some("text_delta") => {
                        vec![self.chunk(json!({"content": delta["text"]}), Value::Null)]
                    }
                    Some("thinking_delta") => {
                        vec![self
                            .chunk(json!({"reasoning_content": delta["thinking"]}), Value::Null)]
                    }
                    Some("input_json_delta") => {
                        let block = event["index"].as_u64().unwrap_or(0);
                        let index = self.tools.get(&block).copied().unwrap_or(0);
                        vec![self.chunk(
                            json!({"tool_calls": [{"index": index, "function": {"arguments": delta["partial_json"]}}]}),
                            Value::Null,
                        )]
                    }
                    _ => Vec::new(),
                }
            }
            Some("message_delta") => {
                self.merge_usage(&event["usage"]);
                vec![self.chunk(json!({}), finish_reason(&event["delta"]["stop_reason"]))]
            }
            Some("message_stop") => {
                self.done = true;
                if self.include_usage {
                    let usage = usage_of(&self.usage);
                    let cached = self.usage["cache_read_input_tokens"].as_u64().unwrap_or(0);
                    vec![json!({
                        "id": self.id, "object": "chat.completion.chunk", "created": self.created,
                        "model": self.model, "choices": [], "usage": openai_usage(usage, cached),
                    })]
                } else {
                    Vec::new()
                }
            }
            Some("error") => {
                self.failed = true;
                vec![error_body(data)]
            }
            _ => Vec::new(), // ping and future event types
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(v: Value) -> Result<Value, RouterError> {
        request(v.as_object().unwrap(), "claude-x", 4096)
    }

    #[test]
    fn translates_a_full_request() {
        let out = req(json!({
            "model": "g",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                    {"type": "image_url", "image_url": {"url": "https://x.example/a.jpg"}},
                ]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "look", "arguments": "{\"q\":1}"}},
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "a cat"},
            ],
            "temperature": 0,
            "top_p": 0.5,
            "stop": "END",
            "max_completion_tokens": 77,
            "tools": [{"type": "function", "function": {"name": "look", "description": "d", "parameters": {"type": "object"}}}],
            "tool_choice": "required",
            "parallel_tool_calls": false,
            "user": "u1",
            "stream": true,
            "stream_options": {"include_usage": true},
        }))
        .unwrap();
        assert_eq!(out["model"], "claude-x");
        assert_eq!(out["system"], "be brief");
        assert_eq!(out["temperature"], 0, "temperature 0 kept");
        assert_eq!(out["top_p"], 0.5);
        assert_eq!(out["stop_sequences"], json!(["END"]));
        assert_eq!(out["max_tokens"], 77);
        assert_eq!(out["stream"], true);
        assert_eq!(out["metadata"], json!({"user_id": "u1"}));
        assert_eq!(
            out["tool_choice"],
            json!({"type": "any", "disable_parallel_tool_use": true})
        );
        assert_eq!(
            out["tools"][0],
            json!({"name": "look", "description": "d", "input_schema": {"type": "object"}})
        );
        let m = out["messages"].as_array().unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(
            m[0]["content"][1]["source"],
            json!({"type": "base64", "media_type": "image/png", "data": "AAAA"})
        );
        assert_eq!(
            m[0]["content"][2]["source"],
            json!({"type": "url", "url": "https://x.example/a.jpg"})
        );
        assert_eq!(
            m[1]["content"][0],
            json!({"type": "tool_use", "id": "call_1", "name": "look", "input": {"q": 1}})
        );
        assert_eq!(
            m[2]["content"][0],
            json!({"type": "tool_result", "tool_use_id": "call_1", "content": "a cat"})
        );
    }

    #[test]
    fn defaults_max_tokens_and_maps_tool_choice() {
        let base = json!({"model": "g", "messages": [{"role": "user", "content": "hi"}]});
        assert_eq!(req(base.clone()).unwrap()["max_tokens"], 4096);
        for (choice, want) in [
            (json!("auto"), json!({"type": "auto"})),
            (json!("none"), json!({"type": "none"})),
            (
                json!({"type": "function", "function": {"name": "f"}}),
                json!({"type": "tool", "name": "f"}),
            ),
        ] {
            let mut r = base.clone();
            r["tool_choice"] = choice;
            assert_eq!(req(r).unwrap()["tool_choice"], want);
        }
    }

    #[test]
    fn refuses_what_cannot_be_translated_by_name() {
        for field in [
            "logprobs",
            "presence_penalty",
            "seed",
            "response_format",
            "logit_bias",
        ] {
            let mut r = json!({"model": "g", "messages": []});
            r[field] = json!(true);
            match req(r) {
                Err(RouterError::BadRequest { message, param }) => {
                    assert!(message.contains(field), "{message}");
                    assert_eq!(param.as_deref(), Some(field));
                }
                other => panic!("{field}: {other:?}"),
            }
        }
        let r = json!({"model": "g", "n": 2, "messages": []});
        assert!(req(r).is_err());
        let r = json!({"model": "g", "messages": [{"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{oops"}}]}]});
        assert!(
            matches!(req(r), Err(RouterError::BadRequest { message, .. }) if message.contains("not valid JSON"))
        );
    }

    #[test]
    fn accepts_defaults_and_builds_only_valid_requests() {
        let r = json!({"model": "g", "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": ""},
            {"role": "user", "content": "again"},
        ], "presence_penalty": 0, "frequency_penalty": 0.0, "logprobs": false,
           "response_format": {"type": "text"}, "seed": null, "stream": null, "parallel_tool_calls": false});
        let out = req(r).unwrap();
        assert!(out.get("tool_choice").is_none(), "no tools: no tool_choice");
        assert!(out.get("stream").is_none());
        assert_eq!(
            out["messages"].as_array().unwrap().len(),
            2,
            "the empty assistant turn is left out"
        );
        let r = json!({"model": "g", "messages": [{"role": "user", "content": "x"}], "tool_choice": "none", "parallel_tool_calls": false,
                       "tools": [{"type": "function", "function": {"name": "f"}}]});
        assert_eq!(req(r).unwrap()["tool_choice"], json!({"type": "none"}));
    }

    #[test]
    fn translates_answers_and_errors() {
        let (out, usage) = response(&json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
            "content": [
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "toolu_1", "name": "look", "input": {"q": "cat"}},
            ],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 3, "cache_creation_input_tokens": 2},
        }));
        assert_eq!(out["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(out["choices"][0]["message"]["content"], "Let me look.");
        let call = &out["choices"][0]["message"]["tool_calls"][0];
        assert_eq!(
            call["function"]["arguments"]
                .as_str()
                .map(|a| serde_json::from_str::<Value>(a).unwrap()),
            Some(json!({"q": "cat"}))
        );
        assert_eq!(
            usage,
            TokenUsage {
                prompt_tokens: 15,
                completion_tokens: 5,
                total_tokens: 20
            }
        );
        assert_eq!(out["usage"]["prompt_tokens_details"]["cached_tokens"], 3);
        let e = error_body(
            br#"{"type":"error","error":{"type":"invalid_request_error","message":"bad thing"}}"#,
        );
        assert_eq!(
            e,
            json!({"error": {"message": "bad thing", "type": "invalid_request_error", "param": null, "code": null}})
        );
    }

    #[test]
    fn translates_a_stream_with_tool_use() {
        let mut t = StreamTranslator::new(true);
        let events = [
            json!({"type": "message_start", "message": {"id": "msg_1", "model": "claude-x", "usage": {"input_tokens": 7, "output_tokens": 1}}}),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            json!({"type": "ping"}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}}),
            json!({"type": "content_block_stop", "index": 0}),
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "look", "input": {}}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"q\":"}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "1}"}}),
            json!({"type": "content_block_stop", "index": 1}),
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}}),
            json!({"type": "message_stop"}),
        ];
        let chunks: Vec<Value> = events
            .iter()
            .flat_map(|e| t.event(e.to_string().as_bytes()))
            .collect();
        assert!(t.done && !t.failed);
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(chunks[0]["id"], "msg_1");
        assert_eq!(chunks[1]["choices"][0]["delta"]["content"], "Hi");
        assert_eq!(
            chunks[2]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"],
            "look"
        );
        let args: String = chunks[3..5]
            .iter()
            .map(|c| {
                c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(args, "{\"q\":1}");
        assert_eq!(chunks[5]["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(chunks[6]["usage"]["total_tokens"], 16);
        assert_eq!(chunks.len(), 7);
        assert_eq!(t.usage().unwrap().total_tokens, 16);
    }

    fn refused(v: Value) -> (String, Option<String>) {
        match req(v) {
            Err(RouterError::BadRequest { message, param, .. }) => (message, param),
            other => panic!("expected 400, got {other:?}"),
        }
    }

    #[test]
    fn foreign_tool_ids_are_rewritten_the_same_way_everywhere() {
        let out = req(json!({"model": "g", "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "functions.look:0", "type": "function", "function": {"name": "look", "arguments": "{}"}},
                {"id": "functions_look_0", "type": "function", "function": {"name": "look", "arguments": "{}"}},
            ]},
            {"role": "tool", "tool_call_id": "functions.look:0", "content": "a"},
            {"role": "tool", "tool_call_id": "functions_look_0", "content": "b"},
        ]}))
        .unwrap();
        let used = &out["messages"][1]["content"];
        let results = &out["messages"][2]["content"];
        let first = used[0]["id"].as_str().unwrap();
        assert!(first.starts_with("functions_look_0_"), "{first}");
        assert!(first
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'));
        assert_eq!(results[0]["tool_use_id"], first);
        // A valid id is kept as it is, and a rewritten one cannot collide with it.
        assert_eq!(used[1]["id"], "functions_look_0");
        assert_eq!(results[1]["tool_use_id"], used[1]["id"]);
        assert_ne!(used[0]["id"], used[1]["id"]);

        let (m, _) = refused(json!({"model": "g", "messages": [
            {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        ]}));
        assert!(m.contains("messages[0].tool_calls[0].id is missing"), "{m}");
        let (m, _) = refused(json!({"model": "g", "messages": [{"role": "tool", "content": "x"}]}));
        assert!(m.contains("messages[0].tool_call_id is missing"), "{m}");
    }

    #[test]
    fn tool_schemas_are_objects_and_strict_is_kept() {
        let tools = |params: Value| {
            json!({"model": "g", "messages": [{"role": "user", "content": "x"}], "tools": [
                {"type": "function", "function": {"name": "f", "parameters": params, "strict": true}},
            ]})
        };
        let out = req(tools(json!({"properties": {"a": {"type": "string"}}}))).unwrap();
        assert_eq!(
            out["tools"][0],
            json!({"name": "f", "strict": true,
                   "input_schema": {"type": "object", "properties": {"a": {"type": "string"}}}})
        );
        let mut lax = tools(Value::Null);
        lax["tools"][0]["function"]["strict"] = json!(false);
        assert!(req(lax).unwrap()["tools"][0].get("strict").is_none());
        let out = req(tools(Value::Null)).unwrap();
        assert_eq!(
            out["tools"][0]["input_schema"],
            json!({"type": "object", "properties": {}})
        );
        let (m, p) = refused(tools(json!({"type": "string"})));
        assert!(m.contains("must describe an object"), "{m}");
        assert_eq!(p.as_deref(), Some("tools"));
    }

    #[test]
    fn fields_without_a_counterpart_are_refused_by_name() {
        let (m, _) = refused(
            json!({"model": "g", "messages": [{"role": "user", "content": "x", "name": "bob"}]}),
        );
        assert!(m.contains("messages[0].name"), "{m}");
        let (m, _) = refused(json!({"model": "g", "messages": [
            {"role": "assistant", "content": "x", "function_call": {"name": "f", "arguments": "{}"}}]}));
        assert!(m.contains("messages[0].function_call"), "{m}");
        let (m, _) = refused(json!({"model": "g", "messages": [
            {"role": "assistant", "content": null, "audio": {"id": "a1"}}]}));
        assert!(m.contains("messages[0].audio"), "{m}");
        let image = |detail: &str| {
            json!({"model": "g", "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "https://x.example/a.png", "detail": detail}}]}]})
        };
        assert!(req(image("high")).is_ok());
        assert!(req(image("auto")).is_ok());
        let (m, _) = refused(image("low"));
        assert!(m.contains("image_url.detail 'low'"), "{m}");
        // An earlier refusal is kept as what the assistant said; null and empty fields ask for
        // nothing, and the annotations an SDK sends back are metadata of that answer.
        let out = req(json!({"model": "g", "messages": [
            {"role": "user", "content": "x", "name": null},
            {"role": "assistant", "content": null, "refusal": "I can't help with that.",
             "annotations": [], "tool_calls": [], "audio": null},
            {"role": "user", "content": "ok"},
        ]}))
        .unwrap();
        assert_eq!(
            out["messages"][1]["content"],
            json!([{"type": "text", "text": "I can't help with that."}])
        );
    }

    #[test]
    fn reasoning_effort_becomes_a_thinking_budget_and_thinking_comes_back() {
        let base = |extra: Value| {
            let mut v = json!({"model": "g", "messages": [{"role": "user", "content": "x"}]});
            for (k, val) in extra.as_object().unwrap() {
                v[k] = val.clone();
            }
            v
        };
        let out = req(base(json!({"reasoning_effort": "medium"}))).unwrap();
        assert_eq!(
            out["thinking"],
            json!({"type": "enabled", "budget_tokens": 4096})
        );
        assert_eq!(out["max_tokens"], 4096 + 4096);
        // Raised within the smallest output limit of current models.
        let out = req(base(json!({"reasoning_effort": "xhigh"}))).unwrap();
        assert_eq!(out["max_tokens"], 32000);
        assert_eq!(out["thinking"]["budget_tokens"], 31999);
        // What thinking does not allow is refused by name.
        let (_, p) = refused(base(json!({"reasoning_effort": "low", "temperature": 0.2})));
        assert_eq!(p.as_deref(), Some("temperature"));
        assert!(req(base(json!({"reasoning_effort": "low", "temperature": 1}))).is_ok());
        let forced = base(json!({"reasoning_effort": "low", "tool_choice": "required",
            "tools": [{"type": "function", "function": {"name": "f"}}]}));
        assert_eq!(refused(forced).1.as_deref(), Some("tool_choice"));
        // A tool loop continues without thinking: the earlier turn's signed thinking is gone.
        let mut looping = base(json!({"reasoning_effort": "low",
            "tools": [{"type": "function", "function": {"name": "f"}}]}));
        looping["messages"] = json!([
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "done"},
        ]);
        assert!(req(looping).unwrap().get("thinking").is_none());
        let out = req(base(
            json!({"reasoning_effort": "high", "max_completion_tokens": 8000}),
        ))
        .unwrap();
        assert_eq!(
            out["thinking"],
            json!({"type": "enabled", "budget_tokens": 7999})
        );
        assert_eq!(out["max_tokens"], 8000);
        assert!(req(base(json!({"reasoning_effort": "none"})))
            .unwrap()
            .get("thinking")
            .is_none());
        let (m, p) = refused(base(json!({"reasoning_effort": "low", "max_tokens": 500})));
        assert!(m.contains("above 1024"), "{m}");
        assert_eq!(p.as_deref(), Some("reasoning_effort"));
        assert_eq!(
            refused(base(json!({"reasoning_effort": "max"})))
                .1
                .as_deref(),
            Some("reasoning_effort")
        );

        let (answer, _) = response(&json!({"id": "m", "model": "c", "content": [
            {"type": "thinking", "thinking": "Let me see.", "signature": "sig"},
            {"type": "text", "text": "42"},
        ], "stop_reason": "model_context_window_exceeded", "usage": {"input_tokens": 1, "output_tokens": 2}}));
        let message = &answer["choices"][0]["message"];
        assert_eq!(message["reasoning_content"], "Let me see.");
        assert_eq!(message["content"], "42");
        assert_eq!(answer["choices"][0]["finish_reason"], "length");

        let mut t = StreamTranslator::new(false);
        t.event(br#"{"type":"message_start","message":{"id":"m","model":"c","usage":{"input_tokens":1}}}"#);
        t.event(br#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}"#);
        let chunks = t.event(br#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Hmm"}}"#);
        assert_eq!(
            chunks[0]["choices"][0]["delta"],
            json!({"reasoning_content": "Hmm"})
        );
        assert!(t.event(br#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"s"}}"#).is_empty());
    }
}
