//! Properties of the translators and the SSE scanner over generated input: they never panic,
//! the scanner loses no byte, and OpenAI → Anthropic → OpenAI keeps every translatable field.

use crate::codec::{StreamEncoder, StreamItem};
use crate::dialects::anthropic as anthropic_in;
use crate::dialects::openai::completions;
use crate::dialects::responses;
use crate::dialects::Dialect;
use crate::fields::Fields;
use crate::providers::gemini::embeddings;
use crate::providers::{anthropic, gemini, openai, WireFormat};
use crate::sse::SseScanner;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

pub(super) fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-z_ ]{0,8}".prop_map(Value::String),
        prop::sample::select(vec![
            "user",
            "assistant",
            "system",
            "tool",
            "text",
            "image_url",
            "tool_use",
            "tool_result",
            "function",
            "auto",
            "required",
            "message_start",
            "content_block_delta",
            "message_delta",
            "message_stop",
            "error",
            "input_json_delta",
            "text_delta",
            "data:image/png;base64,AA",
        ])
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "role",
                    "content",
                    "type",
                    "text",
                    "messages",
                    "model",
                    "tools",
                    "tool_choice",
                    "tool_calls",
                    "function",
                    "name",
                    "arguments",
                    "index",
                    "delta",
                    "choices",
                    "usage",
                    "input",
                    "id",
                    "system",
                    "stop",
                    "max_tokens",
                    "stream",
                    "image_url",
                    "url",
                    "source",
                    "content_block",
                    "message",
                    "partial_json",
                    "finish_reason",
                    "stop_reason",
                    "tool_use_id",
                    "tool_call_id",
                    "error",
                    "parameters",
                    "input_schema",
                ]),
                inner,
                0..6,
            )
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

