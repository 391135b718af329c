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
use serde::Deserialize;
use serde_json::value::RawValue;

/// The byte length of a JSON string's contents (escapes counted as written).
fn text_len(raw: Option<&RawValue>) -> u64 {
    raw.map(RawValue::get)
        .filter(|s| s.starts_with('"'))
        .map_or(0, |s| s.len().saturating_sub(2) as u64)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Event<'a> {
    #[serde(borrow)]
    choices: Option<Vec<Choice<'a>>>,
    /// An Anthropic delta (an object), or a Responses delta (the text itself).
    #[serde(borrow)]
    delta: Option<&'a RawValue>,
    #[serde(borrow)]
    candidates: Option<Vec<Candidate<'a>>>,
    usage: Option<Counts>,
    /// The response a Responses terminal event carries, with its usage.
    response: Option<Terminal>,
    #[serde(rename = "usageMetadata")]
    usage_metadata: Option<Counts>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Choice<'a> {
    #[serde(borrow)]
    delta: Option<Delta<'a>>,
}

/// The text-bearing fields of an OpenAI delta or an Anthropic `content_block_delta`.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Delta<'a> {
    #[serde(borrow)]
    content: Option<&'a RawValue>,
    #[serde(borrow)]
    reasoning_content: Option<&'a RawValue>,
    #[serde(borrow)]
    tool_calls: Option<Vec<ToolCall<'a>>>,
    #[serde(borrow)]
    text: Option<&'a RawValue>,
    #[serde(borrow)]
    partial_json: Option<&'a RawValue>,
    #[serde(borrow)]
    thinking: Option<&'a RawValue>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ToolCall<'a> {
    #[serde(borrow)]
    function: Option<Function<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Function<'a> {
    #[serde(borrow)]
    name: Option<&'a RawValue>,
    #[serde(borrow)]
    arguments: Option<&'a RawValue>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Candidate<'a> {
    #[serde(borrow)]
    content: Option<Content<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Content<'a> {
    #[serde(borrow)]
    parts: Option<Vec<Part<'a>>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Part<'a> {
    #[serde(borrow)]
    text: Option<&'a RawValue>,
    #[serde(borrow, rename = "functionCall")]
    function_call: Option<&'a RawValue>,
}

/// The `response` of a Responses event, read for its usage.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Terminal {
    usage: Option<Counts>,
}

/// A usage object, read only for whether it counts completion tokens.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Counts {
    completion_tokens: Option<u64>,
    output_tokens: Option<u64>,
    #[serde(rename = "candidatesTokenCount")]
    candidates_token_count: Option<u64>,
}

impl Delta<'_> {
    fn len(&self) -> u64 {
        let calls: u64 = self
            .tool_calls
            .iter()
            .flatten()
            .filter_map(|c| c.function.as_ref())
            .map(|f| text_len(f.name) + text_len(f.arguments))
            .sum();
        [
            self.content,
            self.reasoning_content,
            self.text,
            self.partial_json,
            self.thinking,
        ]
        .into_iter()
        .map(text_len)
        .sum::<u64>()
            + calls
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
    /// Reads one upstream event's data (anything that is not a JSON event counts nothing).
    pub(crate) fn observe(&mut self, data: &[u8]) {
        let Ok(event) = serde_json::from_slice::<Event<'_>>(data) else {
            return;
        };
        let mut len = match event.delta {
            Some(raw) if raw.get().starts_with('"') => text_len(Some(raw)),
            Some(raw) => serde_json::from_str::<Delta<'_>>(raw.get()).map_or(0, |d| d.len()),
            None => 0,
        };
        for choice in event.choices.iter().flatten() {
            len += choice.delta.as_ref().map_or(0, Delta::len);
        }
        for candidate in event.candidates.iter().flatten() {
            let parts = candidate.content.as_ref().and_then(|c| c.parts.as_ref());
            for part in parts.into_iter().flatten() {
                len += text_len(part.text) + part.function_call.map_or(0, |f| f.get().len() as u64);
            }
        }
        self.text_bytes += len;
        self.since_report += len;
        // A count covers the text up to and including its own event.
        let counted = |c: &Counts| {
            c.completion_tokens.is_some()
                || c.output_tokens.is_some()
                || c.candidates_token_count.is_some()
        };
        let terminal = event.response.as_ref().and_then(|r| r.usage.as_ref());
        if event.usage.as_ref().is_some_and(counted)
            || event.usage_metadata.as_ref().is_some_and(counted)
            || terminal.is_some_and(counted)
        {
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
}
