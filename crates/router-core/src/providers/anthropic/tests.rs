//! Unit tests of the Anthropic room: requests, answers, streams.

use super::*;
use crate::fields::Fields;
use serde_json::{json, Value};

fn req(v: Value) -> Result<Value, RouterError> {
    request(
        v.as_object().unwrap(),
        "claude-x",
        4096,
        &mut Fields::default(),
    )
}

#[test]
fn translates_a_full_request() {
    let out = req(json!({
        "model": "g",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                {"type": "image_url", "image_url": {"url": "https://x.example/a.jpg"}},
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "look", "arguments": "{\"q\":1}"}},
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "a cat"},
        ],
        "temperature": 0,
        "top_p": 0.5,
        "stop": "END",
        "max_completion_tokens": 77,
        "tools": [{"type": "function", "function": {"name": "look", "description": "d", "parameters": {"type": "object"}}}],
        "tool_choice": "required",
        "parallel_tool_calls": false,
        "user": "u1",
        "stream": true,
        "stream_options": {"include_usage": true},
    }))
    .unwrap();
    assert_eq!(out["model"], "claude-x");
    assert_eq!(out["system"], "be brief");
    assert_eq!(out["temperature"], 0, "temperature 0 kept");
    assert_eq!(out["top_p"], 0.5);
    assert_eq!(out["stop_sequences"], json!(["END"]));
    assert_eq!(out["max_tokens"], 77);
    assert_eq!(out["stream"], true);
    assert_eq!(out["metadata"], json!({"user_id": "u1"}));
    assert_eq!(
        out["tool_choice"],
        json!({"type": "any", "disable_parallel_tool_use": true})
    );
    assert_eq!(
        out["tools"][0],
        json!({"name": "look", "description": "d", "input_schema": {"type": "object"}})
    );
    let m = out["messages"].as_array().unwrap();
    assert_eq!(m.len(), 3);
    assert_eq!(
        m[0]["content"][1]["source"],
        json!({"type": "base64", "media_type": "image/png", "data": "AAAA"})
    );
    assert_eq!(
        m[0]["content"][2]["source"],
        json!({"type": "url", "url": "https://x.example/a.jpg"})
    );
    assert_eq!(
        m[1]["content"][0],
        json!({"type": "tool_use", "id": "call_1", "name": "look", "input": {"q": 1}})
    );
    assert_eq!(
        m[2]["content"][0],
        json!({"type": "tool_result", "tool_use_id": "call_1", "content": "a cat"})
    );
}

#[test]
fn defaults_max_tokens_and_maps_tool_choice() {
    let base = json!({"model": "g", "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(req(base.clone()).unwrap()["max_tokens"], 4096);
    for (choice, want) in [
        (json!("auto"), json!({"type": "auto"})),
        (json!("none"), json!({"type": "none"})),
        (
            json!({"type": "function", "function": {"name": "f"}}),
            json!({"type": "tool", "name": "f"}),
        ),
    ] {
        let mut r = base.clone();
        r["tool_choice"] = choice;
        assert_eq!(req(r).unwrap()["tool_choice"], want);
    }
}

#[test]
fn refuses_what_cannot_be_translated_by_name() {
    for field in [
        "logprobs",
        "presence_penalty",
        "seed",
        "response_format",
        "logit_bias",
    ] {
        let mut r = json!({"model": "g", "messages": []});
        r[field] = json!(true);
        match req(r) {
            Err(RouterError::BadRequest { message, param }) => {
                assert!(message.contains(field), "{message}");
                assert_eq!(param.as_deref(), Some(field));
            }
            other => panic!("{field}: {other:?}"),
        }
    }
    let r = json!({"model": "g", "n": 2, "messages": []});
    assert!(req(r).is_err());
    let r = json!({"model": "g", "messages": [{"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{oops"}}]}]});
    assert!(
        matches!(req(r), Err(RouterError::BadRequest { message, .. }) if message.contains("not valid JSON"))
    );
}

#[test]
fn accepts_defaults_and_builds_only_valid_requests() {
    let r = json!({"model": "g", "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "again"},
    ], "presence_penalty": 0, "frequency_penalty": 0.0, "logprobs": false,
       "response_format": {"type": "text"}, "seed": null, "stream": null, "parallel_tool_calls": false});
    let out = req(r).unwrap();
    assert!(out.get("tool_choice").is_none(), "no tools: no tool_choice");
    assert!(out.get("stream").is_none());
    assert_eq!(
        out["messages"].as_array().unwrap().len(),
        2,
        "the empty assistant turn is left out"
    );
    let r = json!({"model": "g", "messages": [{"role": "user", "content": "x"}], "tool_choice": "none", "parallel_tool_calls": false,
                   "tools": [{"type": "function", "function": {"name": "f"}}]});
    assert_eq!(req(r).unwrap()["tool_choice"], json!({"type": "none"}));
}

