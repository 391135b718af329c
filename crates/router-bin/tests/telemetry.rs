//! Traces over OTLP/HTTP to an in-process receiver that decodes them with the protocol's own
//! types: a span per request and one per upstream attempt as its child, the GenAI attributes,
//! the caller's `traceparent` continued and each attempt's sent upstream; sampling; and a
//! collector that is down costing requests nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::otlp::{OtlpReceiver, Received};
use common::{call, TestServer, KEY};
use http::Method;
use mock_upstream::MockUpstream;
use std::sync::Arc;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// Group `g` over two keys of one upstream, a named client `c1`, traces to `endpoint`.
fn config(mock: &MockUpstream, endpoint: &str, ratio: f64) -> String {
    format!(
        "api_key: \"{KEY}\"\nclients:\n  - {{name: c1, key: key-c1}}\ntelemetry: {{otlp_endpoint: \"{endpoint}\", service_name: router-test, sample_ratio: {ratio}}}\ngroups:\n  - {{name: g, models: [{{provider: up, name: upstream-model}}]}}\nproviders:\n  - {{name: up, base_url: \"{}\", api_keys: [sk-trace-key-0001, sk-trace-key-0002]}}\n",
        mock.base_url()
    )
}

async fn chat(server: &TestServer, key: &str, traceparent: Option<&str>, body: &str) -> u16 {
    let auth = format!("Bearer {key}");
    let mut headers = vec![("authorization", auth.as_str())];
    if let Some(t) = traceparent {
        headers.push(("traceparent", t));
    }
    let reply = call(
        Method::POST,
        &server.url("/v1/chat/completions"),
        &headers,
        body.to_string(),
    )
    .await;
    reply.status.as_u16()
}

async fn flush(server: &TestServer) {
    let app = server.app.clone();
    tokio::task::spawn_blocking(move || app.flush_traces())
        .await
        .unwrap();
}

/// The `traceparent`s the upstream was sent, in order.
fn sent_traceparents(mock: &MockUpstream) -> Vec<String> {
    (mock.requests().iter())
        .map(|r| {
            let value = r
                .headers
                .get("traceparent")
                .expect("a traceparent upstream");
            value.to_str().unwrap().to_string()
        })
        .collect()
}

