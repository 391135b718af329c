//! The binary's `run`, driven in process with a config file and a shutdown signal: it serves
//! on the main and the admin listener, reloads the file when it changes, and writes the usage
//! ledger before it returns.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

use http::Method;
use router_bin::Server;
use router_core::Router;
use std::sync::Arc;
use std::time::Duration;

fn yaml(extra_group: &str) -> String {
    format!(
        "listen: \"127.0.0.1:0\"\napi_key: \"{KEY}\"\nadmin_key: \"admin-key-for-tests\"\nserver: {{admin_listen: \"127.0.0.1:0\", shutdown_timeout: 5s}}\nledger: {{flush_interval: 1s}}\ngroups:\n  - name: demo\n    models: [{{provider: local, name: echo}}]\n{extra_group}providers:\n  - {{name: local, type: mock}}\n"
    )
}

async fn models(addr: std::net::SocketAddr) -> Vec<String> {
    let reply = call(
        Method::GET,
        &format!("http://{addr}/v1/models"),
        &[("authorization", &format!("Bearer {KEY}"))],
        "",
    )
    .await;
    reply.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn run_serves_reloads_and_writes_the_ledger_at_shutdown() {
    let dir = temp_dir("run");
    let config = dir.join("config.yaml");
    std::fs::write(&config, yaml("")).unwrap();
    let router = Arc::new(Router::from_file(&config).unwrap());
    let server = Server::bind(router.clone(), None).await.unwrap();
    let addr = server.local_addr().unwrap();
    let admin = server
        .admin_addr()
        .expect("the config names an admin address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));

    let body = r#"{"model":"demo","messages":[{"role":"user","content":"one two three"}]}"#;
    let reply = call(
        Method::POST,
        &format!("http://{addr}/v1/chat/completions"),
        &[("authorization", &format!("Bearer {KEY}"))],
        body,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.json()["choices"][0]["message"]["content"],
        "one two three"
    );
    // The admin listener serves the admin endpoints, and no client route.
    let metrics = call(
        Method::GET,
        &format!("http://{admin}/metrics"),
        &[("authorization", "Bearer admin-key-for-tests")],
        "",
    )
    .await;
    assert_eq!(metrics.status, 200);
    let chat = call(
        Method::POST,
        &format!("http://{admin}/v1/chat/completions"),
        &[("authorization", &format!("Bearer {KEY}"))],
        body,
    )
    .await;
    assert_eq!(chat.status, 404);

    // The file watcher reloads a changed file.
    std::fs::write(
        &config,
        yaml("  - name: added\n    models: [{provider: local, name: echo}]\n"),
    )
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !models(addr).await.contains(&"added".to_string()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the changed file was not reloaded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(router.snapshot().generation(), 2);

    // A last request, then the shutdown at once: only the last write can count it.
    let again = call(
        Method::POST,
        &format!("http://{addr}/v1/chat/completions"),
        &[("authorization", &format!("Bearer {KEY}"))],
        body.replace("demo", "added"),
    )
    .await;
    assert_eq!(again.status, 200, "{}", again.text());
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("run did not return after the shutdown signal")
        .unwrap()
        .unwrap();
    // The last write: every token served is in the ledger next to the config file.
    let saved = router_bin::ledger::read(&dir.join("llm-router-usage.sqlite3")).unwrap();
    let live = router.usage();
    assert_eq!(saved.len(), 1);
    assert_eq!(
        (saved[0].requests, saved[0].total_tokens),
        (live[0].requests, live[0].total_tokens)
    );
    assert_eq!(saved[0].requests, 2);
    assert!(saved[0].total_tokens > 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// One run of a config with a named client: a request, then the shutdown (which writes the
/// ledger). The status of each of `requests`.
async fn serve_once(config: &std::path::Path, requests: usize) -> (Vec<u16>, Arc<Router>) {
    let router = Arc::new(Router::from_file(config).unwrap());
    let server = Server::bind(router.clone(), None).await.unwrap();
    let addr = server.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    let mut statuses = Vec::new();
    for _ in 0..requests {
        let reply = call(
            Method::POST,
            &format!("http://{addr}/v1/chat/completions"),
            &[("authorization", "Bearer key-budget")],
            r#"{"model":"demo","max_tokens":5,"messages":[{"role":"user","content":"one two three"}]}"#,
        )
        .await;
        statuses.push(reply.status.as_u16());
    }
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("run did not return")
        .unwrap()
        .unwrap();
    (statuses, router)
}

#[tokio::test]
async fn a_clients_budget_and_spend_survive_a_restart() {
    let dir = temp_dir("tenants-restart");
    let config = dir.join("config.yaml");
    // Each request reserves about 95 tokens and uses a few: room for a handful in all.
    std::fs::write(
        &config,
        "listen: \"127.0.0.1:0\"\nadmin_key: admin\n\
         clients:\n  - {name: saver, key: key-budget, budget: {tokens: 120, period: total}}\n\
         groups:\n  - name: demo\n    models: [{provider: local, name: echo}]\n\
         providers:\n  - {name: local, type: mock}\n",
    )
    .unwrap();
    let (first, router) = serve_once(&config, 1).await;
    assert_eq!(first, vec![200]);
    let spent = router.snapshot().client("saver").unwrap().account().spend()[0].1;
    let used = spent.prompt_tokens + spent.completion_tokens;
    assert!(used > 0);
    // Saved at shutdown, in the ledger `usage --clients` reads.
    let saved = router_bin::ledger::read_tenants(&dir.join("llm-router-usage.sqlite3")).unwrap();
    let record = saved.iter().find(|r| r.name == "saver").unwrap();
    assert_eq!(record.budget_used.tokens, used);
    assert_eq!(record.spend[0].1, spent);
    let printed = std::process::Command::new(BIN)
        .args(["usage", "--clients", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&printed.stdout);
    assert!(printed.status.success(), "{table}");
    let row = table
        .lines()
        .find(|l| l.starts_with("client"))
        .unwrap_or_default();
    for cell in [
        "saver",
        "demo",
        "local",
        "echo",
        &spent.prompt_tokens.to_string(),
    ] {
        assert!(row.contains(cell), "{cell} in {table}");
    }
    // After a restart the budget goes on from there: the requests that fit are those that
    // fit beside what the first run used, not a fresh budget's.
    let (second, router) = serve_once(&config, 10).await;
    let account = router.snapshot().client("saver").unwrap().account().clone();
    let total = account.spend()[0].1;
    assert_eq!(
        total.requests,
        1 + second.iter().filter(|s| **s == 200).count() as u64
    );
    assert!(second.contains(&429), "{second:?}");
    let budget = *router.snapshot().client("saver").unwrap().budget().unwrap();
    let (window, _) = account.budget_use(&budget, time::OffsetDateTime::now_utc());
    assert_eq!(window.tokens, total.prompt_tokens + total.completion_tokens);
    assert!(window.tokens <= 120);
}
