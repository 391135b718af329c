//! Every client request is visible to the operator, its errors too: refused keys and unknown
//! model names count in the dashboard's rates and show in its recent errors (grouped, with
//! counts), and the access line and the ledger's request row say what was asked, how it went
//! and what the client was told. Scrapes and admin calls are not traffic.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{as_admin, call, say_hi, temp_dir, Running, KEY};
use http::Method;
use mock_upstream::MockUpstream;

const ADMIN: &str = "admin-key-for-visible";

/// A row of the ledger's request log: requested model, status, error, stream, attempts, TTFT.
type Row = (Option<String>, u16, Option<String>, bool, i64, Option<f64>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_errors_count_and_say_what_was_asked() {
    let upstream = MockUpstream::start().await.unwrap();
    let dir = temp_dir("visible");
    let yaml = format!(
        "api_key: \"{KEY}\"\nadmin_key: \"{ADMIN}\"\nledger: {{request_log: true}}\ngroups:\n  - {{name: g, models: [{{provider: up, name: m}}]}}\nproviders:\n  - {{name: up, base_url: \"{}\", api_key: sk-visible-key-0001}}\n",
        upstream.base_url()
    );
    std::fs::write(dir.join("config.yaml"), yaml).unwrap();
    let mut router = Running::start(&dir, &["--config", "config.yaml"]);
    let base = format!("http://{}", router.addr);
    for _ in 0..5 {
        assert_eq!(say_hi(&base, "a-wrong-key", "g").await.status, 401);
    }
    for _ in 0..3 {
        assert_eq!(say_hi(&base, KEY, "gpt-typo").await.status, 404);
    }
    assert_eq!(say_hi(&base, KEY, "g").await.status, 200);
    let stream = r#"{"model":"g","stream":true,"messages":[{"role":"user","content":"one two"}]}"#;
    let auth = format!("Bearer {KEY}");
    let url = format!("{base}/v1/chat/completions");
    let streamed = call(
        Method::POST,
        &url,
        &[("authorization", auth.as_str())],
        stream,
    )
    .await;
    assert_eq!(streamed.status, 200);
    // Scrapes and polls in between: not counted anywhere.
    for path in ["/metrics", "/admin/dashboard", "/health"] {
        as_admin(&router.addr, ADMIN, Method::GET, path, "").await;
    }

    // The access lines: the model asked and the error told, or the stream and its first byte.
    let typo = router.logged("status=404");
    assert!(typo.contains("requested_model=\"gpt-typo\""), "{typo}");
    assert!(
        typo.contains("error=\"the model 'gpt-typo' does not exist on this router\""),
        "{typo}"
    );
    let refused = router.logged("status=401");
    assert!(
        refused.contains("error=\"missing or invalid API key"),
        "{refused}"
    );
    let streamed_line = router.logged("stream=true");
    assert!(
        streamed_line.contains("status=200") && streamed_line.contains(" ttft_ms="),
        "{streamed_line}"
    );

    // The dashboard: ten requests, eight errors; each error once, with its count.
    let data = as_admin(&router.addr, ADMIN, Method::GET, "/admin/dashboard", "")
        .await
        .json();
    assert_eq!(
        (data["requests"].as_u64(), data["errors"].as_u64()),
        (Some(10), Some(8)),
        "{data}"
    );
    let recent = data["recent_errors"].as_array().unwrap();
    let count_of = |status: u64| {
        let found: Vec<_> = recent.iter().filter(|e| e["status"] == status).collect();
        assert_eq!(found.len(), 1, "{recent:?}");
        (
            found[0]["count"].as_u64().unwrap(),
            found[0]["message"].as_str().unwrap().to_string(),
        )
    };
    assert_eq!(count_of(401).0, 5);
    let (typos, message) = count_of(404);
    assert_eq!(typos, 3);
    assert!(message.contains("'gpt-typo'"), "{message}");

    // The metrics: the same ten, and nothing of the admin calls.
    let metrics = as_admin(&router.addr, ADMIN, Method::GET, "/metrics", "")
        .await
        .text();
    let total: f64 = (metrics.lines())
        .filter(|l| l.starts_with("llm_router_requests_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(total, 10.0, "{metrics}");
    assert!(!metrics.contains("endpoint=\"admin\""));
    router.stop();

    request_rows_say_what_happened(&dir);
}

/// The ledger's request rows, written at shutdown: what each request asked and how it went.
fn request_rows_say_what_happened(dir: &std::path::Path) {
    // The ledger's request rows, written at shutdown.
    let db = rusqlite::Connection::open(dir.join("llm-router-usage.sqlite3")).unwrap();
    let rows: Vec<Row> = db
        .prepare("SELECT requested_model, status, error, stream, attempts, ttft_ms FROM requests ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), 10, "{rows:?}");
    let refused: Vec<&Row> = rows.iter().filter(|r| r.1 == 401).collect();
    assert_eq!(refused.len(), 5);
    // Refused before its body was read: no model known, the reason kept.
    assert!(refused.iter().all(|r| r.0.is_none()
        && r.2
            .as_deref()
            .unwrap()
            .starts_with("missing or invalid API key")));
    let typos: Vec<&Row> = rows.iter().filter(|r| r.1 == 404).collect();
    assert_eq!(typos.len(), 3);
    assert!(typos
        .iter()
        .all(|r| r.0.as_deref() == Some("gpt-typo") && r.4 == 0));
    let served: Vec<&Row> = rows.iter().filter(|r| r.1 == 200).collect();
    assert_eq!(served.len(), 2);
    for r in &served {
        assert_eq!(
            (r.0.as_deref(), r.2.as_deref(), r.4),
            (Some("g"), None, 1),
            "{r:?}"
        );
        assert!(r.5.is_some_and(|t| t > 0.0), "{r:?}");
    }
    assert_eq!(
        served.iter().filter(|r| r.3).count(),
        1,
        "one stream: {served:?}"
    );
}
