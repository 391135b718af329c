//! `/v1/messages` (Anthropic format in): passed through untouched to an Anthropic provider,
//! translated for an OpenAI one, answers always in Anthropic's shapes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::messages;
use mock_upstream::MockUpstream;
use router_core::{ClientRequest, Dialect, Format, Router, Source};
use serde_json::{json, Value};

fn router(kind: &str, mock: &MockUpstream) -> Router {
    let yaml = format!(
        "groups:\n  - name: claude\n    models: [{{provider: p, name: upstream-model}}]\nproviders:\n  - {{name: p, type: {kind}, base_url: \"{}\", api_key: \"sk-key-00000001\"}}\n",
        mock.base_url()
    );
    Router::from_source(&Source::from_text(yaml, Format::Yaml)).unwrap()
}

async fn events(r: &Router, body: &Value) -> Vec<(String, Value)> {
    let answer = messages(r, body.to_string().as_bytes()).await.unwrap();
    assert!(answer.body.is_stream());
    let text = String::from_utf8(answer.body.collect_bytes().await.to_vec()).unwrap();
    assert!(!text.contains("[DONE]"), "{text}");
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let name = e
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .unwrap()
                .to_string();
            let data = e.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
            (name, serde_json::from_str(data).unwrap())
        })
        .collect()
}

const MESSAGE: &str = r#"{"model":"claude","max_tokens":50,"system":"terse","messages":[{"role":"user","content":"hi there"}],"metadata":{"user_id":"u"},"x_unknown":[1,2]}"#;

#[tokio::test]
async fn anthropic_to_anthropic_passes_bytes_through() {
    let mock = MockUpstream::start().await.unwrap();
    let r = router("anthropic", &mock);
    let answer = messages(&r, MESSAGE.as_bytes()).await.unwrap();
    assert_eq!(answer.status, 200);
    let v: Value = serde_json::from_slice(&answer.body.collect_bytes().await).unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["content"][0]["text"], "mock says: hi there");
    let seen = &mock.requests()[0];
    assert_eq!(seen.path, "/v1/messages");
    assert_eq!(
        std::str::from_utf8(&seen.body).unwrap(),
        MESSAGE.replace(r#""claude""#, r#""upstream-model""#),
        "only model changed"
    );
    assert_eq!(r.usage()[0].total_tokens, mock.tokens_reported());

    let mut body: Value = serde_json::from_str(MESSAGE).unwrap();
    body["stream"] = json!(true);
    let ev = events(&r, &body).await;
    assert_eq!(ev.first().unwrap().0, "message_start");
    assert_eq!(ev.last().unwrap().0, "message_stop");
    assert!(
        ev.iter().any(|(n, _)| n == "ping"),
        "events pass as they are"
    );
    assert_eq!(r.usage()[0].total_tokens, mock.tokens_reported());
}

