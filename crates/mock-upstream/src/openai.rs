//! The mock's chat completions (`/v1/chat/completions`, and Azure's deployments): the reply is
//! `mock says: ` + the last user message, a tool call when the request offers tools and asks to
//! "use a tool", reasoning when `reasoning_effort` is set; complete or streamed. A reply longer
//! than the request's `max_completion_tokens` (or `max_tokens`), at a token a word, is cut there
//! and ends with `finish_reason: "length"`.

use crate::{error, full, stream, text_of, tools, Body, State};
use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::{json, Value};
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;

/// What the mock answers to one request.
struct Turn {
    model: String,
    reply: String,
    /// The tool to call, with its arguments.
    tool: Option<(String, String)>,
    reasoning: Option<String>,
    prompt_tokens: u64,
    completion_tokens: u64,
    /// Of the prompt's tokens, those read from and written to the prompt cache.
    cache: (u64, u64),
    /// The reply was cut at the request's completion limit.
    cut: bool,
}

impl Turn {
    fn of(request: &Value, messages: &[Value], model: String, cache: (u64, u64)) -> Self {
        // A tool's result, when the conversation ends with one; else the last user text.
        let last_user = match messages.last() {
            Some(m) if m["role"] == "tool" => format!("tool said: {}", text_of(&m["content"])),
            _ => messages
                .iter()
                .rev()
                .find(|m| m["role"] == "user")
                .map(|m| text_of(&m["content"]))
                .unwrap_or_default(),
        };
        let mut reply = format!("mock says: {last_user}");
        let limit = (request["max_completion_tokens"].as_u64())
            .or(request["max_tokens"].as_u64())
            .and_then(|n| usize::try_from(n).ok());
        let cut = limit.is_some_and(|n| reply.split_whitespace().count() > n);
        if let (true, Some(n)) = (cut, limit) {
            reply = reply
                .split_whitespace()
                .take(n)
                .collect::<Vec<_>>()
                .join(" ");
        }
        let offered = request["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| {
                Some((
                    t["function"]["name"].as_str()?,
                    &t["function"]["parameters"],
                ))
            });
        let tool = tools::call(offered, &last_user).map(|(name, input)| (name, input.to_string()));
        // Asked to reason: the reasoning comes first, as OpenAI-compatible reasoners send it.
        let reasoning = request["reasoning_effort"]
            .as_str()
            .map(|effort| format!("reasoning at {effort} effort"));
        let prompt_bytes: usize = messages.iter().map(|m| text_of(&m["content"]).len()).sum();
        Self {
            model,
            completion_tokens: reply.split_whitespace().count() as u64,
            reply,
            tool,
            reasoning,
            prompt_tokens: 1 + prompt_bytes as u64 / 4 + cache.0 + cache.1,
            cache,
            cut,
        }
    }

    /// Why the answer ended.
    fn finish_reason(&self) -> &'static str {
        match (&self.tool, self.cut) {
            (Some(_), _) => "tool_calls",
            (None, true) => "length",
            (None, false) => "stop",
        }
    }

    fn usage(&self) -> Value {
        let mut usage = json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.usage_total(),
            "prompt_tokens_details": {"cached_tokens": self.cache.0},
        });
        if self.cache.1 > 0 {
            usage["cache_creation_input_tokens"] = json!(self.cache.1);
        }
        usage
    }

    fn usage_total(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }
}

/// Answers a chat request for `model`.
pub(crate) fn answer(
    state: Arc<State>,
    request: &Value,
    model: String,
    cut_stream: Option<usize>,
) -> Response<Body> {
    let Some(messages) = request["messages"].as_array() else {
        return error(400, "messages must be an array");
    };
    let cache = *state.cache_tokens.lock().unwrap();
    let turn = Turn::of(request, messages, model, cache);
    if request["stream"] != Value::Bool(true) {
        state.tokens_reported.fetch_add(turn.usage_total(), SeqCst);
        let answer = completion(&turn, request);
        return full(StatusCode::OK, "application/json", answer.to_string());
    }
    let include_usage = request["stream_options"]["include_usage"] == Value::Bool(true);
    let chunks = chunks(&turn, include_usage);
    // The usage chunk, when asked for, comes just before `[DONE]`.
    let usage_at = include_usage.then(|| chunks.len() - 2);
    stream(state, chunks, usage_at, turn.usage_total(), cut_stream)
}

/// The complete answer, with unknown request fields echoed back.
fn completion(turn: &Turn, request: &Value) -> Value {
    let message = match (&turn.tool, &turn.reasoning) {
        (Some((name, args)), _) => json!({"role": "assistant", "content": null, "refusal": null,
            "tool_calls": [{"id": "call_mock", "type": "function",
                            "function": {"name": name, "arguments": args}}]}),
        (None, Some(r)) => json!({"role": "assistant", "content": turn.reply, "refusal": null,
                                  "reasoning_content": r}),
        (None, None) => json!({"role": "assistant", "content": turn.reply, "refusal": null}),
    };
    json!({
        "id": "chatcmpl-mock",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": turn.model,
        "system_fingerprint": "fp_mock",
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": turn.finish_reason(),
        }],
        "usage": turn.usage(),
        "x_mock_extra": {"echo_unknown": request.get("x_client_extra").cloned()},
    })
}

/// The answer as a stream: a role chunk, the reasoning and the reply (or the tool call) word by
/// word, a finish chunk, the usage chunk when asked for, `[DONE]`.
fn chunks(turn: &Turn, include_usage: bool) -> Vec<Bytes> {
    let chunk = |delta: Value, finish: Value| {
        let c = json!({
            "id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1_700_000_000,
            "model": turn.model, "system_fingerprint": "fp_mock",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        Bytes::from(format!("data: {c}\n\n"))
    };
    let mut chunks = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    if let Some(reasoning) = &turn.reasoning {
        for word in reasoning.split_inclusive(' ') {
            chunks.push(chunk(json!({"reasoning_content": word}), Value::Null));
        }
    }
    if let Some((name, args)) = &turn.tool {
        chunks.push(chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_mock", "type": "function",
                                   "function": {"name": name, "arguments": ""}}]}),
            Value::Null,
        ));
        let (a, b) = args.split_at(args.len() / 2);
        for part in [a, b] {
            chunks.push(chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": part}}]}),
                Value::Null,
            ));
        }
        chunks.push(chunk(json!({}), json!(turn.finish_reason())));
    } else {
        for word in turn.reply.split_inclusive(' ') {
            chunks.push(chunk(json!({"content": word}), Value::Null));
        }
        chunks.push(chunk(json!({}), json!(turn.finish_reason())));
    }
    if include_usage {
        let c = json!({
            "id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1_700_000_000,
            "model": turn.model, "choices": [], "usage": turn.usage(),
        });
        chunks.push(Bytes::from(format!("data: {c}\n\n")));
    }
    chunks.push(Bytes::from_static(b"data: [DONE]\n\n"));
    chunks
}
