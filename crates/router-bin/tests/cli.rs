//! The `llm-router` binary end to end: `check`, serving the embedded example config (with curl),
//! SIGHUP reload, SIGTERM shutdown, and the official `openai` Python SDK.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{repo_root, temp_dir, Running, BIN};
use mock_upstream::MockUpstream;
use std::path::Path;
use std::process::Command;

/// Runs `tests/python/{script}` with `BASE_URL` and the demo key; asserts it exits 0 and prints
/// `{done}`.
async fn run_python(script: &str, base_url: String, done: &str) {
    let python = std::env::var("LLM_ROUTER_TEST_PYTHON")
        .expect("set LLM_ROUTER_TEST_PYTHON to a python with the SDKs (scripts/test does)");
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(script);
    let out = tokio::process::Command::new(python)
        .arg(path)
        .env("BASE_URL", base_url)
        .env("API_KEY", "demo-key")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "python failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains(done), "{stdout}");
}

#[test]
fn check_prints_routing_table_and_fails_on_bad_config() {
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(repo_root().join("config.example.yaml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("group demo")
            && stdout.contains("mock-echo")
            && stdout.contains("config OK: ")
            && stdout.contains("config.example.yaml"),
        "{stdout}"
    );
    // The example's models have no price: said once, each named once.
    let unpriced: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("unpriced"))
        .collect();
    assert_eq!(unpriced.len(), 1, "{stdout}");
    assert_eq!(unpriced[0].matches("mock-echo").count(), 1, "{stdout}");

    let dir = temp_dir("cli-check");
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "groups:\n  - name: g\n    models:\n      - provider: missing\n        name: m\nproviders: []\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "bad.yaml:4: groups[0].models[0].provider: provider 'missing' is not defined"
        ),
        "{stderr}"
    );

    let out = Command::new(BIN)
        .args(["check", "--config", "/nonexistent/x.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read config file"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn serves_the_embedded_example_without_any_file_or_key() {
    // An empty folder: no config.yaml, no --config.
    let dir = temp_dir("cli-embedded");
    let router = Running::start(&dir, &[]);
    let answer = router.curl(&[
        &format!("http://{}/v1/chat/completions", router.addr),
        "-H",
        "Authorization: Bearer demo-key",
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"model":"demo","messages":[{"role":"user","content":"hello from curl"}]}"#,
    ]);
    let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "hello from curl");
    let stream = router.curl(&[
        "-N",
        "--compressed",
        &format!("http://{}/v1/chat/completions", router.addr),
        "-H",
        "Authorization: Bearer demo-key",
        "-d",
        r#"{"model":"demo","stream":true,"messages":[{"role":"user","content":"streamed words"}]}"#,
    ]);
    assert!(
        stream.contains("\"content\":\"streamed \"") && stream.ends_with("data: [DONE]\n\n"),
        "{stream}"
    );
    router.stop();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sighup_reloads_and_sigterm_stops() {
    let dir = temp_dir("cli-signals");
    let path = dir.join("config.yaml");
    std::fs::copy(repo_root().join("config.example.yaml"), &path).unwrap();
    let mut router = Running::start(&dir, &[]);
    let health = router.curl(&[&format!("http://{}/health", router.addr)]);
    assert!(health.contains("\"generation\":1"), "{health}");
    router.signal("-HUP");
    router.wait_for("SIGHUP: config reloaded");
    let health = router.curl(&[&format!("http://{}/health", router.addr)]);
    assert!(health.contains("\"generation\":2"), "{health}");
    router.stop();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The official `openai` Python SDK against the binary: a mock-provider group and a group on
/// the HTTP mock upstream; stream and non-stream; errors. Needs a Python with `openai`
/// installed (scripts/test sets LLM_ROUTER_TEST_PYTHON to such a venv's python).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the openai Python SDK: run through scripts/test"]
async fn openai_python_sdk() {
    let mock = MockUpstream::start().await.unwrap();
    let dir = temp_dir("cli-sdk");
    let config = std::fs::read_to_string(repo_root().join("config.example.yaml"))
        .unwrap()
        .replace(
            "groups:\n",
            "groups:\n  - name: upstream\n    models: [{provider: http-mock, name: mock-model}]\n",
        )
        .replace(
            "providers:\n",
            &format!(
                "providers:\n  - {{name: http-mock, base_url: \"{}\", api_key: sk-upstream}}\n",
                mock.base_url()
            ),
        );
    std::fs::write(dir.join("config.yaml"), config).unwrap();
    let router = Running::start(&dir, &[]);
    run_python(
        "openai_sdk.py",
        format!("http://{}/v1", router.addr),
        "openai sdk: all checks passed",
    )
    .await;
    // The SDK's calls to the HTTP group were counted exactly.
    let seen = mock.requests();
    assert_eq!(seen.len(), 2, "one stream and one non-stream call");
    assert!(seen
        .iter()
        .all(|r| r.bearer().as_deref() == Some("sk-upstream")));
    router.stop();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The official `openai` Python SDK's `responses.create` and `responses.stream` on
/// `/v1/responses`: passed through to a provider that speaks Responses, translated for a
/// chat-completions one, for Anthropic and for the in-process mock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the openai Python SDK: run through scripts/test"]
async fn responses_python_sdk() {
    let mock = MockUpstream::start().await.unwrap();
    let dir = temp_dir("cli-responses-sdk");
    let config = format!(
        "api_key: demo-key\ngroups:\n  - name: native\n    models: [{{provider: native, name: gpt-mock}}]\n  - name: chat\n    models: [{{provider: chat, name: gpt-mock}}]\n  - name: claude\n    models: [{{provider: claude, name: claude-mock}}]\n  - name: demo\n    models: [{{provider: echo, name: echo}}]\nproviders:\n  - {{name: native, base_url: \"{url}\", api_key: sk-oai, responses: native}}\n  - {{name: chat, base_url: \"{url}\", api_key: sk-oai}}\n  - {{name: claude, type: anthropic, base_url: \"{url}\", api_key: sk-ant}}\n  - {{name: echo, type: mock}}\n",
        url = mock.base_url(),
    );
    std::fs::write(dir.join("config.yaml"), config).unwrap();
    let router = Running::start(&dir, &[]);
    run_python(
        "responses_sdk.py",
        format!("http://{}/v1", router.addr),
        "responses sdk: all checks passed",
    )
    .await;
    let paths: std::collections::BTreeSet<String> =
        mock.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths.into_iter().collect::<Vec<_>>(),
        ["/v1/chat/completions", "/v1/messages", "/v1/responses"]
    );
    router.stop();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A named client's refusals through both official Python SDKs: each status raises the SDK's
/// own exception (`AuthenticationError`, `PermissionDeniedError`, `RateLimitError`) with the
/// router's error type and OpenAI's rate-limit headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the anthropic and openai Python SDKs: run through scripts/test"]
async fn refusals_through_the_python_sdks() {
    let mock = MockUpstream::start().await.unwrap();
    let dir = temp_dir("cli-refusals-sdk");
    let config = format!(
        "admin_key: admin\n\
         clients:\n\
         \x20 - {{name: good, key: key-good, limits: {{rpm: 1}}}}\n\
         \x20 - {{name: off, key: key-off, disabled: true}}\n\
         \x20 - {{name: narrow, key: key-narrow, groups: [other]}}\n\
         \x20 - {{name: broke, key: key-broke, budget: {{usd: 0.000001, period: day}}}}\n\
         prices:\n  mock-model: {{input: 1, output: 1}}\n\
         groups:\n  - name: g\n    models: [{{provider: oai, name: mock-model}}]\n\
         \x20 - name: other\n    models: [{{provider: oai, name: mock-model}}]\n\
         providers:\n  - {{name: oai, base_url: \"{}\", api_key: sk-oai}}\n",
        mock.base_url()
    );
    std::fs::write(dir.join("config.yaml"), config).unwrap();
    let router = Running::start(&dir, &[]);
    run_python(
        "refusals_sdk.py",
        format!("http://{}", router.addr),
        "refusals: all checks passed",
    )
    .await;
    // Only the one admitted request reached the upstream.
    assert_eq!(mock.request_count(), 1);
    router.stop();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The official `anthropic` Python SDK on `/v1/messages` routed to an OpenAI-format upstream,
/// and the `openai` SDK routed to an Anthropic-format one: text, tools, streaming, errors, the
/// legacy prompt API through chat, and embeddings on Gemini.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the anthropic and openai Python SDKs: run through scripts/test"]
async fn anthropic_python_sdk() {
    let mock = MockUpstream::start().await.unwrap();
    let dir = temp_dir("cli-anthropic-sdk");
    let config = format!(
        "api_key: demo-key\ngroups:\n  - name: claude-via-openai\n    models: [{{provider: oai, name: gpt-mock}}]\n  - name: gpt-via-claude\n    models: [{{provider: claude, name: claude-mock}}]\n  - name: embed-via-gemini\n    models: [{{provider: gem, name: text-embedding-004}}]\nproviders:\n  - {{name: oai, base_url: \"{url}\", api_key: sk-oai}}\n  - {{name: claude, type: anthropic, base_url: \"{url}\", api_key: sk-ant}}\n  - {{name: gem, type: gemini, base_url: \"{gemini}\", api_key: sk-gem}}\n",
        url = mock.base_url(),
        gemini = mock.base_url().replace("/v1", "/v1beta")
    );
    std::fs::write(dir.join("config.yaml"), config).unwrap();
    let router = Running::start(&dir, &[]);
    run_python(
        "anthropic_sdk.py",
        format!("http://{}", router.addr),
        "anthropic sdk: all checks passed",
    )
    .await;
    let seen = mock.requests();
    assert!(seen.iter().any(|r| r.path == "/v1/messages"));
    // The tool result reached the OpenAI-format upstream as a `tool` message.
    let with_result = seen
        .iter()
        .filter(|r| r.path == "/v1/chat/completions")
        .map(|r| r.json())
        .find(|j| j["messages"].as_array().is_some_and(|m| m.len() == 3))
        .expect("the tool-result conversation");
    assert_eq!(
        with_result["messages"][2],
        serde_json::json!({"role": "tool", "tool_call_id": "call_1", "content": "found it"})
    );
    assert_eq!(with_result["messages"][1]["tool_calls"][0]["id"], "call_1");
    // Images crossed both ways intact.
    let pixel = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
    let openai_image = seen
        .iter()
        .filter(|r| r.path == "/v1/chat/completions")
        .find_map(|r| {
            r.json()["messages"][0]["content"][1]
                .get("image_url")
                .cloned()
        })
        .expect("an image_url part reached the OpenAI-format upstream");
    assert_eq!(
        openai_image["url"],
        format!("data:image/png;base64,{pixel}")
    );
    let anthropic_image = seen
        .iter()
        .filter(|r| r.path == "/v1/messages")
        .find_map(|r| {
            let j = r.json();
            (j["messages"][0]["content"][1]["type"] == "image")
                .then(|| j["messages"][0]["content"][1]["source"].clone())
        })
        .expect("an image block reached the Anthropic upstream");
    assert_eq!(
        anthropic_image,
        serde_json::json!({"type": "base64", "media_type": "image/png", "data": pixel})
    );
    router.stop();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn listen_takes_a_host_name() {
    let dir = temp_dir("cli-listen-host");
    let router = Running::start(&dir, &["--listen", "localhost:0"]);
    assert!(
        router.addr.starts_with("127.0.0.1:") || router.addr.starts_with("[::1]:"),
        "{}",
        router.addr
    );
    let live = router.curl(&[&format!("http://{}/health/live", router.addr)]);
    assert!(live.contains("live"), "{live}");
    router.stop();
    let out = Command::new(BIN)
        .args(["check", "--listen", "localhost"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("'localhost' is not an address such as 127.0.0.1:8080 or localhost:8080"),
        "{said}"
    );
}
