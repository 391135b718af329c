//! `/v1/completions` and `/v1/embeddings` through the server: forwarded to providers that offer
//! them (OpenAI, Azure), usage counted, a clear 400 when no provider of the group offers them.

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
