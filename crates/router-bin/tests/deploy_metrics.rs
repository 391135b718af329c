//! The Grafana dashboard (`deploy/grafana/llm-router.json`) and the alert rules
//! (`deploy/prometheus/alerts.yaml`) shipped with the router: every query names only metrics
//! that a running router's scrape has, and the rules pass `promtool` (their syntax, and their
//! unit tests in `alerts.test.yaml`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{as_admin, config, repo_root, say_hi, temp_dir, Running, TestServer, KEY};
use http::Method;
use mock_upstream::MockUpstream;
use serde_json::Value;
use std::collections::BTreeSet;

const ADMIN: &str = "admin-key-for-deploy-metrics";

/// The metric names a query mentions (`llm_router_*`, `process_*`).
fn names_in(query: &str) -> Vec<String> {
    let mut names = Vec::new();
    for prefix in ["llm_router_", "process_"] {
        let mut rest = query;
        while let Some(at) = rest.find(prefix) {
            let before = rest[..at].chars().next_back();
            let tail = &rest[at..];
            let len = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                names.push(tail[..len].to_string());
            }
            rest = &tail[len..];
        }
    }
    names
}

/// Every string under a key `expr` (or a templating `definition`) in `v`.
fn queries(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr" | "definition", Value::String(s)) => out.push(s.clone()),
                    _ => queries(v, out),
                }
            }
        }
        Value::Array(list) => list.iter().for_each(|v| queries(v, out)),
        _ => {}
    }
}

/// The metric names of a scrape (`name{labels} value` or `name value` lines).
fn scraped(text: &str) -> BTreeSet<String> {
    (text.lines())
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_and_alert_query_names_a_metric_a_router_exposes() {
    let upstream = MockUpstream::start().await.unwrap();
    let dir = temp_dir("deploy-metrics");
    // A named client and a price, so the clients' families are there too; the ledger is on.
    let yaml = format!(
        "api_key: \"{KEY}\"\nadmin_key: \"{ADMIN}\"\nclients:\n  - {{name: c1, key: key-c1, team: t1, budget: {{usd: 5}}}}\nteams:\n  - {{name: t1}}\nprices:\n  m: {{input: 1, output: 1}}\ngroups:\n  - {{name: g, models: [{{provider: up, name: m}}]}}\nproviders:\n  - {{name: up, base_url: \"{}\", api_keys: [sk-deploy-key-0001, sk-deploy-key-0002]}}\n",
        upstream.base_url()
    );
    std::fs::write(dir.join("config.yaml"), yaml).unwrap();
    let router = Running::start(&dir, &["--config", "config.yaml"]);
    let base = format!("http://{}", router.addr);
    // An answer, a failover after a 500, a client error.
    assert_eq!(say_hi(&base, "key-c1", "g").await.status, 200);
    upstream.fail_next(&[500]);
    assert_eq!(say_hi(&base, "key-c1", "g").await.status, 200);
    assert_eq!(say_hi(&base, "wrong", "g").await.status, 401);
    let text = as_admin(&router.addr, ADMIN, Method::GET, "/metrics", "")
        .await
        .text();
    let have = scraped(&text);

    let root = repo_root();
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("deploy/grafana/llm-router.json")).unwrap(),
    )
    .unwrap();
    let alerts: Value = serde_yaml::from_str(
        &std::fs::read_to_string(root.join("deploy/prometheus/alerts.yaml")).unwrap(),
    )
    .unwrap();
    let (mut from_dashboard, mut from_alerts) = (Vec::new(), Vec::new());
    queries(&dashboard, &mut from_dashboard);
    queries(&alerts, &mut from_alerts);
    assert!(from_dashboard.len() >= 20, "{from_dashboard:?}");
    assert_eq!(from_alerts.len(), 6, "{from_alerts:?}");
    for (file, list) in [("dashboard", &from_dashboard), ("alerts", &from_alerts)] {
        for query in list {
            let names = names_in(query);
            assert!(!names.is_empty(), "{file}: no metric in {query}");
            for name in names {
                assert!(
                    have.contains(&name),
                    "{file}: {name} (in {query}) is not in a scrape:\n{text}"
                );
            }
        }
    }
    // Each panel of the dashboard reads one data source, and its queries have distinct ids.
    for panel in dashboard["panels"].as_array().unwrap() {
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{panel}");
        let ids: BTreeSet<&str> = (panel["targets"].as_array().unwrap().iter())
            .map(|t| t["refId"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids.len(),
            panel["targets"].as_array().unwrap().len(),
            "{panel}"
        );
    }
    router.stop();
}

/// The value of the series of a scrape whose name and labels start as `series` does.
fn value(text: &str, series: &str) -> f64 {
    (text.lines())
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

/// What the alert on a group with no usable key reads: a key refused by its upstream (401)
/// turns its state to `disabled` and its group's usable pairs to 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_key_shows_in_the_key_state_and_empties_its_group() {
    let upstream = MockUpstream::start().await.unwrap();
    let admin = format!("admin_key: \"{ADMIN}\"");
    let server =
        TestServer::start(&config(&upstream.base_url(), &["sk-only-key-0001"], &admin)).await;
    let base = server.url("");
    let base = base.trim_end_matches('/');
    let addr = base.trim_start_matches("http://");
    let scrape = || async {
        as_admin(addr, ADMIN, Method::GET, "/metrics", "")
            .await
            .text()
    };
    let before = scrape().await;
    let key = "llm_router_key_state{key=\"up#0\",model=\"upstream-model\",provider=\"up\"";
    assert_eq!(value(&before, &format!("{key},state=\"ok\"}}")), 1.0);
    assert_eq!(
        value(&before, "llm_router_group_usable_pairs{group=\"g\"}"),
        1.0
    );
    upstream.fail_next(&[401]);
    assert_eq!(say_hi(base, KEY, "g").await.status, 502);
    let after = scrape().await;
    assert_eq!(value(&after, &format!("{key},state=\"disabled\"}}")), 1.0);
    assert_eq!(value(&after, &format!("{key},state=\"ok\"}}")), 0.0);
    assert_eq!(
        value(&after, "llm_router_group_usable_pairs{group=\"g\"}"),
        0.0
    );
    assert_eq!(value(&after, "llm_router_group_pairs{group=\"g\"}"), 1.0);
    // No ledger here: no ledger gauge either.
    assert!(!after.contains("llm_router_ledger_up"));
    server.shutdown().await;
}

/// The rules' syntax and their unit tests, by `promtool` (Debian package prometheus, which
/// `.ci/run` installs).
#[test]
#[ignore = "needs promtool: run through scripts/test"]
fn alert_rules_pass_promtool() {
    let root = repo_root();
    for args in [
        ["check", "rules", "deploy/prometheus/alerts.yaml"],
        ["test", "rules", "deploy/prometheus/alerts.test.yaml"],
    ] {
        let out = std::process::Command::new("promtool")
            .args(args)
            .current_dir(&root)
            .output()
            .expect("promtool (Debian package prometheus) must be installed");
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
