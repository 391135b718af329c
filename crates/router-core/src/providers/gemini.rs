//! Gemini's `generateContent` / `streamGenerateContent?alt=sse` ⇄ OpenAI chat completions.
//! As for Anthropic, every OpenAI field is translated or refused with a 400 naming it; the one
//! exception is `user`, an end-user id for the provider's abuse monitoring that Gemini has no
//! place for and that changes nothing in the answer.

use super::{bad, check_detail, check_message_fields, now_secs};
use crate::{RouterError, TokenUsage};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn mime_of(url: &str) -> &'static str {
    let lower = url.to_ascii_lowercase();
    if lower.ends_with(".png") {
        "image/png"
    } else if lower.ends_with(".webp") {
        "image/webp"
    } else if lower.ends_with(".gif") {
        "image/gif"
    } else {
        "image/jpeg"
    }
}

fn user_parts(content: &Value, path: &str) -> Result<Vec<Value>, RouterError> {
    match content {
        Value::String(s) => Ok(vec![json!({"text": s})]),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, p)| match p["type"].as_str() {
                Some("text") => Ok(json!({"text": p["text"]})),
                Some("image_url") => {
                    check_detail(p, &format!("{path}[{i}]"), "a Gemini provider")?;
                    let url = p["image_url"]["url"].as_str().unwrap_or("");
                    if let Some(rest) = url.strip_prefix("data:") {
                        let (meta, data) = rest.split_once(',').unwrap_or(("", ""));
                        let mime = meta.strip_suffix(";base64").ok_or_else(|| {
                            bad(format!("{path}[{i}]: only base64 data URLs are supported"), "messages")
                        })?;
                        Ok(json!({"inlineData": {"mimeType": mime, "data": data}}))
                    } else {
                        Ok(json!({"fileData": {"mimeType": mime_of(url), "fileUri": url}}))
                    }
                }
                other => Err(bad(
                    format!("{path}[{i}]: content part type {other:?} cannot be sent to a Gemini provider"),
                    "messages",
                )),
            })
            .collect(),
        _ => Err(bad(format!("{path} must be a string or an array of parts"), "messages")),
    }
}

/// Between a tool call id and the thought signature it carries.
const SIGNATURE_MARK: &str = "__thought__";

/// The thought signature Gemini accepts for a function call it did not sign itself.
const UNSIGNED: &str = "skip_thought_signature_validator";

/// A base64 signature in the id alphabet every API accepts (`[A-Za-z0-9_-]`): URL-safe
/// base64 without padding.
fn to_id_safe(signature: &str) -> String {
    signature
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect()
}

/// The standard base64 signature back from [`to_id_safe`].
fn from_id_safe(safe: &str) -> String {
    let mut out: String = safe
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    while out.len() % 4 != 0 {
        out.push('=');
    }
    out
}

/// OpenAI's `reasoning_effort` as a Gemini thinking budget (`none` switches thinking off).
fn thinking_budget(effort: &Value) -> Result<u64, RouterError> {
    Ok(match effort.as_str() {
        Some("none") => 0,
        Some("minimal") | Some("low") => 1024,
        Some("medium") => 4096,
        Some("high") => 16384,
        Some("xhigh") => 32768,
        _ => {
            return Err(bad(
                format!("reasoning_effort {effort} is not understood"),
                "reasoning_effort",
            ))
        }
    })
}

/// Translates an OpenAI chat request into a Gemini `generateContent` request for `model`.
/// Gemini 3 models refuse a function call in the history without its thought signature; a
/// call they did not sign (made by another provider, or whose signature was lost) goes with
/// the placeholder Gemini documents for that case.
pub(crate) fn request_for(openai: &Map<String, Value>, model: &str) -> Result<Value, RouterError> {
    let mut out = request(openai)?;
    if model.starts_with("gemini-3") {
        for content in out["contents"].as_array_mut().into_iter().flatten() {
            for part in content["parts"].as_array_mut().into_iter().flatten() {
                if part.get("functionCall").is_some() && part.get("thoughtSignature").is_none() {
                    part["thoughtSignature"] = json!(UNSIGNED);
                }
            }
        }
    }
    Ok(out)
}

