//! The mock's Responses API (`POST /v1/responses`, and Azure's `/openai/v1/responses`): the
//! reply is `mock says: ` + the last user text (or `tool said: …` after a tool's result), a
//! `function_call` item when the request offers tools and asks to "use a tool", a reasoning
//! item when `reasoning.effort` is set; complete, or as the documented event sequence with its
//! `sequence_number`s and the usage in `response.completed`. Like OpenAI without a stored
//! conversation, it refuses `previous_response_id`, an item type it does not know and a
//! `function_call_output` whose call is not in the input.

use crate::{error, full, stream, text_of, tools, Body, State};
use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;

const ID: &str = "resp_mock";

/// What the mock answers to one request.
struct Turn {
    model: String,
    reply: String,
    tool: Option<(String, String)>,
    reasoning: Option<String>,
    input_tokens: u64,
    output_tokens: u64,
    cache: (u64, u64),
}

impl Turn {
    fn usage(&self) -> Value {
        let mut usage = json!({
            "input_tokens": self.input_tokens,
            "input_tokens_details": {"cached_tokens": self.cache.0},
            "output_tokens": self.output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": self.total(),
        });
        if self.cache.1 > 0 {
            usage["input_tokens_details"]["cache_write_tokens"] = json!(self.cache.1);
        }
        usage
    }

    fn total(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }

    /// The output items, complete.
    fn output(&self) -> Vec<Value> {
        let mut output = Vec::new();
        if let Some(r) = &self.reasoning {
            output.push(reasoning_item(r));
        }
        match &self.tool {
            Some((name, arguments)) => output.push(call_item(name, arguments, "completed")),
            None => output.push(message_item(&self.reply, "completed")),
        }
        output
    }

    /// The `response` object in `status`, with `output`.
    fn response(&self, status: &str, output: Vec<Value>, usage: Value) -> Value {
        json!({
            "id": ID, "object": "response", "created_at": 1_700_000_000, "status": status,
            "background": false, "error": null, "incomplete_details": null, "instructions": null,
            "max_output_tokens": null, "model": self.model, "output": output,
            "parallel_tool_calls": true, "previous_response_id": null, "store": false,
            "temperature": 1.0, "text": {"format": {"type": "text"}}, "tool_choice": "auto",
            "tools": [], "top_p": 1.0, "truncation": "disabled", "usage": usage, "metadata": {},
        })
    }
}

fn reasoning_item(text: &str) -> Value {
    json!({"id": "rs_mock", "type": "reasoning", "summary": [{"type": "summary_text", "text": text}]})
}

fn message_item(text: &str, status: &str) -> Value {
    let content = if status == "completed" {
        json!([{"type": "output_text", "annotations": [], "logprobs": [], "text": text}])
    } else {
        json!([])
    };
    json!({"id": "msg_mock", "type": "message", "status": status, "content": content, "role": "assistant"})
}

fn call_item(name: &str, arguments: &str, status: &str) -> Value {
    json!({"id": "fc_mock", "type": "function_call", "status": status, "arguments": arguments,
           "call_id": "call_mock", "name": name})
}

/// Reads the input the way OpenAI does without a stored conversation: the last user text (or
/// the tool's result it ends with) and the bytes of every text, or what is wrong with it.
fn read_input(input: &Value) -> Result<(String, usize), String> {
    let items = match input {
        Value::String(s) => return Ok((s.clone(), s.len())),
        Value::Array(items) => items,
        _ => return Err("Invalid type for 'input': expected a string or an array.".into()),
    };
    let mut calls = HashSet::new();
    let (mut last_user, mut bytes) = (String::new(), 0);
    for (i, item) in items.iter().enumerate() {
        let kind = item["type"].as_str().unwrap_or("message");
        match kind {
            "message" => {
                let text = text_of(&item["content"]);
                bytes += text.len();
                if item["role"] == "user" {
                    last_user = text;
                }
            }
            "function_call" => {
                calls.insert(item["call_id"].as_str().unwrap_or("").to_string());
                bytes += item["arguments"].as_str().map_or(0, str::len);
            }
            "function_call_output" => {
                let call_id = item["call_id"].as_str().unwrap_or("");
                if !calls.contains(call_id) {
                    return Err(format!(
                        "No tool call found for function call output with call_id {call_id}."
                    ));
                }
                let output = match &item["output"] {
                    Value::String(s) => s.clone(),
                    other => text_of(other),
                };
                bytes += output.len();
                last_user = format!("tool said: {output}");
            }
            "reasoning" => {}
            other => {
                return Err(format!(
                    "Invalid value: '{other}'. Supported values are: 'message', 'function_call', 'function_call_output' and 'reasoning' (input[{i}].type)."
                ))
            }
        }
    }
    Ok((last_user, bytes))
}

