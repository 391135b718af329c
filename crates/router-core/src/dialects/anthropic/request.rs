//! An Anthropic Messages request in the common form (an OpenAI chat request). A field without a
//! counterpart follows the field policy (`crate::fields`): refused with a 400 that names it when
//! it changes the answer's meaning, left out and reported when it is a hint.

use crate::fields::Fields;
use crate::json::text_of;
use crate::providers::bad;
use crate::RouterError;
use serde_json::{json, Map, Value};

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
/// `disabled` asks for nothing. Whether the thinking is shown (`display`) is a hint.
fn reasoning_effort(
    thinking: &Value,
    fields: &mut Fields,
) -> Result<Option<&'static str>, RouterError> {
    if thinking.get("display").is_some() {
        fields.hint("thinking.display");
    }
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

/// `output_config.effort` as OpenAI's `reasoning_effort` (`max` is OpenAI's `high`).
fn effort(value: &Value) -> Result<&'static str, RouterError> {
    match value.as_str() {
        Some("low") => Ok("low"),
        Some("medium") => Ok("medium"),
        Some("high") | Some("max") => Ok("high"),
        _ => Err(bad(
            format!("output_config.effort {value} is not understood"),
            "output_config",
        )),
    }
}

/// Fields that change what the answer is, with no place in OpenAI's format.
const CHANGES_MEANING: &[&str] = &["top_k", "mcp_servers", "container"];

/// Translates an Anthropic Messages request into an OpenAI chat request for `model`.
pub(crate) fn request(
    anthropic: &Map<String, Value>,
    model: &str,
    fields: &mut Fields,
) -> Result<Value, RouterError> {
    let mut out = Map::new();
    out.insert("model".into(), json!(model));
    if let Some(p) = top_level(anthropic, &mut out, fields)? {
        out.insert("parallel_tool_calls".into(), json!(p));
    }
    let mut messages: Vec<Value> = Vec::new();
    match anthropic.get("system") {
        None | Some(Value::Null) => {}
        Some(system) => messages.push(system_message(system, fields)),
    }
    let Some(list) = anthropic.get("messages").and_then(Value::as_array) else {
        return Err(bad("'messages' must be an array".into(), "messages"));
    };
    for (i, m) in list.iter().enumerate() {
        let path = format!("messages[{i}]");
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
        fields.note_cache_control(m);
        for block in &blocks {
            fields.note_cache_control(block);
        }
        match m["role"].as_str() {
            Some("user") => user_turn(&blocks, &path, &mut messages)?,
            Some("assistant") => messages.push(assistant_turn(&blocks, &path)?),
            // A system message inside the conversation (Claude Code sends them) stays in place.
            Some("system") => messages.push(system_message(&m["content"], fields)),
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

/// A system prompt (a string or text blocks) as an OpenAI system message.
fn system_message(system: &Value, fields: &mut Fields) -> Value {
    fields.note_cache_control(system);
    for block in system.as_array().into_iter().flatten() {
        fields.note_cache_control(block);
    }
    json!({"role": "system", "content": text_of(system, "\n")})
}

/// The top-level fields but `messages` and `system`, set in `out`; returns whether parallel
/// tool use was switched off.
fn top_level(
    anthropic: &Map<String, Value>,
    out: &mut Map<String, Value>,
    fields: &mut Fields,
) -> Result<Option<bool>, RouterError> {
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
                // An explicit `output_config.effort` wins over a budget.
                if let Some(effort) = reasoning_effort(value, fields)? {
                    out.entry("reasoning_effort").or_insert(json!(effort));
                }
            }
            "output_config" => output_config(value, out, fields)?,
            "context_management" | "service_tier" => fields.hint(key),
            "stop_sequences" => {
                out.insert("stop".into(), value.clone());
            }
            "metadata" => {
                for (k, v) in value.as_object().into_iter().flatten() {
                    match k.as_str() {
                        "user_id" => {
                            out.insert("user".into(), v.clone());
                        }
                        _ => fields.hint(&format!("metadata.{k}")),
                    }
                }
            }
            "tools" => {
                out.insert("tools".into(), tools(value, fields)?);
            }
            "tool_choice" => {
                if value["disable_parallel_tool_use"] == json!(true) {
                    parallel = Some(false);
                }
                out.insert("tool_choice".into(), tool_choice(value)?);
            }
            other => {
                let refusal = || {
                    bad(
                        format!("the field '{other}' cannot be translated for an OpenAI-compatible provider; remove it or route to an Anthropic one"),
                        other,
                    )
                };
                if CHANGES_MEANING.contains(&other) {
                    return Err(refusal());
                }
                fields.unknown(other, refusal)?;
            }
        }
    }
    Ok(parallel)
}

