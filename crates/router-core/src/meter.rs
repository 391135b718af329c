//! What a stream has said so far, so that a stream that ends without its final usage report
//! (cut by the upstream, timed out, or left by the client) is still charged: the provider bills
//! the prompt and every token it sent.
//!
//! Text is measured in each upstream event of any of the four formats (OpenAI chunks, Responses
//! events, Anthropic events, Gemini partial answers) and estimated at one token per four bytes.
//! A usage report that carries a completion count (OpenAI's `usage`, the Responses terminal
//! event's `response.usage`, Anthropic's `message_delta`, Gemini's
//! `usageMetadata.candidatesTokenCount`) covers everything streamed before it; only text after
//! the last such report is estimated.

use crate::usage::TokenUsage;
use crate::walk::{walk, Visit};

/// Where a value sits in an event, as far as the meter cares.
#[derive(Clone, Copy, PartialEq, Eq)]
enum At {
    Event,
    Choices,
    Choice,
    /// An OpenAI or Anthropic delta (an object), or a Responses delta (the text itself).
    Delta,
    ToolCalls,
    ToolCall,
    Function,
    Candidates,
    Candidate,
    Content,
    Parts,
    Part,
    /// A string here is streamed text.
    Text,
    /// Any value here is streamed text, as written (a Gemini `functionCall`).
    Raw,
    /// A usage object.
    Counts,
    /// A completion count: a number here is a usage report.
    Count,
    /// The `response` of a Responses event, read for its usage.
    Terminal,
    Other,
}

impl At {
    /// Where the value under `key` of an object here sits.
    fn key(self, key: &[u8]) -> At {
        match (self, key) {
            (At::Event, b"choices") => At::Choices,
            (At::Event | At::Choice, b"delta") => At::Delta,
            (At::Event, b"candidates") => At::Candidates,
            (At::Event, b"usage" | b"usageMetadata") | (At::Terminal, b"usage") => At::Counts,
            (At::Event, b"response") => At::Terminal,
            (
                At::Delta,
                b"content" | b"reasoning_content" | b"text" | b"partial_json" | b"thinking",
            ) => At::Text,
            (At::Delta, b"tool_calls") => At::ToolCalls,
            (At::ToolCall, b"function") => At::Function,
            (At::Function, b"name" | b"arguments") => At::Text,
            (At::Candidate, b"content") => At::Content,
            (At::Content, b"parts") => At::Parts,
            (At::Part, b"text") => At::Text,
            (At::Part, b"functionCall") => At::Raw,
            (At::Counts, b"completion_tokens" | b"output_tokens" | b"candidatesTokenCount") => {
                At::Count
            }
            _ => At::Other,
        }
    }

    /// Where the elements of an array here sit.
    fn element(self) -> At {
        match self {
            At::Choices => At::Choice,
            At::ToolCalls => At::ToolCall,
            At::Candidates => At::Candidate,
            At::Parts => At::Part,
            _ => At::Other,
        }
    }
}

/// What one event says: the text it carries, and whether it reports a completion count.
#[derive(Default)]
struct Seen {
    text: u64,
    reported: bool,
}

impl Visit<'_> for Seen {
    type At = At;
    fn key(&self, at: At, key: &[u8]) -> At {
        at.key(key)
    }
    fn element(&self, at: At) -> At {
        at.element()
    }
    fn value(&mut self, at: At, raw: &[u8]) {
        let first = raw.first().copied().unwrap_or_default();
        match at {
            At::Text | At::Delta if first == b'"' => self.text += raw.len() as u64 - 2,
            At::Raw => self.text += raw.len() as u64,
            At::Count if first == b'-' || first.is_ascii_digit() => self.reported = true,
            _ => {}
        }
    }
    fn skips(&self, at: At) -> bool {
        // Nothing below a place the meter does not know counts.
        at == At::Other
    }
}

/// Text streamed so far, and how much of it came after the last completion count.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct StreamMeter {
    text_bytes: u64,
    since_report: u64,
    reported: bool,
}

impl StreamMeter {
    /// Reads one upstream event's data (anything that is not JSON counts nothing). The event
    /// is walked, not parsed (see [`crate::walk`]).
    pub(crate) fn observe(&mut self, data: &[u8]) {
        let mut seen = Seen::default();
        if !walk(data, At::Event, &mut seen) {
            return;
        }
        self.text_bytes += seen.text;
        self.since_report += seen.text;
        // A count covers the text up to and including its own event.
        if seen.reported {
            self.reported = true;
            self.since_report = 0;
        }
    }

