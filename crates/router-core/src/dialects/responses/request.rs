//! A Responses API request (`POST /v1/responses`) in the common form (an OpenAI chat request),
//! for a provider that does not speak Responses. `instructions` and the `input` items become
//! messages: `message` items by role, `function_call` items an assistant turn's tool calls,
//! `function_call_output` items tool messages. What chat has no place for follows the field
//! policy (`crate::fields`).

use crate::fields::Fields;
use crate::json::text_of;
use crate::providers::bad;
use crate::RouterError;
use serde_json::{json, Map, Value};
use std::collections::HashSet;

/// Fields that change what the answer is, and that chat cannot carry.
const CHANGES_MEANING: &[&str] = &[
    "previous_response_id",
    "conversation",
    "prompt",
    "background",
];

/// Fields that only steer the upstream (caching, tracing, what else to return).
const HINTS: &[&str] = &[
    "include",
    "client_metadata",
    "max_tool_calls",
    "context_management",
    "stream_options",
    "prompt_cache_retention",
];

/// Fields chat has under the same name and meaning.
const SAME_IN_CHAT: &[&str] = &[
    "temperature",
    "top_p",
    "parallel_tool_calls",
    "metadata",
    "prompt_cache_key",
    "service_tier",
    "safety_identifier",
    "user",
];

/// Translates a Responses request into an OpenAI chat request for `model`, to be sent to `to`.
pub(crate) fn request(
    responses: &Map<String, Value>,
    model: &str,
    fields: &mut Fields,
) -> Result<Value, RouterError> {
    let mut out = Map::new();
    out.insert("model".into(), json!(model));
    for (key, value) in responses {
        if value.is_null() {
            continue;
        }
        top_level(key, value, &mut out, fields)?;
    }
    let mut messages = Vec::new();
    if let Some(instructions) = responses.get("instructions").filter(|v| !v.is_null()) {
        messages.push(json!({"role": "system", "content": text_of(instructions, "\n")}));
    }
    match responses.get("input") {
        Some(Value::String(text)) => messages.push(json!({"role": "user", "content": text})),
        Some(Value::Array(items)) => input_items(items, &mut messages, fields)?,
        _ => {
            return Err(bad(
                "'input' must be a string or an array of items".into(),
                "input",
            ))
        }
    }
    out.insert("messages".into(), Value::Array(messages));
    without_empty_tools(&mut out)?;
    Ok(Value::Object(out))
}

/// When every tool was one chat cannot run (hosted tools), no `tools` are sent (an empty list
/// is refused by OpenAI-compatible servers); a `tool_choice` that still asks for a call cannot
/// be met.
fn without_empty_tools(out: &mut Map<String, Value>) -> Result<(), RouterError> {
    if out
        .get("tools")
        .is_some_and(|t| t.as_array().is_some_and(Vec::is_empty))
    {
        out.remove("tools");
    }
    if out.contains_key("tools") {
        return Ok(());
    }
    match out.get("tool_choice") {
        None => Ok(()),
        Some(Value::String(mode)) if mode == "auto" || mode == "none" => {
            out.remove("tool_choice");
            Ok(())
        }
        Some(choice) => Err(bad(
            format!("tool_choice {choice} asks for a call, but no function tool is left for a provider that does not speak the Responses API"),
            "tool_choice",
        )),
    }
}

/// One top-level field but `instructions` and `input`, set in `out`.
fn top_level(
    key: &str,
    value: &Value,
    out: &mut Map<String, Value>,
    fields: &mut Fields,
) -> Result<(), RouterError> {
    match key {
        "model" | "instructions" | "input" => {}
        k if SAME_IN_CHAT.contains(&k) => {
            out.insert(key.into(), value.clone());
        }
        "stream" => {
            out.insert("stream".into(), value.clone());
            if value == &json!(true) {
                // The usage comes in the last event of a Responses stream: ask chat for it.
                out.insert("stream_options".into(), json!({"include_usage": true}));
            }
        }
        "max_output_tokens" => {
            out.insert("max_tokens".into(), value.clone());
        }
        "store" if value == &json!(false) => fields.hint("store"),
        // The default: a response in the foreground, which is what chat gives.
        "background" if value == &json!(false) => {}
        "truncation" if value == &json!("disabled") => {}
        "truncation" => fields.hint("truncation"),
        "top_logprobs" if value == &json!(0) => {}
        "top_logprobs" => {
            out.insert("logprobs".into(), json!(true));
            out.insert("top_logprobs".into(), value.clone());
        }
        "reasoning" => reasoning(value, out, fields)?,
        "text" => text(value, out, fields)?,
        "tools" => {
            out.insert("tools".into(), tools(value, fields)?);
        }
        "tool_choice" => {
            out.insert("tool_choice".into(), tool_choice(value)?);
        }
        k if HINTS.contains(&k) => fields.hint(key),
        k => {
            let refusal = || {
                bad(
                    format!("the field '{k}' cannot be translated for a provider that does not speak the Responses API; remove it or route to one that does"),
                    k,
                )
            };
            if k == "store" || CHANGES_MEANING.contains(&k) {
                return Err(refusal());
            }
            fields.unknown(k, refusal)?;
        }
    }
    Ok(())
}

