//! Log lines an operator can join: a failed upstream attempt and a stream broken mid-way name
//! the request's `x-request-id`, as its access line does.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{call, temp_dir, Running, KEY};
use http::Method;
use mock_upstream::MockUpstream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_failures_carry_the_request_id() {
    let upstream = MockUpstream::start().await.unwrap();
    let dir = temp_dir("logs-request-id");
    let yaml = format!(
        "api_key: \"{KEY}\"\nresilience: {{retry_backoff: 1ms}}\ngroups:\n  - {{name: g, strategy: fallback, models: [{{provider: up, name: m}}]}}\nproviders:\n  - {{name: up, base_url: \"{}\", api_keys: [sk-logs-key-0001, sk-logs-key-0002]}}\n",
        upstream.base_url()
    );
    std::fs::write(dir.join("config.yaml"), yaml).unwrap();
    let mut router = Running::start(&dir, &["--config", "config.yaml"]);
    let url = format!("http://{}/v1/chat/completions", router.addr);
    let auth = format!("Bearer {KEY}");
    // The first key's answer is a 500: the second serves; the failure names the request.
    upstream.fail_next(&[500]);
    let body = r#"{"model":"g","messages":[{"role":"user","content":"hi"}]}"#;
    let headers = [
        ("authorization", auth.as_str()),
        ("x-request-id", "join-me-1"),
    ];
    let reply = call(Method::POST, &url, &headers, body).await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text());
    let failed = router.wait_for("upstream attempt failed");
    assert!(failed.contains("request_id=join-me-1"), "{failed}");
    // A stream cut by the upstream after two events.
    upstream.cut_next_stream_after(2);
    let stream = r#"{"model":"g","stream":true,"messages":[{"role":"user","content":"one two three four five"}]}"#;
    let headers = [
        ("authorization", auth.as_str()),
        ("x-request-id", "join-me-2"),
    ];
    let reply = call(Method::POST, &url, &headers, stream).await;
    assert_eq!(reply.status.as_u16(), 200);
    let broken = router.wait_for("upstream stream failed mid-way");
    assert!(broken.contains("request_id=join-me-2"), "{broken}");
    router.stop();
}
