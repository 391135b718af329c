//! The mock's Anthropic Messages API: `POST /v1/messages`, answered in Anthropic's own shape
//! (complete, or the full event stream with `ping`), with usage, and a `tool_use` block when
//! the request offers tools and the last user text asks to "use a tool".

use crate::{full, stream, text_of, tools, Body, State};
use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use serde_json::{json, Value};
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;

fn error(status: u16, kind: &str, message: &str) -> Response<Body> {
    let body = json!({"type": "error", "error": {"type": kind, "message": message}});
    full(
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        "application/json",
        body.to_string(),
    )
}

/// Text of an Anthropic message's content (string, text blocks, tool results).
fn content_text(content: &Value) -> String {
    match content {
        Value::Array(blocks) => blocks
            .iter()
            .map(|b| match b["type"].as_str() {
                Some("tool_result") => format!("tool said: {}", text_of(&b["content"])),
                _ => b["text"].as_str().unwrap_or("").to_string(),
            })
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join(" "),
        other => text_of(other),
    }
}

fn sse(kind: &str, data: Value) -> Bytes {
    Bytes::from(format!("event: {kind}\ndata: {data}\n\n"))
}

/// What the mock answers to one request.
struct Turn {
    model: String,
    reply: String,
    /// The tool to call, with its input.
    tool: Option<(String, Value)>,
    input_tokens: u64,
    output_tokens: u64,
    /// Prompt tokens read from and written to the prompt cache (besides `input_tokens`).
    cache: (u64, u64),
}

impl Turn {
    fn of(request: &Value, messages: &[Value], cache: (u64, u64)) -> Self {
        let last_user = messages
            .iter()
            .rev()
            .find(|m| m["role"] == "user")
            .map(|m| content_text(&m["content"]))
            .unwrap_or_default();
        let prompt_bytes: usize = messages
            .iter()
            .map(|m| content_text(&m["content"]).len())
            .sum::<usize>()
            + request["system"].as_str().map_or(0, str::len);
        let offered = request["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| Some((t["name"].as_str()?, &t["input_schema"])));
        let tool = tools::call(offered, &last_user);
        let reply = format!("mock says: {last_user}");
        let output_tokens = if tool.is_some() {
            5
        } else {
            reply.split_whitespace().count() as u64
        };
        Self {
            model: request["model"].as_str().unwrap_or("").to_string(),
            reply,
            tool,
            input_tokens: 1 + prompt_bytes as u64 / 4,
            output_tokens,
            cache,
        }
    }

    fn stop_reason(&self) -> &'static str {
        if self.tool.is_some() {
            "tool_use"
        } else {
            "end_turn"
        }
    }

    fn usage_total(&self) -> u64 {
        self.input_tokens + self.cache.0 + self.cache.1 + self.output_tokens
    }

    /// The prompt's counts, as `message_start` and a complete answer report them.
    fn input_usage(&self, output_tokens: u64) -> Value {
        json!({"input_tokens": self.input_tokens, "output_tokens": output_tokens,
               "cache_read_input_tokens": self.cache.0,
               "cache_creation_input_tokens": self.cache.1})
    }
}

const ID: &str = "msg_mock";

/// `POST /v1/messages/count_tokens`: the input tokens an answer would report.
pub(crate) fn count_tokens(request: &Value, headers: &HeaderMap) -> Response<Body> {
    if !headers.contains_key("x-api-key") || !headers.contains_key("anthropic-version") {
        return error(
            400,
            "invalid_request_error",
            "x-api-key and anthropic-version are required",
        );
    }
    let Some(messages) = request["messages"].as_array() else {
        return error(400, "invalid_request_error", "messages: Field required");
    };
    let turn = Turn::of(request, messages, (0, 0));
    let body = json!({"input_tokens": turn.input_tokens});
    full(StatusCode::OK, "application/json", body.to_string())
}

pub(crate) fn answer(
    state: Arc<State>,
    request: &Value,
    headers: &HeaderMap,
    cut_stream: Option<usize>,
) -> Response<Body> {
    if !headers.contains_key("x-api-key") {
        return error(401, "authentication_error", "x-api-key header is required");
    }
    if !headers.contains_key("anthropic-version") {
        return error(
            400,
            "invalid_request_error",
            "anthropic-version header is required",
        );
    }
    if !request["max_tokens"].is_u64() {
        return error(400, "invalid_request_error", "max_tokens: Field required");
    }
    let Some(messages) = request["messages"].as_array() else {
        return error(400, "invalid_request_error", "messages: Field required");
    };
    let cache = *state.cache_tokens.lock().unwrap();
    let turn = Turn::of(request, messages, cache);
    if request["stream"] != Value::Bool(true) {
        state.tokens_reported.fetch_add(turn.usage_total(), SeqCst);
        return full(
            StatusCode::OK,
            "application/json",
            message(&turn).to_string(),
        );
    }
    let chunks = events(&turn);
    // The usage is reported by `message_delta`, the one before `message_stop`.
    let usage_at = chunks.len() - 2;
    stream(
        state,
        chunks,
        Some(usage_at),
        turn.usage_total(),
        cut_stream,
    )
}

/// The complete answer.
fn message(turn: &Turn) -> Value {
    let content = match &turn.tool {
        Some((name, input)) => json!([
            {"type": "text", "text": "Using a tool."},
            {"type": "tool_use", "id": "toolu_mock", "name": name, "input": input},
        ]),
        None => json!([{"type": "text", "text": turn.reply}]),
    };
    json!({
        "id": ID, "type": "message", "role": "assistant", "model": turn.model,
        "content": content, "stop_reason": turn.stop_reason(), "stop_sequence": null,
        "usage": turn.input_usage(turn.output_tokens),
    })
}

/// The answer as Anthropic's event stream.
fn events(turn: &Turn) -> Vec<Bytes> {
    let mut chunks = vec![
        sse(
            "message_start",
            json!({"type": "message_start", "message": {
            "id": ID, "type": "message", "role": "assistant", "model": turn.model, "content": [],
            "stop_reason": null, "stop_sequence": null,
            "usage": turn.input_usage(1)}}),
        ),
        sse(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "text", "text": ""}}),
        ),
        sse("ping", json!({"type": "ping"})),
    ];
    let text = if turn.tool.is_some() {
        "Using a tool."
    } else {
        &turn.reply
    };
    for word in text.split_inclusive(' ') {
        chunks.push(sse(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": word}}),
        ));
    }
    chunks.push(sse(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    if let Some((name, input)) = &turn.tool {
        tool_use_events(name, input, &mut chunks);
    }
    chunks.push(sse(
        "message_delta",
        json!({"type": "message_delta",
        "delta": {"stop_reason": turn.stop_reason(), "stop_sequence": null},
        "usage": {"output_tokens": turn.output_tokens}}),
    ));
    chunks.push(sse("message_stop", json!({"type": "message_stop"})));
    chunks
}

/// A `tool_use` block at index 1, its input in two `input_json_delta`s.
fn tool_use_events(name: &str, input: &Value, chunks: &mut Vec<Bytes>) {
    let input = input.to_string();
    let (a, b) = input.split_at(input.len() / 2);
    chunks.push(sse(
        "content_block_start",
        json!({"type": "content_block_start", "index": 1,
        "content_block": {"type": "tool_use", "id": "toolu_mock", "name": name, "input": {}}}),
    ));
    for part in [a, b] {
        chunks.push(sse(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": part}}),
        ));
    }
    chunks.push(sse(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 1}),
    ));
}
