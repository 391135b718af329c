//! Forwarding through router-core to the mock upstream over real HTTP: bytes kept, usage
//! counted, failover, pass-through of the request's own errors, TLS.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{chat, LiveRecord};
use mock_upstream::MockUpstream;
use router_core::{ChatRequest, Dialect, Format, Router, RouterError, Source};
use serde_json::{json, Value};

fn router(yaml: &str) -> Router {
    Router::from_source(&Source::from_text(yaml, Format::Yaml)).unwrap()
}

fn one_provider(base_url: &str, keys: &str) -> String {
    format!(
        "groups:\n  - name: g\n    models: [{{provider: up, name: upstream-model}}]\nproviders:\n  - {{name: up, base_url: \"{base_url}\", api_keys: [{keys}]}}\n"
    )
}

const CHAT: &str = r#"{"model":"g","messages":[{"role":"user","content":"hello from the test"}],"temperature":0,"x_client_extra":{"keep":[1,2.50,"é"]}}"#;

#[tokio::test]
async fn non_stream_round_trip_keeps_bytes_and_counts_usage() {
    let mock = MockUpstream::start().await.unwrap();
    let r = router(&one_provider(&mock.base_url(), "\"sk-upstream-key-0001\""));
    let answer = chat(&r, CHAT.as_bytes()).await.unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(&*answer.served.key_id, "up#0");
    let body: Value = serde_json::from_slice(&answer.body.collect_bytes().await).unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "mock says: hello from the test"
    );
    // Unknown fields reach the upstream and come back untouched.
    assert_eq!(
        body["x_mock_extra"]["echo_unknown"],
        json!({"keep":[1,2.50,"é"]})
    );
    assert_eq!(body["system_fingerprint"], "fp_mock");

    let seen = mock.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/v1/chat/completions");
    assert_eq!(seen[0].bearer().as_deref(), Some("sk-upstream-key-0001"));
    // Byte for byte, only `model` changed.
    assert_eq!(
        std::str::from_utf8(&seen[0].body).unwrap(),
        CHAT.replace(r#""model":"g""#, r#""model":"upstream-model""#)
    );

    let usage = r.usage();
    assert_eq!(usage.len(), 1);
    let u = &usage[0];
    assert_eq!(u.total_tokens, mock.tokens_reported());
    assert_eq!(
        u.total_tokens,
        body["usage"]["total_tokens"].as_u64().unwrap()
    );
    assert_eq!(
        u.prompt_tokens,
        body["usage"]["prompt_tokens"].as_u64().unwrap()
    );
    assert_eq!((u.requests, u.errors, u.live_state().reserved), (1, 0, 0));
}

async fn stream_text(r: &Router, body: &str) -> String {
    let answer = chat(r, body.as_bytes()).await.unwrap();
    assert!(answer.body.is_stream());
    assert_eq!(answer.headers["content-type"], "text/event-stream");
    String::from_utf8(answer.body.collect_bytes().await.to_vec()).unwrap()
}

#[tokio::test]
async fn stream_strips_usage_chunk_unless_asked() {
    let mock = MockUpstream::start().await.unwrap();
    let r = router(&one_provider(&mock.base_url(), "\"sk-1\""));
    let body =
        r#"{"model":"g","stream":true,"messages":[{"role":"user","content":"one two three"}]}"#;
    let text = stream_text(&r, body).await;
    // The router asked the upstream for usage...
    let sent = mock.requests()[0].json();
    assert_eq!(sent["stream_options"]["include_usage"], true);
    // ...counted it, and did not forward it.
    assert!(!text.contains("\"usage\""), "{text}");
    assert_eq!(text.matches("data: [DONE]").count(), 1);
    assert!(text.ends_with("data: [DONE]\n\n"));
    let content: String = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert_eq!(content, "mock says: one two three");
    assert_eq!(r.usage()[0].total_tokens, mock.tokens_reported());
    assert!(mock.tokens_reported() > 0);

    // Asked for: forwarded as is.
    let body = r#"{"model":"g","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"x"}]}"#;
    let text = stream_text(&r, body).await;
    assert_eq!(text.matches("\"usage\"").count(), 1, "{text}");
    assert_eq!(text.matches("data: [DONE]").count(), 1);
    assert_eq!(r.usage()[0].total_tokens, mock.tokens_reported());
}

