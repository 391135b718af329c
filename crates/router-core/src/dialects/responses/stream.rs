//! A stream in the common form as the Responses API's event sequence: `response.created`,
//! `response.in_progress`; per output item `response.output_item.added`, its parts and deltas
//! (`response.output_text.delta`, `response.function_call_arguments.delta`,
//! `response.reasoning_summary_text.delta`), their `.done` events and
//! `response.output_item.done`; then `response.completed`, `response.incomplete` or
//! `response.failed`, carrying the whole response and its usage. Every event has its
//! `sequence_number`, from 0.

use super::response::{
    call_item, envelope, message_item, reasoning_item, response_id, status, usage,
};
use crate::codec::{StreamEncoder, StreamItem};
use crate::json::now_secs;
use bytes::Bytes;
use serde_json::{json, Value};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Reasoning,
    Message,
    Call,
}

/// One output item as it grows.
#[derive(Debug)]
struct Item {
    kind: Kind,
    id: String,
    /// The reasoning summary, the message text, or the call's arguments.
    text: String,
    call_id: Value,
    name: Value,
    open: bool,
}

impl Item {
    fn value(&self, status: &str) -> Value {
        match self.kind {
            Kind::Reasoning => reasoning_item(&self.id, &self.text),
            Kind::Message => message_item(&self.id, &self.text, status),
            Kind::Call => call_item(&self.id, &self.call_id, &self.name, &self.text, status),
        }
    }
}

/// Encodes the common form for a Responses client.
#[derive(Default)]
pub(crate) struct Encoder {
    seq: u64,
    started: bool,
    id: String,
    model: Value,
    created: u64,
    items: Vec<Item>,
    /// Chat tool call index → output index.
    calls: HashMap<u64, usize>,
    finish: Value,
    usage: Value,
    done: bool,
}

impl Encoder {
    fn event(&mut self, kind: &str, mut data: Value, out: &mut Vec<Bytes>) {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(self.seq);
        self.seq += 1;
        out.push(Bytes::from(format!("event: {kind}\ndata: {data}\n\n")));
    }

    fn response(&self, status: &str) -> Value {
        let output = self.items.iter().map(|i| i.value("completed")).collect();
        envelope(
            &self.id,
            &self.model,
            self.created,
            status,
            output,
            usage(&self.usage),
        )
    }

    fn start(&mut self, chunk: &Value, out: &mut Vec<Bytes>) {
        if self.started {
            return;
        }
        self.started = true;
        self.id = response_id(&chunk["id"]);
        self.model = chunk["model"].clone();
        self.created = chunk["created"].as_u64().unwrap_or_else(now_secs);
        let response = envelope(
            &self.id,
            &self.model,
            self.created,
            "in_progress",
            Vec::new(),
            Value::Null,
        );
        self.event(
            "response.created",
            json!({"response": response.clone()}),
            out,
        );
        self.event("response.in_progress", json!({"response": response}), out);
    }

    /// The open item of `kind`, opened when there is none. Opening an item closes the open
    /// text and reasoning; calls stay open to the end, as chat may interleave their arguments.
    fn open(&mut self, kind: Kind, call: Option<&Value>, out: &mut Vec<Bytes>) -> usize {
        if kind != Kind::Call {
            if let Some(i) = self.items.iter().position(|i| i.open && i.kind == kind) {
                return i;
            }
        }
        self.close(|k| k != Kind::Call, out);
        let index = self.items.len();
        let prefix = match kind {
            Kind::Reasoning => "rs",
            Kind::Message => "msg",
            Kind::Call => "fc",
        };
        let item = Item {
            kind,
            id: format!("{prefix}_{}_{index}", self.id.trim_start_matches("resp_")),
            text: String::new(),
            call_id: call.map_or(Value::Null, |c| c["id"].clone()),
            name: call.map_or(Value::Null, |c| c["function"]["name"].clone()),
            open: true,
        };
        let added = match kind {
            Kind::Reasoning => json!({"id": item.id, "type": "reasoning", "summary": []}),
            Kind::Message => {
                json!({"id": item.id, "type": "message", "status": "in_progress", "role": "assistant", "content": []})
            }
            Kind::Call => item.value("in_progress"),
        };
        let item_id = item.id.clone();
        self.items.push(item);
        self.event(
            "response.output_item.added",
            json!({"output_index": index, "item": added}),
            out,
        );
        match kind {
            Kind::Reasoning => self.event(
                "response.reasoning_summary_part.added",
                json!({"item_id": item_id, "output_index": index, "summary_index": 0, "part": {"type": "summary_text", "text": ""}}),
                out,
            ),
            Kind::Message => self.event(
                "response.content_part.added",
                json!({"item_id": item_id, "output_index": index, "content_index": 0, "part": {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}}),
                out,
            ),
            Kind::Call => {}
        }
        index
    }

