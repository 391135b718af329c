//! Unit tests of the Responses dialect: requests, answers, the event sequence, errors.

use super::*;
use crate::codec::StreamItem;
use crate::fields::UnknownFields;

fn translate(r: Value) -> Result<(Value, Vec<String>), RouterError> {
    let mut fields = Fields::default();
    let out = request::request(r.as_object().unwrap(), "gpt-x", &mut fields)?;
    Ok((out, fields.dropped().to_vec()))
}

fn refused(r: Value) -> (String, Option<String>) {
    match translate(r) {
        Err(RouterError::BadRequest { message, param }) => (message, param),
        other => panic!("expected a 400, got {other:?}"),
    }
}

#[test]
fn translates_a_codex_turn() {
    let r = json!({
        "model": "g", "instructions": "You are a coding agent.", "stream": true,
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "sandbox: none"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "list files"}]},
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAA"},
            {"type": "function_call", "call_id": "call_1", "name": "exec_command", "arguments": "{\"cmd\":\"ls\"}"},
            {"type": "function_call", "call_id": "call_2", "name": "exec_command", "arguments": "{\"cmd\":\"pwd\"}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "a.txt"},
            {"type": "function_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "/tmp"}]},
            {"role": "assistant", "content": [{"type": "output_text", "text": "Done."}]},
        ],
        "tools": [
            {"type": "function", "name": "exec_command", "description": "run", "strict": false,
             "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}}},
            {"type": "web_search"},
        ],
        "tool_choice": "auto", "parallel_tool_calls": true,
        "reasoning": {"effort": "high", "summary": "auto"}, "store": false,
        "include": ["reasoning.encrypted_content"], "prompt_cache_key": "k",
        "client_metadata": {"x": "y"}, "max_output_tokens": 500,
        "text": {"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": true}},
    });
    let (out, dropped) = translate(r).unwrap();
    assert_eq!(out["model"], "gpt-x");
    assert_eq!(out["stream_options"], json!({"include_usage": true}));
    assert_eq!(out["max_tokens"], 500);
    assert_eq!(out["reasoning_effort"], "high");
    assert_eq!(out["prompt_cache_key"], "k");
    assert_eq!(out["parallel_tool_calls"], true);
    assert_eq!(
        out["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "out", "schema": {"type": "object"}, "strict": true}})
    );
    assert_eq!(
        out["tools"],
        json!([{"type": "function", "function": {"name": "exec_command", "description": "run", "strict": false,
                 "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}}}}])
    );
    assert_eq!(
        out["messages"],
        json!([
            {"role": "system", "content": "You are a coding agent."},
            {"role": "system", "content": [{"type": "text", "text": "sandbox: none"}]},
            {"role": "user", "content": [{"type": "text", "text": "list files"}]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "exec_command", "arguments": "{\"cmd\":\"ls\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "exec_command", "arguments": "{\"cmd\":\"pwd\"}"}},
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "a.txt"},
            {"role": "tool", "tool_call_id": "call_2", "content": "/tmp"},
            {"role": "assistant", "content": "Done."},
        ])
    );
    assert_eq!(
        dropped,
        [
            "client_metadata",
            "include",
            "reasoning.summary",
            "store",
            "tools.web_search",
            "input.reasoning",
        ]
    );
}

#[test]
fn a_string_input_is_one_user_message() {
    let (out, dropped) = translate(json!({"model": "g", "input": "hi", "stream": false})).unwrap();
    assert_eq!(out["messages"], json!([{"role": "user", "content": "hi"}]));
    assert_eq!(out["stream"], false);
    assert!(out.get("stream_options").is_none());
    assert!(dropped.is_empty());
}

#[test]
fn bad_input_is_refused_by_name() {
    let (m, p) =
        refused(json!({"model": "g", "input": [{"type": "computer_call", "call_id": "c"}]}));
    assert!(
        m.contains("input[0]") && m.contains("'computer_call'"),
        "{m}"
    );
    assert_eq!(p.as_deref(), Some("input"));

    let (m, p) = refused(json!({"model": "g", "input": [
        {"type": "function_call_output", "call_id": "call_9", "output": "x"}]}));
    assert!(
        m.contains("'call_9'") && m.contains("no function_call"),
        "{m}"
    );
    assert_eq!(p.as_deref(), Some("input"));

    let (m, p) = refused(json!({"model": "g", "input": 7}));
    assert!(m.contains("'input' must be a string or an array"), "{m}");
    assert_eq!(p.as_deref(), Some("input"));

    let (m, _) = refused(
        json!({"model": "g", "input": [{"type": "message", "role": "tool", "content": "x"}]}),
    );
    assert!(m.contains("input[0].role"), "{m}");

    let (m, _) = refused(json!({"model": "g", "input": [{"type": "function_call", "name": "f"}]}));
    assert!(m.contains("input[0].call_id is missing"), "{m}");

    for field in [
        "previous_response_id",
        "conversation",
        "prompt",
        "background",
    ] {
        let (m, p) = refused(json!({"model": "g", "input": "x", field: "resp_1"}));
        assert!(m.contains(&format!("'{field}'")), "{m}");
        assert_eq!(p.as_deref(), Some(field));
    }
    let (m, p) = refused(json!({"model": "g", "input": "x", "store": true}));
    assert!(m.contains("'store'"), "{m}");
    assert_eq!(p.as_deref(), Some("store"));
}

#[test]
fn unknown_fields_follow_the_provider_policy() {
    let r = json!({"model": "g", "input": "x", "brand_new": 1});
    let (_, dropped) = translate(r.clone()).unwrap();
    assert_eq!(dropped, ["brand_new"]);
    let mut fields = Fields::new(UnknownFields::Refuse);
    let e = request::request(r.as_object().unwrap(), "m", &mut fields).unwrap_err();
    assert!(matches!(e, RouterError::BadRequest { param: Some(p), .. } if p == "brand_new"));
}

#[test]
fn a_chat_answer_becomes_a_response() {
    let chat = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 5, "model": "gpt-x",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "Let me look.", "reasoning_content": "think",
            "tool_calls": [{"id": "call_a", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}],
        }}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14,
                  "prompt_tokens_details": {"cached_tokens": 6}},
    });
    let r = response::response(&chat);
    assert_eq!(
        r,
        json!({
            "id": "resp_chatcmpl-1", "object": "response", "created_at": 5, "status": "completed",
            "model": "gpt-x", "error": null, "incomplete_details": null, "parallel_tool_calls": true,
            "tool_choice": "auto", "tools": [], "metadata": {},
            "output": [
                {"id": "rs_resp_chatcmpl-1", "type": "reasoning", "summary": [{"type": "summary_text", "text": "think"}]},
                {"id": "msg_resp_chatcmpl-1", "type": "message", "status": "completed", "role": "assistant",
                 "content": [{"type": "output_text", "text": "Let me look.", "annotations": [], "logprobs": []}]},
                {"id": "fc_resp_chatcmpl-1_0", "type": "function_call", "status": "completed",
                 "arguments": "{\"a\":1}", "call_id": "call_a", "name": "f"},
            ],
            "usage": {"input_tokens": 10, "input_tokens_details": {"cached_tokens": 6}, "output_tokens": 4,
                      "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 14},
        })
    );
    let cut =
        json!({"id": "c", "choices": [{"finish_reason": "length", "message": {"content": "ab"}}]});
    let r = response::response(&cut);
    assert_eq!(r["status"], "incomplete");
    assert_eq!(
        r["incomplete_details"],
        json!({"reason": "max_output_tokens"})
    );
}