/// Answers a Responses request for `model`.
pub(crate) fn answer(
    state: Arc<State>,
    request: &Value,
    model: String,
    cut_stream: Option<usize>,
) -> Response<Body> {
    if let Some(id) = request["previous_response_id"].as_str() {
        return error(400, &format!("Previous response with id '{id}' not found."));
    }
    let (last_user, bytes) = match read_input(&request["input"]) {
        Ok(read) => read,
        Err(message) => return error(400, &message),
    };
    let instructions = request["instructions"].as_str().map_or(0, str::len);
    let offered = request["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["type"] == "function")
        .filter_map(|t| Some((t["name"].as_str()?, &t["parameters"])));
    let tool = tools::call(offered, &last_user).map(|(name, input)| (name, input.to_string()));
    let reply = format!("mock says: {last_user}");
    let cache = *state.cache_tokens.lock().unwrap();
    let turn = Turn {
        model,
        output_tokens: if tool.is_some() {
            5
        } else {
            reply.split_whitespace().count() as u64
        },
        reply,
        tool,
        reasoning: request["reasoning"]["effort"]
            .as_str()
            .map(|effort| format!("reasoning at {effort} effort")),
        input_tokens: 1 + (bytes + instructions) as u64 / 4 + cache.0 + cache.1,
        cache,
    };
    if request["stream"] != Value::Bool(true) {
        state.tokens_reported.fetch_add(turn.total(), SeqCst);
        let body = turn.response("completed", turn.output(), turn.usage());
        return full(StatusCode::OK, "application/json", body.to_string());
    }
    let events = events(&turn);
    let usage_at = events.len() - 1;
    stream(state, events, Some(usage_at), turn.total(), cut_stream)
}

/// The answer as Responses' event sequence.
fn events(turn: &Turn) -> Vec<Bytes> {
    let mut seq = 0u64;
    let mut events = Vec::new();
    let mut event = |kind: &str, mut data: Value| {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(seq);
        seq += 1;
        events.push(Bytes::from(format!("event: {kind}\ndata: {data}\n\n")));
    };
    let started = turn.response("in_progress", Vec::new(), Value::Null);
    event("response.created", json!({"response": started}));
    event("response.in_progress", json!({"response": started}));
    let mut index = 0;
    if let Some(r) = &turn.reasoning {
        let at = json!({"item_id": "rs_mock", "output_index": index, "summary_index": 0});
        let with = |key: &str, value: Value| {
            let mut v = at.clone();
            v[key] = value;
            v
        };
        event(
            "response.output_item.added",
            json!({"output_index": index, "item": {"id": "rs_mock", "type": "reasoning", "summary": []}}),
        );
        event(
            "response.reasoning_summary_part.added",
            with("part", json!({"type": "summary_text", "text": ""})),
        );
        event(
            "response.reasoning_summary_text.delta",
            with("delta", json!(r)),
        );
        event(
            "response.reasoning_summary_text.done",
            with("text", json!(r)),
        );
        event(
            "response.reasoning_summary_part.done",
            with("part", json!({"type": "summary_text", "text": r})),
        );
        event(
            "response.output_item.done",
            json!({"output_index": index, "item": reasoning_item(r)}),
        );
        index += 1;
    }
    match &turn.tool {
        Some((name, arguments)) => {
            let at = json!({"item_id": "fc_mock", "output_index": index});
            let with = |key: &str, value: &str| {
                let mut v = at.clone();
                v[key] = json!(value);
                v
            };
            event(
                "response.output_item.added",
                json!({"output_index": index, "item": call_item(name, "", "in_progress")}),
            );
            let (a, b) = arguments.split_at(arguments.len() / 2);
            for part in [a, b] {
                event(
                    "response.function_call_arguments.delta",
                    with("delta", part),
                );
            }
            event(
                "response.function_call_arguments.done",
                with("arguments", arguments),
            );
            event(
                "response.output_item.done",
                json!({"output_index": index, "item": call_item(name, arguments, "completed")}),
            );
        }
        None => {
            let at = json!({"item_id": "msg_mock", "output_index": index, "content_index": 0});
            let with = |key: &str, value: Value| {
                let mut v = at.clone();
                v[key] = value;
                v
            };
            let part = |text: &str| json!({"type": "output_text", "annotations": [], "logprobs": [], "text": text});
            event(
                "response.output_item.added",
                json!({"output_index": index, "item": message_item("", "in_progress")}),
            );
            event("response.content_part.added", with("part", part("")));
            for word in turn.reply.split_inclusive(' ') {
                let mut delta = with("delta", json!(word));
                delta["logprobs"] = json!([]);
                event("response.output_text.delta", delta);
            }
            let mut done = with("text", json!(turn.reply));
            done["logprobs"] = json!([]);
            event("response.output_text.done", done);
            event(
                "response.content_part.done",
                with("part", part(&turn.reply)),
            );
            event(
                "response.output_item.done",
                json!({"output_index": index, "item": message_item(&turn.reply, "completed")}),
            );
        }
    }
    let completed = turn.response("completed", turn.output(), turn.usage());
    event("response.completed", json!({"response": completed}));
    events
}