fn hex_id(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn of_kind(spans: &[Received], kind: i32) -> Vec<&Received> {
    spans.iter().filter(|s| s.span.kind == kind).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_and_its_attempts_reach_the_collector_as_one_trace() {
    let receiver = OtlpReceiver::start().await;
    let mock = MockUpstream::start().await.unwrap();
    let server = TestServer::start(&config(&mock, &receiver.url, 1.0)).await;
    // The first attempt meets a 503; the second, on the other key, answers.
    mock.fail_next(&[503]);
    let caller = format!("00-{TRACE}-{CALLER_SPAN}-01");
    let body = r#"{"model":"g","messages":[{"role":"user","content":"trace me"}]}"#;
    assert_eq!(chat(&server, "key-c1", Some(&caller), body).await, 200);
    flush(&server).await;

    let upstream = sent_traceparents(&mock);
    assert_eq!(upstream.len(), 2);
    for t in &upstream {
        assert!(
            t.starts_with(&format!("00-{TRACE}-")) && t.ends_with("-01"),
            "{t}"
        );
    }
    assert_ne!(upstream[0], upstream[1]);
    let spans = receiver.spans();
    assert_eq!(spans.len(), 3, "{spans:#?}");
    assert!(spans.iter().all(|s| s.service == "router-test"));
    assert!(spans.iter().all(|s| hex_id(&s.span.trace_id) == TRACE));
    // SpanKind: 2 server, 3 client.
    let request = of_kind(&spans, 2);
    assert_eq!(request.len(), 1);
    let request = request[0];
    assert_eq!(hex_id(&request.span.parent_span_id), CALLER_SPAN);
    assert_eq!(request.span.name, "chat g");
    for (key, value) in [
        ("gen_ai.operation.name", "chat"),
        ("gen_ai.request.model", "g"),
        ("gen_ai.response.model", "upstream-model"),
        ("gen_ai.system", "openai"),
        ("llm_router.group", "g"),
        ("llm_router.client", "c1"),
        ("llm_router.attempts", "2"),
        ("llm_router.outcome", "ok"),
        ("http.response.status_code", "200"),
    ] {
        assert_eq!(request.attr(key), value, "{key} of {request:#?}");
    }
    let input: u64 = request.attr("gen_ai.usage.input_tokens").parse().unwrap();
    let output: u64 = request.attr("gen_ai.usage.output_tokens").parse().unwrap();
    assert!(input > 0 && output > 0);
    let mut attempts = of_kind(&spans, 3);
    attempts.sort_by_key(|a| a.attr("llm_router.attempt"));
    assert_eq!(attempts.len(), 2);
    for (n, attempt) in attempts.iter().enumerate() {
        assert_eq!(attempt.span.parent_span_id, request.span.span_id);
        assert_eq!(attempt.attr("llm_router.attempt"), (n + 1).to_string());
        // The id each attempt was sent upstream with is its span's.
        assert!(
            upstream[n].contains(&hex_id(&attempt.span.span_id)),
            "{}",
            upstream[n]
        );
        assert_eq!(attempt.span.name, "chat upstream-model");
        assert_eq!(attempt.attr("gen_ai.system"), "openai");
        assert_eq!(attempt.attr("gen_ai.request.model"), "upstream-model");
        assert_eq!(attempt.attr("llm_router.provider"), "up");
        assert!(attempt.attr("llm_router.key").starts_with("up#"));
    }
    assert_eq!(attempts[0].attr("llm_router.outcome"), "status 503");
    assert_eq!(attempts[0].attr("http.response.status_code"), "503");
    // Status code 2: error.
    assert_eq!(attempts[0].span.status.as_ref().unwrap().code, 2);
    assert_eq!(attempts[1].attr("llm_router.outcome"), "ok");
    assert_eq!(
        attempts[1].attr("gen_ai.usage.output_tokens"),
        output.to_string()
    );
    assert!(attempts[0].span.start_time_unix_nano >= request.span.start_time_unix_nano);
    assert!(attempts[1].span.end_time_unix_nano <= request.span.end_time_unix_nano);

    // A stream's span ends with it, its usage counted.
    let body = r#"{"model":"g","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"one two three"}]}"#;
    assert_eq!(chat(&server, KEY, None, body).await, 200);
    flush(&server).await;
    let spans = receiver.spans();
    let streamed = spans
        .iter()
        .find(|s| s.span.kind == 2 && hex_id(&s.span.trace_id) != TRACE)
        .expect("the stream's request span");
    assert!(streamed.span.parent_span_id.is_empty());
    // "mock says: one two three": five words, one token each.
    assert_eq!(streamed.attr("gen_ai.usage.output_tokens"), "5");
    assert_eq!(streamed.attr("llm_router.client"), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampling_follows_the_ratio_and_the_callers_flag() {
    let receiver = OtlpReceiver::start().await;
    let mock = MockUpstream::start().await.unwrap();
    let server = TestServer::start(&config(&mock, &receiver.url, 0.0)).await;
    let body = r#"{"model":"g","messages":[{"role":"user","content":"hi"}]}"#;
    // Not sampled: nothing exported, yet the trace goes on upstream, flagged so.
    assert_eq!(chat(&server, KEY, None, body).await, 200);
    let unsampled = format!("00-{TRACE}-{CALLER_SPAN}-00");
    assert_eq!(chat(&server, KEY, Some(&unsampled), body).await, 200);
    flush(&server).await;
    assert!(receiver.spans().is_empty(), "{:#?}", receiver.spans());
    let sent = sent_traceparents(&mock);
    assert!(
        sent[0].ends_with("-00") && !sent[0].contains(TRACE),
        "{sent:?}"
    );
    assert!(sent[1].starts_with(&format!("00-{TRACE}-")) && sent[1].ends_with("-00"));
    // The caller sampled its trace: the router's spans follow.
    let sampled = format!("00-{TRACE}-{CALLER_SPAN}-01");
    assert_eq!(chat(&server, KEY, Some(&sampled), body).await, 200);
    flush(&server).await;
    assert_eq!(receiver.spans().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_is_down_costs_requests_nothing() {
    // A port nothing listens on.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let mock = MockUpstream::start().await.unwrap();
    let server = Arc::new(TestServer::start(&config(&mock, &closed, 1.0)).await);
    let body = r#"{"model":"g","messages":[{"role":"user","content":"hi"}]}"#;
    for _ in 0..50 {
        assert_eq!(chat(&server, KEY, None, body).await, 200);
    }
    // The export fails (logged); the flush returns, and requests go on being served.
    flush(&server).await;
    assert_eq!(chat(&server, KEY, None, body).await, 200);
    assert_eq!(mock.request_count(), 51);
}
