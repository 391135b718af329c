//! Golden streams in each provider's own wire format (shaped after the public API references:
//! cache usage fields, usage repeated in `message_delta`, an empty first `input_json_delta`,
//! `ping`, `usage: null` on every OpenAI chunk, parallel tool calls) and the exact translation
//! each must produce.

use crate::dialects::anthropic as anthropic_in;
use crate::dialects::responses;
use crate::fields::Fields;
use crate::providers::{anthropic, gemini, openai, WireFormat};
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
               "usage": {"prompt_tokens": 160, "completion_tokens": 41, "total_tokens": 201, "prompt_tokens_details": {"cached_tokens": 30},
                         "cache_creation_input_tokens": 10}}),
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
    // The usage is read where the upstream's chunks are decoded.
    let mut decoder = openai::WIRE.stream_decoder("gpt-test");
    let mut items = Vec::new();
    for e in events(include_str!("fixtures/openai_parallel_tools_stream.sse")) {
        decoder.event(&e, &mut items);
    }
    assert_eq!(decoder.usage().map(|u| u.total_tokens), Some(118));
}

fn fixture(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

#[test]
fn anthropic_complete_answer_to_openai() {
    let (mut answer, usage) =
        anthropic::response(&fixture(include_str!("fixtures/anthropic_message.json")));
    answer["created"] = json!(0);
    assert_eq!(
        answer,
        json!({
            "id": "msg_01GoldenComplete",
            "object": "chat.completion",
            "created": 0,
            "model": "claude-test",
            "choices": [{
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Let me check the weather in Paris.",
                    "reasoning_content": "The user wants the weather; I should call the tool.",
                    "tool_calls": [
                        {"id": "toolu_01GoldenA", "type": "function",
                         "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\",\"unit\":\"celsius\"}"}},
                        {"id": "toolu_01GoldenB", "type": "function",
                         "function": {"name": "get_time", "arguments": "{}"}},
                    ],
                },
                "logprobs": null,
                "finish_reason": "tool_calls",
            }],
            // Prompt: input 2095 + cache creation 100 + cache reads 1024.
            "usage": {"prompt_tokens": 3219, "completion_tokens": 503, "total_tokens": 3722,
                      "prompt_tokens_details": {"cached_tokens": 1024}, "cache_creation_input_tokens": 100},
        })
    );
    assert_eq!(usage.total_tokens, 3722);
}

#[test]
fn gemini_complete_answer_to_openai() {
    let (mut answer, usage) = gemini::response(
        &fixture(include_str!("fixtures/gemini_response.json")),
        "gemini-configured",
    );
    answer["created"] = json!(0);
    assert_eq!(
        answer,
        json!({
            "id": "chatcmpl-goldenResp01",
            "object": "chat.completion",
            "created": 0,
            "model": "gemini-2.5-flash",
            "choices": [{
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Let me look that up. One moment.",
                    "reasoning_content": "**Checking the forecast**\nThe user asks about Paris.",
                    // The call's thought signature rides in its id, to be sent back with it.
                    "tool_calls": [{"id": "call_0__thought__CiQBgolden", "type": "function",
                                    "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}],
                },
                "logprobs": null,
                "finish_reason": "tool_calls",
            }],
            // Completion: candidates 17 + thoughts 61; total as reported.
            "usage": {"prompt_tokens": 42, "completion_tokens": 78, "total_tokens": 120,
                      "prompt_tokens_details": {"cached_tokens": 8}},
        })
    );
    assert_eq!(usage.total_tokens, 120);
}

#[test]
fn gemini_stream_to_openai_chunks() {
    let mut t = gemini::StreamTranslator::new("gemini-configured", true);
    let mut chunks: Vec<Value> = events(include_str!("fixtures/gemini_stream.sse"))
        .iter()
        .flat_map(|e| t.event(e).unwrap())
        .collect();
    assert!(t.complete());
    chunks.extend(t.finish());
    for c in &mut chunks {
        c["created"] = json!(0);
    }
    let base = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-gemini", "object": "chat.completion.chunk", "created": 0,
               "model": "gemini-configured",
               "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
    };
    assert_eq!(
        chunks,
        vec![
            base(json!({"role": "assistant", "content": ""}), Value::Null),
            base(
                json!({"reasoning_content": "Thinking about Paris."}),
                Value::Null
            ),
            base(json!({"content": "It is "}), Value::Null),
            base(json!({"content": "sunny."}), Value::Null),
            base(
                json!({"tool_calls": [{"index": 0, "id": "call_0", "type": "function",
                                       "function": {"name": "log_city", "arguments": "{\"city\":\"Paris\"}"}}]}),
                Value::Null,
            ),
            base(json!({}), json!("tool_calls")),
            json!({"id": "chatcmpl-gemini", "object": "chat.completion.chunk", "created": 0,
                   "model": "gemini-configured", "choices": [],
                   "usage": {"prompt_tokens": 42, "completion_tokens": 15, "total_tokens": 57,
                             "prompt_tokens_details": {"cached_tokens": 0}}}),
        ]
    );
    // The last usageMetadata counts: 42 prompt, 9 candidates + 6 thoughts.
    assert_eq!(t.usage().map(|u| u.total_tokens), Some(57));
}

