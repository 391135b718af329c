//! One name per upstream key, wherever it is shown: its id, `provider#index` (the index its
//! place among the provider's keys as written, a disabled one counted), and a masked form that
//! stays distinct between two keys of one provider that end alike. The access log, the
//! metrics, `/admin/usage`, `/admin/dashboard`, `/admin/providers`, the ledger and the CLI all
//! agree.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{as_admin, say_hi, temp_dir, Running, KEY};
use http::Method;
use mock_upstream::MockUpstream;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

const ADMIN: &str = "admin-key-for-identity";
const BIN: &str = env!("CARGO_BIN_EXE_llm-router");

/// `key=` of an access line.
fn key_of(line: &str) -> String {
    let at = line.find(" key=").expect("an access line with a key");
    line[at + 5..].split(' ').next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_view_names_a_key_alike() {
    let upstream = MockUpstream::start().await.unwrap();
    let dir = temp_dir("identity");
    // Key #0 is disabled; #1 and #2 end alike, so their plain masks would both be sk-…ab12.
    let yaml = format!(
        "api_key: \"{KEY}\"\nadmin_key: \"{ADMIN}\"\nledger: {{request_log: true}}\ngroups:\n  - {{name: g, strategy: round_robin, models: [{{provider: up, name: m}}]}}\nproviders:\n  - name: up\n    base_url: \"{}\"\n    api_keys:\n      - {{key: sk-identity-zero-0000, disabled: true}}\n      - sk-identity-one-ab12\n      - sk-identity-two-ab12\n",
        upstream.base_url()
    );
    std::fs::write(dir.join("config.yaml"), yaml).unwrap();
    let mut router = Running::start(&dir, &["--config", "config.yaml"]);
    let base = format!("http://{}", router.addr);
    for _ in 0..4 {
        assert_eq!(say_hi(&base, KEY, "g").await.status, 200);
    }
    // The access log: the ids, by place as written.
    let mut logged = BTreeSet::new();
    for _ in 0..4 {
        let line = router.wait_for("access: ");
        logged.insert(key_of(&line));
    }
    assert_eq!(logged, BTreeSet::from(["up#1".into(), "up#2".into()]));

    // /admin/usage: each key by id and a masked form of its own.
    let usage = as_admin(&router.addr, ADMIN, Method::GET, "/admin/usage", "").await;
    let rows = usage.json()["usage"].as_array().unwrap().clone();
    let masked: BTreeMap<String, String> = rows
        .iter()
        .map(|r| {
            let id = r["key"].as_str().unwrap().to_string();
            (id, r["key_masked"].as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(masked.keys().collect::<Vec<_>>(), ["up#1", "up#2"]);
    assert_ne!(masked["up#1"], masked["up#2"]);
    for m in masked.values() {
        assert!(m.starts_with("sk-…ab12~"), "{m}");
    }
    assert!(!usage.text().contains("fingerprint") && !usage.text().contains("key_id"));

    // The dashboard's data: the same pair of names for each key.
    let dashboard = as_admin(&router.addr, ADMIN, Method::GET, "/admin/dashboard", "").await;
    let keys = dashboard.json()["groups"][0]["models"][0]["keys"].clone();
    for k in keys.as_array().unwrap() {
        let id = k["key"].as_str().unwrap();
        assert_eq!(k["key_masked"].as_str().unwrap(), masked[id], "{k}");
        assert_eq!(k["requests"], 2, "{k}");
    }

    // The config as written, disabled key included, numbered as the ids are.
    let providers = as_admin(&router.addr, ADMIN, Method::GET, "/admin/providers", "").await;
    let written = providers.json()["providers"][0]["keys"].clone();
    for (n, k) in written.as_array().unwrap().iter().enumerate() {
        let id = format!("up#{n}");
        assert_eq!(k["key"].as_str().unwrap(), id);
        if let Some(m) = masked.get(&id) {
            assert_eq!(k["key_masked"].as_str().unwrap(), m);
        }
    }

    // The metrics: labelled by id, nothing else.
    let metrics = as_admin(&router.addr, ADMIN, Method::GET, "/metrics", "")
        .await
        .text();
    for id in ["up#1", "up#2"] {
        let series = format!(
            "llm_router_upstream_requests_total{{key=\"{id}\",model=\"m\",provider=\"up\"}} 2"
        );
        assert!(metrics.contains(&series), "no {series} in\n{metrics}");
    }
    router.stop();

    ledger_and_cli_agree(&dir, &masked);
}

/// The ledger, and `llm-router usage` reading it, name each key as `masked` (id → masked form)
/// does.
fn ledger_and_cli_agree(dir: &std::path::Path, masked: &BTreeMap<String, String>) {
    // The ledger, written at shutdown: the same names, in the counters and in each request row.
    let db = rusqlite::Connection::open(dir.join("llm-router-usage.sqlite3")).unwrap();
    let saved: BTreeMap<String, String> = db
        .prepare("SELECT key, key_masked FROM usage")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(&saved, masked);
    let per_request: Vec<String> = db
        .prepare("SELECT key FROM requests ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(per_request.len(), 4);
    assert!(
        per_request.iter().all(|k| masked.contains_key(k)),
        "{per_request:?}"
    );

    // The CLI, reading that ledger: a key and its masked form side by side.
    let out = Command::new(BIN)
        .args(["usage", "--config", "config.yaml"])
        .current_dir(dir)
        .output()
        .unwrap();
    let table = String::from_utf8(out.stdout).unwrap();
    for (id, m) in masked {
        assert!(
            table
                .lines()
                .any(|l| l.contains(id.as_str()) && l.contains(m.as_str())),
            "{table}"
        );
    }
    let json = Command::new(BIN)
        .args(["usage", "--config", "config.yaml", "--json"])
        .current_dir(dir)
        .output()
        .unwrap();
    let rows: Value = serde_json::from_slice(&json.stdout).unwrap();
    let ids: BTreeSet<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    assert_eq!(ids, BTreeSet::from(["up#1", "up#2"]));
}