/// `reasoning.effort` as chat's `reasoning_effort`; a summary asked for is a hint.
fn reasoning(
    value: &Value,
    out: &mut Map<String, Value>,
    fields: &mut Fields,
) -> Result<(), RouterError> {
    for (k, v) in value.as_object().into_iter().flatten() {
        match k.as_str() {
            _ if v.is_null() => {}
            "effort" => {
                out.insert("reasoning_effort".into(), v.clone());
            }
            other => fields.hint(&format!("reasoning.{other}")),
        }
    }
    Ok(())
}

/// `text.format` as chat's `response_format`, and `text.verbosity` as chat's `verbosity`.
fn text(
    value: &Value,
    out: &mut Map<String, Value>,
    fields: &mut Fields,
) -> Result<(), RouterError> {
    for (k, v) in value.as_object().into_iter().flatten() {
        match k.as_str() {
            _ if v.is_null() => {}
            "verbosity" => {
                out.insert("verbosity".into(), v.clone());
            }
            "format" => {
                let format = match v["type"].as_str() {
                    Some("text") => json!({"type": "text"}),
                    Some("json_object") => json!({"type": "json_object"}),
                    Some("json_schema") => {
                        let mut schema = v.as_object().cloned().unwrap_or_default();
                        schema.remove("type");
                        json!({"type": "json_schema", "json_schema": schema})
                    }
                    _ => return Err(bad(format!("text.format {v} is not understood"), "text")),
                };
                out.insert("response_format".into(), format);
            }
            other => fields.hint(&format!("text.{other}")),
        }
    }
    Ok(())
}

/// Function tools (flat in Responses) as chat's; a hosted tool (web search, file search, ...)
/// cannot run without the Responses API: it is left out and named, and the model answers with
/// the tools it has.
fn tools(value: &Value, fields: &mut Fields) -> Result<Value, RouterError> {
    let mut tools = Vec::new();
    for (i, tool) in value.as_array().into_iter().flatten().enumerate() {
        match tool["type"].as_str() {
            Some("function") => {
                let mut f = Map::new();
                for key in ["name", "description", "parameters", "strict"] {
                    if let Some(v) = tool.get(key).filter(|v| !v.is_null()) {
                        f.insert(key.into(), v.clone());
                    }
                }
                if !f.contains_key("name") {
                    return Err(bad(format!("tools[{i}].name is missing"), "tools"));
                }
                tools.push(json!({"type": "function", "function": f}));
            }
            Some(kind) => fields.hint(&format!("tools.{kind}")),
            None => return Err(bad(format!("tools[{i}].type is missing"), "tools")),
        }
    }
    Ok(Value::Array(tools))
}

/// `tool_choice`: the modes as they are, a named function as chat names it.
fn tool_choice(value: &Value) -> Result<Value, RouterError> {
    match value {
        Value::String(mode) if ["auto", "none", "required"].contains(&mode.as_str()) => {
            Ok(value.clone())
        }
        Value::Object(o) if o.get("type") == Some(&json!("function")) => {
            Ok(json!({"type": "function", "function": {"name": value["name"]}}))
        }
        _ => Err(bad(
            format!("tool_choice {value} cannot be translated for a provider that does not speak the Responses API"),
            "tool_choice",
        )),
    }
}

/// The `input` items as chat messages.
fn input_items(
    items: &[Value],
    messages: &mut Vec<Value>,
    fields: &mut Fields,
) -> Result<(), RouterError> {
    let mut calls: HashSet<String> = HashSet::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("input[{i}]");
        // A message may leave its type out.
        let kind = item["type"]
            .as_str()
            .unwrap_or(if item.get("role").is_some() {
                "message"
            } else {
                ""
            });
        match kind {
            "message" => push_message(messages, message(item, &path)?),
            "function_call" => {
                let call_id = required_str(item, "call_id", &path)?;
                calls.insert(call_id.to_string());
                let call = json!({"id": call_id, "type": "function", "function": {
                    "name": required_str(item, "name", &path)?,
                    "arguments": item["arguments"].as_str().unwrap_or("{}"),
                }});
                push_call(messages, call);
            }
            "function_call_output" => {
                let call_id = required_str(item, "call_id", &path)?;
                if !calls.contains(call_id) {
                    return Err(bad(
                        format!("{path}: function_call_output '{call_id}' answers no function_call earlier in the input"),
                        "input",
                    ));
                }
                let output = match &item["output"] {
                    Value::String(s) => s.clone(),
                    Value::Array(parts) => output_text(parts, &path)?,
                    _ => return Err(bad(format!("{path}.output must be a string or an array of parts"), "input")),
                };
                messages.push(json!({"role": "tool", "tool_call_id": call_id, "content": output}));
            }
            // What the model thought before: carried by Responses upstreams only.
            "reasoning" => fields.hint("input.reasoning"),
            other => {
                return Err(bad(
                    format!("{path}: item type '{other}' cannot be translated for a provider that does not speak the Responses API"),
                    "input",
                ))
            }
        }
    }
    Ok(())
}

