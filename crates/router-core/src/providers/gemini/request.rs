//! An OpenAI chat request (the common form) as a Gemini `generateContent` request. As for
//! Anthropic, every field is translated or follows the field policy (`crate::fields`); `user`,
//! an end-user id for the provider's abuse monitoring that Gemini has no place for and that
//! changes nothing in the answer, is left out without a word, as before the policy existed.

use crate::fields::{untranslatable, Fields};
use crate::json::text_of;
use crate::providers::{bad, check_detail, check_message_fields};
use crate::RouterError;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

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
pub(super) const SIGNATURE_MARK: &str = "__thought__";

/// The thought signature Gemini accepts for a function call it did not sign itself.
const UNSIGNED: &str = "skip_thought_signature_validator";

/// A base64 signature in the id alphabet every API accepts (`[A-Za-z0-9_-]`): URL-safe
/// base64 without padding.
pub(super) fn to_id_safe(signature: &str) -> String {
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
    while !out.len().is_multiple_of(4) {
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
pub(crate) fn request_for(
    openai: &Map<String, Value>,
    model: &str,
    fields: &mut Fields,
) -> Result<Value, RouterError> {
    let mut out = request(openai, fields)?;
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
pub(crate) fn request(
    openai: &Map<String, Value>,
    fields: &mut Fields,
) -> Result<Value, RouterError> {
    let mut out = Map::new();
    let config = top_level(openai, &mut out, fields)?;
    if !config.is_empty() {
        out.insert("generationConfig".into(), Value::Object(config));
    }
    let Some(list) = openai.get("messages").and_then(Value::as_array) else {
        return Err(bad("'messages' must be an array".into(), "messages"));
    };
    let (system, contents) = conversation(list)?;
    if !system.is_empty() {
        out.insert("systemInstruction".into(), json!({"parts": system}));
    }
    out.insert("contents".into(), Value::Array(contents));
    Ok(Value::Object(out))
}

/// The top-level fields but `messages`: tools go in `out`, the rest in the returned
/// `generationConfig`.
fn top_level(
    openai: &Map<String, Value>,
    out: &mut Map<String, Value>,
    fields: &mut Fields,
) -> Result<Map<String, Value>, RouterError> {
    let mut config = Map::new();
    for (key, value) in openai {
        if value.is_null() {
            continue;
        }
        let renamed = match key.as_str() {
            "temperature" => Some("temperature"),
            "top_p" => Some("topP"),
            "max_tokens" | "max_completion_tokens" => Some("maxOutputTokens"),
            "seed" => Some("seed"),
            "presence_penalty" => Some("presencePenalty"),
            "frequency_penalty" => Some("frequencyPenalty"),
            _ => None,
        };
        if let Some(name) = renamed {
            config.insert(name.into(), value.clone());
            continue;
        }
        match key.as_str() {
            "model" | "messages" | "stream" | "stream_options" | "user" => {}
            "reasoning_effort" => {
                let budget = thinking_budget(value)?;
                // Thought summaries come back as `reasoning_content`.
                config.insert(
                    "thinkingConfig".into(),
                    json!({"thinkingBudget": budget, "includeThoughts": budget > 0}),
                );
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
                out.insert("tools".into(), tools(value)?);
            }
            "tool_choice" => {
                out.insert("toolConfig".into(), tool_choice(value)?);
            }
            other => untranslatable(fields, other, value, "a Gemini provider")?,
        }
    }
    Ok(config)
}

/// OpenAI function tools as Gemini function declarations.
fn tools(value: &Value) -> Result<Value, RouterError> {
    let mut declarations = Vec::new();
    for (i, t) in value.as_array().into_iter().flatten().enumerate() {
        if t["type"] != "function" {
            return Err(bad(
                format!("tools[{i}]: only function tools can be sent to a Gemini provider"),
                "tools",
            ));
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
            return Err(bad(
                format!("tools[{i}].function.strict: a Gemini provider cannot hold a call to its schema strictly"),
                "tools",
            ));
        }
        declarations.push(Value::Object(d));
    }
    Ok(json!([{"functionDeclarations": declarations}]))
}

/// OpenAI's `tool_choice` as Gemini's `toolConfig`.
fn tool_choice(value: &Value) -> Result<Value, RouterError> {
    let config = match value {
        Value::String(s) if s == "auto" => json!({"mode": "AUTO"}),
        Value::String(s) if s == "none" => json!({"mode": "NONE"}),
        Value::String(s) if s == "required" => json!({"mode": "ANY"}),
        Value::Object(_) if value["type"] == "function" => {
            json!({"mode": "ANY", "allowedFunctionNames": [value["function"]["name"]]})
        }
        _ => {
            return Err(bad(
                format!("tool_choice {value} is not understood"),
                "tool_choice",
            ))
        }
    };
    Ok(json!({"functionCallingConfig": config}))
}

/// The messages as Gemini's system parts and contents.
fn conversation(list: &[Value]) -> Result<(Vec<Value>, Vec<Value>), RouterError> {
    let mut system = Vec::new();
    let mut contents: Vec<Value> = Vec::new();
    // Gemini names a function's response by the function, OpenAI by the call id.
    let mut call_names: HashMap<String, Value> = HashMap::new();
    for (i, m) in list.iter().enumerate() {
        let path = format!("messages[{i}]");
        check_message_fields(m, &path, "a Gemini provider")?;
        match m["role"].as_str() {
            Some("system") | Some("developer") => {
                system.push(json!({"text": text_of(&m["content"], "\n")}))
            }
            Some("user") => contents.push(json!({
                "role": "user",
                "parts": user_parts(&m["content"], &format!("{path}.content"))?,
            })),
            Some("assistant") => contents.push(json!({
                "role": "model",
                "parts": model_parts(m, &path, &mut call_names)?,
            })),
            Some("tool") => {
                let id = m["tool_call_id"].as_str().unwrap_or("");
                let name = call_names.get(id).cloned().ok_or_else(|| {
                    bad(
                        format!("{path}: tool_call_id '{id}' matches no earlier tool call"),
                        "messages",
                    )
                })?;
                push_function_response(&mut contents, name, &m["content"]);
            }
            other => {
                return Err(bad(
                    format!("{path}.role {other:?} is not supported"),
                    "messages",
                ))
            }
        }
    }
    Ok((system, contents))
}

/// An assistant message's text, refusal and tool calls as a model turn's parts; the calls'
/// names are noted by id for the tool results that follow.
fn model_parts(
    m: &Value,
    path: &str,
    call_names: &mut HashMap<String, Value>,
) -> Result<Vec<Value>, RouterError> {
    let mut parts = Vec::new();
    let text = text_of(&m["content"], "\n");
    if !text.is_empty() {
        parts.push(json!({"text": text}));
    }
    if let Some(refusal) = m["refusal"].as_str().filter(|r| !r.is_empty()) {
        parts.push(json!({"text": refusal}));
    }
    for (j, call) in m["tool_calls"].as_array().into_iter().flatten().enumerate() {
        let args = call["function"]["arguments"].as_str().unwrap_or("{}");
        let args: Value = serde_json::from_str(if args.trim().is_empty() { "{}" } else { args })
            .map_err(|_| {
                bad(
                    format!("{path}.tool_calls[{j}].function.arguments is not valid JSON"),
                    "messages",
                )
            })?;
        if let Some(id) = call["id"].as_str() {
            call_names.insert(id.to_string(), call["function"]["name"].clone());
        }
        let mut part = json!({"functionCall": {"name": call["function"]["name"], "args": args}});
        if let Some((_, signature)) = call["id"]
            .as_str()
            .and_then(|id| id.split_once(SIGNATURE_MARK))
        {
            part["thoughtSignature"] = json!(from_id_safe(signature));
        }
        parts.push(part);
    }
    if parts.is_empty() {
        parts.push(json!({"text": ""}));
    }
    Ok(parts)
}

/// A tool result as a `functionResponse` part; consecutive results go into one user turn.
fn push_function_response(contents: &mut Vec<Value>, name: Value, content: &Value) {
    let text = text_of(content, "\n");
    let response = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(o)) => Value::Object(o),
        _ => json!({"content": text}),
    };
    let part = json!({"functionResponse": {"name": name, "response": response}});
    match contents.last_mut() {
        Some(last)
            if last["role"] == "user"
                && last["parts"]
                    .as_array()
                    .is_some_and(|p| p.iter().all(|x| x.get("functionResponse").is_some())) =>
        {
            if let Some(p) = last["parts"].as_array_mut() {
                p.push(part);
            }
        }
        _ => contents.push(json!({"role": "user", "parts": [part]})),
    }
}