#[tokio::test]
async fn failover_to_next_key_on_server_error() {
    let mock = MockUpstream::start().await.unwrap();
    let r = router(&one_provider(
        &mock.base_url(),
        "\"sk-first-000000001\", \"sk-second-00000002\"",
    ));
    mock.fail_next(&[500]);
    let answer = chat(&r, CHAT.as_bytes()).await.unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.served.attempts, 2);
    let seen = mock.requests();
    assert_eq!(seen[0].bearer().as_deref(), Some("sk-first-000000001"));
    assert_eq!(seen[1].bearer().as_deref(), Some("sk-second-00000002"));
    let usage = r.usage();
    let errors: u64 = usage.iter().map(|u| u.errors).sum();
    assert_eq!(errors, 1);
    answer.body.collect_bytes().await;
    assert_eq!(usage.iter().map(|u| u.requests).sum::<u64>(), 2);
}

#[tokio::test]
async fn request_fault_is_relayed_not_retried() {
    let mock = MockUpstream::start().await.unwrap();
    let r = router(&one_provider(&mock.base_url(), "\"sk-a\", \"sk-b\""));
    mock.fail_next(&[400]);
    let answer = chat(&r, CHAT.as_bytes()).await.unwrap();
    assert_eq!(answer.status, 400);
    let body: Value = serde_json::from_slice(&answer.body.collect_bytes().await).unwrap();
    assert_eq!(body["error"]["message"], "failure on command");
    assert_eq!(mock.requests().len(), 1);
    assert!(r
        .usage()
        .iter()
        .all(|u| u.errors == 0 && u.live_state().reserved == 0));
}

#[tokio::test]
async fn all_failed_names_what_was_tried_never_a_key() {
    let mock = MockUpstream::start().await.unwrap();
    let r = router(&one_provider(
        &mock.base_url(),
        "\"sk-secret-aaaaaaaa1\", \"sk-secret-bbbbbbbb2\", \"sk-secret-cccccccc3\", \"sk-secret-dddddddd4\"",
    ));
    mock.fail_next(&[503, 502, 429, 500]);
    let err = chat(&r, CHAT.as_bytes()).await.unwrap_err();
    assert_eq!(err.status(), 502);
    let RouterError::UpstreamFailed { attempts, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(attempts.len(), 3, "attempts are bounded");
    let body = err.reply(Dialect::OpenAi).body.to_string();
    for want in [
        "up/upstream-model (up#0): status 503",
        "(up#1): status 502",
        "(up#2): status 429",
    ] {
        assert!(body.contains(want), "{body}");
    }
    assert!(!body.contains("sk-secret"), "{body}");
    assert_eq!(mock.requests().len(), 3);
}

#[tokio::test]
async fn connection_refused_is_a_502() {
    // Bind then drop a listener: nothing listens on that port.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let r = router(&one_provider(
        &format!("http://127.0.0.1:{port}/v1"),
        "\"sk-a\"",
    ));
    let err = chat(&r, CHAT.as_bytes()).await.unwrap_err();
    assert_eq!(err.status(), 502);
    assert!(
        err.client_message().contains("connection failed"),
        "{}",
        err.client_message()
    );
}

