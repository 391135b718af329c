//! Gemini's stream (each event a partial answer, no end marker) in the common form.

use super::response::{error_body, finish_reason, openai_usage, parts_of, usage_of, Said};
use crate::codec::{Incomplete, StreamDecoder, StreamItem};
use crate::json::now_secs;
use crate::usage::TokenUsage;
use serde_json::{json, Value};

/// Decodes a Gemini stream into the common form.
pub(super) struct Decoder {
    translator: StreamTranslator,
    failed: bool,
}

impl Decoder {
    pub(super) fn new(model: &str) -> Self {
        // The usage chunk always: the client's dialect drops it if it was not asked for.
        Self {
            translator: StreamTranslator::new(model, true),
            failed: false,
        }
    }
}

impl StreamDecoder for Decoder {
    fn event(&mut self, data: &[u8], out: &mut Vec<StreamItem>) {
        match self.translator.event(data) {
            Ok(chunks) => out.extend(chunks.into_iter().map(StreamItem::Chunk)),
            Err(error) => {
                self.failed = true;
                out.push(StreamItem::Error(error));
            }
        }
    }
    /// Complete if the answer got its finish reason; then the usage chunk closes it.
    fn end(&mut self, out: &mut Vec<StreamItem>) -> Result<(), Incomplete> {
        if !self.translator.complete() {
            return Err(Incomplete);
        }
        out.extend(self.translator.finish().into_iter().map(StreamItem::Chunk));
        Ok(())
    }
    fn usage(&self) -> Option<TokenUsage> {
        self.translator.usage()
    }
    fn failed(&self) -> bool {
        self.failed
    }
}

/// Turns Gemini's stream (each event a partial answer) into OpenAI chunks; the stream has no
/// end marker, so [`StreamTranslator::finish`] closes it.
#[derive(Debug, Default)]
pub(crate) struct StreamTranslator {
    model: String,
    created: u64,
    include_usage: bool,
    started: bool,
    calls: usize,
    usage: Value,
    finished: bool,
}

impl StreamTranslator {
    pub(crate) fn new(model: &str, include_usage: bool) -> Self {
        Self {
            model: model.to_string(),
            created: now_secs(),
            include_usage,
            ..Self::default()
        }
    }

    pub(crate) fn usage(&self) -> Option<TokenUsage> {
        self.usage.is_object().then(|| usage_of(&self.usage))
    }

    fn chunk(&self, delta: Value, finish: Value) -> Value {
        json!({
            "id": "chatcmpl-gemini", "object": "chat.completion.chunk", "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        })
    }

    /// OpenAI chunks for one Gemini event; an `{"error":...}` event comes back as one error.
    pub(crate) fn event(&mut self, data: &[u8]) -> Result<Vec<Value>, Value> {
        let Ok(event) = serde_json::from_slice::<Value>(data) else {
            return Err(crate::codec::unreadable(data));
        };
        if event.get("error").is_some() {
            return Err(error_body(data));
        }
        let mut out = Vec::new();
        if !self.started {
            self.started = true;
            out.push(self.chunk(json!({"role": "assistant", "content": ""}), Value::Null));
        }
        if event["usageMetadata"].is_object() {
            self.usage = event["usageMetadata"].clone();
        }
        let candidate = &event["candidates"][0];
        let Said {
            text,
            reasoning,
            calls,
        } = parts_of(candidate, self.calls);
        self.calls += calls.len();
        if !reasoning.is_empty() {
            out.push(self.chunk(json!({"reasoning_content": reasoning}), Value::Null));
        }
        if !text.is_empty() {
            out.push(self.chunk(json!({"content": text}), Value::Null));
        }
        if !calls.is_empty() {
            out.push(self.chunk(json!({"tool_calls": calls}), Value::Null));
        }
        if !candidate["finishReason"].is_null() && !self.finished {
            self.finished = true;
            out.push(self.chunk(
                json!({}),
                finish_reason(&candidate["finishReason"], self.calls > 0),
            ));
        }
        Ok(out)
    }

    /// Whether the answer got its finish reason (a stream without one was cut short).
    pub(crate) fn complete(&self) -> bool {
        self.finished
    }

    /// The closing chunks: the usage chunk, when the client asked for it.
    pub(crate) fn finish(&self) -> Vec<Value> {
        if !self.include_usage {
            return Vec::new();
        }
        vec![json!({
            "id": "chatcmpl-gemini", "object": "chat.completion.chunk", "created": self.created,
            "model": self.model, "choices": [], "usage": openai_usage(&self.usage),
        })]
    }
}
