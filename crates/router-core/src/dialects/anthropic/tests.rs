//! Unit tests of the Anthropic dialect: requests, answers, streams, errors.

use super::*;
use crate::fields::Fields;
use crate::providers::openai;
use crate::providers::WireFormat;
use serde_json::json;

/// The translation under the default field policy.
fn request(anthropic: &Map<String, Value>, model: &str) -> Result<Value, RouterError> {
    super::request(anthropic, model, &mut Fields::default())
}

#[test]
fn translates_a_messages_request() {
    let r = json!({
        "model": "g", "max_tokens": 100, "system": [{"type": "text", "text": "be brief"}],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "look"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "BBBB"}},
            ]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "s"},
                {"type": "tool_use", "id": "toolu_1", "name": "look", "input": {"q": 1}},
            ]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "a cat"}]},
        ],
        "temperature": 0, "stop_sequences": ["X"], "stream": true,
        "tools": [{"name": "look", "description": "d", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
        "metadata": {"user_id": "u"},
    });
    let out = request(r.as_object().unwrap(), "gpt-x").unwrap();
    assert_eq!(out["model"], "gpt-x");
    assert_eq!(out["max_tokens"], 100);
    assert_eq!(out["temperature"], 0);
    assert_eq!(out["stop"], json!(["X"]));
    assert_eq!(out["stream_options"], json!({"include_usage": true}));
    assert_eq!(out["tool_choice"], "required");
    assert_eq!(out["parallel_tool_calls"], false);
    assert_eq!(out["user"], "u");
    assert_eq!(
        out["tools"][0]["function"]["parameters"],
        json!({"type": "object"})
    );
    let m = out["messages"].as_array().unwrap();
    assert_eq!(m[0], json!({"role": "system", "content": "be brief"}));
    assert_eq!(
        m[1]["content"][1]["image_url"]["url"],
        "data:image/jpeg;base64,BBBB"
    );
    assert_eq!(m[2]["tool_calls"][0]["function"]["arguments"], "{\"q\":1}");
    assert_eq!(
        m[3],
        json!({"role": "tool", "tool_call_id": "toolu_1", "content": "a cat"})
    );
    let bad = json!({"model": "g", "messages": [], "top_k": 5});
    assert!(
        matches!(request(bad.as_object().unwrap(), "m"), Err(RouterError::BadRequest { param: Some(p), .. }) if p == "top_k")
    );
}