#[tokio::test]
async fn unknown_group_and_bad_requests() {
    let r = router(&one_provider("http://127.0.0.1:9/v1", "\"sk-a\""));
    let err = chat(&r, br#"{"model":"nope","messages":[]}"#)
        .await
        .unwrap_err();
    assert_eq!(err.status(), 404);
    assert_eq!(
        err.reply(Dialect::OpenAi).body["error"]["code"],
        "model_not_found"
    );
    let err = chat(&r, b"{").await.unwrap_err();
    assert_eq!(err.status(), 400);
    assert_eq!(
        err.reply(Dialect::OpenAi).body["error"]["type"],
        "invalid_request_error"
    );
}

#[tokio::test]
async fn tls_upstream_with_ca_file() {
    let (mock, ca_pem) = MockUpstream::start_tls().await.unwrap();
    let dir = std::env::temp_dir().join(format!("tlstest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let yaml = format!(
        "groups:\n  - name: g\n    models: [{{provider: up, name: m}}]\n  - name: untrusted\n    models: [{{provider: plain, name: m}}]\nproviders:\n  - {{name: up, base_url: \"{url}\", api_key: k, ca_file: \"{ca}\"}}\n  - {{name: plain, base_url: \"{url}\", api_key: k}}\n",
        url = mock.base_url(),
        ca = ca.display()
    );
    let r = router(&yaml);
    let answer = chat(&r, CHAT.as_bytes()).await.unwrap();
    assert_eq!(answer.status, 200);
    let body: Value = serde_json::from_slice(&answer.body.collect_bytes().await).unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "mock says: hello from the test"
    );
    // Without the CA the certificate is refused.
    let err = chat(&r, CHAT.replace("\"g\"", "\"untrusted\"").as_bytes())
        .await
        .unwrap_err();
    assert_eq!(err.status(), 502);
    assert_eq!(mock.requests().len(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn mock_provider_answers_without_network() {
    let r = router(
        "groups:\n  - name: demo\n    models: [{provider: mock, name: echo}]\nproviders:\n  - {name: mock, type: mock}\n",
    );
    let answer = chat(
        &r,
        br#"{"model":"demo","messages":[{"role":"user","content":"ping pong"}]}"#,
    )
    .await
    .unwrap();
    let body: Value = serde_json::from_slice(&answer.body.collect_bytes().await).unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "ping pong");
    assert_eq!(body["model"], "echo");
    assert_eq!(body["usage"]["total_tokens"], 4);
    assert_eq!(r.usage()[0].total_tokens, 4);
}

#[tokio::test]
async fn provider_headers_are_sent_upstream() {
    let mock = MockUpstream::start().await.unwrap();
    let yaml = format!(
        "groups:\n  - name: g\n    models: [{{provider: up, name: m}}]\nproviders:\n  - name: up\n    base_url: \"{}\"\n    api_key: sk-h\n    headers: {{X-Team: \"${{FWD_TEST_UNSET:-blue}}\", OpenAI-Organization: org-1}}\n",
        mock.base_url()
    );
    let r = router(&yaml);
    chat(&r, CHAT.as_bytes()).await.unwrap();
    let seen = &mock.requests()[0];
    assert_eq!(seen.headers["x-team"], "blue");
    assert_eq!(seen.headers["openai-organization"], "org-1");
    assert_eq!(seen.headers["accept-encoding"], "identity");
    assert_eq!(seen.bearer().as_deref(), Some("sk-h"));
}

#[tokio::test]
async fn stream_broken_midway_ends_with_an_error_event() {
    let mock = MockUpstream::start().await.unwrap();
    let r = router(&one_provider(&mock.base_url(), "\"sk-a\""));
    mock.cut_next_stream_after(2);
    let body = r#"{"model":"g","stream":true,"messages":[{"role":"user","content":"a b c d"}]}"#;
    let text = stream_text(&r, body).await;
    let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
    // Two chunks got through, then the error event; no [DONE].
    assert_eq!(events.len(), 3, "{text}");
    let last: Value = serde_json::from_str(events[2].strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "stream_interrupted");
    assert!(!text.contains("[DONE]"));
    // No usage chunk came: the provider still billed the prompt and what it sent, so both are
    // charged by estimate (a token per four bytes of request, and of streamed text).
    let streamed: usize = events[..2]
        .iter()
        .map(|e| {
            let v: Value = serde_json::from_str(e.strip_prefix("data: ").unwrap()).unwrap();
            v["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap_or("")
                .len()
        })
        .sum();
    assert!(streamed > 0, "{text}");
    let u = &r.usage()[0];
    let prompt = body.len().div_ceil(4) as u64;
    let completion = streamed.div_ceil(4) as u64;
    assert_eq!(
        (
            u.errors,
            u.live_state().reserved,
            u.prompt_tokens,
            u.completion_tokens
        ),
        (1, 0, prompt, completion)
    );
}

fn with_timeouts(base_url: &str, server: &str) -> String {
    one_provider(base_url, "\"sk-a\"").replace("groups:", &format!("server: {{{server}}}\ngroups:"))
}

#[tokio::test(start_paused = true)]
async fn no_answer_within_first_byte_timeout_is_a_504() {
    let mock = MockUpstream::start().await.unwrap();
    mock.set_response_delay(std::time::Duration::from_secs(600));
    let r = router(&with_timeouts(&mock.base_url(), "first_byte_timeout: 2s"));
    let err = chat(&r, CHAT.as_bytes()).await.unwrap_err();
    assert_eq!(err.status(), 504);
    assert_eq!(
        err.reply(Dialect::OpenAi).body["error"]["code"],
        "upstream_timeout"
    );
    assert!(
        err.client_message().contains("no response within 2s"),
        "{}",
        err.client_message()
    );
    assert_eq!(r.usage()[0].errors, 1);
}

#[tokio::test(start_paused = true)]
async fn idle_gap_in_a_stream_ends_it_with_an_error_event() {
    let mock = MockUpstream::start().await.unwrap();
    mock.set_chunk_delay(std::time::Duration::from_secs(600));
    let r = router(&with_timeouts(&mock.base_url(), "idle_timeout: 5s"));
    let body = r#"{"model":"g","stream":true,"messages":[{"role":"user","content":"slow"}]}"#;
    let text = stream_text(&r, body).await;
    assert!(text.starts_with("data: {"), "{text}");
    assert!(
        text.contains("\"stream_interrupted\"") && text.contains("upstream sent nothing for 5s"),
        "{text}"
    );
    assert!(!text.contains("[DONE]"));
    assert_eq!(r.usage()[0].errors, 1);
}

#[tokio::test(start_paused = true)]
async fn a_long_healthy_stream_is_not_cut() {
    // Each gap is under the idle timeout; the whole stream is far longer than it.
    let mock = MockUpstream::start().await.unwrap();
    mock.set_chunk_delay(std::time::Duration::from_secs(4));
    let r = router(&with_timeouts(
        &mock.base_url(),
        "idle_timeout: 5s, first_byte_timeout: 5s",
    ));
    let words = "w ".repeat(20);
    let body = format!(
        r#"{{"model":"g","stream":true,"messages":[{{"role":"user","content":"{words}"}}]}}"#
    );
    let started = tokio::time::Instant::now();
    let text = stream_text(&r, &body).await;
    assert!(started.elapsed() > std::time::Duration::from_secs(60));
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert_eq!(r.usage()[0].errors, 0);
    assert_eq!(r.usage()[0].total_tokens, mock.tokens_reported());
}

#[tokio::test]
async fn stream_broken_after_its_usage_chunk_still_charges_the_tokens() {
    let mock = MockUpstream::start().await.unwrap();
    let r = router(&one_provider(&mock.base_url(), "\"sk-a\""));
    // Reply "mock says: x": role, 3 words, finish, usage, [DONE] -> cut before [DONE].
    mock.cut_next_stream_after(6);
    let body = r#"{"model":"g","stream":true,"messages":[{"role":"user","content":"x"}]}"#;
    let text = stream_text(&r, body).await;
    assert!(
        text.contains("stream_interrupted") && !text.contains("[DONE]"),
        "{text}"
    );
    let u = &r.usage()[0];
    assert!(mock.tokens_reported() > 0);
    assert_eq!(
        (u.total_tokens, u.errors, u.live_state().reserved),
        (mock.tokens_reported(), 1, 0)
    );
}

#[tokio::test]
async fn huge_max_tokens_does_not_overflow() {
    let r = router("groups:\n  - name: demo\n    models: [{provider: m, name: e}]\nproviders:\n  - {name: m, type: mock}\n");
    let body = br#"{"model":"demo","max_tokens":18446744073709551615,"messages":[{"role":"user","content":"hi"}]}"#;
    for _ in 0..3 {
        let held = r
            .pick("demo", ChatRequest::parse(body).unwrap().estimate_tokens())
            .unwrap();
        assert!(chat(&r, body).await.is_ok());
        drop(held);
    }
    assert_eq!(r.usage()[0].live_state().reserved, 0);
}

#[tokio::test]
async fn a_client_leaving_after_an_error_event_counts_a_failure() {
    use http_body_util::BodyExt;
    let mock = MockUpstream::start().await.unwrap();
    let r = router(&one_provider(&mock.base_url(), "\"sk-a\""));
    mock.add_rule(mock_upstream::Rule::new(mock_upstream::Fault::EventStream(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"partial\"}}]}\n\n\
         data: {\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}\n\n"
            .to_string(),
    )));
    let body = r#"{"model":"g","stream":true,"messages":[{"role":"user","content":"x"}]}"#;
    let answer = chat(&r, body.as_bytes()).await.unwrap();
    let mut stream = answer.body;
    let first = stream.frame().await.unwrap().unwrap().into_data().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("boom"));
    // The client read the error event and left before the stream's end.
    drop(stream);
    let u = &r.usage()[0];
    assert_eq!(
        (
            u.errors,
            u.live_state().failures.upstream,
            u.live_state().reserved
        ),
        (1, 1, 0)
    );
    // What was streamed is charged all the same.
    assert_eq!(u.completion_tokens, "partial".len().div_ceil(4) as u64);
}
