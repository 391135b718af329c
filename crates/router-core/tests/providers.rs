//! Provider kinds over real HTTP to the mock: Azure's deployment URL and key header, and
//! Anthropic's Messages API translated both ways (complete, streamed, tools, errors).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{chat, messages, LiveRecord};
use mock_upstream::{Fault, MockUpstream, Rule};
use router_core::{Dialect, Format, Router, Source};
use serde_json::{json, Value};

fn router(yaml: &str) -> Router {
    Router::from_source(&Source::from_text(yaml, Format::Yaml)).unwrap()
}

fn provider(kind: &str, mock: &MockUpstream, extra: &str) -> String {
    format!(
        "groups:\n  - name: g\n    models: [{{provider: p, name: upstream-model}}]\nproviders:\n  - {{name: p, type: {kind}, base_url: \"{}\", api_key: \"sk-provider-key-0001\"{extra}}}\n",
        mock.base_url()
    )
}

async fn complete(r: &Router, body: &Value) -> (u16, Value) {
    let answer = chat(r, body.to_string().as_bytes()).await.unwrap();
    let status = answer.status.as_u16();
    (
        status,
        serde_json::from_slice(&answer.body.collect_bytes().await).unwrap(),
    )
}

async fn stream(r: &Router, body: &Value) -> Vec<Value> {
    let answer = chat(r, body.to_string().as_bytes()).await.unwrap();
    assert!(answer.body.is_stream());
    let text = String::from_utf8(answer.body.collect_bytes().await.to_vec()).unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert_eq!(text.matches("[DONE]").count(), 1);
    text.split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

fn content_of(chunks: &[Value]) -> String {
    chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect()
}

#[tokio::test]
async fn azure_uses_the_deployment_url_and_api_key_header() {
    let mock = MockUpstream::start().await.unwrap();
    // Azure's base is the resource URL, without /v1.
    let base = mock.base_url().trim_end_matches("/v1").to_string();
    let yaml = format!(
        "groups:\n  - name: g\n    models: [{{provider: az, name: my-deploy}}]\nproviders:\n  - {{name: az, type: azure, base_url: \"{base}\", api_key: \"az-key-000000001\", api_version: \"2024-06-01\"}}\n"
    );
    let r = router(&yaml);
    let body = r#"{"model":"g","messages":[{"role":"user","content":"hi azure"}],"seed":7}"#;
    let answer = chat(&r, body.as_bytes()).await.unwrap();
    assert_eq!(answer.status, 200);
    let v: Value = serde_json::from_slice(&answer.body.collect_bytes().await).unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "mock says: hi azure");
    assert_eq!(v["model"], "my-deploy");
    let seen = &mock.requests()[0];
    assert_eq!(seen.path, "/openai/deployments/my-deploy/chat/completions");
    assert_eq!(seen.headers["api-key"], "az-key-000000001");
    assert!(seen.headers.get("authorization").is_none());
    let authority = base.trim_start_matches("http://");
    assert_eq!(seen.headers["host"], authority);
    assert_eq!(
        std::str::from_utf8(&seen.body).unwrap(),
        body.replace(r#""g""#, r#""my-deploy""#)
    );
    assert_eq!(r.usage()[0].total_tokens, mock.tokens_reported());
}

#[tokio::test]
async fn anthropic_request_and_answer_are_translated() {
    let mock = MockUpstream::start().await.unwrap();
    let r = router(&provider("anthropic", &mock, ", default_max_tokens: 321"));
    let (status, v) = complete(
        &r,
        &json!({
            "model": "g",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "hello claude"},
            ],
            "temperature": 0,
            "stop": ["END"],
        }),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "mock says: hello claude"
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["model"], "upstream-model");
    let seen = &mock.requests()[0];
    assert_eq!(seen.path, "/v1/messages");
    assert_eq!(seen.headers["x-api-key"], "sk-provider-key-0001");
    assert_eq!(seen.headers["anthropic-version"], "2023-06-01");
    assert!(seen.headers.get("authorization").is_none());
    // The URL and `Host` built once for the provider: its own authority, port included.
    let authority = mock
        .base_url()
        .trim_start_matches("http://")
        .replace("/v1", "");
    assert_eq!(seen.headers["host"], authority.as_str());
    let sent = seen.json();
    assert_eq!(sent["system"], "be brief");
    assert_eq!(sent["max_tokens"], 321);
    assert_eq!(sent["temperature"], 0);
    assert_eq!(sent["stop_sequences"], json!(["END"]));
    assert_eq!(
        sent["messages"],
        json!([{"role": "user", "content": "hello claude"}])
    );
    // Usage: counted from Anthropic's fields, equal to what the mock reported.
    let u = &r.usage()[0];
    assert_eq!(u.total_tokens, mock.tokens_reported());
    assert_eq!(v["usage"]["total_tokens"].as_u64(), Some(u.total_tokens));
}