#[test]
fn openai_request_to_anthropic_and_gemini() {
    let request = fixture(include_str!("fixtures/openai_request.json"));
    let request = request.as_object().unwrap();
    assert_eq!(
        anthropic::request(request, "claude-test", 4096, &mut Fields::default()).unwrap(),
        json!({
            "model": "claude-test",
            "system": "You are terse.",
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "What is the weather here?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}},
                ]},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "call_abc", "name": "get_weather", "input": {"city": "Paris"}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "call_abc", "content": "18C, sunny"},
                ]},
            ],
            "tools": [{"name": "get_weather", "description": "Current weather",
                       "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}],
            "tool_choice": {"type": "auto"},
            "temperature": 0,
            "top_p": 0.9,
            "stop_sequences": ["END"],
            "max_tokens": 256,
            "stream": true,
        })
    );
    assert_eq!(
        gemini::request(request, &mut Fields::default()).unwrap(),
        json!({
            "systemInstruction": {"parts": [{"text": "You are terse."}]},
            "contents": [
                {"role": "user", "parts": [
                    {"text": "What is the weather here?"},
                    {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQ"}},
                ]},
                {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]},
                {"role": "user", "parts": [
                    {"functionResponse": {"name": "get_weather", "response": {"content": "18C, sunny"}}},
                ]},
            ],
            "tools": [{"functionDeclarations": [{"name": "get_weather", "description": "Current weather",
                       "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]}],
            "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
            "generationConfig": {"temperature": 0, "topP": 0.9, "stopSequences": ["END"], "maxOutputTokens": 256},
        })
    );
}

/// The events of a Responses stream, as (type, data), checked to carry their `event:` line.
fn responses_events(bytes: &[bytes::Bytes]) -> Vec<(String, Value)> {
    bytes
        .iter()
        .map(|b| {
            let text = std::str::from_utf8(b).unwrap();
            let (event, data) = text.split_once('\n').unwrap();
            let data: Value =
                serde_json::from_str(data.trim_start_matches("data: ").trim()).unwrap();
            assert_eq!(data["type"], event.trim_start_matches("event: "));
            (event.trim_start_matches("event: ").to_string(), data)
        })
        .collect()
}

#[test]
fn openai_parallel_tool_stream_to_responses_events() {
    use crate::codec::{StreamEncoder, StreamItem};
    let mut decoder = openai::WIRE.stream_decoder("gpt-test");
    let mut items: Vec<StreamItem> = Vec::new();
    for e in events(include_str!("fixtures/openai_parallel_tools_stream.sse")) {
        decoder.event(&e, &mut items);
    }
    decoder.end(&mut items).unwrap();
    let mut encoder = responses::Encoder::default();
    let mut out = Vec::new();
    for item in items {
        encoder.encode(item, &mut out);
    }
    let events = responses_events(&out);
    let seq: Vec<(&str, u64)> = events
        .iter()
        .map(|(k, d)| (k.as_str(), d["sequence_number"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        seq,
        [
            ("response.created", 0),
            ("response.in_progress", 1),
            ("response.output_item.added", 2),
            ("response.function_call_arguments.delta", 3),
            ("response.output_item.added", 4),
            ("response.function_call_arguments.delta", 5),
            ("response.function_call_arguments.done", 6),
            ("response.output_item.done", 7),
            ("response.function_call_arguments.done", 8),
            ("response.output_item.done", 9),
            ("response.completed", 10),
        ]
    );
    assert_eq!(
        events[2].1["item"],
        json!({"id": "fc_chatcmpl-golden_0", "type": "function_call", "status": "in_progress",
               "arguments": "", "call_id": "call_a", "name": "get_weather"})
    );
    assert_eq!(
        events[8].1,
        json!({"type": "response.function_call_arguments.done", "sequence_number": 8,
               "item_id": "fc_chatcmpl-golden_1", "output_index": 1, "arguments": "{\"city\": \"Rome\"}"})
    );
    let mut completed = events[10].1["response"].clone();
    completed["created_at"] = json!(0);
    assert_eq!(
        completed,
        json!({
            "id": "resp_chatcmpl-golden", "object": "response", "created_at": 0, "status": "completed",
            "model": "gpt-test", "error": null, "incomplete_details": null, "parallel_tool_calls": true,
            "tool_choice": "auto", "tools": [], "metadata": {},
            "output": [
                {"id": "fc_chatcmpl-golden_0", "type": "function_call", "status": "completed",
                 "arguments": "{\"city\": \"Paris\"}", "call_id": "call_a", "name": "get_weather"},
                {"id": "fc_chatcmpl-golden_1", "type": "function_call", "status": "completed",
                 "arguments": "{\"city\": \"Rome\"}", "call_id": "call_b", "name": "get_weather"},
            ],
            "usage": {"input_tokens": 82, "input_tokens_details": {"cached_tokens": 64}, "output_tokens": 36,
                      "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 118},
        })
    );
}

#[test]
fn responses_stream_relayed_is_read_for_its_usage() {
    let fixture = include_str!("fixtures/openai_responses_stream.sse");
    let mut reader = openai::RESPONSES_WIRE.stream_reader(true);
    for e in events(fixture) {
        // Every event reaches the client as it came.
        assert!(reader.keep(&e));
        assert!(!reader.failed());
    }
    assert!(reader.done());
    assert_eq!(reader.end().unwrap(), None);
    let usage = reader.usage().unwrap();
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.total_tokens,
            usage.cache_read_tokens
        ),
        (81, 148, 229, 64)
    );
    assert!(openai::RESPONSES_WIRE.opens_with_error(b"event: error\ndata: {}\n\n"));
    assert!(!openai::RESPONSES_WIRE.opens_with_error(fixture.as_bytes()));
    // Cut before its terminal event, the stream is incomplete.
    let mut cut = openai::RESPONSES_WIRE.stream_reader(true);
    for e in events(fixture).iter().take(6) {
        cut.keep(e);
    }
    assert!(cut.end().is_err());
}

#[test]
fn responses_stream_decodes_to_chat_chunks() {
    use crate::codec::StreamItem;
    let mut decoder = openai::RESPONSES_WIRE.stream_decoder("configured");
    let mut items = Vec::new();
    for e in events(include_str!("fixtures/openai_responses_stream.sse")) {
        decoder.event(&e, &mut items);
    }
    decoder.end(&mut items).unwrap();
    let chunk = |delta: Value, finish: Value| {
        StreamItem::Chunk(
            json!({"id": "resp_golden", "object": "chat.completion.chunk", "created": 1759064126,
            "model": "configured", "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]}),
        )
    };
    let mut usage = json!({"id": "resp_golden", "object": "chat.completion.chunk", "created": 1759064126,
        "model": "configured", "choices": [], "usage": {"prompt_tokens": 81, "completion_tokens": 148, "total_tokens": 229,
        "prompt_tokens_details": {"cached_tokens": 64}, "completion_tokens_details": {"reasoning_tokens": 128}}});
    usage["choices"] = json!([]);
    assert_eq!(
        items,
        vec![
            chunk(json!({"role": "assistant", "content": ""}), Value::Null),
            chunk(json!({"content": "Checking \"error\" cases."}), Value::Null),
            chunk(
                json!({"tool_calls": [{"index": 0, "id": "call_golden", "type": "function",
                                        "function": {"name": "get_weather", "arguments": ""}}]}),
                Value::Null
            ),
            chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}),
                Value::Null
            ),
            chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}),
                Value::Null
            ),
            chunk(json!({}), json!("tool_calls")),
            StreamItem::Chunk(usage),
            StreamItem::Done,
        ]
    );
    assert_eq!(decoder.usage().map(|u| u.total_tokens), Some(229));
}

