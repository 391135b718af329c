//! Providers and groups managed without hand-editing: `llm-router provider …` and
//! `group …` against a running router, the same through the admin API, two editors at once,
//! and `status` / `health` with their exit codes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{as_admin, assert_openai_error, call, repo_root, say_hi, temp_dir, Running, BIN};
use http::Method;
use mock_upstream::MockUpstream;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

const KEY: &str = "demo-key";

/// `llm-router <args> --config <config>`, with `env` set.
fn run(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(config)
        .envs(env.iter().copied())
        .env_remove("LLM_ROUTER_URL")
        .env_remove("LLM_ROUTER_ADMIN_KEY")
        .output()
        .unwrap()
}

fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// An admin call with the example's key.
async fn admin(
    addr: &str,
    method: Method,
    path: &str,
    body: impl Into<bytes::Bytes>,
) -> common::Reply {
    as_admin(addr, KEY, method, path, body).await
}

/// The status of a chat call to `group` with the example's key.
async fn hi(addr: &str, group: &str) -> u16 {
    say_hi(&format!("http://{addr}"), KEY, group)
        .await
        .status
        .as_u16()
}

/// The entry of `list` named `name`.
fn named(list: &serde_json::Value, name: &str) -> serde_json::Value {
    let entries = list.as_array().unwrap();
    entries.iter().find(|e| e["name"] == name).cloned().unwrap()
}