#[tokio::test]
async fn anthropic_tool_use_becomes_tool_calls_with_string_arguments() {
    let mock = MockUpstream::start().await.unwrap();
    let r = router(&provider("anthropic", &mock, ""));
    let tools = json!([{"type": "function", "function": {"name": "search", "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}}}]);
    let request = json!({"model": "g", "messages": [{"role": "user", "content": "please use a tool"}], "tools": tools, "tool_choice": "auto"});
    let (_, v) = complete(&r, &request).await;
    let choice = &v["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "search");
    let args = call["function"]["arguments"]
        .as_str()
        .expect("arguments is a JSON string");
    assert_eq!(
        serde_json::from_str::<Value>(args).unwrap(),
        json!({"query": "please use a tool"})
    );
    let sent = mock.requests()[0].json();
    assert_eq!(
        sent["tools"][0]["input_schema"]["properties"]["query"]["type"],
        "string"
    );
    assert_eq!(sent["tool_choice"], json!({"type": "auto"}));

    // Streamed: the same call assembled from per-index deltas.
    let mut streamed = request.clone();
    streamed["stream"] = json!(true);
    let chunks = stream(&r, &streamed).await;
    let mut name = String::new();
    let mut arguments = String::new();
    for c in &chunks {
        for t in c["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            assert_eq!(t["index"], 0);
            name.push_str(t["function"]["name"].as_str().unwrap_or(""));
            arguments.push_str(t["function"]["arguments"].as_str().unwrap_or(""));
        }
    }
    assert_eq!(name, "search");
    assert_eq!(
        serde_json::from_str::<Value>(&arguments).unwrap(),
        json!({"query": "please use a tool"})
    );
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "tool_calls"));
    assert_eq!(r.usage()[0].total_tokens, mock.tokens_reported());
}

#[tokio::test]
async fn anthropic_stream_is_translated_to_openai_chunks() {
    let mock = MockUpstream::start().await.unwrap();
    let r = router(&provider("anthropic", &mock, ""));
    let body = json!({"model": "g", "stream": true, "messages": [{"role": "user", "content": "one two three"}]});
    let chunks = stream(&r, &body).await;
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk" && c["id"] == "msg_mock"));
    assert_eq!(content_of(&chunks), "mock says: one two three");
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
    assert!(
        chunks.iter().all(|c| c.get("usage").is_none()),
        "usage not asked for"
    );
    assert_eq!(mock.requests()[0].json()["stream"], true);
    assert_eq!(r.usage()[0].total_tokens, mock.tokens_reported());

    let mut with_usage = body.clone();
    with_usage["stream_options"] = json!({"include_usage": true});
    let chunks = stream(&r, &with_usage).await;
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert!(last["usage"]["total_tokens"].as_u64().unwrap() > 0);
    assert_eq!(r.usage()[0].total_tokens, mock.tokens_reported());
}

#[tokio::test]
async fn anthropic_errors_and_untranslatable_fields() {
    let mock = MockUpstream::start().await.unwrap();
    let r = router(&provider("anthropic", &mock, ""));
    // A field Anthropic has no counterpart for: 400 naming it, nothing sent.
    let err = chat(
        &r,
        br#"{"model":"g","messages":[{"role":"user","content":"x"}],"logprobs":true}"#,
    )
    .await
    .unwrap_err();
    assert_eq!(err.status(), 400);
    assert!(
        err.client_message().contains("'logprobs'"),
        "{}",
        err.client_message()
    );
    assert_eq!(
        err.reply(Dialect::OpenAi).body["error"]["param"],
        "logprobs"
    );
    assert!(mock.requests().is_empty());
    assert_eq!(r.usage()[0].live_state().reserved, 0);
    // The upstream's own 400 comes back in OpenAI's shape.
    mock.add_rule(Rule::new(Fault::Status(400)).times(1));
    let (status, v) = complete(
        &r,
        &json!({"model": "g", "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(v["error"]["message"], "failure on command");
    assert!(v["error"].get("type").is_some());
}

#[tokio::test]
async fn failover_crosses_provider_kinds() {
    let mock = MockUpstream::start().await.unwrap();
    let yaml = format!(
        "groups:\n  - name: g\n    strategy: fallback\n    models:\n      - {{provider: claude, name: c-model}}\n      - {{provider: oai, name: o-model}}\nproviders:\n  - {{name: claude, type: anthropic, base_url: \"{url}\", api_key: ka}}\n  - {{name: oai, base_url: \"{url}\", api_key: ko}}\n",
        url = mock.base_url()
    );
    let r = router(&yaml);
    mock.add_rule(Rule::new(Fault::Status(529)).key("ka").times(1));
    let (status, v) = complete(
        &r,
        &json!({"model": "g", "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(v["model"], "o-model");
    let paths: Vec<String> = mock.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, ["/v1/messages", "/v1/chat/completions"]);
}

#[tokio::test]
async fn anthropic_stream_cut_short_ends_with_an_error_event() {
    let mock = MockUpstream::start().await.unwrap();
    let r = router(&provider("anthropic", &mock, ""));
    mock.cut_next_stream_after(4);
    let body = json!({"model": "g", "stream": true, "messages": [{"role": "user", "content": "a b c d e"}]});
    let answer = chat(&r, body.to_string().as_bytes()).await.unwrap();
    let text = String::from_utf8(answer.body.collect_bytes().await.to_vec()).unwrap();
    assert!(
        text.contains("stream_interrupted") && !text.contains("[DONE]"),
        "{text}"
    );
    assert_eq!(r.usage()[0].errors, 1);
    // Cut before `message_delta`: the input count of `message_start` (1 + 9 bytes / 4) stands,
    // and the output is estimated from the text that got through ("mock ": 2 tokens), not
    // taken from `message_start`'s placeholder 1.
    let streamed: usize = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap_or("")
                .len()
        })
        .sum();
    assert_eq!(streamed, "mock ".len(), "{text}");
    let u = &r.usage()[0];
    assert_eq!((u.prompt_tokens, u.completion_tokens), (3, 2));
}

fn gemini(mock: &MockUpstream) -> Router {
    let base = mock.base_url().replace("/v1", "/v1beta");
    router(&format!(
        "groups:\n  - name: g\n    models: [{{provider: gem, name: gemini-model}}]\nproviders:\n  - {{name: gem, type: gemini, base_url: \"{base}\", api_key: \"gem-key-000000001\"}}\n"
    ))
}

#[tokio::test]
async fn gemini_is_translated_complete_and_streamed() {
    let mock = MockUpstream::start().await.unwrap();
    let r = gemini(&mock);
    let (status, v) = complete(&r, &json!({
        "model": "g", "temperature": 0, "max_tokens": 9,
        "messages": [{"role": "system", "content": "terse"}, {"role": "user", "content": "hello gemini"}],
    }))
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "mock says: hello gemini"
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    let seen = &mock.requests()[0];
    assert_eq!(seen.path, "/v1beta/models/gemini-model:generateContent");
    assert_eq!(seen.headers["x-goog-api-key"], "gem-key-000000001");
    let sent = seen.json();
    assert_eq!(
        sent["systemInstruction"],
        json!({"parts": [{"text": "terse"}]})
    );
    assert_eq!(
        sent["generationConfig"],
        json!({"temperature": 0, "maxOutputTokens": 9})
    );
    assert_eq!(
        sent["contents"],
        json!([{"role": "user", "parts": [{"text": "hello gemini"}]}])
    );
    assert_eq!(r.usage()[0].total_tokens, mock.tokens_reported());

    let chunks = stream(
        &r,
        &json!({"model": "g", "stream": true, "stream_options": {"include_usage": true},
                                     "messages": [{"role": "user", "content": "one two"}]}),
    )
    .await;
    assert_eq!(
        mock.requests()[1].path,
        "/v1beta/models/gemini-model:streamGenerateContent"
    );
    assert_eq!(content_of(&chunks), "mock says: one two");
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "stop"));
    let usage = &chunks.last().unwrap()["usage"];
    assert!(usage["total_tokens"].as_u64().unwrap() > 0);
    assert_eq!(r.usage()[0].total_tokens, mock.tokens_reported());
}

#[tokio::test]
async fn gemini_function_calls_become_tool_calls() {
    let mock = MockUpstream::start().await.unwrap();
    let r = gemini(&mock);
    let request = json!({
        "model": "g", "messages": [{"role": "user", "content": "please use a tool"}],
        "tools": [{"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}}],
        "tool_choice": "required",
    });
    let (_, v) = complete(&r, &request).await;
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    let call = &v["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "search");
    assert_eq!(
        serde_json::from_str::<Value>(call["function"]["arguments"].as_str().unwrap()).unwrap(),
        json!({"query": "please use a tool"})
    );
    assert_eq!(
        mock.requests()[0].json()["toolConfig"],
        json!({"functionCallingConfig": {"mode": "ANY"}})
    );
    let mut streamed = request.clone();
    streamed["stream"] = json!(true);
    let chunks = stream(&r, &streamed).await;
    let call = chunks
        .iter()
        .find_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0).cloned())
        .unwrap();
    assert_eq!(call["index"], 0);
    assert_eq!(call["function"]["name"], "search");
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "tool_calls"));
}

#[tokio::test]
async fn anthropic_client_reaches_gemini_through_openai() {
    let mock = MockUpstream::start().await.unwrap();
    let r = gemini(&mock);
    let answer = messages(&r, br#"{"model":"g","max_tokens":20,"messages":[{"role":"user","content":"hi from claude code"}]}"#)
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&answer.body.collect_bytes().await).unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["content"][0]["text"], "mock says: hi from claude code");
    assert_eq!(
        mock.requests()[0].json()["generationConfig"]["maxOutputTokens"],
        20
    );
    let answer = messages(&r, br#"{"model":"g","max_tokens":20,"stream":true,"messages":[{"role":"user","content":"a b"}]}"#)
        .await
        .unwrap();
    let text = String::from_utf8(answer.body.collect_bytes().await.to_vec()).unwrap();
    assert!(text.starts_with("event: message_start"), "{text}");
    assert!(
        text.contains("\"text\":\"mock \"")
            && text.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"),
        "{text}"
    );
    assert!(text.contains("\"output_tokens\":"));
    assert_eq!(r.usage()[0].total_tokens, mock.tokens_reported());
}

#[tokio::test]
async fn gemini_errors_and_cut_streams() {
    let mock = MockUpstream::start().await.unwrap();
    let r = gemini(&mock);
    mock.add_rule(Rule::new(Fault::Status(400)).times(1));
    let (status, v) = complete(
        &r,
        &json!({"model": "g", "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(v["error"]["message"], "failure on command");
    mock.cut_next_stream_after(2);
    let answer = chat(
        &r,
        br#"{"model":"g","stream":true,"messages":[{"role":"user","content":"a b c d"}]}"#,
    )
    .await
    .unwrap();
    let text = String::from_utf8(answer.body.collect_bytes().await.to_vec()).unwrap();
    assert!(
        text.contains("stream_interrupted") && !text.contains("[DONE]"),
        "{text}"
    );
    assert_eq!(r.usage()[0].errors, 1);
}

#[tokio::test]
async fn a_request_one_provider_cannot_take_goes_to_another_of_the_group() {
    let mock = MockUpstream::start().await.unwrap();
    let yaml = format!(
        "groups:\n  - name: g\n    strategy: fallback\n    models:\n      - {{provider: claude, name: c}}\n      - {{provider: oai, name: o}}\n  - name: only-claude\n    models: [{{provider: claude, name: c}}]\nproviders:\n  - {{name: claude, type: anthropic, base_url: \"{url}\", api_key: \"sk-provider-key-0001\"}}\n  - {{name: oai, base_url: \"{url}\", api_key: \"sk-provider-key-0002\"}}\n",
        url = mock.base_url()
    );
    let r = router(&yaml);
    // A message `name` has no place on Anthropic: the OpenAI-format provider answers instead.
    let body =
        json!({"model": "g", "messages": [{"role": "user", "content": "hi", "name": "bob"}]});
    let (status, v) = complete(&r, &body).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["model"], "o");
    let paths: Vec<String> = mock.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, ["/v1/chat/completions"]);
    // Nothing was held against the refusing pair.
    assert!(r
        .usage()
        .iter()
        .all(|u| u.errors == 0 && u.live_state().reserved == 0));
    // With no provider that can take it, the refusal is the answer, naming the field.
    let body = json!({"model": "only-claude", "messages": [{"role": "user", "content": "hi", "name": "bob"}]});
    let err = chat(&r, body.to_string().as_bytes()).await.unwrap_err();
    assert_eq!(err.status(), 400);
    assert!(
        err.client_message().contains("messages[0].name"),
        "{}",
        err.client_message()
    );
    assert_eq!(mock.requests().len(), 1);
}

#[tokio::test]
async fn openai_hints_are_dropped_and_named_for_other_formats_and_meaning_is_refused() {
    let mock = MockUpstream::start().await.unwrap();
    for kind in ["anthropic", "gemini"] {
        let r = match kind {
            "gemini" => gemini(&mock),
            _ => router(&provider(kind, &mock, "")),
        };
        let body = json!({"model": "g", "messages": [{"role": "user", "content": "hi"}],
            "store": false, "prompt_cache_key": "repo-1", "service_tier": "auto",
            "metadata": {"run": "7"}, "x_new_field": true});
        let answer = chat(&r, body.to_string().as_bytes()).await.unwrap();
        assert_eq!(answer.status, 200, "{kind}");
        let dropped = answer.headers[router_core::DROPPED_HEADER]
            .to_str()
            .unwrap();
        let mut names: Vec<&str> = dropped.split(',').collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "metadata",
                "prompt_cache_key",
                "service_tier",
                "store",
                "x_new_field"
            ],
            "{kind}"
        );
        // Asking the upstream to keep the exchange changes what happens: refused, named.
        let kept =
            json!({"model": "g", "messages": [{"role": "user", "content": "hi"}], "store": true});
        let err = chat(&r, kept.to_string().as_bytes()).await.unwrap_err();
        assert_eq!(err.status(), 400, "{kind}");
        assert_eq!(
            err.reply(Dialect::OpenAi).body["error"]["param"],
            "store",
            "{kind}"
        );
    }
}

#[tokio::test]
async fn prompt_cache_tokens_survive_translation_and_are_counted_apart() {
    let mock = MockUpstream::start().await.unwrap();
    mock.set_cache_tokens(30, 10);
    // Anthropic's reads and writes, told to an OpenAI client.
    let r = router(&provider("anthropic", &mock, ""));
    let body = json!({"model": "g", "messages": [{"role": "user", "content": "hi"}]});
    let (_, answer) = complete(&r, &body).await;
    assert_eq!(
        answer["usage"]["prompt_tokens_details"]["cached_tokens"],
        30
    );
    assert_eq!(answer["usage"]["cache_creation_input_tokens"], 10);
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    streamed["stream_options"] = json!({"include_usage": true});
    let chunks = stream(&r, &streamed).await;
    let usage = &chunks.last().unwrap()["usage"];
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 30);
    assert_eq!(usage["cache_creation_input_tokens"], 10);
    let row = &r.usage()[0];
    assert_eq!((row.cache_read_tokens, row.cache_write_tokens), (60, 20));
    assert_eq!(row.total_tokens, mock.tokens_reported());

    // OpenAI's cached tokens, told to an Anthropic client, complete and streamed.
    let mock = MockUpstream::start().await.unwrap();
    mock.set_cache_tokens(20, 0);
    let r = router(&provider("openai", &mock, ""));
    let body =
        json!({"model": "g", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]});
    let answer = messages(&r, body.to_string().as_bytes()).await.unwrap();
    let v: Value = serde_json::from_slice(&answer.body.collect_bytes().await).unwrap();
    assert_eq!(v["usage"]["cache_read_input_tokens"], 20);
    assert_eq!(v["usage"]["cache_creation_input_tokens"], 0);
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let answer = messages(&r, streamed.to_string().as_bytes()).await.unwrap();
    let text = String::from_utf8(answer.body.collect_bytes().await.to_vec()).unwrap();
    let delta: Value = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .find(|e| e["type"] == "message_delta")
        .unwrap();
    assert_eq!(delta["usage"]["cache_read_input_tokens"], 20);
    let row = &r.usage()[0];
    assert_eq!((row.cache_read_tokens, row.cache_write_tokens), (40, 0));
}