#[test]
fn translates_answers_and_errors() {
    let (out, usage) = response(&json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [
            {"type": "text", "text": "Let me look."},
            {"type": "tool_use", "id": "toolu_1", "name": "look", "input": {"q": "cat"}},
        ],
        "stop_reason": "tool_use", "stop_sequence": null,
        "usage": {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 3, "cache_creation_input_tokens": 2},
    }));
    assert_eq!(out["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(out["choices"][0]["message"]["content"], "Let me look.");
    let call = &out["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(
        call["function"]["arguments"]
            .as_str()
            .map(|a| serde_json::from_str::<Value>(a).unwrap()),
        Some(json!({"q": "cat"}))
    );
    assert_eq!(
        usage,
        TokenUsage {
            prompt_tokens: 15,
            completion_tokens: 5,
            total_tokens: 20,
            cache_read_tokens: 3,
            cache_write_tokens: 2,
        }
    );
    assert_eq!(out["usage"]["prompt_tokens_details"]["cached_tokens"], 3);
    let e = error_body(
        br#"{"type":"error","error":{"type":"invalid_request_error","message":"bad thing"}}"#,
    );
    assert_eq!(
        e,
        json!({"error": {"message": "bad thing", "type": "invalid_request_error", "param": null, "code": null}})
    );
}

#[test]
fn translates_a_stream_with_tool_use() {
    let mut t = StreamTranslator::new(true);
    let events = [
        json!({"type": "message_start", "message": {"id": "msg_1", "model": "claude-x", "usage": {"input_tokens": 7, "output_tokens": 1}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "ping"}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "look", "input": {}}}),
        json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"q\":"}}),
        json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "1}"}}),
        json!({"type": "content_block_stop", "index": 1}),
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}}),
        json!({"type": "message_stop"}),
    ];
    let chunks: Vec<Value> = events
        .iter()
        .flat_map(|e| t.event(e.to_string().as_bytes()))
        .collect();
    assert!(t.done && !t.failed);
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(chunks[0]["id"], "msg_1");
    assert_eq!(chunks[1]["choices"][0]["delta"]["content"], "Hi");
    assert_eq!(
        chunks[2]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"],
        "look"
    );
    let args: String = chunks[3..5]
        .iter()
        .map(|c| {
            c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(args, "{\"q\":1}");
    assert_eq!(chunks[5]["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(chunks[6]["usage"]["total_tokens"], 16);
    assert_eq!(chunks.len(), 7);
    assert_eq!(t.usage().unwrap().total_tokens, 16);
}

fn refused(v: Value) -> (String, Option<String>) {
    match req(v) {
        Err(RouterError::BadRequest { message, param, .. }) => (message, param),
        other => panic!("expected 400, got {other:?}"),
    }
}

#[test]
fn foreign_tool_ids_are_rewritten_the_same_way_everywhere() {
    let out = req(json!({"model": "g", "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "functions.look:0", "type": "function", "function": {"name": "look", "arguments": "{}"}},
            {"id": "functions_look_0", "type": "function", "function": {"name": "look", "arguments": "{}"}},
        ]},
        {"role": "tool", "tool_call_id": "functions.look:0", "content": "a"},
        {"role": "tool", "tool_call_id": "functions_look_0", "content": "b"},
    ]}))
    .unwrap();
    let used = &out["messages"][1]["content"];
    let results = &out["messages"][2]["content"];
    let first = used[0]["id"].as_str().unwrap();
    assert!(first.starts_with("functions_look_0_"), "{first}");
    assert!(first
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'));
    assert_eq!(results[0]["tool_use_id"], first);
    // A valid id is kept as it is, and a rewritten one cannot collide with it.
    assert_eq!(used[1]["id"], "functions_look_0");
    assert_eq!(results[1]["tool_use_id"], used[1]["id"]);
    assert_ne!(used[0]["id"], used[1]["id"]);

    let (m, _) = refused(json!({"model": "g", "messages": [
        {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": "{}"}}]},
    ]}));
    assert!(m.contains("messages[0].tool_calls[0].id is missing"), "{m}");
    let (m, _) = refused(json!({"model": "g", "messages": [{"role": "tool", "content": "x"}]}));
    assert!(m.contains("messages[0].tool_call_id is missing"), "{m}");
}

#[test]
fn tool_schemas_are_objects_and_strict_is_kept() {
    let tools = |params: Value| {
        json!({"model": "g", "messages": [{"role": "user", "content": "x"}], "tools": [
            {"type": "function", "function": {"name": "f", "parameters": params, "strict": true}},
        ]})
    };
    let out = req(tools(json!({"properties": {"a": {"type": "string"}}}))).unwrap();
    assert_eq!(
        out["tools"][0],
        json!({"name": "f", "strict": true,
               "input_schema": {"type": "object", "properties": {"a": {"type": "string"}}}})
    );
    let mut lax = tools(Value::Null);
    lax["tools"][0]["function"]["strict"] = json!(false);
    assert!(req(lax).unwrap()["tools"][0].get("strict").is_none());
    let out = req(tools(Value::Null)).unwrap();
    assert_eq!(
        out["tools"][0]["input_schema"],
        json!({"type": "object", "properties": {}})
    );
    let (m, p) = refused(tools(json!({"type": "string"})));
    assert!(m.contains("must describe an object"), "{m}");
    assert_eq!(p.as_deref(), Some("tools"));
}

#[test]
fn fields_without_a_counterpart_are_refused_by_name() {
    let (m, _) = refused(
        json!({"model": "g", "messages": [{"role": "user", "content": "x", "name": "bob"}]}),
    );
    assert!(m.contains("messages[0].name"), "{m}");
    let (m, _) = refused(json!({"model": "g", "messages": [
        {"role": "assistant", "content": "x", "function_call": {"name": "f", "arguments": "{}"}}]}));
    assert!(m.contains("messages[0].function_call"), "{m}");
    let (m, _) = refused(json!({"model": "g", "messages": [
        {"role": "assistant", "content": null, "audio": {"id": "a1"}}]}));
    assert!(m.contains("messages[0].audio"), "{m}");
    let image = |detail: &str| {
        json!({"model": "g", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://x.example/a.png", "detail": detail}}]}]})
    };
    assert!(req(image("high")).is_ok());
    assert!(req(image("auto")).is_ok());
    let (m, _) = refused(image("low"));
    assert!(m.contains("image_url.detail 'low'"), "{m}");
    // An earlier refusal is kept as what the assistant said; null and empty fields ask for
    // nothing, and the annotations an SDK sends back are metadata of that answer.
    let out = req(json!({"model": "g", "messages": [
        {"role": "user", "content": "x", "name": null},
        {"role": "assistant", "content": null, "refusal": "I can't help with that.",
         "annotations": [], "tool_calls": [], "audio": null},
        {"role": "user", "content": "ok"},
    ]}))
    .unwrap();
    assert_eq!(
        out["messages"][1]["content"],
        json!([{"type": "text", "text": "I can't help with that."}])
    );
}

#[test]
fn reasoning_effort_becomes_a_thinking_budget_and_thinking_comes_back() {
    let base = |extra: Value| {
        let mut v = json!({"model": "g", "messages": [{"role": "user", "content": "x"}]});
        for (k, val) in extra.as_object().unwrap() {
            v[k] = val.clone();
        }
        v
    };
    let out = req(base(json!({"reasoning_effort": "medium"}))).unwrap();
    assert_eq!(
        out["thinking"],
        json!({"type": "enabled", "budget_tokens": 4096})
    );
    assert_eq!(out["max_tokens"], 4096 + 4096);
    // Raised within the smallest output limit of current models.
    let out = req(base(json!({"reasoning_effort": "xhigh"}))).unwrap();
    assert_eq!(out["max_tokens"], 32000);
    assert_eq!(out["thinking"]["budget_tokens"], 31999);
    // What thinking does not allow is refused by name.
    let (_, p) = refused(base(json!({"reasoning_effort": "low", "temperature": 0.2})));
    assert_eq!(p.as_deref(), Some("temperature"));
    assert!(req(base(json!({"reasoning_effort": "low", "temperature": 1}))).is_ok());
    let forced = base(json!({"reasoning_effort": "low", "tool_choice": "required",
        "tools": [{"type": "function", "function": {"name": "f"}}]}));
    assert_eq!(refused(forced).1.as_deref(), Some("tool_choice"));
    // A tool loop continues without thinking: the earlier turn's signed thinking is gone.
    let mut looping = base(json!({"reasoning_effort": "low",
        "tools": [{"type": "function", "function": {"name": "f"}}]}));
    looping["messages"] = json!([
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "done"},
    ]);
    assert!(req(looping).unwrap().get("thinking").is_none());
    let out = req(base(
        json!({"reasoning_effort": "high", "max_completion_tokens": 8000}),
    ))
    .unwrap();
    assert_eq!(
        out["thinking"],
        json!({"type": "enabled", "budget_tokens": 7999})
    );
    assert_eq!(out["max_tokens"], 8000);
    assert!(req(base(json!({"reasoning_effort": "none"})))
        .unwrap()
        .get("thinking")
        .is_none());
    let (m, p) = refused(base(json!({"reasoning_effort": "low", "max_tokens": 500})));
    assert!(m.contains("above 1024"), "{m}");
    assert_eq!(p.as_deref(), Some("reasoning_effort"));
    assert_eq!(
        refused(base(json!({"reasoning_effort": "max"})))
            .1
            .as_deref(),
        Some("reasoning_effort")
    );

    let (answer, _) = response(&json!({"id": "m", "model": "c", "content": [
        {"type": "thinking", "thinking": "Let me see.", "signature": "sig"},
        {"type": "text", "text": "42"},
    ], "stop_reason": "model_context_window_exceeded", "usage": {"input_tokens": 1, "output_tokens": 2}}));
    let message = &answer["choices"][0]["message"];
    assert_eq!(message["reasoning_content"], "Let me see.");
    assert_eq!(message["content"], "42");
    assert_eq!(answer["choices"][0]["finish_reason"], "length");

    let mut t = StreamTranslator::new(false);
    t.event(
        br#"{"type":"message_start","message":{"id":"m","model":"c","usage":{"input_tokens":1}}}"#,
    );
    t.event(br#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}"#);
    let chunks = t.event(br#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Hmm"}}"#);
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"reasoning_content": "Hmm"})
    );
    assert!(t.event(br#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"s"}}"#).is_empty());
}