/// The text parts of a tool's output; chat's tool results are text only, so any other part
/// (an image the tool looked at) is refused by name rather than lost.
fn output_text(parts: &[Value], path: &str) -> Result<String, RouterError> {
    let mut texts = Vec::new();
    for (j, p) in parts.iter().enumerate() {
        match p["type"].as_str() {
            Some("input_text" | "output_text") => texts.push(p["text"].as_str().unwrap_or("")),
            other => {
                return Err(bad(
                    format!("{path}.output[{j}]: part type {other:?} cannot be translated: chat tool results are text only"),
                    "input",
                ))
            }
        }
    }
    Ok(texts.join("\n"))
}

fn required_str<'v>(item: &'v Value, key: &str, path: &str) -> Result<&'v str, RouterError> {
    item[key]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad(format!("{path}.{key} is missing"), "input"))
}

/// A message; an assistant's text after its own tool calls (before their results) joins that
/// turn, as chat wants the results right after the calls.
fn push_message(messages: &mut Vec<Value>, message: Value) {
    if message["role"] == "assistant" {
        if let Some(last) = messages
            .last_mut()
            .filter(|m| m["role"] == "assistant" && m["tool_calls"].is_array())
        {
            let text = match (&last["content"], &message["content"]) {
                (Value::String(a), Value::String(b)) => format!("{a}{b}"),
                (_, b) => b.as_str().unwrap_or("").to_string(),
            };
            last["content"] = json!(text);
            return;
        }
    }
    messages.push(message);
}

/// A tool call joins the assistant turn just before it, or starts one.
fn push_call(messages: &mut Vec<Value>, call: Value) {
    if let Some(last) = messages.last_mut().filter(|m| m["role"] == "assistant") {
        match last["tool_calls"].as_array_mut() {
            Some(calls) => calls.push(call),
            None => last["tool_calls"] = json!([call]),
        }
        return;
    }
    messages.push(json!({"role": "assistant", "content": null, "tool_calls": [call]}));
}

/// A `message` item as a chat message.
fn message(item: &Value, path: &str) -> Result<Value, RouterError> {
    let role = match item["role"].as_str() {
        Some(r @ ("user" | "assistant" | "system" | "developer")) => r,
        other => {
            return Err(bad(
                format!("{path}.role {other:?} is not supported"),
                "input",
            ))
        }
    };
    let content = match &item["content"] {
        Value::String(s) => json!(s),
        Value::Array(parts) if role == "assistant" => json!(assistant_text(parts, path)?),
        Value::Array(parts) => Value::Array(
            parts
                .iter()
                .enumerate()
                .map(|(j, p)| part(p, &format!("{path}.content[{j}]")))
                .collect::<Result<_, _>>()?,
        ),
        _ => {
            return Err(bad(
                format!("{path}.content must be a string or an array of parts"),
                "input",
            ))
        }
    };
    // `developer` is the Responses name of the system role, which every chat API knows.
    let role = if role == "developer" { "system" } else { role };
    Ok(json!({"role": role, "content": content}))
}

/// An assistant message's `output_text` and `refusal` parts, as its text.
fn assistant_text(parts: &[Value], path: &str) -> Result<String, RouterError> {
    let mut text = String::new();
    for (j, p) in parts.iter().enumerate() {
        match p["type"].as_str() {
            Some("output_text") | Some("input_text") => text.push_str(p["text"].as_str().unwrap_or("")),
            Some("refusal") => text.push_str(p["refusal"].as_str().unwrap_or("")),
            other => {
                return Err(bad(
                    format!("{path}.content[{j}]: part type {other:?} is not supported in an assistant message"),
                    "input",
                ))
            }
        }
    }
    Ok(text)
}

/// A user, system or developer content part as a chat part.
fn part(p: &Value, path: &str) -> Result<Value, RouterError> {
    match p["type"].as_str() {
        Some("input_text") | Some("output_text") => Ok(json!({"type": "text", "text": p["text"]})),
        Some("input_image") => {
            let url = p["image_url"].as_str().ok_or_else(|| {
                bad(
                    format!("{path}: an input_image by file_id cannot be translated; send its image_url"),
                    "input",
                )
            })?;
            let mut image = json!({"url": url});
            if let Some(detail) = p["detail"].as_str().filter(|d| *d != "auto") {
                image["detail"] = json!(detail);
            }
            Ok(json!({"type": "image_url", "image_url": image}))
        }
        other => Err(bad(
            format!("{path}: part type {other:?} cannot be translated for a provider that does not speak the Responses API"),
            "input",
        )),
    }
}
