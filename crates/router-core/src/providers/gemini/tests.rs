//! Unit tests of the Gemini room: requests, answers, streams.

use super::*;
use crate::fields::Fields;
use serde_json::{json, Map, Value};

/// The translation under the default field policy.
fn request(openai: &Map<String, Value>) -> Result<Value, RouterError> {
    super::request(openai, &mut Fields::default())
}

/// The translation for `model` under the default field policy.
fn request_for(openai: &Map<String, Value>, model: &str) -> Result<Value, RouterError> {
    super::request_for(openai, model, &mut Fields::default())
}

#[test]
fn translates_a_request() {
    let r = json!({
        "model": "g",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                {"type": "image_url", "image_url": {"url": "https://x.example/cat.webp"}},
            ]},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "look", "arguments": "{\"q\":1}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "a cat"},
        ],
        "temperature": 0, "top_p": 0.9, "max_tokens": 10, "stop": "END", "seed": 3,
        "tools": [{"type": "function", "function": {"name": "look", "parameters": {"type": "object"}}}],
        "tool_choice": {"type": "function", "function": {"name": "look"}},
        "user": "u",
    });
    let out = request(r.as_object().unwrap()).unwrap();
    assert_eq!(
        out["systemInstruction"],
        json!({"parts": [{"text": "be brief"}]})
    );
    assert_eq!(
        out["generationConfig"],
        json!({"temperature": 0, "topP": 0.9, "maxOutputTokens": 10, "stopSequences": ["END"], "seed": 3})
    );
    assert_eq!(
        out["tools"],
        json!([{"functionDeclarations": [{"name": "look", "parameters": {"type": "object"}}]}])
    );
    assert_eq!(
        out["toolConfig"],
        json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["look"]}})
    );
    let c = out["contents"].as_array().unwrap();
    assert_eq!(
        c[0]["parts"][1],
        json!({"inlineData": {"mimeType": "image/png", "data": "AAAA"}})
    );
    assert_eq!(
        c[0]["parts"][2],
        json!({"fileData": {"mimeType": "image/webp", "fileUri": "https://x.example/cat.webp"}})
    );
    assert_eq!(
        c[1],
        json!({"role": "model", "parts": [{"functionCall": {"name": "look", "args": {"q": 1}}}]})
    );
    assert_eq!(
        c[2],
        json!({"role": "user", "parts": [{"functionResponse": {"name": "look", "response": {"content": "a cat"}}}]})
    );
    let bad = json!({"model": "g", "messages": [], "logprobs": true});
    assert!(
        matches!(request(bad.as_object().unwrap()), Err(RouterError::BadRequest { param: Some(p), .. }) if p == "logprobs")
    );
}

#[test]
fn translates_answers_and_streams() {
    let answer = json!({
        "candidates": [{"content": {"role": "model", "parts": [{"text": "Hi "}, {"functionCall": {"name": "f", "args": {"a": 1}}}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 3, "totalTokenCount": 8},
        "modelVersion": "gemini-x", "responseId": "r1",
    });
    let (out, usage) = response(&answer, "m");
    assert_eq!(out["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(
        out["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
        "{\"a\":1}"
    );
    assert_eq!(usage.total_tokens, 8);
    let mut t = StreamTranslator::new("m", true);
    let a = t
        .event(br#"{"candidates":[{"content":{"parts":[{"text":"He"}]}}]}"#)
        .unwrap();
    let b = t.event(br#"{"candidates":[{"content":{"parts":[{"text":"llo"}]},"finishReason":"MAX_TOKENS"}],"usageMetadata":{"promptTokenCount":2,"candidatesTokenCount":2,"totalTokenCount":4}}"#).unwrap();
    assert_eq!(a[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(a[1]["choices"][0]["delta"]["content"], "He");
    assert_eq!(b.last().unwrap()["choices"][0]["finish_reason"], "length");
    assert!(t.complete());
    assert_eq!(t.finish()[0]["usage"]["total_tokens"], 4);
    assert!(t
        .event(br#"{"error":{"code":429,"message":"slow down","status":"RESOURCE_EXHAUSTED"}}"#)
        .is_err());
}

#[test]
fn fields_without_a_counterpart_are_refused_by_name() {
    let refused = |v: Value| match request(v.as_object().unwrap()) {
        Err(RouterError::BadRequest { message, .. }) => message,
        other => panic!("expected 400, got {other:?}"),
    };
    let m = refused(json!({"messages": [{"role": "user", "content": "x", "name": "bob"}]}));
    assert!(m.contains("messages[0].name"), "{m}");
    let m = refused(
        json!({"messages": [{"role": "user", "content": "x"}], "tools": [
        {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}, "strict": true}}]}),
    );
    assert!(m.contains("tools[0].function.strict"), "{m}");
    let m = refused(json!({"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://x.example/a.png", "detail": "low"}}]}]}));
    assert!(m.contains("detail 'low'"), "{m}");
    let out = request(
        json!({"messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": null, "refusal": "No."},
        ]})
        .as_object()
        .unwrap(),
    )
    .unwrap();
    assert_eq!(out["contents"][1]["parts"], json!([{"text": "No."}]));
}

#[test]
fn thought_signatures_travel_in_tool_call_ids_and_effort_becomes_a_budget() {
    let answer = json!({"candidates": [{"content": {"role": "model", "parts": [
        {"functionCall": {"name": "f", "args": {"a": 1}}, "thoughtSignature": "CiQB+/x="}]},
        "finishReason": "STOP"}]});
    let (out, _) = response(&answer, "m");
    let id = out["choices"][0]["message"]["tool_calls"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // In the alphabet every API's ids accept: URL-safe base64 without padding.
    assert_eq!(id, "call_0__thought__CiQB-_x");
    // The client sends the call back with its result: the signature goes back with the call.
    let next = request(
        json!({"messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": id, "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
        {"role": "tool", "tool_call_id": id, "content": "done"},
    ], "reasoning_effort": "medium"})
        .as_object()
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        next["contents"][1]["parts"][0],
        json!({"functionCall": {"name": "f", "args": {"a": 1}}, "thoughtSignature": "CiQB+/x="})
    );
    assert_eq!(
        next["contents"][2]["parts"][0]["functionResponse"]["name"],
        "f"
    );
    assert_eq!(
        next["generationConfig"]["thinkingConfig"],
        json!({"thinkingBudget": 4096, "includeThoughts": true})
    );
    // A Gemini 3 model gets the documented placeholder for a call it did not sign.
    let history = json!({"messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_from_elsewhere", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_from_elsewhere", "content": "done"},
    ]});
    let history = history.as_object().unwrap();
    let part =
        |model: &str| request_for(history, model).unwrap()["contents"][1]["parts"][0].clone();
    assert_eq!(
        part("gemini-3-pro-preview")["thoughtSignature"],
        "skip_thought_signature_validator"
    );
    assert!(part("gemini-2.5-flash").get("thoughtSignature").is_none());
    let off = request(
        json!({"messages": [], "reasoning_effort": "none"})
            .as_object()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        off["generationConfig"]["thinkingConfig"],
        json!({"thinkingBudget": 0, "includeThoughts": false})
    );
    assert!(request(
        json!({"messages": [], "reasoning_effort": 3})
            .as_object()
            .unwrap()
    )
    .is_err());
}