/// The events of `items`, as (type, data).
fn encode(items: Vec<StreamItem>) -> Vec<(String, Value)> {
    let mut encoder = stream::Encoder::default();
    let mut out = Vec::new();
    for item in items {
        encoder.encode(item, &mut out);
    }
    assert!(encoder.done());
    out.iter()
        .map(|b| {
            let text = std::str::from_utf8(b).unwrap();
            let (event, data) = text.split_once('\n').unwrap();
            let data: Value =
                serde_json::from_str(data.trim_start_matches("data: ").trim()).unwrap();
            let event = event.trim_start_matches("event: ").to_string();
            assert_eq!(data["type"], event.as_str());
            (event, data)
        })
        .collect()
}

fn chunk(delta: Value, finish: Value) -> StreamItem {
    StreamItem::Chunk(json!({"id": "chatcmpl-s", "created": 7, "model": "gpt-x",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}))
}

#[test]
fn a_text_stream_is_the_documented_sequence() {
    let events = encode(vec![
        chunk(json!({"role": "assistant", "content": ""}), Value::Null),
        chunk(json!({"content": "Hel"}), Value::Null),
        chunk(json!({"content": "lo"}), Value::Null),
        chunk(json!({}), json!("stop")),
        StreamItem::Chunk(json!({"id": "chatcmpl-s", "choices": [],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}})),
        StreamItem::Done,
    ]);
    let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    for (i, (_, data)) in events.iter().enumerate() {
        assert_eq!(data["sequence_number"], i as u64);
    }
    assert_eq!(events[0].1["response"]["status"], "in_progress");
    assert_eq!(events[0].1["response"]["output"], json!([]));
    assert_eq!(events[4].1["delta"], "Hel");
    assert_eq!(events[6].1["text"], "Hello");
    let done = &events[9].1["response"];
    assert_eq!(done["status"], "completed");
    assert_eq!(done["output"][0]["content"][0]["text"], "Hello");
    assert_eq!(done["usage"]["total_tokens"], 5);
}

