//! A stream in the common form as Anthropic's event sequence: `message_start`, per block
//! `content_block_start`/`delta`/`stop`, `message_delta` (stop reason and usage),
//! `message_stop`.

use super::error::{error, stream_error_type};
use super::response::{anthropic_usage, new_tool_id, reasoning_of, stop_reason};
use crate::codec::{StreamEncoder, StreamItem};
use bytes::Bytes;
use serde_json::{json, Value};
use std::collections::HashMap;

/// Encodes the common form for an Anthropic client.
#[derive(Default)]
pub(super) struct Encoder(StreamTranslator);

impl StreamEncoder for Encoder {
    fn encode(&mut self, item: StreamItem, out: &mut Vec<Bytes>) {
        let events = match item {
            StreamItem::Chunk(chunk) | StreamItem::Error(chunk) => self.0.chunk(&chunk),
            StreamItem::Done => self.0.finish(),
        };
        for (name, data) in events {
            out.push(Bytes::from(format!("event: {name}\ndata: {data}\n\n")));
        }
    }
    fn done(&self) -> bool {
        self.0.done
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Block {
    Thinking,
    Text,
    Tool,
}

/// Turns OpenAI chunks into Anthropic's event sequence: `message_start`, per block
/// `content_block_start`/`delta`/`stop`, `message_delta` (stop reason and usage),
/// `message_stop`.
#[derive(Debug, Default)]
pub(crate) struct StreamTranslator {
    started: bool,
    open: Option<(usize, Block)>,
    next_block: usize,
    /// OpenAI tool call index → Anthropic block index.
    tools: HashMap<u64, usize>,
    /// OpenAI tool call index → its id.
    tool_ids: HashMap<u64, String>,
    finish: Value,
    /// The answer was a refusal (`delta.refusal`).
    refused: bool,
    usage: Value,
    pub(crate) done: bool,
    pub(crate) failed: bool,
}

fn ev(kind: &str, data: Value) -> (String, Value) {
    (kind.to_string(), data)
}

impl StreamTranslator {
    fn close(&mut self, out: &mut Vec<(String, Value)>) {
        if let Some((index, _)) = self.open.take() {
            out.push(ev(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": index}),
            ));
        }
    }

    fn open(&mut self, kind: Block, start: Value, out: &mut Vec<(String, Value)>) -> usize {
        self.close(out);
        let index = self.next_block;
        self.next_block += 1;
        self.open = Some((index, kind));
        out.push(ev(
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": start}),
        ));
        index
    }

    /// Anthropic events `(event name, data)` for one OpenAI event's data (`[DONE]` included).
    #[cfg(test)]
    pub(crate) fn event(&mut self, data: &[u8]) -> Vec<(String, Value)> {
        if data.trim_ascii() == b"[DONE]" {
            return self.finish();
        }
        serde_json::from_slice::<Value>(data).map_or_else(|_| Vec::new(), |c| self.chunk(&c))
    }

    /// The end of the answer: the open block closed, `message_delta` and `message_stop` (once).
    pub(crate) fn finish(&mut self) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        self.finish_message(&mut out);
        out
    }

    /// Anthropic events `(event name, data)` for one OpenAI chunk (or error event).
    pub(crate) fn chunk(&mut self, chunk: &Value) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        if let Some(e) = chunk.get("error") {
            self.failed = true;
            out.push(ev(
                "error",
                error(
                    stream_error_type(e["type"].as_str().unwrap_or("")),
                    e["message"].as_str().unwrap_or("upstream error"),
                ),
            ));
            return out;
        }
        let no_choices = chunk["choices"].as_array().is_none_or(|c| c.is_empty());
        if !self.started && no_choices && !chunk["usage"].is_object() {
            // Azure opens with a content-filter chunk: no choices, empty id and model.
            return out;
        }
        if !self.started {
            self.started = true;
            out.push(ev("message_start", json!({"type": "message_start", "message": {
                "id": chunk["id"], "type": "message", "role": "assistant", "model": chunk["model"],
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": 0, "output_tokens": 0},
            }})));
        }
        if chunk["usage"].is_object() {
            self.usage = chunk["usage"].clone();
        }
        let choice = &chunk["choices"][0];
        let delta = &choice["delta"];
        if let Some(thinking) = reasoning_of(delta) {
            let index = match self.open {
                Some((i, Block::Thinking)) => i,
                _ => self.open(
                    Block::Thinking,
                    json!({"type": "thinking", "thinking": "", "signature": ""}),
                    &mut out,
                ),
            };
            out.push(ev("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "thinking_delta", "thinking": thinking}})));
        }
        let refusal = delta["refusal"].as_str().filter(|t| !t.is_empty());
        self.refused |= refusal.is_some();
        let text = delta["content"].as_str().filter(|t| !t.is_empty());
        for text in [text, refusal].into_iter().flatten() {
            let index = match self.open {
                Some((i, Block::Text)) => i,
                _ => self.open(Block::Text, json!({"type": "text", "text": ""}), &mut out),
            };
            out.push(ev("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}})));
        }
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            self.tool_call(call, &mut out);
        }
        if !choice["finish_reason"].is_null() {
            self.finish = if self.tools.is_empty() {
                choice["finish_reason"].clone()
            } else {
                // A forced tool choice ends with "stop" on OpenAI: still a tool turn.
                json!("tool_calls")
            };
            self.close(&mut out);
        }
        out
    }

    /// One tool call delta: a new `tool_use` block for a new call, its arguments as
    /// `input_json_delta`s.
    fn tool_call(&mut self, call: &Value, out: &mut Vec<(String, Value)>) {
        let tool = call["index"].as_u64().unwrap_or(0);
        let id = call["id"].as_str().filter(|i| !i.is_empty());
        let known = self.tools.get(&tool).copied();
        let same_call = match (known, id) {
            (Some(_), None) => true,
            (Some(_), Some(id)) => self.tool_ids.get(&tool).is_some_and(|k| k == id),
            (None, _) => false,
        };
        let index = match known {
            Some(i) if same_call => i,
            _ => {
                if let Some(id) = id {
                    self.tool_ids.insert(tool, id.to_string());
                }
                let id = id.map_or_else(new_tool_id, str::to_string);
                let start = json!({"type": "tool_use", "id": id, "name": call["function"]["name"], "input": {}});
                let i = self.open(Block::Tool, start, out);
                self.tools.insert(tool, i);
                i
            }
        };
        if let Some(args) = call["function"]["arguments"]
            .as_str()
            .filter(|a| !a.is_empty())
        {
            out.push(ev("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": args}})));
        }
    }

    fn finish_message(&mut self, out: &mut Vec<(String, Value)>) {
        if self.done {
            return;
        }
        self.close(out);
        let usage = anthropic_usage(&self.usage);
        let reason = if self.refused && self.tools.is_empty() {
            json!("refusal")
        } else {
            stop_reason(&self.finish)
        };
        out.push(ev("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": null}, "usage": usage})));
        out.push(ev("message_stop", json!({"type": "message_stop"})));
        self.done = true;
    }
}