/// Translates an OpenAI chat request into a Gemini `generateContent` request.
pub(crate) fn request(openai: &Map<String, Value>) -> Result<Value, RouterError> {
    let mut out = Map::new();
    let mut config = Map::new();
    for (key, value) in openai {
        if value.is_null() {
            continue;
        }
        match key.as_str() {
            "model" | "messages" | "stream" | "stream_options" | "user" => {}
            "temperature" => {
                config.insert("temperature".into(), value.clone());
            }
            "top_p" => {
                config.insert("topP".into(), value.clone());
            }
            "max_tokens" | "max_completion_tokens" => {
                config.insert("maxOutputTokens".into(), value.clone());
            }
            "seed" => {
                config.insert("seed".into(), value.clone());
            }
            "reasoning_effort" => {
                let budget = thinking_budget(value)?;
                // Thought summaries come back as `reasoning_content`.
                config.insert(
                    "thinkingConfig".into(),
                    json!({"thinkingBudget": budget, "includeThoughts": budget > 0}),
                );
            }
            "presence_penalty" => {
                config.insert("presencePenalty".into(), value.clone());
            }
            "frequency_penalty" => {
                config.insert("frequencyPenalty".into(), value.clone());
            }
            "stop" => {
                let list = match value {
                    Value::String(s) => json!([s]),
                    other => other.clone(),
                };
                config.insert("stopSequences".into(), list);
            }
            "n" if value == &json!(1) => {}
            "parallel_tool_calls" if value == &json!(true) => {}
            "response_format" => match value["type"].as_str() {
                Some("text") => {}
                Some("json_object") => {
                    config.insert("responseMimeType".into(), json!("application/json"));
                }
                _ => {
                    return Err(bad(
                        "response_format: only 'text' and 'json_object' can be sent to a Gemini provider".into(),
                        "response_format",
                    ))
                }
            },
            "tools" => {
                let mut declarations = Vec::new();
                for (i, t) in value.as_array().into_iter().flatten().enumerate() {
                    if t["type"] != "function" {
                        return Err(bad(format!("tools[{i}]: only function tools can be sent to a Gemini provider"), "tools"));
                    }
                    let f = &t["function"];
                    let mut d = Map::new();
                    d.insert("name".into(), f["name"].clone());
                    if let Some(desc) = f.get("description") {
                        d.insert("description".into(), desc.clone());
                    }
                    if let Some(p) = f.get("parameters") {
                        d.insert("parameters".into(), p.clone());
                    }
                    if f.get("strict") == Some(&json!(true)) {
                        return Err(bad(format!("tools[{i}].function.strict: a Gemini provider cannot hold a call to its schema strictly"), "tools"));
                    }
                    declarations.push(Value::Object(d));
                }
                out.insert("tools".into(), json!([{"functionDeclarations": declarations}]));
            }
            "tool_choice" => {
                let config = match value {
                    Value::String(s) if s == "auto" => json!({"mode": "AUTO"}),
                    Value::String(s) if s == "none" => json!({"mode": "NONE"}),
                    Value::String(s) if s == "required" => json!({"mode": "ANY"}),
                    Value::Object(_) if value["type"] == "function" => {
                        json!({"mode": "ANY", "allowedFunctionNames": [value["function"]["name"]]})
                    }
                    _ => return Err(bad(format!("tool_choice {value} is not understood"), "tool_choice")),
                };
                out.insert("toolConfig".into(), json!({"functionCallingConfig": config}));
            }
            other => {
                return Err(bad(
                    format!("the field '{other}' cannot be translated for a Gemini provider; remove it or route to an OpenAI-compatible one"),
                    other,
                ))
            }
        }
    }
    if !config.is_empty() {
        out.insert("generationConfig".into(), Value::Object(config));
    }

    let Some(list) = openai.get("messages").and_then(Value::as_array) else {
        return Err(bad("'messages' must be an array".into(), "messages"));
    };
    let mut system = Vec::new();
    let mut contents: Vec<Value> = Vec::new();
    // Gemini names a function's response by the function, OpenAI by the call id.
    let mut call_names: HashMap<String, Value> = HashMap::new();
    for (i, m) in list.iter().enumerate() {
        let path = format!("messages[{i}]");
        check_message_fields(m, &path, "a Gemini provider")?;
        match m["role"].as_str() {
            Some("system") | Some("developer") => system.push(json!({"text": text_of(&m["content"])})),
            Some("user") => contents.push(json!({"role": "user", "parts": user_parts(&m["content"], &format!("{path}.content"))?})),
            Some("assistant") => {
                let mut parts = Vec::new();
                let text = text_of(&m["content"]);
                if !text.is_empty() {
                    parts.push(json!({"text": text}));
                }
                if let Some(refusal) = m["refusal"].as_str().filter(|r| !r.is_empty()) {
                    parts.push(json!({"text": refusal}));
                }
                for (j, call) in m["tool_calls"].as_array().into_iter().flatten().enumerate() {
                    let args = call["function"]["arguments"].as_str().unwrap_or("{}");
                    let args: Value = serde_json::from_str(if args.trim().is_empty() { "{}" } else { args })
                        .map_err(|_| bad(format!("{path}.tool_calls[{j}].function.arguments is not valid JSON"), "messages"))?;
                    if let Some(id) = call["id"].as_str() {
                        call_names.insert(id.to_string(), call["function"]["name"].clone());
                    }
                    let mut part = json!({"functionCall": {"name": call["function"]["name"], "args": args}});
                    if let Some((_, signature)) = call["id"].as_str().and_then(|id| id.split_once(SIGNATURE_MARK)) {
                        part["thoughtSignature"] = json!(from_id_safe(signature));
                    }
                    parts.push(part);
                }
                if parts.is_empty() {
                    parts.push(json!({"text": ""}));
                }
                contents.push(json!({"role": "model", "parts": parts}));
            }
            Some("tool") => {
                let id = m["tool_call_id"].as_str().unwrap_or("");
                let name = call_names.get(id).cloned().ok_or_else(|| {
                    bad(format!("{path}: tool_call_id '{id}' matches no earlier tool call"), "messages")
                })?;
                let text = text_of(&m["content"]);
                let response = match serde_json::from_str::<Value>(&text) {
                    Ok(Value::Object(o)) => Value::Object(o),
                    _ => json!({"content": text}),
                };
                let part = json!({"functionResponse": {"name": name, "response": response}});
                match contents.last_mut() {
                    Some(last) if last["role"] == "user" && last["parts"].as_array().is_some_and(|p| p.iter().all(|x| x.get("functionResponse").is_some())) => {
                        if let Some(p) = last["parts"].as_array_mut() {
                            p.push(part);
                        }
                    }
                    _ => contents.push(json!({"role": "user", "parts": [part]})),
                }
            }
            other => return Err(bad(format!("{path}.role {other:?} is not supported"), "messages")),
        }
    }
    if !system.is_empty() {
        out.insert("systemInstruction".into(), json!({"parts": system}));
    }
    out.insert("contents".into(), Value::Array(contents));
    Ok(Value::Object(out))
}