    /// Usage to charge: `reported` as it is when it covers everything streamed; otherwise the
    /// completion count raised by the estimate of the text it does not cover, and the prompt
    /// estimated as `prompt_estimate` when no count of it arrived.
    pub(crate) fn charge(&self, reported: Option<TokenUsage>, prompt_estimate: u64) -> TokenUsage {
        let tokens = |bytes: u64| bytes.div_ceil(4);
        let mut usage = reported.unwrap_or_default();
        // The upstream's own figures stand as they are when they cover everything streamed.
        if self.reported && self.since_report == 0 && reported.is_some() {
            return usage;
        }
        if self.reported {
            usage.completion_tokens = usage
                .completion_tokens
                .saturating_add(tokens(self.since_report));
        } else {
            usage.completion_tokens = usage.completion_tokens.max(tokens(self.text_bytes));
        }
        if usage.prompt_tokens == 0 {
            usage.prompt_tokens = prompt_estimate;
        }
        usage.total_tokens = usage.prompt_tokens.saturating_add(usage.completion_tokens);
        usage
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(p: u64, c: u64) -> TokenUsage {
        TokenUsage {
            prompt_tokens: p,
            completion_tokens: c,
            total_tokens: p + c,
            ..TokenUsage::default()
        }
    }

    #[test]
    fn openai_chunks_are_covered_by_their_usage_chunk() {
        let mut m = StreamMeter::default();
        m.observe(br#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#);
        m.observe(br#"{"choices":[{"index":0,"delta":{"content":"Hello there"}}]}"#);
        m.observe(br#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"name":"f","arguments":"{\"a\":1}"}}]}}]}"#);
        // Cut here: 11 + 1 + 9 bytes of text, 6 tokens; the prompt is estimated.
        assert_eq!(m.charge(None, 40), usage(40, 6));
        m.observe(br#"{"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":99}}"#);
        // The upstream's own figures, total included, as they are.
        let reported = TokenUsage {
            prompt_tokens: 12,
            completion_tokens: 3,
            total_tokens: 99,
            ..TokenUsage::default()
        };
        assert_eq!(m.charge(Some(reported), 40), reported);
    }

    #[test]
    fn anthropic_start_counts_the_prompt_and_deltas_the_rest() {
        let mut m = StreamMeter::default();
        m.observe(br#"{"type":"message_start","message":{"usage":{"input_tokens":25,"output_tokens":1}}}"#);
        m.observe(br#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"abcdefgh"}}"#);
        m.observe(br#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"q\":"}}"#);
        // Cut before message_delta: input as reported, output estimated from 8 + 7 bytes.
        assert_eq!(m.charge(Some(usage(25, 1)), 40), usage(25, 4));
        m.observe(br#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":9}}"#);
        assert_eq!(m.charge(Some(usage(25, 9)), 40), usage(25, 9));
    }

    #[test]
    fn gemini_text_after_the_last_count_is_estimated() {
        let mut m = StreamMeter::default();
        m.observe(br#"{"candidates":[{"content":{"parts":[{"text":"abcd"}]}}],"usageMetadata":{"promptTokenCount":7,"candidatesTokenCount":1}}"#);
        m.observe(br#"{"candidates":[{"content":{"parts":[{"text":"efghijkl"}]}}]}"#);
        assert_eq!(m.charge(Some(usage(7, 1)), 40), usage(7, 3));
        // Not JSON, or not an event with text: nothing counted.
        m.observe(b"[DONE]");
        m.observe(br#"{"type":"ping"}"#);
        assert_eq!(m.charge(Some(usage(7, 1)), 40), usage(7, 3));
    }

    #[test]
    fn responses_deltas_are_text_and_the_terminal_event_counts() {
        let mut m = StreamMeter::default();
        m.observe(br#"{"type":"response.created","sequence_number":0,"response":{"id":"r","output":[],"usage":null}}"#);
        m.observe(br#"{"type":"response.output_text.delta","sequence_number":4,"item_id":"m","output_index":0,"content_index":0,"delta":"Hello there","logprobs":[]}"#);
        m.observe(br#"{"type":"response.function_call_arguments.delta","sequence_number":5,"item_id":"f","output_index":1,"delta":"{\"a\":1}"}"#);
        // Cut here: 11 + 9 bytes of text, 5 tokens; the prompt is estimated.
        assert_eq!(m.charge(None, 40), usage(40, 5));
        m.observe(br#"{"type":"response.completed","sequence_number":9,"response":{"id":"r","usage":{"input_tokens":12,"output_tokens":30,"total_tokens":42}}}"#);
        assert_eq!(m.charge(Some(usage(12, 30)), 40), usage(12, 30));
    }

    #[test]
    fn spaced_events_and_broken_ones() {
        let mut m = StreamMeter::default();
        m.observe(b" {\"candidates\": [ {\"content\": {\"parts\": [{\"text\": \"abcd\"}],\r\n \"role\": \"model\"}}]}\n");
        assert_eq!(m.charge(None, 0), usage(0, 1));
        // Cut short, or with something after it: nothing counted, not even what came first.
        m.observe(br#"{"delta":"abcdefgh","usage":{"output_tokens":"#);
        m.observe(br#"{"delta":"abcdefgh"} {"delta":"abcdefgh"}"#);
        m.observe(br#"{"delta":"abcd\"efgh}"#);
        m.observe(br#"{"delta":"abcdefgh","usage":}"#);
        assert_eq!(m.charge(None, 0), usage(0, 1));
        // Deep nesting is given up on, like serde_json does.
        let deep = format!(
            r#"{{"delta":"abcdefgh","x":{}{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        m.observe(deep.as_bytes());
        assert_eq!(m.charge(None, 0), usage(0, 1));
        // A usage that is not an object, or a count that is not a number, reports nothing.
        m.observe(br#"{"delta":"abcd","usage":7}"#);
        m.observe(br#"{"delta":"abcd","usage":{"output_tokens":null}}"#);
        assert_eq!(m.charge(None, 0), usage(0, 3));
    }

    use proptest::prelude::*;
    use serde_json::{Map, Value};

    /// The raw length of a string as serde_json writes it.
    fn written(s: &str) -> u64 {
        serde_json::to_string(s).unwrap().len() as u64 - 2
    }

    fn text_of(v: &Value) -> u64 {
        v.as_str().map_or(0, written)
    }

    fn delta_text(d: &Value) -> u64 {
        if let Some(s) = d.as_str() {
            return written(s);
        }
        let fields = [
            "content",
            "reasoning_content",
            "text",
            "partial_json",
            "thinking",
        ];
        let own: u64 = fields.iter().map(|k| text_of(&d[k])).sum();
        let calls = d["tool_calls"].as_array().into_iter().flatten();
        own + calls
            .map(|c| text_of(&c["function"]["name"]) + text_of(&c["function"]["arguments"]))
            .sum::<u64>()
    }

    /// What the meter should read from `v`, found by following each path in the value.
    fn oracle(v: &Value) -> (u64, bool) {
        let mut text = delta_text(&v["delta"]);
        for choice in v["choices"].as_array().into_iter().flatten() {
            text += delta_text(&choice["delta"]);
        }
        for candidate in v["candidates"].as_array().into_iter().flatten() {
            for part in candidate["content"]["parts"]
                .as_array()
                .into_iter()
                .flatten()
            {
                text += text_of(&part["text"]);
                if let Some(call) = part.get("functionCall") {
                    text += serde_json::to_string(call).unwrap().len() as u64;
                }
            }
        }
        let counts = |u: &Value| {
            ["completion_tokens", "output_tokens", "candidatesTokenCount"]
                .iter()
                .any(|k| u[k].is_number())
        };
        let reported =
            counts(&v["usage"]) || counts(&v["usageMetadata"]) || counts(&v["response"]["usage"]);
        (text, reported)
    }

    fn event() -> impl Strategy<Value = Value> {
        let keys = prop::sample::select(vec![
            "choices",
            "delta",
            "candidates",
            "usage",
            "usageMetadata",
            "response",
            "content",
            "reasoning_content",
            "text",
            "partial_json",
            "thinking",
            "tool_calls",
            "function",
            "name",
            "arguments",
            "parts",
            "functionCall",
            "completion_tokens",
            "output_tokens",
            "candidatesTokenCount",
            "id",
            "type",
        ]);
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            "[a-z\"\\\\\n\u{e9}\u{1F600} ]{0,8}".prop_map(Value::String),
        ];
        let value = leaf.prop_recursive(6, 64, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((keys.clone(), inner), 0..5).prop_map(|kv| Value::Object(
                    kv.into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect::<Map<_, _>>()
                )),
            ]
        });
        prop::collection::vec(
            (
                prop::sample::select(vec![
                    "choices",
                    "delta",
                    "candidates",
                    "usage",
                    "usageMetadata",
                    "response",
                    "id",
                ]),
                value,
            ),
            0..5,
        )
        .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
    }

    proptest! {
        /// The walk reads what following each field's path in the parsed event finds, in
        /// compact and in spaced-out JSON.
        #[test]
        fn the_walk_reads_what_the_paths_hold(v in event()) {
            let (text, reported) = oracle(&v);
            let compact = serde_json::to_vec(&v).unwrap();
            // A functionCall's length is as written: spaced out, it is longer.
            let spaced_too = !String::from_utf8_lossy(&compact).contains("functionCall");
            for (data, exact) in [(compact, true), (serde_json::to_vec_pretty(&v).unwrap(), spaced_too)] {
                let mut seen = Seen::default();
                prop_assert!(walk(&data, At::Event, &mut seen));
                prop_assert_eq!(seen.reported, reported);
                if exact {
                    prop_assert_eq!(seen.text, text);
                }
            }
        }
    }
}