/// A copy of the example config in a fresh folder.
fn example_copy(tag: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = temp_dir(tag);
    let config = dir.join("config.yaml");
    let example = std::fs::read_to_string(repo_root().join("config.example.yaml")).unwrap();
    std::fs::write(&config, example).unwrap();
    (dir, config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_and_a_group_added_from_the_cli_serve_without_a_restart() {
    let upstream = MockUpstream::start().await.unwrap();
    let (dir, config) = example_copy("manage-cli");
    let router = Running::start(&dir, &["--config", config.to_str().unwrap()]);
    let url = format!("http://{}", router.addr);
    let secret = "sk-acme-secret-0123456789";
    // The key comes from the command's environment, not its arguments.
    let target = ["--url", url.as_str(), "--admin-key", KEY];
    let added = run(
        &config,
        &[
            &[
                "provider",
                "add",
                "acme",
                "--base-url",
                &upstream.base_url(),
                "--key-env",
                "ACME_KEY",
                "--rpm",
                "100",
            ][..],
            &target[..],
        ]
        .concat(),
        &[("ACME_KEY", secret)],
    );
    assert!(added.status.success(), "{}", said(&added));
    assert!(
        said(&added).starts_with("added provider 'acme' in "),
        "{}",
        said(&added)
    );
    let group = run(
        &config,
        &[
            &[
                "group",
                "add",
                "fast",
                "--strategy",
                "least_busy",
                "--model",
                "acme/gpt-4o-mini",
            ][..],
            &target[..],
        ]
        .concat(),
        &[],
    );
    assert!(group.status.success(), "{}", said(&group));
    // The watcher applies the edits: a request to the new group reaches the new provider.
    let mut status = 0;
    for _ in 0..200 {
        let reply = say_hi(&format!("http://{}", router.addr), KEY, "fast").await;
        status = reply.status.as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(status, 200);
    let seen = upstream.requests();
    assert_eq!(seen.last().unwrap().bearer().as_deref(), Some(secret));
    assert_eq!(seen.last().unwrap().json()["model"], "gpt-4o-mini");
    // Keys are shown masked, never whole.
    let shown = run(&config, &["provider", "show", "acme"], &[]);
    assert_eq!(
        said(&shown),
        format!(
            "acme  openai  enabled  {}  keys: 1  limits per key: 100 rpm\n  key acme#0  sk-…6789\n",
            upstream.base_url()
        )
    );
    assert!(!said(&shown).contains(secret));
    let groups = run(&config, &["group", "show", "fast"], &[]);
    assert_eq!(
        said(&groups),
        "fast  least_busy\n  acme/gpt-4o-mini  weight 1\n"
    );
    // status: the new group's pair is ok; exit 0.
    let status = Command::new(BIN)
        .args(["status"])
        .args(target)
        .output()
        .unwrap();
    let text = said(&status);
    assert_eq!(status.status.code(), Some(0), "{text}");
    assert!(text.contains("group fast (least_busy)"), "{text}");
    assert!(
        text.contains("acme/gpt-4o-mini  acme#0 sk-…6789  ok"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "config: {}",
            std::fs::canonicalize(&config).unwrap().display()
        )),
        "{text}"
    );
    assert!(text.lines().any(|l| l.starts_with("ready")), "{text}");
    router.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_refusals_leave_the_file_and_say_why() {
    let (dir, config) = example_copy("manage-cli-refusals");
    let router = Running::start(&dir, &["--config", config.to_str().unwrap()]);
    let url = format!("http://{}", router.addr);
    let target = ["--url", url.as_str(), "--admin-key", KEY];
    // An edit of another file, with --url naming this router, is refused; the file stays.
    let (_, other) = example_copy("manage-cli-other");
    let before = std::fs::read(&other).unwrap();
    let wrong = run(
        &other,
        &[
            &["group", "set-strategy", "demo", "fallback"][..],
            &target[..],
        ]
        .concat(),
        &[],
    );
    assert_eq!(wrong.status.code(), Some(1), "{}", said(&wrong));
    assert!(
        said(&wrong).contains("is not the file the router at"),
        "{}",
        said(&wrong)
    );
    assert_eq!(std::fs::read(&other).unwrap(), before);
    // A refused edit says why and exits 1; an unknown name exits 2.
    let in_use = run(&config, &["provider", "remove", "mock"], &[]);
    assert_eq!(in_use.status.code(), Some(1));
    assert!(
        said(&in_use).contains("serves the group(s) demo"),
        "{}",
        said(&in_use)
    );
    let missing = run(
        &config,
        &["group", "model", "remove", "demo", "mock/nothing"],
        &[],
    );
    assert_eq!(missing.status.code(), Some(2), "{}", said(&missing));
    router.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_edits_the_served_file_and_answers_with_the_generation() {
    let upstream = MockUpstream::start().await.unwrap();
    let (dir, config) = example_copy("manage-api");
    let router = Running::start(&dir, &["--config", config.to_str().unwrap()]);
    let provider = format!(
        r#"{{"name": "acme", "base_url": "{}", "api_keys": ["sk-api-key-aaaa1111", "sk-api-key-bbbb2222"]}}"#,
        upstream.base_url()
    );
    let added = admin(&router.addr, Method::POST, "/admin/providers", provider).await;
    assert_eq!(added.status.as_u16(), 201, "{}", added.text());
    assert_eq!(
        added.json()["changed"]
            .as_str()
            .unwrap()
            .split(" in ")
            .next(),
        Some("added provider 'acme'")
    );
    let group = r#"{"name": "api", "strategy": "round_robin", "models": [{"provider": "acme", "name": "m1"}]}"#;
    let added = admin(&router.addr, Method::POST, "/admin/groups", group).await;
    assert_eq!(added.status.as_u16(), 201, "{}", added.text());
    let generation = added.json()["generation"].as_u64().unwrap();
    assert!(generation >= 2);
    // Applied before the answer: the group serves at once.
    assert_eq!(hi(&router.addr, "api").await, 200);
    // A second model, its weight, a key disabled: both keys were used, then only the other.
    let model = r#"{"provider": "mock", "name": "mock-echo", "weight": 0}"#;
    assert_eq!(
        admin(
            &router.addr,
            Method::POST,
            "/admin/groups/api/models",
            model
        )
        .await
        .status
        .as_u16(),
        201
    );
    let weight = admin(
        &router.addr,
        Method::PATCH,
        "/admin/groups/api/models/mock%2Fmock-echo",
        r#"{"weight": 3}"#,
    )
    .await;
    assert_eq!(weight.status.as_u16(), 200, "{}", weight.text());
    let disabled = admin(
        &router.addr,
        Method::PATCH,
        "/admin/providers/acme/keys/0",
        r#"{"disabled": true}"#,
    )
    .await;
    assert_eq!(disabled.status.as_u16(), 200, "{}", disabled.text());
    let listed = admin(&router.addr, Method::GET, "/admin/providers", String::new()).await;
    let acme = named(&listed.json()["providers"], "acme");
    assert_eq!(acme["keys"][0]["key"], "acme#0");
    assert_eq!(acme["keys"][0]["key_masked"], "sk-…1111");
    assert_eq!(acme["keys"][0]["disabled"], true);
    assert!(!listed.text().contains("sk-api-key"), "{}", listed.text());
    let groups = admin(&router.addr, Method::GET, "/admin/groups", String::new())
        .await
        .json();
    let api = named(&groups["groups"], "api");
    assert_eq!(api["models"][1]["weight"], 3.0);
    let before = upstream.request_count();
    for _ in 0..6 {
        assert_eq!(hi(&router.addr, "api").await, 200);
    }
    let keys: Vec<Option<String>> = upstream
        .requests()
        .iter()
        .skip(before as usize)
        .map(|r| r.bearer())
        .collect();
    assert!(
        !keys.is_empty()
            && keys
                .iter()
                .all(|k| k.as_deref() == Some("sk-api-key-bbbb2222")),
        "{keys:?}"
    );
    router.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_refuses_in_openais_shape_and_removes() {
    let upstream = MockUpstream::start().await.unwrap();
    let (dir, config) = example_copy("manage-api-refusals");
    let router = Running::start(&dir, &["--config", config.to_str().unwrap()]);
    let provider = format!(
        r#"{{"name": "acme", "base_url": "{}", "api_keys": ["sk-refusals-key-1"]}}"#,
        upstream.base_url()
    );
    assert_eq!(
        admin(&router.addr, Method::POST, "/admin/providers", provider)
            .await
            .status
            .as_u16(),
        201
    );
    let group = r#"{"name": "api", "models": [{"provider": "acme", "name": "m1"}]}"#;
    assert_eq!(
        admin(&router.addr, Method::POST, "/admin/groups", group)
            .await
            .status
            .as_u16(),
        201
    );
    // Refusals in OpenAI's shape; the file untouched.
    let text = std::fs::read(&config).unwrap();
    let bad = admin(
        &router.addr,
        Method::PATCH,
        "/admin/groups/api",
        r#"{"strategy": "fastest"}"#,
    )
    .await;
    assert_openai_error(&bad, 422, "invalid_request_error");
    assert!(
        bad.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("strategy"),
        "{}",
        bad.text()
    );
    let unknown = admin(
        &router.addr,
        Method::DELETE,
        "/admin/groups/nothing",
        String::new(),
    )
    .await;
    assert_openai_error(&unknown, 404, "not_found_error");
    let in_use = admin(
        &router.addr,
        Method::DELETE,
        "/admin/providers/acme",
        String::new(),
    )
    .await;
    assert_openai_error(&in_use, 409, "conflict_error");
    let malformed = admin(
        &router.addr,
        Method::POST,
        "/admin/groups",
        r#"{"nom": "x"}"#,
    )
    .await;
    assert_openai_error(&malformed, 400, "invalid_request_error");
    assert_eq!(std::fs::read(&config).unwrap(), text);
    let nobody = call(
        Method::POST,
        &format!("http://{}/admin/groups", router.addr),
        &[],
        group,
    )
    .await;
    assert_eq!(nobody.status.as_u16(), 401);
    // And removed again: the group, then the provider.
    assert_eq!(
        admin(
            &router.addr,
            Method::DELETE,
            "/admin/groups/api",
            String::new()
        )
        .await
        .status
        .as_u16(),
        200
    );
    assert_eq!(
        admin(
            &router.addr,
            Method::DELETE,
            "/admin/providers/acme",
            String::new()
        )
        .await
        .status
        .as_u16(),
        200
    );
    assert_eq!(hi(&router.addr, "api").await, 404);
    router.stop();
}

#[test]
fn two_processes_adding_a_provider_each_lose_neither() {
    let (_dir, config) = example_copy("manage-race");
    for round in 0..5 {
        let spawn = |name: String| {
            Command::new(BIN)
                .args(["provider", "add", &name, "--type", "mock", "--config"])
                .arg(&config)
                .env_remove("LLM_ROUTER_URL")
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        };
        let mut a = spawn(format!("a{round}"));
        let mut b = spawn(format!("b{round}"));
        assert!(a.wait().unwrap().success());
        assert!(b.wait().unwrap().success());
    }
    let listed = said(&run(&config, &["provider", "list"], &[]));
    for round in 0..5 {
        for who in ["a", "b"] {
            assert!(
                listed.contains(&format!("{who}{round}  mock  enabled")),
                "{who}{round} lost: {listed}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_exit_codes_say_down_not_ready_and_ready() {
    // Nothing listens: 3.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let down = Command::new(BIN)
        .args(["status", "--url", &format!("http://127.0.0.1:{port}")])
        .output()
        .unwrap();
    assert_eq!(down.status.code(), Some(3), "{}", said(&down));
    assert!(
        said(&down).contains("no router answers at"),
        "{}",
        said(&down)
    );
    // A group whose only pair is cooling down after a 429: 1, with the pair's state and error.
    let upstream = MockUpstream::start().await.unwrap();
    let dir = temp_dir("manage-status");
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        common::config(&upstream.base_url(), &["sk-status-key-1234"], ""),
    )
    .unwrap();
    let router = Running::start(&dir, &["--config", config.to_str().unwrap()]);
    let url = format!("http://{}", router.addr);
    let status = || {
        Command::new(BIN)
            .args(["status", "--url", &url, "--admin-key", common::KEY])
            .output()
            .unwrap()
    };
    let ready = status();
    assert_eq!(ready.status.code(), Some(0), "{}", said(&ready));
    upstream.fail_next(&[429]);
    let reply = call(
        Method::POST,
        &format!("{url}/v1/chat/completions"),
        &[("authorization", &format!("Bearer {}", common::KEY))],
        r#"{"model":"g","messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await;
    assert_eq!(reply.status.as_u16(), 429, "{}", reply.text());
    let cooling = status();
    let text = said(&cooling);
    assert_eq!(cooling.status.code(), Some(1), "{text}");
    assert!(
        text.contains("up/upstream-model  up#0 sk-…1234  cooling until "),
        "{text}"
    );
    assert!(text.contains("last error: "), "{text}");
    assert!(
        text.contains("not ready") && text.contains("group 'g' has no usable pair"),
        "{text}"
    );
    let health = Command::new(BIN)
        .args(["health", "--url", &url])
        .output()
        .unwrap();
    assert_eq!(health.status.code(), Some(1), "{}", said(&health));
    // A wrong admin key: 3, saying so.
    let refused = Command::new(BIN)
        .args(["status", "--url", &url, "--admin-key", "wrong"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(3));
    assert!(
        said(&refused).contains("admin key was refused"),
        "{}",
        said(&refused)
    );
    router.stop();
}
