//! The endpoints beyond chat through the server: `/v1/completions`, `/v1/embeddings`,
//! `/v1/responses`, and Anthropic's model list and token count; forwarded to providers that
//! offer them, usage counted, a clear 400 when no provider of the group offers them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use http::Method;
use mock_upstream::MockUpstream;
use serde_json::{json, Value};

async fn post(server: &TestServer, path: &str, body: &Value) -> Reply {
    call(
        Method::POST,
        &server.url(path),
        &[("authorization", &format!("Bearer {KEY}"))],
        body.to_string(),
    )
    .await
}

#[tokio::test]
async fn embeddings_reach_openai_and_azure_and_are_counted() {
    let mock = MockUpstream::start().await.unwrap();
    let base = mock.base_url();
    let azure_base = base.trim_end_matches("/v1").to_string();
    let yaml = format!(
        "api_key: \"{KEY}\"\ngroups:\n  - name: embed\n    strategy: round_robin\n    models:\n      - {{provider: oai, name: text-embedding-3-small}}\n      - {{provider: az, name: emb-deploy}}\n  - name: chat-only\n    models: [{{provider: claude, name: c}}]\nproviders:\n  - {{name: oai, base_url: \"{base}\", api_key: k1}}\n  - {{name: az, type: azure, base_url: \"{azure_base}\", api_key: k2}}\n  - {{name: claude, type: anthropic, base_url: \"{base}\", api_key: k3}}\n"
    );
    let server = TestServer::start(&yaml).await;
    for _ in 0..2 {
        let r = post(
            &server,
            "/v1/embeddings",
            &json!({"model": "embed", "input": ["alpha", "beta gamma"]}),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        assert_eq!(v["object"], "list");
        assert_eq!(v["data"].as_array().unwrap().len(), 2);
    }
    let paths: Vec<String> = mock.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        [
            "/v1/embeddings",
            "/openai/deployments/emb-deploy/embeddings"
        ]
    );
    let counted: u64 = server.router.usage().iter().map(|u| u.total_tokens).sum();
    assert_eq!(counted, mock.tokens_reported());
    assert!(counted > 0);

    // A group whose providers do not offer embeddings: a clear 400, nothing sent.
    let r = post(
        &server,
        "/v1/embeddings",
        &json!({"model": "chat-only", "input": "x"}),
    )
    .await;
    assert_openai_error(&r, 400, "invalid_request_error");
    assert!(r.text().contains("offers /v1/embeddings"), "{}", r.text());
    let r = post(&server, "/v1/embeddings", &json!({"model": "embed"})).await;
    assert_openai_error(&r, 400, "invalid_request_error");
    assert!(r.text().contains("'input'"));
    assert_eq!(mock.requests().len(), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn completions_pass_through_complete_and_streamed() {
    let mock = MockUpstream::start().await.unwrap();
    let server = TestServer::start(&config(&mock.base_url(), &["sk-1"], "")).await;
    let body = json!({"model": "g", "prompt": "say this", "max_tokens": 7, "x_extra": true});
    let r = post(&server, "/v1/completions", &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["choices"][0]["text"], "mock says: say this");
    let seen = &mock.requests()[0];
    assert_eq!(seen.path, "/v1/completions");
    assert_eq!(
        std::str::from_utf8(&seen.body).unwrap(),
        body.to_string().replace(r#""g""#, r#""upstream-model""#)
    );

    let r = post(
        &server,
        "/v1/completions",
        &json!({"model": "g", "prompt": "a b", "stream": true}),
    )
    .await;
    let text = r.text();
    assert!(
        text.ends_with("data: [DONE]\n\n") && !text.contains("\"usage\""),
        "{text}"
    );
    assert_eq!(
        mock.requests()[1].json()["stream_options"],
        json!({"include_usage": true})
    );
    let counted: u64 = server.router.usage().iter().map(|u| u.total_tokens).sum();
    assert_eq!(counted, mock.tokens_reported());
    server.shutdown().await;
}

#[tokio::test]
async fn messages_errors_over_http_are_anthropic_shaped() {
    let mock = MockUpstream::start().await.unwrap();
    let server = TestServer::start(&config(&mock.base_url(), &["sk-1"], "")).await;
    let r = call(
        Method::POST,
        &server.url("/v1/messages"),
        &[("x-api-key", "wrong")],
        "{}",
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["type"], "error");
    assert_eq!(r.json()["error"]["type"], "authentication_error");
    let r = call(
        Method::POST,
        &server.url("/v1/messages"),
        &[("x-api-key", KEY)],
        r#"{"model":"nope","max_tokens":5,"messages":[]}"#,
    )
    .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["type"], "not_found_error");
    server.shutdown().await;
}

/// The text of a completions stream, its finish reason and whether it carried usage.
fn completion_stream(text: &str) -> (String, Vec<String>, bool) {
    let mut said = String::new();
    let mut finish = Vec::new();
    let mut usage = false;
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert_eq!(text.matches("[DONE]").count(), 1, "{text}");
    for event in text.split("\n\n").filter(|e| !e.is_empty()) {
        let data = event.strip_prefix("data: ").expect(event);
        if data == "[DONE]" {
            continue;
        }
        let v: Value = serde_json::from_str(data).unwrap();
        assert_eq!(v["object"], "text_completion", "{data}");
        usage |= v.get("usage").is_some();
        for c in v["choices"].as_array().unwrap() {
            assert_eq!(c["logprobs"], Value::Null);
            said.push_str(c["text"].as_str().unwrap());
            if let Some(f) = c["finish_reason"].as_str() {
                finish.push(f.to_string());
            }
        }
    }
    (said, finish, usage)
}

#[tokio::test]
async fn completions_reach_chat_only_providers_complete_and_streamed() {
    let mock = MockUpstream::start().await.unwrap();
    let base = mock.base_url();
    let gemini_base = base.replace("/v1", "/v1beta");
    let yaml = format!(
        "api_key: \"{KEY}\"\ngroups:\n  - {{name: claude, models: [{{provider: claude, name: claude-x}}]}}\n  - {{name: gem, models: [{{provider: gem, name: gemini-x}}]}}\n  - {{name: local, models: [{{provider: local, name: echo}}]}}\nproviders:\n  - {{name: claude, type: anthropic, base_url: \"{base}\", api_key: k1}}\n  - {{name: gem, type: gemini, base_url: \"{gemini_base}\", api_key: k2}}\n  - {{name: local, type: mock}}\n"
    );
    let server = TestServer::start(&yaml).await;
    for group in ["claude", "gem", "local"] {
        let before = mock.requests().len();
        let r = post(
            &server,
            "/v1/completions",
            &json!({"model": group, "prompt": "say this", "max_tokens": 20, "temperature": 0}),
        )
        .await;
        assert_eq!(r.status, 200, "{group}: {}", r.text());
        let v = r.json();
        assert_eq!(v["object"], "text_completion", "{group}: {v}");
        let text = v["choices"][0]["text"].as_str().unwrap();
        let expected = if group == "local" {
            "say this"
        } else {
            "mock says: say this"
        };
        assert_eq!(text, expected, "{group}");
        assert_eq!(v["choices"][0]["finish_reason"], "stop", "{group}");
        assert_eq!(v["choices"][0]["logprobs"], Value::Null);
        let usage = &v["usage"];
        assert!(usage["prompt_tokens"].as_u64().unwrap() > 0, "{group}: {v}");
        assert_eq!(
            usage["total_tokens"].as_u64().unwrap(),
            usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
        );
        if group != "local" {
            // The provider was asked in chat, with the prompt as the one user message.
            let seen = mock.requests()[before].json();
            let content = if group == "claude" {
                &seen["messages"][0]["content"]
            } else {
                &seen["contents"][0]["parts"][0]["text"]
            };
            assert_eq!(content, "say this", "{group}: {seen}");
        }

        for wants_usage in [false, true] {
            let mut body = json!({"model": group, "prompt": "a b c", "stream": true});
            if wants_usage {
                body["stream_options"] = json!({"include_usage": true});
            }
            let r = post(&server, "/v1/completions", &body).await;
            assert_eq!(r.status, 200, "{group}: {}", r.text());
            let (said, finish, usage) = completion_stream(&r.text());
            let expected = if group == "local" {
                "a b c"
            } else {
                "mock says: a b c"
            };
            assert_eq!(said, expected, "{group}");
            assert_eq!(finish, ["stop"], "{group}");
            assert_eq!(usage, wants_usage, "{group}");
        }
    }
    let counted: u64 = server
        .router
        .usage()
        .iter()
        .filter(|u| u.provider != "local")
        .map(|u| u.total_tokens)
        .sum();
    assert_eq!(counted, mock.tokens_reported());
    assert!(counted > 0);

    // What a chat cannot say is refused by name, and nothing is sent.
    let before = mock.requests().len();
    for (body, param) in [
        (json!({"model": "claude", "prompt": ["a", "b"]}), "prompt"),
        (json!({"model": "gem", "prompt": "a", "echo": true}), "echo"),
        (json!({"model": "claude", "prompt": [1, 2, 3]}), "prompt"),
    ] {
        let r = post(&server, "/v1/completions", &body).await;
        assert_openai_error(&r, 400, "invalid_request_error");
        assert_eq!(r.json()["error"]["param"], param, "{}", r.text());
    }
    assert_eq!(mock.requests().len(), before);
    server.shutdown().await;
}

#[tokio::test]
async fn embeddings_reach_gemini_as_floats_or_base64() {
    use base64::Engine;
    let mock = MockUpstream::start().await.unwrap();
    let gemini_base = mock.base_url().replace("/v1", "/v1beta");
    let yaml = format!(
        "api_key: \"{KEY}\"\ngroups:\n  - {{name: embed, models: [{{provider: gem, name: text-embedding-004}}]}}\nproviders:\n  - {{name: gem, type: gemini, base_url: \"{gemini_base}\", api_key: k1}}\n"
    );
    let server = TestServer::start(&yaml).await;
    let r = post(
        &server,
        "/v1/embeddings",
        &json!({"model": "embed", "input": ["abcdefgh", "xyz"]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["object"], "list");
    assert_eq!(v["model"], "text-embedding-004");
    assert_eq!(
        v["data"],
        json!([
            {"object": "embedding", "index": 0, "embedding": [8.0, 4.0, -1.0]},
            {"object": "embedding", "index": 1, "embedding": [3.0, 1.5, -1.0]},
        ])
    );
    // Gemini reports no count: one token per four bytes of input, at least one per input.
    assert_eq!(v["usage"], json!({"prompt_tokens": 3, "total_tokens": 3}));
    let seen = &mock.requests()[0];
    assert_eq!(
        seen.path,
        "/v1beta/models/text-embedding-004:batchEmbedContents"
    );
    assert!(seen.headers.contains_key("x-goog-api-key"));

    // The OpenAI SDKs ask for base64 by default: little-endian f32s.
    let r = post(
        &server,
        "/v1/embeddings",
        &json!({"model": "embed", "input": "abcd", "encoding_format": "base64", "dimensions": 4}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let encoded = r.json()["data"][0]["embedding"]
        .as_str()
        .unwrap()
        .to_string();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    let floats: Vec<f32> = bytes
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(floats, [4.0, 2.0, -1.0, 0.25]);
    let counted: u64 = server.router.usage().iter().map(|u| u.total_tokens).sum();
    assert_eq!(counted, 3 + 1);

    // Token ids cannot be embedded by Gemini: refused by name.
    let r = post(
        &server,
        "/v1/embeddings",
        &json!({"model": "embed", "input": [[1, 2]]}),
    )
    .await;
    assert_openai_error(&r, 400, "invalid_request_error");
    assert_eq!(r.json()["error"]["param"], "input");
    assert_eq!(mock.requests().len(), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn anthropic_clients_get_their_model_list_and_a_token_count() {
    let mock = MockUpstream::start().await.unwrap();
    let server = TestServer::start(&config(&mock.base_url(), &["sk-1"], "")).await;
    let models = call(
        Method::GET,
        &server.url("/v1/models"),
        &[("x-api-key", KEY), ("anthropic-version", "2023-06-01")],
        "",
    )
    .await;
    assert_eq!(models.status, 200);
    let v = models.json();
    assert_eq!(v["data"][0]["type"], "model");
    assert_eq!(v["data"][0]["id"], "g");
    assert_eq!(
        (v["has_more"].clone(), v["first_id"].clone()),
        (json!(false), json!("g"))
    );
    // Claude Code's path carries `?beta=true`; the group's provider is OpenAI-format, so the
    // router counts.
    let counted = call(
        Method::POST,
        &server.url("/v1/messages/count_tokens?beta=true"),
        &[("x-api-key", KEY), ("anthropic-version", "2023-06-01")],
        json!({"model": "g", "messages": [{"role": "user", "content": "hello"}]}).to_string(),
    )
    .await;
    assert_eq!(counted.status, 200, "{}", counted.text());
    assert!(counted.json()["input_tokens"].as_u64().unwrap() > 0);
    assert!(mock.requests().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn responses_are_served_translated_and_refused_in_openai_shape() {
    let mock = MockUpstream::start().await.unwrap();
    let base = mock.base_url();
    let yaml = format!(
        "api_key: \"{KEY}\"\ngroups:\n  - name: codex\n    models: [{{provider: claude, name: c}}]\nproviders:\n  - {{name: claude, type: anthropic, base_url: \"{base}\", api_key: k}}\n"
    );
    let server = TestServer::start(&yaml).await;
    let body = json!({"model": "codex", "input": "hello", "store": false, "stream": true});
    let r = post(&server, "/v1/responses", &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.headers["content-type"], "text/event-stream");
    assert_eq!(r.headers["x-llm-router-dropped"], "store");
    let text = r.text();
    assert!(
        text.starts_with("event: response.created\ndata: {"),
        "{text}"
    );
    assert!(text.contains("event: response.completed\n"), "{text}");
    assert!(!text.contains("[DONE]"), "{text}");
    assert_eq!(mock.requests()[0].path, "/v1/messages");

    // Refused before anything is sent, in OpenAI's shape, naming the field and the provider.
    let r = post(
        &server,
        "/v1/responses",
        &json!({"model": "codex", "input": "x", "previous_response_id": "resp_1"}),
    )
    .await;
    assert_openai_error(&r, 400, "invalid_request_error");
    let v = r.json();
    assert_eq!(v["error"]["param"], "previous_response_id");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("(provider 'claude')"),
        "{v}"
    );
    let r = post(
        &server,
        "/v1/responses",
        &json!({"model": "codex", "input": 1}),
    )
    .await;
    assert_openai_error(&r, 400, "invalid_request_error");
    assert_eq!(r.json()["error"]["param"], "input");
    assert_eq!(mock.requests().len(), 1);
    let counted: u64 = server.router.usage().iter().map(|u| u.total_tokens).sum();
    assert_eq!(counted, mock.tokens_reported());
    server.shutdown().await;
}