#[test]
fn forced_tool_choice_is_a_tool_turn() {
    let answer = json!({"id": "c", "model": "m", "choices": [{"index": 0, "finish_reason": "stop",
        "message": {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}}]});
    assert_eq!(response(&answer)["stop_reason"], "tool_use");
    let mut t = StreamTranslator::default();
    let mut names = Vec::new();
    for c in [
        json!({"id": "c", "model": "m", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "f", "arguments": "{\"a\""}}]}}]}),
        // Some servers repeat the id on every delta: still one block.
        json!({"id": "c", "model": "m", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1", "function": {"arguments": ":1}"}}]}}]}),
        json!({"id": "c", "model": "m", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
    ] {
        names.extend(t.event(c.to_string().as_bytes()));
    }
    names.extend(t.event(b"[DONE]"));
    let starts = names
        .iter()
        .filter(|(n, _)| n == "content_block_start")
        .count();
    assert_eq!(starts, 1);
    let delta = names.iter().find(|(n, _)| n == "message_delta").unwrap();
    assert_eq!(delta.1["delta"]["stop_reason"], "tool_use");
}

#[test]
fn azure_filter_chunk_does_not_open_the_message() {
    let mut t = StreamTranslator::default();
    let filter = json!({"id": "", "model": "", "choices": [], "prompt_filter_results": [{"prompt_index": 0}]});
    assert!(t.event(filter.to_string().as_bytes()).is_empty());
    let out = t.event(json!({"id": "chatcmpl-1", "model": "gpt", "choices": [{"index": 0, "delta": {"content": "hi"}}]}).to_string().as_bytes());
    assert_eq!(out[0].1["message"]["id"], "chatcmpl-1");
    assert_eq!(out[0].1["message"]["model"], "gpt");
}

#[test]
fn tool_results_keep_errors_and_refuse_images() {
    let with = |content: Value, is_error: bool| {
        json!({"model": "g", "max_tokens": 5, "messages": [{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": content, "is_error": is_error}]}]})
    };
    let out = request(with(json!("boom"), true).as_object().unwrap(), "m").unwrap();
    assert_eq!(out["messages"][0]["content"], "Error: boom");
    let img = json!([{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "A"}}]);
    assert!(matches!(
        request(with(img, false).as_object().unwrap(), "m"),
        Err(RouterError::BadRequest { .. })
    ));
    let off =
        json!({"model": "g", "max_tokens": 5, "thinking": {"type": "disabled"}, "messages": []});
    assert!(request(off.as_object().unwrap(), "m").is_ok());
}

#[test]
fn translates_chunks_into_the_full_event_sequence() {
    let mut t = StreamTranslator::default();
    let chunks = [
        json!({"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]}),
        json!({"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": null}]}),
        json!({"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}]}, "finish_reason": null}]}),
        json!({"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"a\":1}"}}]}, "finish_reason": null}]}),
        json!({"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
        json!({"id": "c1", "model": "m", "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}}),
    ];
    let mut events: Vec<(String, Value)> = chunks
        .iter()
        .flat_map(|c| t.event(c.to_string().as_bytes()))
        .collect();
    events.extend(t.event(b"[DONE]"));
    // The upstream's usage is read where the chunks are decoded.
    let mut decoder = openai::WIRE.stream_decoder("m");
    let mut items = Vec::new();
    for c in &chunks {
        decoder.event(c.to_string().as_bytes(), &mut items);
    }
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    assert_eq!(
        events[4].1["content_block"],
        json!({"type": "tool_use", "id": "call_1", "name": "f", "input": {}})
    );
    assert_eq!(
        events[5].1["delta"],
        json!({"type": "input_json_delta", "partial_json": "{\"a\":1}"})
    );
    assert_eq!(events[7].1["delta"]["stop_reason"], "tool_use");
    assert_eq!(events[7].1["usage"]["output_tokens"], 4);
    assert_eq!(events[7].1["usage"]["input_tokens"], 9);
    assert!(t.done);
    assert_eq!(decoder.usage().unwrap().total_tokens, 13);
}

#[test]
fn thinking_becomes_reasoning_effort() {
    let with = |thinking: Value| {
        let r = json!({"model": "g", "max_tokens": 20000, "thinking": thinking,
                       "messages": [{"role": "user", "content": "x"}]});
        request(r.as_object().unwrap(), "m")
    };
    let effort = |budget: u64| {
        with(json!({"type": "enabled", "budget_tokens": budget})).unwrap()["reasoning_effort"]
            .clone()
    };
    assert_eq!(effort(1024), "low");
    assert_eq!(effort(4096), "medium");
    assert_eq!(effort(16384), "high");
    for quiet in ["disabled", "adaptive"] {
        let out = with(json!({"type": quiet})).unwrap();
        assert!(out.get("reasoning_effort").is_none(), "{quiet}");
    }
    assert!(matches!(
        with(json!({"type": "enabled"})),
        Err(RouterError::BadRequest { .. })
    ));
    assert!(matches!(
        with(json!({"type": "sometimes"})),
        Err(RouterError::BadRequest { .. })
    ));
}

#[test]
fn error_types_follow_the_status() {
    let body = br#"{"error":{"message":"boom","type":"server_error"}}"#;
    for (status, kind) in [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (529, "overloaded_error"),
    ] {
        let e = error::from_openai(status, &serde_json::from_slice(body).unwrap());
        assert_eq!(e["error"]["type"], kind, "{status}");
        assert_eq!(e["error"]["message"], "boom");
    }
}

#[test]
fn reasoning_refusals_and_missing_ids_in_answers() {
    let answer = json!({"id": "c", "model": "m", "choices": [{"index": 0, "finish_reason": "stop",
        "message": {"role": "assistant", "content": null, "reasoning_content": "Think.",
                    "refusal": "I can't help with that."}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4}});
    let out = response(&answer);
    assert_eq!(
        out["content"],
        json!([{"type": "thinking", "thinking": "Think.", "signature": ""},
               {"type": "text", "text": "I can't help with that."}])
    );
    assert_eq!(out["stop_reason"], "refusal");

    let answer = json!({"id": "c", "model": "m", "choices": [{"index": 0, "finish_reason": "tool_calls",
        "message": {"role": "assistant", "content": null, "tool_calls": [
            {"type": "function", "function": {"name": "f", "arguments": "{}"}}]}}]});
    let id = response(&answer)["content"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(id.starts_with("toolu_") && id.len() == 30, "{id}");

    let mut t = StreamTranslator::default();
    let mut events = Vec::new();
    for chunk in [
        r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{"role":"assistant","reasoning_content":"Hm"}}]}"#,
        r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{"reasoning_content":"m."}}]}"#,
        r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{"refusal":"No."}}]}"#,
        r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
        "[DONE]",
    ] {
        events.extend(t.event(chunk.as_bytes()));
    }
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(
        events[1].1["content_block"],
        json!({"type": "thinking", "thinking": "", "signature": ""})
    );
    assert_eq!(
        events[3].1["delta"],
        json!({"type": "thinking_delta", "thinking": "m."})
    );
    assert_eq!(
        events[6].1["delta"],
        json!({"type": "text_delta", "text": "No."})
    );
    assert_eq!(events[8].1["delta"]["stop_reason"], "refusal");

    let mut t = StreamTranslator::default();
    let events = t.event(br#"{"id":"c","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"type":"function","function":{"name":"f","arguments":""}}]}}]}"#);
    let id = events[1].1["content_block"]["id"].as_str().unwrap();
    assert!(id.starts_with("toolu_"), "{id}");
}

#[test]
fn stream_error_events_get_anthropic_types() {
    for (upstream, kind) in [
        ("server_error", "api_error"),
        ("RESOURCE_EXHAUSTED", "rate_limit_error"),
        ("UNAVAILABLE", "overloaded_error"),
        ("invalid_request_error", "invalid_request_error"),
    ] {
        let mut t = StreamTranslator::default();
        let chunk = json!({"error": {"message": "boom", "type": upstream}}).to_string();
        let events = t.event(chunk.as_bytes());
        assert_eq!(events[0].0, "error");
        assert_eq!(events[0].1["error"]["type"], kind, "{upstream}");
        assert!(t.failed);
    }
}
