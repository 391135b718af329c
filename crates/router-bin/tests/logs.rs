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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaker_and_key_state_changes_are_logged_once_each() {
    let upstream = MockUpstream::start().await.unwrap();
    let dir = temp_dir("logs-state-changes");
    let yaml = format!(
        "api_key: \"{KEY}\"\nresilience: {{max_attempts: 1, retry_backoff: 1ms, breaker: {{consecutive_failures: 2, open_for: 300ms}}}}\ngroups:\n  - {{name: one, models: [{{provider: solo, name: m}}]}}\n  - {{name: two, strategy: fallback, models: [{{provider: pair, name: m}}]}}\nproviders:\n  - {{name: solo, base_url: \"{url}\", api_key: sk-logs-solo-0001}}\n  - {{name: pair, base_url: \"{url}\", api_keys: [sk-logs-pair-0001, sk-logs-pair-0002]}}\n",
        url = upstream.base_url()
    );
    std::fs::write(dir.join("config.yaml"), yaml).unwrap();
    let mut router = Running::start(&dir, &["--config", "config.yaml"]);
    let url = format!("http://{}/v1/chat/completions", router.addr);
    let auth = format!("Bearer {KEY}");
    let chat = |group: &'static str| {
        let (url, auth) = (url.clone(), auth.clone());
        async move {
            let body =
                format!(r#"{{"model":"{group}","messages":[{{"role":"user","content":"hi"}}]}}"#);
            let headers = [("authorization", auth.as_str())];
            call(Method::POST, &url, &headers, body)
                .await
                .status
                .as_u16()
        }
    };
    // Two failures in a row open the breaker (and a third does not open it again).
    upstream.fail_next(&[500, 500, 500]);
    for _ in 0..3 {
        assert_eq!(chat("one").await, 502);
    }
    router.wait_for("circuit breaker opened");
    // A call that succeeds through it (a probe, or the last resort of a group with no other
    // pair) closes it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while chat("one").await != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "the breaker never let a probe through"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    router.wait_for("circuit breaker closed");
    // A 401 disables the first key of `two` (one attempt a request here: that request fails);
    // the second key serves the next ones.
    upstream.fail_next(&[401]);
    assert_ne!(chat("two").await, 200);
    assert_eq!(chat("two").await, 200);
    assert_eq!(chat("two").await, 200);
    router.wait_for("upstream key disabled until the config is reloaded");
    // A 429 rests the key that answered it.
    upstream.fail_next(&[429]);
    assert_eq!(chat("two").await, 429);
    router.wait_for("rate limited by the upstream (429)");
    let log = router.stop_with_log();
    let count = |needle: &str| log.iter().filter(|l| l.contains(needle)).count();
    for (needle, key) in [
        ("circuit breaker opened", "key=solo#0"),
        ("circuit breaker closed", "key=solo#0"),
        ("upstream key disabled", "key=pair#0"),
        ("rate limited by the upstream", "key=pair#1"),
    ] {
        assert_eq!(count(needle), 1, "{needle}: {log:#?}");
        let line = log.iter().find(|l| l.contains(needle)).unwrap();
        assert!(line.contains(key), "{line}");
    }
}

#[test]
fn a_config_error_is_one_log_line() {
    let dir = temp_dir("logs-one-line");
    let good = format!("api_key: \"{KEY}\"\nproviders:\n  - {{name: m, type: mock}}\ngroups:\n  - {{name: g, models: [{{provider: m, name: mock-echo}}]}}\n");
    std::fs::write(dir.join("config.yaml"), &good).unwrap();
    let mut router = Running::start(&dir, &["--config", "config.yaml"]);
    router.logged("watching config.yaml for changes");
    // Two problems: each on its own line in the error, both on the log's one line.
    let bad = format!(
        "server: {{max_body_bytes: 0}}\n{}",
        good.replace("name: g,", "name: \"\",")
    );
    std::fs::write(dir.join("config.yaml"), bad).unwrap();
    let line = router.wait_for("still serving the previous config");
    assert!(line.contains(" | "), "{line}");
    assert!(line.contains("groups[0].name"), "{line}");
    assert!(line.contains("server.max_body_bytes"), "{line}");
    let log = router.stop_with_log();
    let at = log
        .iter()
        .position(|l| l.contains("still serving"))
        .unwrap();
    // The next line is another event, not the rest of this one.
    if let Some(next) = log.get(at + 1) {
        assert!(next.starts_with("20"), "{next}");
    }
}
