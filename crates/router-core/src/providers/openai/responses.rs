//! OpenAI's Responses API as a wire format: the answers and event streams of an upstream that
//! speaks Responses (OpenAI's own API, Azure, or a provider set `responses: native`). A
//! Responses client's stream passes through it as it came, read for its usage (in the terminal
//! event), its end and its errors; decoded into the common form, it can answer any client.

use crate::codec::{Incomplete, StreamDecoder, StreamItem, StreamReader};
use crate::dialects::{ChatRequest, Endpoint};
use crate::json::now_secs;
use crate::providers::WireFormat;
use crate::usage::TokenUsage;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

/// The Responses wire format.
pub(crate) struct ResponsesWire;

/// The format of an upstream that speaks Responses.
pub(crate) static RESPONSES_WIRE: ResponsesWire = ResponsesWire;

/// A Responses `usage` as token counts.
fn tokens(u: &Value) -> Option<TokenUsage> {
    let u = u.as_object()?;
    let n = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0);
    let details = u.get("input_tokens_details");
    let input = n(u.get("input_tokens"));
    let output = n(u.get("output_tokens"));
    Some(TokenUsage {
        prompt_tokens: input,
        completion_tokens: output,
        total_tokens: u
            .get("total_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(input + output),
        cache_read_tokens: n(details.and_then(|d| d.get("cached_tokens"))),
        cache_write_tokens: n(details.and_then(|d| d.get("cache_write_tokens"))),
    })
}

/// A Responses `usage` in chat's terms (cache writes as OpenAI-compatible gateways report
/// them, `cache_creation_input_tokens`).
fn chat_usage(u: &Value) -> Value {
    let t = tokens(u).unwrap_or_default();
    let mut usage = json!({
        "prompt_tokens": t.prompt_tokens, "completion_tokens": t.completion_tokens,
        "total_tokens": t.total_tokens,
        "prompt_tokens_details": {"cached_tokens": t.cache_read_tokens},
        "completion_tokens_details": {"reasoning_tokens": u["output_tokens_details"]["reasoning_tokens"].as_u64().unwrap_or(0)},
    });
    if t.cache_write_tokens > 0 {
        usage["cache_creation_input_tokens"] = json!(t.cache_write_tokens);
    }
    usage
}

/// Chat's finish reason for a response's status and output.
fn finish_reason(response: &Value, called: bool) -> &'static str {
    match response["incomplete_details"]["reason"].as_str() {
        Some("max_output_tokens") => "length",
        Some("content_filter") => "content_filter",
        _ if called => "tool_calls",
        _ => "stop",
    }
}

/// A complete `response` as a chat completion.
fn answer(response: &Value, model: &str) -> (Value, TokenUsage) {
    let (mut text, mut reasoning, mut calls) = (String::new(), String::new(), Vec::new());
    for item in response["output"].as_array().into_iter().flatten() {
        match item["type"].as_str() {
            Some("message") => {
                for part in item["content"].as_array().into_iter().flatten() {
                    text.push_str(
                        part["text"]
                            .as_str()
                            .or(part["refusal"].as_str())
                            .unwrap_or(""),
                    );
                }
            }
            Some("reasoning") => {
                for s in item["summary"].as_array().into_iter().flatten() {
                    reasoning.push_str(s["text"].as_str().unwrap_or(""));
                }
            }
            Some("function_call") => calls.push(json!({
                "id": item["call_id"], "type": "function",
                "function": {"name": item["name"], "arguments": item["arguments"]},
            })),
            _ => {}
        }
    }
    let mut message = json!({"role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { json!(text) }});
    if !reasoning.is_empty() {
        message["reasoning_content"] = json!(reasoning);
    }
    let finish = finish_reason(response, !calls.is_empty());
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    let usage = tokens(&response["usage"]).unwrap_or_default();
    let chat = json!({
        "id": response["id"], "object": "chat.completion",
        "created": response["created_at"].as_u64().unwrap_or_else(now_secs),
        "model": response["model"].as_str().unwrap_or(model),
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
        "usage": chat_usage(&response["usage"]),
    });
    (chat, usage)
}

impl WireFormat for ResponsesWire {
    fn name(&self) -> &'static str {
        "openai-responses"
    }
    fn answer(
        &self,
        _op: Endpoint,
        answer_: Value,
        _request: &ChatRequest<'_>,
        model: &str,
    ) -> Option<(Value, TokenUsage)> {
        answer_["output"]
            .is_array()
            .then(|| answer(&answer_, model))
    }
    fn error(&self, body: &[u8]) -> Value {
        super::WIRE.error(body)
    }
    fn passthrough_usage(&self, body: &[u8]) -> TokenUsage {
        crate::walk::field_value(body, "usage")
            .and_then(|usage| tokens(&usage))
            .unwrap_or_default()
    }
    fn stream_reader(&self, _strip_usage: bool) -> Box<dyn StreamReader> {
        Box::<Reader>::default()
    }
    fn stream_decoder(&self, model: &str) -> Box<dyn StreamDecoder> {
        Box::new(Decoder {
            model: model.to_string(),
            ..Decoder::default()
        })
    }
    /// An `error` or `response.failed` before anything else.
    fn opens_with_error(&self, first: &[u8]) -> bool {
        let first = first.trim_ascii_start();
        first.starts_with(b"event: error") || first.starts_with(b"event: response.failed")
    }
}

/// What the reader needs of an event: its type and, in a terminal one, the response's usage.
#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    response: Option<Terminal>,
}

#[derive(Deserialize)]
struct Terminal {
    #[serde(default)]
    usage: Value,
}