#[test]
fn tool_calls_and_reasoning_are_their_own_items() {
    let events = encode(vec![
        chunk(
            json!({"role": "assistant", "reasoning_content": "hmm"}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_a", "type": "function",
            "function": {"name": "f", "arguments": ""}}]}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"x\":"}}]}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls": [{"index": 1, "id": "call_b", "type": "function",
            "function": {"name": "g", "arguments": "{}"}}]}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
            Value::Null,
        ),
        chunk(json!({}), json!("tool_calls")),
        StreamItem::Done,
    ]);
    let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    let completed = &events.last().unwrap().1["response"];
    let output = completed["output"].as_array().unwrap();
    assert_eq!(output[0]["type"], "reasoning");
    assert_eq!(output[0]["summary"][0]["text"], "hmm");
    assert_eq!(
        (
            &output[1]["call_id"],
            &output[1]["name"],
            &output[1]["arguments"]
        ),
        (&json!("call_a"), &json!("f"), &json!("{\"x\":1}"))
    );
    assert_eq!(
        (&output[2]["call_id"], &output[2]["arguments"]),
        (&json!("call_b"), &json!("{}"))
    );
    // Deltas of the first call after the second opened still name the first.
    assert_eq!(events[12].1["output_index"], 1);
    assert_eq!(events[12].1["delta"], "1}");
}

#[test]
fn a_cut_answer_is_incomplete_and_an_error_is_failed() {
    let events = encode(vec![
        chunk(json!({"content": "ab"}), Value::Null),
        chunk(json!({}), json!("length")),
        StreamItem::Done,
    ]);
    let (kind, data) = events.last().unwrap();
    assert_eq!(kind, "response.incomplete");
    assert_eq!(
        data["response"]["incomplete_details"]["reason"],
        "max_output_tokens"
    );

    let events = encode(vec![
        chunk(json!({"content": "ab"}), Value::Null),
        StreamItem::Error(
            json!({"error": {"message": "overloaded", "type": "server_error", "code": null}}),
        ),
    ]);
    let (kind, data) = events.last().unwrap();
    assert_eq!(kind, "response.failed");
    assert_eq!(data["response"]["status"], "failed");
    assert_eq!(
        data["response"]["error"],
        json!({"code": "server_error", "message": "overloaded"})
    );

    // A stream the router cuts (the upstream went quiet) ends the same way.
    let mut encoder = stream::Encoder::default();
    let mut out = Vec::new();
    assert!(encoder.interrupt(
        &json!({"error": {"message": "upstream idle", "type": "upstream_error", "code": "stream_interrupted"}}),
        &mut out
    ));
    let last = std::str::from_utf8(out.last().unwrap()).unwrap();
    assert!(last.starts_with("event: response.failed\n"), "{last}");
    assert!(encoder.done());
}