/// `output_config`: its `effort` is OpenAI's `reasoning_effort`; anything else is unknown.
fn output_config(
    value: &Value,
    out: &mut Map<String, Value>,
    fields: &mut Fields,
) -> Result<(), RouterError> {
    for (k, v) in value.as_object().into_iter().flatten() {
        match k.as_str() {
            "effort" => {
                out.insert("reasoning_effort".into(), json!(effort(v)?));
            }
            _ => {
                let field = format!("output_config.{k}");
                fields.unknown(&field, || {
                    bad(
                        format!("the field '{field}' cannot be translated for an OpenAI-compatible provider"),
                        "output_config",
                    )
                })?;
            }
        }
    }
    Ok(())
}

/// Anthropic custom tools as OpenAI function tools.
fn tools(value: &Value, fields: &mut Fields) -> Result<Value, RouterError> {
    let mut tools = Vec::new();
    for (i, t) in value.as_array().into_iter().flatten().enumerate() {
        fields.note_cache_control(t);
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
    Ok(Value::Array(tools))
}

/// Anthropic's `tool_choice` as OpenAI's.
fn tool_choice(value: &Value) -> Result<Value, RouterError> {
    Ok(match value["type"].as_str() {
        Some("auto") => json!("auto"),
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => json!({"type": "function", "function": {"name": value["name"]}}),
        _ => {
            return Err(bad(
                format!("tool_choice {value} is not understood"),
                "tool_choice",
            ))
        }
    })
}

/// A user turn: its tool results become tool messages, its text and images one user message.
fn user_turn(blocks: &[Value], path: &str, messages: &mut Vec<Value>) -> Result<(), RouterError> {
    let mut parts = Vec::new();
    for (j, b) in blocks.iter().enumerate() {
        match b["type"].as_str() {
            Some("text") => parts.push(json!({"type": "text", "text": b["text"]})),
            Some("image") => parts.push(image_part(b, &format!("{path}.content[{j}]"))?),
            Some("tool_result") => {
                if b["content"]
                    .as_array()
                    .is_some_and(|c| c.iter().any(|x| x["type"] != "text"))
                {
                    return Err(bad(
                        format!("{path}.content[{j}]: a tool_result with images or documents cannot be sent to an OpenAI-compatible provider"),
                        "messages",
                    ));
                }
                let mut text = text_of(&b["content"], "\n");
                if b["is_error"] == json!(true) {
                    text = format!("Error: {text}");
                }
                messages.push(
                    json!({"role": "tool", "tool_call_id": b["tool_use_id"], "content": text}),
                );
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
    Ok(())
}

/// An assistant turn: its text and tool uses as one assistant message (thinking has no place
/// in an OpenAI conversation's history).
fn assistant_turn(blocks: &[Value], path: &str) -> Result<Value, RouterError> {
    let mut text = String::new();
    let mut calls = Vec::new();
    for b in blocks {
        match b["type"].as_str() {
            Some("text") => text.push_str(b["text"].as_str().unwrap_or("")),
            Some("tool_use") => calls.push(json!({
                "id": b["id"], "type": "function",
                "function": {"name": b["name"], "arguments": b["input"].to_string()},
            })),
            Some("thinking") | Some("redacted_thinking") => {}
            other => {
                return Err(bad(
                    format!(
                    "{path}: block type {other:?} cannot be sent to an OpenAI-compatible provider"
                ),
                    "messages",
                ))
            }
        }
    }
    let content = if text.is_empty() && !calls.is_empty() {
        Value::Null
    } else {
        json!(text)
    };
    let mut msg = json!({"role": "assistant", "content": content});
    if !calls.is_empty() {
        msg["tool_calls"] = Value::Array(calls);
    }
    Ok(msg)
}