#[test]
fn responses_complete_answer_to_chat_and_back() {
    let fixture = include_str!("fixtures/openai_responses_stream.sse");
    let completed = events(fixture).pop().unwrap();
    let response = serde_json::from_slice::<Value>(&completed).unwrap()["response"].clone();
    let usage = openai::RESPONSES_WIRE.passthrough_usage(response.to_string().as_bytes());
    assert_eq!((usage.total_tokens, usage.cache_read_tokens), (229, 64));
    let request = crate::dialects::ChatRequest::parse_for(
        br#"{"model":"g","input":"x"}"#,
        crate::dialects::Dialect::Responses,
        crate::dialects::Endpoint::Responses,
    )
    .unwrap();
    let (chat, usage) = openai::RESPONSES_WIRE
        .answer(
            crate::dialects::Endpoint::Responses,
            response,
            &request,
            "configured",
        )
        .unwrap();
    assert_eq!(usage.prompt_tokens, 81);
    assert_eq!(chat["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(
        chat["choices"][0]["message"]["content"],
        "Checking \"error\" cases."
    );
    assert_eq!(
        chat["choices"][0]["message"]["tool_calls"],
        json!([{"id": "call_golden", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}])
    );
    // Back through the dialect: the same items.
    let back = responses::response(&chat);
    assert_eq!(
        back["output"][0]["content"][0]["text"],
        "Checking \"error\" cases."
    );
    assert_eq!(back["output"][1]["call_id"], "call_golden");
    assert_eq!(back["usage"]["total_tokens"], 229);
}