#[tokio::test]
async fn anthropic_client_to_openai_provider_text() {
    let mock = MockUpstream::start().await.unwrap();
    let r = router("openai", &mock);
    let answer = messages(&r, MESSAGE.replace(r#","x_unknown":[1,2]"#, "").as_bytes())
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&answer.body.collect_bytes().await).unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(
        v["content"],
        json!([{"type": "text", "text": "mock says: hi there"}])
    );
    assert_eq!(v["stop_reason"], "end_turn");
    let sent = mock.requests()[0].json();
    assert_eq!(
        sent["messages"][0],
        json!({"role": "system", "content": "terse"})
    );
    assert_eq!(sent["max_tokens"], 50);
    assert_eq!(sent["user"], "u");
    let u = &r.usage()[0];
    assert_eq!(u.total_tokens, mock.tokens_reported());
    assert_eq!(
        v["usage"]["input_tokens"].as_u64().unwrap()
            + v["usage"]["output_tokens"].as_u64().unwrap(),
        u.total_tokens
    );

    let body = json!({"model": "claude", "max_tokens": 20, "stream": true, "messages": [{"role": "user", "content": "a b c"}]});
    let ev = events(&r, &body).await;
    let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(&names[names.len() - 2..], ["message_delta", "message_stop"]);
    let text: String = ev
        .iter()
        .filter(|(n, _)| n == "content_block_delta")
        .map(|(_, d)| d["delta"]["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(text, "mock says: a b c");
    let delta = &ev[ev.len() - 2].1;
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert!(delta["usage"]["output_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        mock.requests()[1].json()["stream_options"],
        json!({"include_usage": true})
    );
    assert_eq!(r.usage()[0].total_tokens, mock.tokens_reported());
}

#[tokio::test]
async fn anthropic_client_to_openai_provider_tools() {
    let mock = MockUpstream::start().await.unwrap();
    let r = router("openai", &mock);
    let body = json!({
        "model": "claude", "max_tokens": 100,
        "messages": [{"role": "user", "content": "please use a tool"}],
        "tools": [{"name": "search", "description": "s", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "auto"},
    });
    let answer = messages(&r, body.to_string().as_bytes()).await.unwrap();
    let v: Value = serde_json::from_slice(&answer.body.collect_bytes().await).unwrap();
    assert_eq!(v["stop_reason"], "tool_use");
    assert_eq!(
        v["content"][0],
        json!({"type": "tool_use", "id": "call_mock", "name": "search", "input": {"query": "please use a tool"}})
    );
    let sent = mock.requests()[0].json();
    assert_eq!(sent["tools"][0]["function"]["name"], "search");
    assert_eq!(sent["tool_choice"], "auto");

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let ev = events(&r, &streamed).await;
    let start = ev
        .iter()
        .find(|(n, d)| n == "content_block_start" && d["content_block"]["type"] == "tool_use")
        .unwrap();
    assert_eq!(start.1["content_block"]["name"], "search");
    let json_text: String = ev
        .iter()
        .filter_map(|(_, d)| d["delta"]["partial_json"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&json_text).unwrap(),
        json!({"query": "please use a tool"})
    );
    assert_eq!(ev[ev.len() - 2].1["delta"]["stop_reason"], "tool_use");
}

#[tokio::test]
async fn messages_errors_are_anthropic_shaped() {
    let mock = MockUpstream::start().await.unwrap();
    let r = router("openai", &mock);
    let err = messages(&r, br#"{"model":"claude","max_tokens":5,"top_k":3,"messages":[{"role":"user","content":"x"}]}"#)
        .await
        .unwrap_err();
    assert_eq!(err.status(), 400);
    let body = err.reply(Dialect::Anthropic).body;
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("'top_k'"));
    assert!(mock.requests().is_empty());
    // An upstream 4xx comes back in Anthropic's shape too.
    mock.add_rule(mock_upstream::Rule::new(mock_upstream::Fault::Status(422)).times(1));
    let answer = messages(
        &r,
        br#"{"model":"claude","max_tokens":5,"messages":[{"role":"user","content":"x"}]}"#,
    )
    .await
    .unwrap();
    assert_eq!(answer.status, 422);
    let v: Value = serde_json::from_slice(&answer.body.collect_bytes().await).unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["message"], "failure on command");
}

#[tokio::test]
async fn client_anthropic_headers_reach_an_anthropic_upstream() {
    let mock = MockUpstream::start().await.unwrap();
    let r = router("anthropic", &mock);
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "anthropic-beta",
        "extended-cache-ttl-2025-04-11".parse().unwrap(),
    );
    headers.insert("anthropic-version", "2023-06-01".parse().unwrap());
    headers.insert("x-other", "not forwarded".parse().unwrap());
    let snapshot = r.snapshot();
    let request = ClientRequest::messages(MESSAGE.as_bytes()).with_headers(&headers);
    let answer = r.forward(&snapshot, request).await.unwrap();
    assert_eq!(answer.status, 200);
    let seen = &mock.requests()[0];
    assert_eq!(
        seen.headers["anthropic-beta"],
        "extended-cache-ttl-2025-04-11"
    );
    assert!(seen.headers.get("x-other").is_none());
}

#[tokio::test]
async fn a_stream_that_opens_with_an_error_event_fails_over() {
    let mock = MockUpstream::start().await.unwrap();
    let yaml = format!(
        "groups:\n  - name: claude\n    models: [{{provider: p, name: m}}]\nproviders:\n  - {{name: p, type: anthropic, base_url: \"{}\", api_keys: [\"key-a\", \"key-b\"]}}\n",
        mock.base_url()
    );
    let r = Router::from_source(&Source::from_text(yaml, Format::Yaml)).unwrap();
    let overloaded = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
    mock.add_rule(
        mock_upstream::Rule::new(mock_upstream::Fault::EventStream(overloaded.into()))
            .key("key-a")
            .times(1),
    );
    let body = json!({"model": "claude", "max_tokens": 10, "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let answer = messages(&r, body.to_string().as_bytes()).await.unwrap();
    assert_eq!((&*answer.served.key_id, answer.served.attempts), ("p#1", 2));
    let text = String::from_utf8(answer.body.collect_bytes().await.to_vec()).unwrap();
    assert!(
        !text.contains("overloaded_error") && text.contains("message_stop"),
        "{text}"
    );
}

#[tokio::test]
async fn the_completion_limit_goes_in_the_field_the_provider_takes() {
    let mock = MockUpstream::start().await.unwrap();
    let body = json!({"model": "claude", "max_tokens": 50,
                      "thinking": {"type": "enabled", "budget_tokens": 2048},
                      "messages": [{"role": "user", "content": "hi"}]});
    for (field, extra) in [
        ("max_tokens", ""),
        (
            "max_completion_tokens",
            ", max_tokens_field: max_completion_tokens",
        ),
    ] {
        let yaml = format!(
            "groups:\n  - name: claude\n    models: [{{provider: p, name: o3}}]\nproviders:\n  - {{name: p, base_url: \"{}\", api_key: \"sk-key-00000001\"{extra}}}\n",
            mock.base_url()
        );
        let r = Router::from_source(&Source::from_text(yaml, Format::Yaml)).unwrap();
        let answer = messages(&r, body.to_string().as_bytes()).await.unwrap();
        assert_eq!(answer.status, 200);
        let seen = mock.requests().last().unwrap().json();
        assert_eq!(seen[field], 50, "{seen}");
        let other = if field == "max_tokens" {
            "max_completion_tokens"
        } else {
            "max_tokens"
        };
        assert!(seen.get(other).is_none(), "{seen}");
        // Anthropic's thinking budget is OpenAI's reasoning effort.
        assert_eq!(seen["reasoning_effort"], "low");
    }
}

/// What Claude Code 2.1 sends: system blocks and tools with `cache_control`, a system message
/// inside the conversation, adaptive thinking not to be shown, context management, an effort.
const CLAUDE_CODE: &str = r#"{"model":"claude","max_tokens":32000,"stream":true,
  "system":[{"type":"text","text":"You are Claude Code.","cache_control":{"type":"ephemeral"}}],
  "messages":[
    {"role":"user","content":[{"type":"text","text":"hello router","cache_control":{"type":"ephemeral"}}]},
    {"role":"system","content":"Mind the repository's rules."}],
  "tools":[{"name":"Bash","description":"Runs a command","input_schema":{"type":"object","properties":{"command":{"type":"string"}},"required":["command"]},"cache_control":{"type":"ephemeral"}}],
  "metadata":{"user_id":"user_abc"},
  "thinking":{"type":"adaptive","display":"omitted"},
  "context_management":{"edits":[{"type":"clear_thinking_20251015","keep":"all"}]},
  "output_config":{"effort":"high"}}"#;

#[tokio::test]
async fn claude_codes_requests_reach_an_openai_provider_with_hints_dropped_and_named() {
    let mock = MockUpstream::start().await.unwrap();
    let r = router("openai", &mock);
    let answer = messages(&r, CLAUDE_CODE.as_bytes()).await.unwrap();
    assert_eq!(answer.status, 200);
    let dropped = answer.headers[router_core::DROPPED_HEADER]
        .to_str()
        .unwrap();
    let mut names: Vec<&str> = dropped.split(',').collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["cache_control", "context_management", "thinking.display"]
    );
    let text = String::from_utf8(answer.body.collect_bytes().await.to_vec()).unwrap();
    let said: String = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|e| e["delta"]["text"].as_str().map(str::to_string))
        .collect();
    assert_eq!(said, "mock says: hello router");
    let sent = mock.requests()[0].json();
    // The effort is OpenAI's; the system prompts stay where they were.
    assert_eq!(sent["reasoning_effort"], "high");
    assert_eq!(sent["user"], "user_abc");
    assert_eq!(
        sent["messages"],
        json!([
            {"role": "system", "content": "You are Claude Code."},
            {"role": "user", "content": "hello router"},
            {"role": "system", "content": "Mind the repository's rules."},
        ])
    );
    assert_eq!(sent["tools"][0]["function"]["name"], "Bash");
    for hint in [
        "context_management",
        "thinking",
        "metadata",
        "output_config",
    ] {
        assert!(sent.get(hint).is_none(), "{hint} sent: {sent}");
    }
    assert!(!sent.to_string().contains("cache_control"));
}

#[tokio::test]
async fn unknown_fields_are_dropped_and_named_or_refused_by_the_providers_policy() {
    let mock = MockUpstream::start().await.unwrap();
    let body = br#"{"model":"claude","max_tokens":5,"x_future_field":{"a":1},"messages":[{"role":"user","content":"x"}]}"#;
    let r = router("openai", &mock);
    let answer = messages(&r, body).await.unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.headers[router_core::DROPPED_HEADER],
        "x_future_field"
    );
    assert!(mock.requests()[0].json().get("x_future_field").is_none());
    // The same request, to a provider that refuses what it does not know.
    let yaml = format!(
        "groups:\n  - name: claude\n    models: [{{provider: p, name: upstream-model}}]\nproviders:\n  - {{name: p, base_url: \"{}\", api_key: \"sk-key-00000001\", unknown_fields: refuse}}\n",
        mock.base_url()
    );
    let strict = Router::from_source(&Source::from_text(yaml, Format::Yaml)).unwrap();
    let err = messages(&strict, body).await.unwrap_err();
    assert_eq!(err.status(), 400);
    assert_eq!(
        err.reply(Dialect::Anthropic).body["error"]["type"],
        "invalid_request_error"
    );
    assert!(err.to_string().contains("'x_future_field'"), "{err}");
    assert_eq!(mock.requests().len(), 1, "nothing sent for the refused one");
}

#[tokio::test]
async fn count_tokens_is_asked_of_anthropic_and_counted_here_for_others() {
    async fn count(r: &Router) -> Value {
        let body = br#"{"model":"claude","system":"terse","messages":[{"role":"user","content":"hello world"}]}"#;
        let request =
            ClientRequest::new(Dialect::Anthropic, router_core::Endpoint::CountTokens, body);
        let answer = r.forward(&r.snapshot(), request).await.unwrap();
        assert_eq!(answer.status, 200);
        serde_json::from_slice::<Value>(&answer.body.collect_bytes().await).unwrap()
    }
    // An Anthropic provider counts them itself.
    let mock = MockUpstream::start().await.unwrap();
    let r = router("anthropic", &mock);
    let v = count(&r).await;
    let seen = &mock.requests()[0];
    assert_eq!(seen.path, "/v1/messages/count_tokens");
    assert_eq!(seen.json()["model"], "upstream-model");
    // The mock's count: 1 + bytes of the texts / 4.
    assert_eq!(
        v,
        json!({"input_tokens": 1 + ("terse".len() + "hello world".len()) / 4})
    );
    assert_eq!(r.usage()[0].total_tokens, 0, "counting is not charged");
    // Any other: counted here with o200k_base (system and user messages, 3 tokens each around
    // them, 3 to prime the reply), and no upstream is asked.
    let mock = MockUpstream::start().await.unwrap();
    let r = router("openai", &mock);
    let v = count(&r).await;
    let bpe = tiktoken_rs::o200k_base_singleton();
    let n = |text: &str| bpe.encode_ordinary(text).len();
    let expected = (3 + n("system") + n("terse")) + (3 + n("user") + n("hello world")) + 3;
    assert_eq!(v, json!({"input_tokens": expected}));
    assert!(mock.requests().is_empty());
}