fn finish_reason(reason: &Value, called: bool) -> Value {
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
    }
}

fn openai_usage(meta: &Value) -> Value {
    let u = usage_of(meta);
    json!({
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
        "prompt_tokens_details": {"cached_tokens": meta["cachedContentTokenCount"].as_u64().unwrap_or(0)},
    })
}

/// What a candidate's parts say.
struct Said {
    text: String,
    /// Thought summaries (`thought: true` parts), as OpenAI-compatible `reasoning_content`.
    reasoning: String,
    calls: Vec<Value>,
}

/// Text, reasoning and tool calls of a candidate's parts; `first_index` numbers the calls.
fn parts_of(candidate: &Value, first_index: usize) -> Said {
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

/// Turns Gemini's stream (each event a partial answer) into OpenAI chunks; the stream has no
/// end marker, so [`StreamTranslator::finish`] closes it.
#[derive(Debug, Default)]
pub(crate) struct StreamTranslator {
    model: String,
    created: u64,
    include_usage: bool,
    started: bool,
    calls: usize,
    usage: Value,
    finished: bool,
}

impl StreamTranslator {
    pub(crate) fn new(model: &str, include_usage: bool) -> Self {
        Self {
            model: model.to_string(),
            created: now_secs(),
            include_usage,
            ..Self::default()
        }
    }

    pub(crate) fn usage(&self) -> Option<TokenUsage> {
        self.usage.is_object().then(|| usage_of(&self.usage))
    }

    fn chunk(&self, delta: Value, finish: Value) -> Value {
        json!({
            "id": "chatcmpl-gemini", "object": "chat.completion.chunk", "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        })
    }

    /// OpenAI chunks for one Gemini event; an `{"error":...}` event comes back as one error.
    pub(crate) fn event(&mut self, data: &[u8]) -> Result<Vec<Value>, Value> {
        let Ok(event) = serde_json::from_slice::<Value>(data) else {
            return Ok(Vec::new());
        };
        if event.get("error").is_some() {
            return Err(error_body(data));
        }
        let mut out = Vec::new();
        if !self.started {
            self.started = true;
            out.push(self.chunk(json!({"role": "assistant", "content": ""}), Value::Null));
        }
        if event["usageMetadata"].is_object() {
            self.usage = event["usageMetadata"].clone();
        }
        let candidate = &event["candidates"][0];
        let Said {
            text,
            reasoning,
            calls,
        } = parts_of(candidate, self.calls);
        self.calls += calls.len();
        if !reasoning.is_empty() {
            out.push(self.chunk(json!({"reasoning_content": reasoning}), Value::Null));
        }
        if !text.is_empty() {
            out.push(self.chunk(json!({"content": text}), Value::Null));
        }
        if !calls.is_empty() {
            out.push(self.chunk(json!({"tool_calls": calls}), Value::Null));
        }
        if !candidate["finishReason"].is_null() && !self.finished {
            self.finished = true;
            out.push(self.chunk(
                json!({}),
                finish_reason(&candidate["finishReason"], self.calls > 0),
            ));
        }
        Ok(out)
    }

    /// Whether the answer got its finish reason (a stream without one was cut short).
    pub(crate) fn complete(&self) -> bool {
        self.finished
    }

    /// The closing chunks: the usage chunk, when the client asked for it.
    pub(crate) fn finish(&self) -> Vec<Value> {
        if !self.include_usage {
            return Vec::new();
        }
        vec![json!({
            "id": "chatcmpl-gemini", "object": "chat.completion.chunk", "created": self.created,
            "model": self.model, "choices": [], "usage": openai_usage(&self.usage),
        })]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translates_a_request() {
        let r = json!({
            "model": "g",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                    {"type": "image_url", "image_url": {"url": "https://x.example/cat.webp"}},
                ]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "look", "arguments": "{\"q\":1}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "a cat"},
            ],
            "temperature": 0, "top_p": 0.9, "max_tokens": 10, "stop": "END", "seed": 3,
            "tools": [{"type": "function", "function": {"name": "look", "parameters": {"type": "object"}}}],
            "tool_choice": {"type": "function", "function": {"name": "look"}},
            "user": "u",
        });
        let out = request(r.as_object().unwrap()).unwrap();
        assert_eq!(
            out["systemInstruction"],
            json!({"parts": [{"text": "be brief"}]})
        );
        assert_eq!(
            out["generationConfig"],
            json!({"temperature": 0, "topP": 0.9, "maxOutputTokens": 10, "stopSequences": ["END"], "seed": 3})
        );
        assert_eq!(
            out["tools"],
            json!([{"functionDeclarations": [{"name": "look", "parameters": {"type": "object"}}]}])
        );
        assert_eq!(
            out["toolConfig"],
            json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["look"]}})
        );
        let c = out["contents"].as_array().unwrap();
        assert_eq!(
            c[0]["parts"][1],
            json!({"inlineData": {"mimeType": "image/png", "data": "AAAA"}})
        );
        assert_eq!(
            c[0]["parts"][2],
            json!({"fileData": {"mimeType": "image/webp", "fileUri": "https://x.example/cat.webp"}})
        );
        assert_eq!(
            c[1],
            json!({"role": "model", "parts": [{"functionCall": {"name": "look", "args": {"q": 1}}}]})
        );
        assert_eq!(
            c[2],
            json!({"role": "user", "parts": [{"functionResponse": {"name": "look", "response": {"content": "a cat"}}}]})
        );
        let bad = json!({"model": "g", "messages": [], "logprobs": true});
        assert!(
            matches!(request(bad.as_object().unwrap()), Err(RouterError::BadRequest { param: Some(p), .. }) if p == "logprobs")
        );
    }

    #[test]
    fn translates_answers_and_streams() {
        let answer = json!({
            "candidates": [{"content": {"role": "model", "parts": [{"text": "Hi "}, {"functionCall": {"name": "f", "args": {"a": 1}}}]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 3, "totalTokenCount": 8},
            "modelVersion": "gemini-x", "responseId": "r1",
        });
        let (out, usage) = response(&answer, "m");
        assert_eq!(out["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(
            out["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            "{\"a\":1}"
        );
        assert_eq!(usage.total_tokens, 8);
        let mut t = StreamTranslator::new("m", true);
        let a = t
            .event(br#"{"candidates":[{"content":{"parts":[{"text":"He"}]}}]}"#)
            .unwrap();
        let b = t.event(br#"{"candidates":[{"content":{"parts":[{"text":"llo"}]},"finishReason":"MAX_TOKENS"}],"usageMetadata":{"promptTokenCount":2,"candidatesTokenCount":2,"totalTokenCount":4}}"#).unwrap();
        assert_eq!(a[0]["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(a[1]["choices"][0]["delta"]["content"], "He");
        assert_eq!(b.last().unwrap()["choices"][0]["finish_reason"], "length");
        assert!(t.complete());
        assert_eq!(t.finish()[0]["usage"]["total_tokens"], 4);
        assert!(t
            .event(br#"{"error":{"code":429,"message":"slow down","status":"RESOURCE_EXHAUSTED"}}"#)
            .is_err());
    }

    #[test]
    fn fields_without_a_counterpart_are_refused_by_name() {
        let refused = |v: Value| match request(v.as_object().unwrap()) {
            Err(RouterError::BadRequest { message, .. }) => message,
            other => panic!("expected 400, got {other:?}"),
        };
        let m = refused(json!({"messages": [{"role": "user", "content": "x", "name": "bob"}]}));
        assert!(m.contains("messages[0].name"), "{m}");
        let m = refused(
            json!({"messages": [{"role": "user", "content": "x"}], "tools": [
            {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}, "strict": true}}]}),
        );
        assert!(m.contains("tools[0].function.strict"), "{m}");
        let m = refused(json!({"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://x.example/a.png", "detail": "low"}}]}]}));
        assert!(m.contains("detail 'low'"), "{m}");
        let out = request(
            json!({"messages": [
                {"role": "user", "content": "x"},
                {"role": "assistant", "content": null, "refusal": "No."},
            ]})
            .as_object()
            .unwrap(),
        )
        .unwrap();
        assert_eq!(out["contents"][1]["parts"], json!([{"text": "No."}]));
    }

    #[test]
    fn thought_signatures_travel_in_tool_call_ids_and_effort_becomes_a_budget() {
        let answer = json!({"candidates": [{"content": {"role": "model", "parts": [
            {"functionCall": {"name": "f", "args": {"a": 1}}, "thoughtSignature": "CiQB+/x="}]},
            "finishReason": "STOP"}]});
        let (out, _) = response(&answer, "m");
        let id = out["choices"][0]["message"]["tool_calls"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        // In the alphabet every API's ids accept: URL-safe base64 without padding.
        assert_eq!(id, "call_0__thought__CiQB-_x");
        // The client sends the call back with its result: the signature goes back with the call.
        let next = request(json!({"messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": id, "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
            {"role": "tool", "tool_call_id": id, "content": "done"},
        ], "reasoning_effort": "medium"}).as_object().unwrap())
        .unwrap();
        assert_eq!(
            next["contents"][1]["parts"][0],
            json!({"functionCall": {"name": "f", "args": {"a": 1}}, "thoughtSignature": "CiQB+/x="})
        );
        assert_eq!(
            next["contents"][2]["parts"][0]["functionResponse"]["name"],
            "f"
        );
        assert_eq!(
            next["generationConfig"]["thinkingConfig"],
            json!({"thinkingBudget": 4096, "includeThoughts": true})
        );
        // A Gemini 3 model gets the documented placeholder for a call it did not sign.
        let history = json!({"messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_from_elsewhere", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_from_elsewhere", "content": "done"},
        ]});
        let history = history.as_object().unwrap();
        let part =
            |model: &str| request_for(history, model).unwrap()["contents"][1]["parts"][0].clone();
        assert_eq!(
            part("gemini-3-pro-preview")["thoughtSignature"],
            "skip_thought_signature_validator"
        );
        assert!(part("gemini-2.5-flash").get("thoughtSignature").is_none());
        let off = request(
            json!({"messages": [], "reasoning_effort": "none"})
                .as_object()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            off["generationConfig"]["thinkingConfig"],
            json!({"thinkingBudget": 0, "includeThoughts": false})
        );
        assert!(request(
            json!({"messages": [], "reasoning_effort": 3})
                .as_object()
                .unwrap()
        )
        .is_err());
    }
}
