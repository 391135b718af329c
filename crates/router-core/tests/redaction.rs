//! No configured secret reaches a client through an upstream's words: error bodies relayed as
//! they came or translated, and error events in streams, carry the key masked.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{chat, messages};
use mock_upstream::{Fault, MockUpstream, Rule};
use router_core::{Format, Router, Source};

const KEY: &str = "sk-live-0123456789abcdefXYZ";
const MASKED: &str = "sk-…fXYZ";

fn router(kind: &str, mock: &MockUpstream, key: &str) -> Router {
    let yaml = format!(
        "groups:\n  - name: g\n    models: [{{provider: p, name: m}}]\nproviders:\n  - {{name: p, type: {kind}, base_url: \"{}\", api_key: \"{key}\"}}\n",
        mock.base_url()
    );
    Router::from_source(&Source::from_text(yaml, Format::Yaml)).unwrap()
}

async fn text(answer: router_core::ChatResponse) -> String {
    String::from_utf8(answer.body.collect_bytes().await.to_vec()).unwrap()
}

fn assert_masked(text: &str, key: &str) {
    assert!(!text.contains(key), "the key leaked: {text}");
    assert!(text.contains("…"), "masked form expected: {text}");
}

#[tokio::test]
async fn an_error_body_that_echoes_the_key_is_masked() {
    let mock = MockUpstream::start().await.unwrap();
    mock.add_rule(Rule::new(Fault::EchoKey(400)));
    let body = br#"{"model":"g","messages":[{"role":"user","content":"hi"}]}"#;
    // Relayed as it came.
    let r = router("openai", &mock, KEY);
    let answer = chat(&r, body).await.unwrap();
    assert_eq!(answer.status, 400);
    let t = text(answer).await;
    assert!(t.contains(&format!("you sent auth Bearer {MASKED}")), "{t}");
    assert_masked(&t, KEY);
    // Translated for an Anthropic client.
    let answer = messages(
        &r,
        br#"{"model":"g","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await
    .unwrap();
    assert_eq!(answer.status, 400);
    assert_masked(&text(answer).await, KEY);
    assert_eq!(mock.requests().len(), 2);
}

#[tokio::test]
async fn stream_error_events_are_masked_passed_through_and_translated() {
    let mock = MockUpstream::start().await.unwrap();
    let event = format!(
        "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"a\"}}}}]}}\n\ndata: {{\"error\":{{\"message\":\"bad auth {KEY}\",\"type\":\"server_error\"}}}}\n\n"
    );
    mock.add_rule(Rule::new(Fault::EventStream(event)));
    let r = router("openai", &mock, KEY);
    let answer = chat(
        &r,
        br#"{"model":"g","stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await
    .unwrap();
    let t = text(answer).await;
    assert!(t.contains(&format!("bad auth {MASKED}")), "{t}");
    assert_masked(&t, KEY);
    let answer = messages(
        &r,
        br#"{"model":"g","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await
    .unwrap();
    let t = text(answer).await;
    assert!(t.contains("event: error"), "{t}");
    assert_masked(&t, KEY);
}

#[tokio::test]
async fn a_reload_changes_what_is_masked() {
    let mock = MockUpstream::start().await.unwrap();
    mock.add_rule(Rule::new(Fault::EchoKey(400)));
    let r = router("openai", &mock, KEY);
    let new_key = "sk-rotated-9876543210fedcbaQRS";
    let yaml = format!(
        "groups:\n  - name: g\n    models: [{{provider: p, name: m}}]\nproviders:\n  - {{name: p, base_url: \"{}\", api_key: \"{new_key}\"}}\n",
        mock.base_url()
    );
    r.apply(&Source::from_text(yaml, Format::Yaml).parse().unwrap())
        .unwrap();
    let answer = chat(
        &r,
        br#"{"model":"g","messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await
    .unwrap();
    let t = text(answer).await;
    assert!(t.contains("sk-…aQRS"), "{t}");
    assert_masked(&t, new_key);
}
