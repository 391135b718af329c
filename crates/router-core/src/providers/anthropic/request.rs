//! An OpenAI chat request (the common form) as an Anthropic Messages request. Every field is
//! translated or, when Anthropic has no counterpart, follows the field policy
//! (`crate::fields`): refused with a 400 that names it, or left out and reported. Nothing is
//! dropped silently.

use crate::fields::{untranslatable, Fields};
use crate::providers::{bad, check_detail, check_message_fields};
use crate::RouterError;
use serde_json::{json, Map, Value};

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

/// What the top-level fields ask for beyond what they set directly.
#[derive(Default)]
struct Asked {
    parallel_tools: Option<bool>,
    tool_choice: Option<Value>,
    thinking_budget: Option<u64>,
}

/// Translates an OpenAI chat request into an Anthropic Messages request for `model`.
pub(crate) fn request(
    openai: &Map<String, Value>,
    model: &str,
    default_max_tokens: u64,
    fields: &mut Fields,
) -> Result<Value, RouterError> {
    let mut out = Map::new();
    out.insert("model".into(), json!(model));
    let asked = top_level(openai, &mut out, fields)?;
    let has_tools = out
        .get("tools")
        .and_then(Value::as_array)
        .is_some_and(|t| !t.is_empty());
    let mut tool_choice = asked.tool_choice;
    if asked.parallel_tools == Some(false) && has_tools {
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
    let (system, messages) = conversation(list)?;
    if !system.is_empty() {
        out.insert("system".into(), json!(system.join("\n\n")));
    }
    if let Some(budget) = asked.thinking_budget {
        thinking(
            &mut out,
            &messages,
            budget,
            client_limit,
            default_max_tokens,
        )?;
    }
    out.insert("messages".into(), Value::Array(messages));
    Ok(Value::Object(out))
}

/// The top-level fields but `messages`: set in `out`, or returned for what depends on others.
fn top_level(
    openai: &Map<String, Value>,
    out: &mut Map<String, Value>,
    fields: &mut Fields,
) -> Result<Asked, RouterError> {
    let mut asked = Asked::default();
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
                out.insert("max_tokens".into(), value.clone());
            }
            "temperature" | "top_p" => {
                out.insert(key.clone(), value.clone());
            }
            "stop" => match value {
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
            "n" if value == &json!(1) => {}
            "reasoning_effort" => asked.thinking_budget = thinking_budget(value)?,
            "parallel_tool_calls" => asked.parallel_tools = value.as_bool(),
            "tools" => {
                out.insert("tools".into(), tools(value)?);
            }
            "tool_choice" => asked.tool_choice = Some(tool_choice(value)?),
            other => untranslatable(fields, other, value, "an Anthropic provider")?,
        }
    }
    Ok(asked)
}

/// `reasoning_effort` as a thinking budget (`none`: no thinking).
fn thinking_budget(value: &Value) -> Result<Option<u64>, RouterError> {
    match value.as_str() {
        Some("none") => Ok(None),
        Some("minimal") | Some("low") => Ok(Some(1024)),
        Some("medium") => Ok(Some(4096)),
        Some("high") => Ok(Some(16384)),
        Some("xhigh") => Ok(Some(32768)),
        _ => Err(bad(
            format!("reasoning_effort {value} is not understood"),
            "reasoning_effort",
        )),
    }
}

/// OpenAI function tools as Anthropic tools.
fn tools(value: &Value) -> Result<Value, RouterError> {
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
    Ok(Value::Array(tools))
}

/// OpenAI's `tool_choice` as Anthropic's.
fn tool_choice(value: &Value) -> Result<Value, RouterError> {
    Ok(match value {
        Value::String(s) if s == "auto" => json!({"type": "auto"}),
        Value::String(s) if s == "required" => json!({"type": "any"}),
        Value::String(s) if s == "none" => json!({"type": "none"}),
        Value::Object(o) if o.get("type") == Some(&json!("function")) => {
            json!({"type": "tool", "name": value["function"]["name"]})
        }
        _ => {
            return Err(bad(
                format!("tool_choice {value} is not understood"),
                "tool_choice",
            ))
        }
    })
}

/// The messages as Anthropic's system texts and turns.
fn conversation(list: &[Value]) -> Result<(Vec<String>, Vec<Value>), RouterError> {
    let mut system: Vec<String> = Vec::new();
    let mut messages: Vec<Value> = Vec::new();
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
                let blocks = assistant_blocks(m, &path)?;
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
                push_tool_result(&mut messages, result);
            }
            other => {
                return Err(bad(
                    format!("{path}.role {other:?} is not supported"),
                    "messages",
                ))
            }
        }
    }
    Ok((system, messages))
}

/// An assistant message's text, refusal and tool calls as Anthropic content blocks.
fn assistant_blocks(m: &Value, path: &str) -> Result<Vec<Value>, RouterError> {
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
        let input: Value = serde_json::from_str(if args.trim().is_empty() { "{}" } else { args })
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
    Ok(blocks)
}

/// Consecutive tool results go into one user turn.
fn push_tool_result(messages: &mut Vec<Value>, result: Value) {
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

/// Extended thinking with `budget` tokens, and the `max_tokens` it needs.
///
/// Anthropic takes back a tool-use turn made while thinking only with its signed thinking
/// block, which an OpenAI conversation cannot carry: such a turn continues without thinking.
fn thinking(
    out: &mut Map<String, Value>,
    messages: &[Value],
    budget: u64,
    client_limit: Option<u64>,
    default_max_tokens: u64,
) -> Result<(), RouterError> {
    let in_tool_loop = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "assistant")
        .and_then(|m| m["content"].as_array())
        .is_some_and(|blocks| blocks.iter().any(|b| b["type"] == "tool_use"));
    if in_tool_loop {
        return Ok(());
    }
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
    Ok(())
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
