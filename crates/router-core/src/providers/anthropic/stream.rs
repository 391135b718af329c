//! Anthropic's event stream: read as it is relayed to an Anthropic client, or turned into
//! OpenAI chunks (the common form) event by event.

use super::response::{error_body, finish_reason, openai_usage};
use super::usage::Usage;
use crate::codec::{Incomplete, StreamDecoder, StreamItem, StreamReader};
use crate::json::now_secs;
use crate::usage::TokenUsage;
use bytes::Bytes;
use serde_json::{json, Value};
use std::collections::HashMap;

/// Reads a relayed Anthropic stream: its usage (from `message_start` and `message_delta`), its
/// end (`message_stop`) and `error` events. Every event goes to the client.
#[derive(Default)]
pub(super) struct Reader {
    usage: Usage,
    read: bool,
    done: bool,
    failed: bool,
}

impl StreamReader for Reader {
    fn keep(&mut self, data: &[u8]) -> bool {
        self.read = true;
        if let Ok(event) = serde_json::from_slice::<Value>(data) {
            self.usage.read(&event);
            match event["type"].as_str() {
                Some("message_stop") => self.done = true,
                Some("error") => self.failed = true,
                _ => {}
            }
        }
        true
    }
    /// A stream that ended before `message_stop` was cut short.
    fn end(&mut self) -> Result<Option<Bytes>, Incomplete> {
        if self.done {
            Ok(None)
        } else {
            Err(Incomplete)
        }
    }
    fn usage(&self) -> Option<TokenUsage> {
        self.read.then(|| self.usage.tokens())
    }
    fn failed(&self) -> bool {
        self.failed
    }
    fn done(&self) -> bool {
        self.done
    }
}

/// Decodes an Anthropic stream into the common form.
pub(super) struct Decoder(StreamTranslator);

impl Decoder {
    pub(super) fn new() -> Self {
        // The usage chunk always: the client's dialect drops it if it was not asked for.
        Self(StreamTranslator::new(true))
    }
}

impl StreamDecoder for Decoder {
    fn event(&mut self, data: &[u8], out: &mut Vec<StreamItem>) {
        let was_done = self.0.done;
        for chunk in self.0.event(data) {
            out.push(if chunk.get("error").is_some() {
                StreamItem::Error(chunk)
            } else {
                StreamItem::Chunk(chunk)
            });
        }
        if self.0.done && !was_done {
            out.push(StreamItem::Done);
        }
    }
    /// A stream that ended before `message_stop` was cut short.
    fn end(&mut self, _out: &mut Vec<StreamItem>) -> Result<(), Incomplete> {
        if self.0.done {
            Ok(())
        } else {
            Err(Incomplete)
        }
    }
    fn usage(&self) -> Option<TokenUsage> {
        self.0.usage()
    }
    fn failed(&self) -> bool {
        self.0.failed
    }
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
    usage: Usage,
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
            ..Self::default()
        }
    }

    pub(crate) fn usage(&self) -> Option<TokenUsage> {
        (!self.usage.is_empty()).then(|| self.usage.tokens())
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

    /// The OpenAI events (as JSON) for one Anthropic event's data.
    pub(crate) fn event(&mut self, data: &[u8]) -> Vec<Value> {
        let Ok(event) = serde_json::from_slice::<Value>(data) else {
            self.failed = true;
            return vec![crate::codec::unreadable(data)];
        };
        match event["type"].as_str() {
            Some("message_start") => {
                let m = &event["message"];
                self.id = m["id"].as_str().unwrap_or("").to_string();
                self.model = m["model"].as_str().unwrap_or("").to_string();
                self.usage.read(&event);
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
                self.usage.read(&event);
                vec![self.chunk(json!({}), finish_reason(&event["delta"]["stop_reason"]))]
            }
            Some("message_stop") => {
                self.done = true;
                if self.include_usage {
                    let usage = self.usage.tokens();
                    vec![json!({
                        "id": self.id, "object": "chat.completion.chunk", "created": self.created,
                        "model": self.model, "choices": [], "usage": openai_usage(usage),
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