fn object(v: &Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn translators_never_panic(v in any_json()) {
        let _ = anthropic::request(&object(&v), "m", 10, &mut Fields::default());
        let _ = anthropic::response(&v);
        let _ = anthropic::error_body(v.to_string().as_bytes());
        let _ = anthropic_in::request(&object(&v), "m", &mut Fields::default());
        let _ = anthropic_in::response(&v);
        let _ = Dialect::Anthropic
            .room()
            .encode_error(http::StatusCode::INTERNAL_SERVER_ERROR, &v);
        let _ = gemini::request(&object(&v), &mut Fields::default());
        let _ = gemini::response(&v, "m");
        let _ = gemini::error_body(v.to_string().as_bytes());
        let mut from_gemini = gemini::StreamTranslator::new("m", true);
        let _ = from_gemini.event(v.to_string().as_bytes());
        let _ = from_gemini.event(json!({"candidates": [v.clone()], "usageMetadata": v.clone()}).to_string().as_bytes());
        let _ = (from_gemini.finish(), from_gemini.usage());
        let mut to_openai = anthropic::StreamTranslator::new(true);
        let mut to_anthropic = anthropic_in::StreamTranslator::default();
        for event in [v.clone(), json!({"type": "message_start", "message": v.clone()}), json!({"choices": [{"delta": v.clone()}]})] {
            let data = event.to_string();
            let _ = to_openai.event(data.as_bytes());
            let _ = to_anthropic.event(data.as_bytes());
        }
        let _ = to_anthropic.event(b"[DONE]");
        let _ = to_openai.usage();
        let _ = responses::request(&object(&v), "m", &mut Fields::default());
        let _ = responses::request(&json!({"input": [v.clone()]}).as_object().unwrap().clone(), "m", &mut Fields::default());
        let _ = responses::response(&v);
        openai::RESPONSES_WIRE.stream_decoder("m").event(v.to_string().as_bytes(), &mut Vec::new());
        let _ = completions::request(&object(&v), "m");
        let _ = completions::response(&v);
        let _ = completions::chunk(&v);
        let _ = completions::chunk(&json!({"choices": [{"delta": v.clone()}], "usage": v.clone()}));
        let _ = embeddings::request(&object(&v), "m", &mut Fields::default());
        let _ = embeddings::response(&v, &object(&v), "m");
        let _ = embeddings::response(&json!({"embeddings": [{"values": v.clone()}]}), &object(&v), "m");
        let mut meter = crate::meter::StreamMeter::default();
        for event in [v.clone(), json!({"choices": [{"delta": v.clone()}]}), json!({"delta": v.clone(), "usage": v.clone()})] {
            meter.observe(event.to_string().as_bytes());
        }
        let _ = meter.charge(None, u64::MAX);
    }

    #[test]
    fn stream_translators_never_panic_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = anthropic::StreamTranslator::new(false).event(&bytes);
        let _ = anthropic_in::StreamTranslator::default().event(&bytes);
        let _ = gemini::StreamTranslator::new("m", false).event(&bytes);
        crate::meter::StreamMeter::default().observe(&bytes);
    }

    /// Whatever chat chunks come, the Responses events a client gets are the documented
    /// sequence: numbered densely from 0, opened by `response.created`, every item's events
    /// after its `output_item.added` (at the next output index), and one terminal event last.
    #[test]
    fn responses_events_keep_their_order(
        deltas in prop::collection::vec((0u8..5, "[a-z ]{0,6}", 0u64..3), 0..12),
        finish in prop::sample::select(vec!["stop", "length", "tool_calls"]),
        fail in any::<bool>(),
    ) {
        let mut encoder = responses::Encoder::default();
        let mut out = Vec::new();
        for (kind, text, index) in &deltas {
            let delta = match kind {
                0 => json!({"content": text}),
                1 => json!({"reasoning_content": text}),
                2 => json!({"tool_calls": [{"index": index, "id": format!("call_{index}"), "type": "function",
                                             "function": {"name": "f", "arguments": text}}]}),
                3 => json!({"tool_calls": [{"index": index, "function": {"arguments": text}}]}),
                _ => json!({"refusal": text}),
            };
            encoder.encode(StreamItem::Chunk(json!({"id": "c", "choices": [{"delta": delta}]})), &mut out);
        }
        if fail {
            encoder.encode(StreamItem::Error(json!({"error": {"message": "x", "type": "server_error"}})), &mut out);
        } else {
            encoder.encode(StreamItem::Chunk(json!({"id": "c", "choices": [{"delta": {}, "finish_reason": finish}]})), &mut out);
            encoder.encode(StreamItem::Done, &mut out);
        }
        let events: Vec<Value> = out
            .iter()
            .map(|b| {
                let text = std::str::from_utf8(b).unwrap();
                serde_json::from_str(text.split_once("data: ").unwrap().1.trim()).unwrap()
            })
            .collect();
        prop_assert_eq!(&events[0]["type"], "response.created");
        let mut added = 0u64;
        let mut closed = std::collections::HashSet::new();
        for (i, e) in events.iter().enumerate() {
            prop_assert_eq!(e["sequence_number"].as_u64(), Some(i as u64));
            let kind = e["type"].as_str().unwrap();
            if kind == "response.output_item.added" {
                prop_assert_eq!(e["output_index"].as_u64(), Some(added));
                added += 1;
            } else if let Some(index) = e["output_index"].as_u64() {
                prop_assert!(index < added && !closed.contains(&index), "{} after its item closed", kind);
                if kind == "response.output_item.done" {
                    closed.insert(index);
                }
            }
        }
        let last = events.last().unwrap();
        let terminal = ["response.completed", "response.incomplete", "response.failed"];
        prop_assert!(terminal.contains(&last["type"].as_str().unwrap()));
        prop_assert_eq!(events.iter().filter(|e| terminal.contains(&e["type"].as_str().unwrap())).count(), 1);
        prop_assert_eq!(last["response"]["output"].as_array().unwrap().len() as u64, added);
        if !fail {
            prop_assert_eq!(closed.len() as u64, added);
        }
    }

    #[test]
    fn sse_scanner_loses_no_byte(
        input in prop::collection::vec(prop::sample::select(vec![b'a', b':', b' ', b'\n', b'\r', b'd']), 0..300),
        cuts in prop::collection::vec(1usize..40, 1..20),
    ) {
        let mut scanner = SseScanner::new();
        let mut out = Vec::new();
        let mut rest: &[u8] = &input;
        let mut i = 0;
        while !rest.is_empty() {
            let n = cuts[i % cuts.len()].min(rest.len());
            for event in scanner.push(&rest[..n]) {
                out.extend_from_slice(&event);
            }
            rest = &rest[n..];
            i += 1;
        }
        let tail = scanner.finish();
        out.extend_from_slice(tail.as_deref().unwrap_or(&[]));
        // Only whitespace may be left out at the very end.
        prop_assert!(input.starts_with(&out));
        prop_assert!(input[out.len()..].iter().all(u8::is_ascii_whitespace));
    }

    #[test]
    fn openai_to_anthropic_and_back_keeps_what_translates(
        system in proptest::option::of("[a-z ]{1,12}"),
        turns in prop::collection::vec(("[a-z ]{1,12}", proptest::option::of(("[a-z]{1,6}", 0i64..100))), 1..4),
        temperature in proptest::option::of(prop::sample::select(vec![0.0, 0.5, 1.0])),
        top_p in proptest::option::of(prop::sample::select(vec![0.1, 0.9])),
        stop in proptest::option::of(prop::collection::vec("[A-Z]{1,4}", 1..3)),
        max_tokens in proptest::option::of(1u64..5000),
        tool_choice in prop::sample::select(vec![json!("auto"), json!("required"), json!("none"), json!({"type": "function", "function": {"name": "f"}})]),
        stream in any::<bool>(),
    ) {
        let mut messages = Vec::new();
        if let Some(s) = &system {
            messages.push(json!({"role": "system", "content": s}));
        }
        for (i, (text, call)) in turns.iter().enumerate() {
            messages.push(json!({"role": "user", "content": text}));
            match call {
                Some((name, arg)) => {
                    let id = format!("call_{i}");
                    messages.push(json!({"role": "assistant", "content": null, "tool_calls": [
                        {"id": id, "type": "function", "function": {"name": name, "arguments": json!({"n": arg}).to_string()}}]}));
                    messages.push(json!({"role": "tool", "tool_call_id": id, "content": format!("result {arg}")}));
                }
                None => messages.push(json!({"role": "assistant", "content": format!("re: {text}")})),
            }
        }
        let mut request = json!({
            "model": "g", "messages": messages, "tool_choice": tool_choice, "stream": stream,
            "tools": [{"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"}}}],
        });
        if let Some(t) = temperature { request["temperature"] = json!(t); }
        if let Some(p) = top_p { request["top_p"] = json!(p); }
        if let Some(s) = &stop { request["stop"] = json!(s); }
        if let Some(m) = max_tokens { request["max_tokens"] = json!(m); }

        let there = anthropic::request(&object(&request), "claude", 4096, &mut Fields::default()).unwrap();
        let back = anthropic_in::request(&object(&there), "g", &mut Fields::default()).unwrap();

        for field in ["temperature", "top_p", "stop", "tool_choice", "tools"] {
            prop_assert_eq!(back.get(field), request.get(field), "{}", field);
        }
        prop_assert_eq!(&back["max_tokens"], &json!(max_tokens.unwrap_or(4096)));
        prop_assert_eq!(&back["stream"], &json!(stream));
        // Messages: identical, but for a tool message's content and assistant `content: null`
        // which both sides spell the same way.
        prop_assert_eq!(&back["messages"], &request["messages"]);
    }
}
