//! Golden streams in each provider's own wire format (shaped after the public API references:
//! cache usage fields, usage repeated in `message_delta`, an empty first `input_json_delta`,
//! `ping`, `usage: null` on every OpenAI chunk, parallel tool calls) and the exact translation
//! each must produce.

use super::{anthropic, anthropic_in};
use crate::sse::{event_data, SseScanner};
use serde_json::{json, Value};

fn events(fixture: &str) -> Vec<Vec<u8>> {
    let mut scanner = SseScanner::new();
    let mut out: Vec<Vec<u8>> = scanner
        .push(fixture.as_bytes())
        .iter()
        .filter_map(|e| event_data(e).map(|d| d.into_owned()))
        .collect();
    out.extend(
        scanner
            .finish()
            .and_then(|e| event_data(&e).map(|d| d.into_owned())),
    );
    out
}

#[test]
fn anthropic_tool_stream_to_openai_chunks() {
    let mut t = anthropic::StreamTranslator::new(true);
    let chunks: Vec<Value> = events(include_str!("fixtures/anthropic_tool_stream.sse"))
        .iter()
        .flat_map(|e| t.event(e))
        .map(|mut c| {
            c["created"] = json!(0);
            c
        })
        .collect();
    let base = |delta: Value, finish: Value| {
        json!({"id": "msg_golden", "object": "chat.completion.chunk", "created": 0, "model": "claude-test",
               "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
    };
    let expected = vec![
        base(json!({"role": "assistant", "content": ""}), Value::Null),
        base(json!({"content": "Checking the weather."}), Value::Null),
        base(
            json!({"tool_calls": [{"index": 0, "id": "toolu_golden", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
            Value::Null,
        ),
        base(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": ""}}]}),
            Value::Null,
        ),
        base(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\": \"Par"}}]}),
            Value::Null,
        ),
        base(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "is\"}"}}]}),
            Value::Null,
        ),
        base(json!({}), json!("tool_calls")),
        json!({"id": "msg_golden", "object": "chat.completion.chunk", "created": 0, "model": "claude-test", "choices": [],
               "usage": {"prompt_tokens": 160, "completion_tokens": 41, "total_tokens": 201, "prompt_tokens_details": {"cached_tokens": 30}}}),
    ];
    assert_eq!(chunks, expected);
    assert!(t.done && !t.failed);
    // input (120) + cache creation (10) + cache reads (30), counted once although repeated.
    assert_eq!(t.usage().map(|u| u.total_tokens), Some(201));
}

#[test]
fn openai_parallel_tool_stream_to_anthropic_events() {
    let mut t = anthropic_in::StreamTranslator::default();
    let out: Vec<(String, Value)> =
        events(include_str!("fixtures/openai_parallel_tools_stream.sse"))
            .iter()
            .flat_map(|e| t.event(e))
            .collect();
    let expected: Vec<(&str, Value)> = vec![
        (
            "message_start",
            json!({"type": "message_start", "message": {"id": "chatcmpl-golden", "type": "message", "role": "assistant", "model": "gpt-test", "content": [], "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 0, "output_tokens": 0}}}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "call_a", "name": "get_weather", "input": {}}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{\"city\": \"Paris\"}"}}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "call_b", "name": "get_weather", "input": {}}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"city\": \"Rome\"}"}}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 1}),
        ),
        (
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null},
                                 "usage": {"input_tokens": 18, "output_tokens": 36, "cache_read_input_tokens": 64, "cache_creation_input_tokens": 0}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ];
    let expected: Vec<(String, Value)> = expected
        .into_iter()
        .map(|(n, v)| (n.to_string(), v))
        .collect();
    assert_eq!(out, expected);
    assert_eq!(t.usage().map(|u| u.total_tokens), Some(118));
}