    /// Closes the open items of the kinds `which` picks, in output order.
    fn close(&mut self, which: impl Fn(Kind) -> bool, out: &mut Vec<Bytes>) {
        for index in 0..self.items.len() {
            if !self.items[index].open || !which(self.items[index].kind) {
                continue;
            }
            self.items[index].open = false;
            let (id, text) = (self.items[index].id.clone(), self.items[index].text.clone());
            match self.items[index].kind {
                Kind::Reasoning => {
                    let at = json!({"item_id": id, "output_index": index, "summary_index": 0});
                    self.event(
                        "response.reasoning_summary_text.done",
                        with(&at, "text", &json!(text)),
                        out,
                    );
                    let part = json!({"type": "summary_text", "text": text});
                    self.event(
                        "response.reasoning_summary_part.done",
                        with(&at, "part", &part),
                        out,
                    );
                }
                Kind::Message => {
                    let at = json!({"item_id": id, "output_index": index, "content_index": 0});
                    let mut done = with(&at, "text", &json!(text));
                    done["logprobs"] = json!([]);
                    self.event("response.output_text.done", done, out);
                    let part = json!({"type": "output_text", "annotations": [], "logprobs": [], "text": text});
                    self.event("response.content_part.done", with(&at, "part", &part), out);
                }
                Kind::Call => {
                    let at = json!({"item_id": id, "output_index": index});
                    // A call without arguments (a tool that takes none) still sends JSON.
                    let text = if text.is_empty() {
                        self.items[index].text.push_str("{}");
                        self.event(
                            "response.function_call_arguments.delta",
                            with(&at, "delta", &json!("{}")),
                            out,
                        );
                        "{}".to_string()
                    } else {
                        text
                    };
                    self.event(
                        "response.function_call_arguments.done",
                        with(&at, "arguments", &json!(text)),
                        out,
                    );
                }
            }
            let item = self.items[index].value("completed");
            self.event(
                "response.output_item.done",
                json!({"output_index": index, "item": item}),
                out,
            );
        }
    }

    fn delta(&mut self, kind: Kind, call: Option<&Value>, text: &str, out: &mut Vec<Bytes>) {
        let index = match (kind, call) {
            (Kind::Call, Some(c)) => {
                let chat_index = c["index"].as_u64().unwrap_or(0);
                match self.calls.get(&chat_index) {
                    Some(&i) => i,
                    None => {
                        let i = self.open(Kind::Call, Some(c), out);
                        self.calls.insert(chat_index, i);
                        i
                    }
                }
            }
            _ => self.open(kind, None, out),
        };
        if text.is_empty() {
            return;
        }
        self.items[index].text.push_str(text);
        let id = self.items[index].id.clone();
        let (name, at) = match kind {
            Kind::Reasoning => (
                "response.reasoning_summary_text.delta",
                json!({"item_id": id, "output_index": index, "summary_index": 0}),
            ),
            Kind::Message => (
                "response.output_text.delta",
                json!({"item_id": id, "output_index": index, "content_index": 0, "logprobs": []}),
            ),
            Kind::Call => (
                "response.function_call_arguments.delta",
                json!({"item_id": id, "output_index": index}),
            ),
        };
        self.event(name, with(&at, "delta", &json!(text)), out);
    }

    fn chunk(&mut self, chunk: &Value, out: &mut Vec<Bytes>) {
        // Nothing follows the terminal event.
        if self.done {
            return;
        }
        self.start(chunk, out);
        if chunk["usage"].is_object() {
            self.usage = chunk["usage"].clone();
        }
        let choice = &chunk["choices"][0];
        let delta = &choice["delta"];
        // Some servers send the same reasoning under both names: the first one counts.
        let reasoning = ["reasoning_content", "reasoning"]
            .iter()
            .find_map(|k| delta[*k].as_str())
            .filter(|t| !t.is_empty());
        if let Some(text) = reasoning {
            self.delta(Kind::Reasoning, None, text, out);
        }
        for key in ["content", "refusal"] {
            if let Some(text) = delta[key].as_str().filter(|t| !t.is_empty()) {
                self.delta(Kind::Message, None, text, out);
            }
        }
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            let arguments = call["function"]["arguments"].as_str().unwrap_or("");
            self.delta(Kind::Call, Some(call), arguments, out);
        }
        if !choice["finish_reason"].is_null() {
            self.finish = choice["finish_reason"].clone();
        }
    }

    fn finish(&mut self, out: &mut Vec<Bytes>) {
        if self.done {
            return;
        }
        self.start(&Value::Null, out);
        self.close(|_| true, out);
        let (status, incomplete) = status(&self.finish);
        let mut response = self.response(status);
        response["incomplete_details"] = incomplete;
        let kind = match status {
            "completed" => "response.completed",
            _ => "response.incomplete",
        };
        self.event(kind, json!({"response": response}), out);
        self.done = true;
    }

    /// The response failed (`error` in chat's error shape): `response.failed` with the error,
    /// as the last event.
    fn fail(&mut self, error: &Value, out: &mut Vec<Bytes>) {
        if self.done {
            return;
        }
        self.start(&Value::Null, out);
        let e = &error["error"];
        let code = e["code"]
            .as_str()
            .or(e["type"].as_str())
            .unwrap_or("server_error");
        let message = e["message"].as_str().unwrap_or("upstream error");
        let mut response = self.response("failed");
        response["error"] = json!({"code": code, "message": message});
        self.event("response.failed", json!({"response": response}), out);
        self.done = true;
    }
}

/// `at` with one more field.
fn with(at: &Value, key: &str, value: &Value) -> Value {
    let mut v = at.clone();
    v[key] = value.clone();
    v
}

impl StreamEncoder for Encoder {
    fn encode(&mut self, item: StreamItem, out: &mut Vec<Bytes>) {
        match item {
            StreamItem::Chunk(chunk) => self.chunk(&chunk, out),
            StreamItem::Done => self.finish(out),
            StreamItem::Error(error) => self.fail(&error, out),
        }
    }
    fn done(&self) -> bool {
        self.done
    }
    fn interrupt(&mut self, error: &Value, out: &mut Vec<Bytes>) -> bool {
        self.fail(error, out);
        true
    }
}