/// Reads a relayed Responses stream: the usage in its terminal event, its end, its errors.
/// What marks an event worth parsing: the terminal events and errors (searchers built once).
static TERMINAL: std::sync::LazyLock<[memchr::memmem::Finder<'static>; 4]> =
    std::sync::LazyLock::new(|| {
        [
            &b"\"response.completed\""[..],
            b"\"response.incomplete\"",
            b"\"response.failed\"",
            b"\"error\"",
        ]
        .map(memchr::memmem::Finder::new)
    });

#[derive(Default)]
struct Reader {
    usage: Option<TokenUsage>,
    done: bool,
    failed: bool,
}

impl StreamReader for Reader {
    fn keep(&mut self, data: &[u8]) -> bool {
        // Only the terminal events and errors are parsed: the deltas pass unread.
        let terminal = TERMINAL.iter().any(|f| f.find(data).is_some());
        if !terminal {
            return true;
        }
        if let Ok(event) = serde_json::from_slice::<Event>(data) {
            if let Some(usage) = event.response.and_then(|r| tokens(&r.usage)) {
                self.usage = Some(usage);
            }
            match event.kind.as_str() {
                "response.completed" | "response.incomplete" => self.done = true,
                "response.failed" | "error" => self.failed = true,
                _ => {}
            }
        }
        true
    }
    /// A stream that ended before its terminal event was cut short.
    fn end(&mut self) -> Result<Option<Bytes>, Incomplete> {
        if self.done {
            Ok(None)
        } else {
            Err(Incomplete)
        }
    }
    fn usage(&self) -> Option<TokenUsage> {
        self.usage
    }
    fn failed(&self) -> bool {
        self.failed
    }
    fn done(&self) -> bool {
        self.done
    }
}

/// Decodes a Responses stream into chat chunks.
#[derive(Default)]
struct Decoder {
    model: String,
    id: Value,
    created: u64,
    /// Function call item id → chat tool call index.
    calls: HashMap<String, usize>,
    usage: Option<TokenUsage>,
    done: bool,
    failed: bool,
}

impl Decoder {
    fn chunk(&self, delta: Value, finish: Value) -> Value {
        json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
               "model": self.model,
               "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
    }

    fn terminal(&mut self, response: &Value, out: &mut Vec<StreamItem>) {
        self.usage = tokens(&response["usage"]);
        let finish = finish_reason(response, !self.calls.is_empty());
        out.push(StreamItem::Chunk(self.chunk(json!({}), json!(finish))));
        let mut usage = self.chunk(json!({}), Value::Null);
        usage["choices"] = json!([]);
        usage["usage"] = chat_usage(&response["usage"]);
        out.push(StreamItem::Chunk(usage));
        out.push(StreamItem::Done);
        self.done = true;
    }
}

impl StreamDecoder for Decoder {
    fn event(&mut self, data: &[u8], out: &mut Vec<StreamItem>) {
        let Ok(event) = serde_json::from_slice::<Value>(data) else {
            self.failed = true;
            out.push(StreamItem::Error(crate::codec::unreadable(data)));
            return;
        };
        match event["type"].as_str().unwrap_or("") {
            "response.created" => {
                self.id = event["response"]["id"].clone();
                self.created = event["response"]["created_at"]
                    .as_u64()
                    .unwrap_or_else(now_secs);
                out.push(StreamItem::Chunk(
                    self.chunk(json!({"role": "assistant", "content": ""}), Value::Null),
                ));
            }
            "response.output_item.added" if event["item"]["type"] == "function_call" => {
                let item = &event["item"];
                let index = self.calls.len();
                self.calls
                    .insert(item["id"].as_str().unwrap_or("").to_string(), index);
                let call = json!({"index": index, "id": item["call_id"], "type": "function",
                                  "function": {"name": item["name"], "arguments": ""}});
                out.push(StreamItem::Chunk(
                    self.chunk(json!({"tool_calls": [call]}), Value::Null),
                ));
            }
            "response.output_text.delta" | "response.refusal.delta" => {
                out.push(StreamItem::Chunk(
                    self.chunk(json!({"content": event["delta"]}), Value::Null),
                ));
            }
            "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
                let delta = json!({"reasoning_content": event["delta"]});
                out.push(StreamItem::Chunk(self.chunk(delta, Value::Null)));
            }
            "response.function_call_arguments.delta" => {
                let index = self
                    .calls
                    .get(event["item_id"].as_str().unwrap_or(""))
                    .copied()
                    .unwrap_or(0);
                let call = json!({"index": index, "function": {"arguments": event["delta"]}});
                out.push(StreamItem::Chunk(
                    self.chunk(json!({"tool_calls": [call]}), Value::Null),
                ));
            }
            "response.completed" | "response.incomplete" => self.terminal(&event["response"], out),
            "response.failed" | "error" => {
                self.failed = true;
                let e = if event["type"] == "error" {
                    &event
                } else {
                    &event["response"]["error"]
                };
                let e = if e["error"].is_object() {
                    &e["error"]
                } else {
                    e
                };
                out.push(StreamItem::Error(json!({"error": {
                    "message": e["message"].as_str().unwrap_or("upstream error"),
                    "type": e["type"].as_str().or(e["code"].as_str()).unwrap_or("upstream_error"),
                    "param": null, "code": e["code"],
                }})));
            }
            _ => {}
        }
    }
    fn end(&mut self, _out: &mut Vec<StreamItem>) -> Result<(), Incomplete> {
        if self.done {
            Ok(())
        } else {
            Err(Incomplete)
        }
    }
    fn usage(&self) -> Option<TokenUsage> {
        self.usage
    }
    fn failed(&self) -> bool {
        self.failed
    }
}