#[test]
fn errors_have_the_openai_shape() {
    let e = RouterError::bad_request(
        "'input' must be a string or an array of items",
        Some("input"),
    );
    let body = Responses.error_body(&e);
    assert_eq!(body["error"]["param"], "input");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let event = Responses.stream_error_event(&body);
    let text = std::str::from_utf8(&event).unwrap();
    assert!(text.starts_with("event: error\ndata: {"), "{text}");
}

#[test]
fn what_chat_cannot_run_leaves_no_empty_tools() {
    let hosted = json!([{"type": "web_search"}]);
    let (out, dropped) =
        translate(json!({"model": "g", "input": "x", "tools": hosted, "tool_choice": "auto"}))
            .unwrap();
    assert!(
        out.get("tools").is_none() && out.get("tool_choice").is_none(),
        "{out}"
    );
    assert_eq!(dropped, ["tools.web_search"]);
    let (m, p) =
        refused(json!({"model": "g", "input": "x", "tools": hosted, "tool_choice": "required"}));
    assert!(m.contains("no function tool is left"), "{m}");
    assert_eq!(p.as_deref(), Some("tool_choice"));
    // `background: false` is the default, and asks for nothing.
    assert!(translate(json!({"model": "g", "input": "x", "background": false})).is_ok());
}

#[test]
fn an_assistant_text_after_its_calls_joins_that_turn() {
    let (out, _) = translate(json!({"model": "g", "input": [
        {"role": "user", "content": "go"},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"role": "assistant", "content": [{"type": "output_text", "text": "Running it."}]},
        {"type": "function_call_output", "call_id": "c1", "output": "ok"},
    ]}))
    .unwrap();
    assert_eq!(
        out["messages"],
        json!([
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": "Running it.", "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "ok"},
        ])
    );
}

#[test]
fn a_tool_output_with_an_image_is_refused_not_lost() {
    let (m, p) = refused(json!({"model": "g", "input": [
        {"type": "function_call", "call_id": "c1", "name": "view_image", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": [
            {"type": "input_text", "text": "here"},
            {"type": "input_image", "image_url": "data:image/png;base64,AA"}]},
    ]}));
    assert!(
        m.contains("input[1].output[1]") && m.contains("input_image"),
        "{m}"
    );
    assert_eq!(p.as_deref(), Some("input"));
}

#[test]
fn a_call_without_arguments_sends_an_empty_object_and_nothing_follows_the_end() {
    let events = encode(vec![
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_a", "type": "function",
            "function": {"name": "now", "arguments": ""}}]}),
            Value::Null,
        ),
        chunk(json!({}), json!("tool_calls")),
        StreamItem::Done,
        chunk(json!({"content": "late"}), Value::Null),
    ]);
    let args: String = events
        .iter()
        .filter(|(k, _)| k == "response.function_call_arguments.delta")
        .map(|(_, d)| d["delta"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(args, "{}");
    let (last, data) = events.last().unwrap();
    assert_eq!(last, "response.completed");
    assert_eq!(data["response"]["output"][0]["arguments"], "{}");
    let chat = json!({"id": "c", "choices": [{"finish_reason": "tool_calls", "message": {"tool_calls": [
        {"id": "call_a", "type": "function", "function": {"name": "now", "arguments": ""}}]}}]});
    assert_eq!(response::response(&chat)["output"][0]["arguments"], "{}");
    // Reasoning sent under both names is one text.
    let events = encode(vec![
        chunk(
            json!({"reasoning_content": "hm", "reasoning": "hm"}),
            Value::Null,
        ),
        StreamItem::Done,
    ]);
    let summary = &events.last().unwrap().1["response"]["output"][0]["summary"][0]["text"];
    assert_eq!(summary, "hm");
}
