//! Operating the router: `/metrics` (moving with traffic, bounded labels, no key, valid for
//! promtool), the dashboard's JSON and its page in headless Chromium.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use http::Method;
use mock_upstream::MockUpstream;
use std::time::Duration;

const ADMIN: &str = "admin-key-for-tests";
const PROVIDER_KEYS: [&str; 2] = ["sk-provider-secret-one-0001", "sk-provider-secret-two-0002"];

fn yaml(base_url: &str) -> String {
    config(base_url, &PROVIDER_KEYS, &format!("admin_key: \"{ADMIN}\""))
}

/// [`yaml`] with a named client `c1` (key `key-c1`, a $5 budget) in team `t1`, and a price
/// for the upstream model ($1,000 per million tokens: a cent for ten tokens).
fn named_yaml(base_url: &str) -> String {
    let named = format!(
        "admin_key: \"{ADMIN}\"\nclients:\n  - {{name: c1, key: key-c1, team: t1, budget: {{usd: 5}}}}\nteams:\n  - {{name: t1}}\nprices:\n  upstream-model: {{input: 1000, output: 1000}}"
    );
    config(base_url, &PROVIDER_KEYS, &named)
}

/// One chat request with the named client's key.
async fn named_call(server: &TestServer) {
    let reply = call(
        Method::POST,
        &server.url("/v1/chat/completions"),
        &[
            ("authorization", "Bearer key-c1"),
            ("content-type", "application/json"),
        ],
        CHAT.to_string(),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

/// The sum of the series of `name` whose labels include every pair of `labels`.
fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric_name, rest) = match series.split_once('{') {
                Some((n, rest)) => (n, rest),
                None => (series, ""),
            };
            (metric_name == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\""))))
            .then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

async fn admin_get(server: &TestServer, path: &str, key: &str) -> Reply {
    call(
        Method::GET,
        &server.url(path),
        &[("authorization", &format!("Bearer {key}"))],
        "",
    )
    .await
}

/// Traffic of every kind: answers, a stream, an unknown group, a failover after a 500, and a
/// request that fails on every key.
async fn traffic(server: &TestServer, mock: &MockUpstream) {
    for _ in 0..2 {
        assert_eq!(post_chat(server, CHAT).await.status, 200);
    }
    let r = client()
        .request(stream_request(server, "streamed words", None))
        .await
        .unwrap();
    let text = http_body_util::BodyExt::collect(r.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert!(String::from_utf8_lossy(&text).ends_with("data: [DONE]\n\n"));
    let unknown = post_chat(server, r#"{"model":"nope","messages":[]}"#).await;
    assert_eq!(unknown.status, 404);
    mock.fail_next(&[500]);
    assert_eq!(post_chat(server, CHAT).await.status, 200);
    mock.fail_next(&[503, 503]);
    assert_eq!(post_chat(server, CHAT).await.status, 502);
}

const CHAT: &str = r#"{"model":"g","messages":[{"role":"user","content":"count these words"}]}"#;

/// The request metrics after `traffic`: four answered, one unknown group, one failed.
fn assert_request_metrics(text: &str, ok: &[(&str, &str)]) {
    assert_eq!(metric(text, "llm_router_requests_total", ok), 4.0);
    assert_eq!(
        metric(
            text,
            "llm_router_requests_total",
            &[
                ("endpoint", "chat"),
                ("group", "-"),
                ("status_class", "4xx")
            ]
        ),
        1.0
    );
    assert_eq!(
        metric(
            text,
            "llm_router_requests_total",
            &[("group", "g"), ("provider", "-"), ("status_class", "5xx")]
        ),
        1.0
    );
    // Latency for every request of the group; time to first token and router overhead for the
    // answered ones.
    assert_eq!(
        metric(
            text,
            "llm_router_request_duration_seconds_count",
            &[("group", "g")]
        ),
        5.0
    );
    assert_eq!(
        metric(
            text,
            "llm_router_time_to_first_token_seconds_count",
            &[("group", "g")]
        ),
        4.0
    );
    assert_eq!(metric(text, "llm_router_overhead_seconds_count", &[]), 4.0);
    // The same per provider and upstream model ("-": none answered), and status codes.
    let answered = [
        ("group", "g"),
        ("provider", "up"),
        ("model", "upstream-model"),
    ];
    for (name, n) in [
        ("llm_router_request_duration_seconds_count", 4.0),
        ("llm_router_time_to_first_token_seconds_count", 4.0),
    ] {
        assert_eq!(metric(text, name, &answered), n, "{name}");
    }
    let unanswered = [("group", "g"), ("provider", "-")];
    assert_eq!(
        metric(
            text,
            "llm_router_request_duration_seconds_count",
            &unanswered
        ),
        1.0
    );
    for (code, n) in [("200", 4.0), ("404", 1.0), ("502", 1.0)] {
        assert_eq!(
            metric(text, "llm_router_requests_total", &[("code", code)]),
            n,
            "{code}"
        );
    }
    // Every request has ended but the scrape itself.
    assert_eq!(metric(text, "llm_router_requests_in_flight", &[]), 1.0);
    // One retry that failed over, and one on the request that failed on both keys.
    assert_eq!(metric(text, "llm_router_retries_total", &[]), 2.0);
    assert_eq!(metric(text, "llm_router_failovers_total", &[]), 1.0);
}

/// The upstream metrics after `traffic`: tokens as reported, failures, breaker, config.
fn assert_upstream_metrics(text: &str, server: &TestServer, mock: &MockUpstream) {
    // Tokens by key id, exactly what the upstream reported.
    let tokens = metric(text, "llm_router_tokens_total", &[]);
    assert_eq!(tokens as u64, mock.tokens_reported());
    let usage = server.router.usage();
    for u in &usage {
        let key = u.key_id.as_deref().unwrap();
        assert_eq!(
            metric(
                text,
                "llm_router_tokens_total",
                &[("key", key), ("kind", "prompt")]
            ) as u64,
            u.prompt_tokens
        );
    }
    assert_eq!(
        metric(
            text,
            "llm_router_upstream_failures_total",
            &[("class", "upstream")]
        ),
        3.0
    );
    assert_eq!(metric(text, "llm_router_breaker_state", &[]), 0.0);
    // Each key in exactly one state: both ok; the group has both to pick from.
    assert_eq!(
        metric(text, "llm_router_key_state", &[("state", "ok")]),
        2.0
    );
    assert_eq!(metric(text, "llm_router_key_state", &[]), 2.0);
    assert_eq!(
        text.matches("llm_router_key_state{").count(),
        10,
        "five states, two keys"
    );
    assert_eq!(
        metric(text, "llm_router_group_usable_pairs", &[("group", "g")]),
        2.0
    );
    assert_eq!(
        metric(text, "llm_router_group_pairs", &[("group", "g")]),
        2.0
    );
    assert!(metric(text, "process_resident_memory_bytes", &[]) > 0.0);
    assert_eq!(metric(text, "llm_router_config_generation", &[]), 1.0);
    assert_eq!(
        metric(
            text,
            "llm_router_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
}

#[tokio::test]
async fn metrics_move_with_traffic_and_never_show_a_key() {
    let mock = MockUpstream::start().await.unwrap();
    let server = TestServer::start(&yaml(&mock.base_url())).await;
    // The admin key opens /metrics; a client key does not (403: it needs the admin key).
    assert_eq!(admin_get(&server, "/metrics", KEY).await.status, 403);
    let before = admin_get(&server, "/metrics", ADMIN).await;
    assert_eq!(before.status, 200);
    assert!(before.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    // Scrapes and admin calls, the refused one above too, are not client traffic.
    assert!(
        !before.text().contains("endpoint=\"admin\""),
        "{}",
        before.text()
    );
    assert_eq!(
        metric(&before.text(), "llm_router_requests_total", &[]),
        0.0
    );
    assert_eq!(
        metric(
            &before.text(),
            "llm_router_requests_total",
            &[("endpoint", "chat")]
        ),
        0.0
    );

    traffic(&server, &mock).await;
    let ok = [
        ("endpoint", "chat"),
        ("group", "g"),
        ("provider", "up"),
        ("model", "upstream-model"),
        ("status_class", "2xx"),
    ];
    // The last request is counted once its response has been sent.
    let mut text = String::new();
    for _ in 0..500 {
        text = admin_get(&server, "/metrics", ADMIN).await.text();
        if metric(
            &text,
            "llm_router_requests_total",
            &[("status_class", "5xx")],
        ) == 1.0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_request_metrics(&text, &ok);
    assert_upstream_metrics(&text, &server, &mock);
    // A refused reload (this router has no file) is counted as a failure.
    let reload = call(
        Method::POST,
        &server.url("/admin/reload"),
        &[("authorization", &format!("Bearer {ADMIN}"))],
        "",
    )
    .await;
    assert_eq!(reload.status, 422);
    let text = admin_get(&server, "/metrics", ADMIN).await.text();
    assert_eq!(
        metric(
            &text,
            "llm_router_config_reloads_total",
            &[("result", "failure")]
        ),
        1.0
    );
    for secret in PROVIDER_KEYS.iter().chain([&KEY, &ADMIN]) {
        assert!(!text.contains(secret), "{secret} in /metrics");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn requests_carry_their_id() {
    let mock = MockUpstream::start().await.unwrap();
    let server = TestServer::start(&yaml(&mock.base_url())).await;
    let r = call(
        Method::POST,
        &server.url("/v1/chat/completions"),
        &[
            ("authorization", &format!("Bearer {KEY}")),
            ("x-request-id", "trace-me-42"),
        ],
        CHAT,
    )
    .await;
    assert_eq!(r.headers["x-request-id"], "trace-me-42");
    // None given, or not a sane one (too long; a quote, a space or a backslash, which a log
    // line would have to escape): a fresh id, also on errors.
    for bad in ["x".repeat(200), "a\"b".into(), "a b".into(), "a\\b".into()] {
        let r = call(
            Method::POST,
            &server.url("/v1/chat/completions"),
            &[("x-request-id", bad.as_str())],
            CHAT,
        )
        .await;
        assert_eq!(r.status, 401);
        let id = r.headers["x-request-id"].to_str().unwrap();
        assert!(
            id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{bad:?} -> {id}"
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn dashboard_data_shows_groups_usage_health_and_errors() {
    let mock = MockUpstream::start().await.unwrap();
    let server = TestServer::start(&yaml(&mock.base_url())).await;
    traffic(&server, &mock).await;
    assert_eq!(
        admin_get(&server, "/admin/dashboard", KEY).await.status,
        403
    );
    let r = admin_get(&server, "/admin/dashboard", ADMIN).await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["generation"], 1);
    assert_eq!(v["ledger"]["state"], "off");
    let group = &v["groups"][0];
    assert_eq!(group["name"], "g");
    assert_eq!(group["strategy"], "usage");
    assert!(group["latency_seconds"]["p50"].as_f64().unwrap() > 0.0);
    let keys = group["models"][0]["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    let tokens: u64 = keys
        .iter()
        .map(|k| k["total_tokens"].as_u64().unwrap())
        .sum();
    assert_eq!(tokens, mock.tokens_reported());
    let share: f64 = keys.iter().map(|k| k["share"].as_f64().unwrap()).sum();
    assert!((share - 1.0).abs() < 1e-9, "{share}");
    for k in keys {
        assert!(k["key"].as_str().unwrap().starts_with("up#"), "{k}");
        let shown = k["key_masked"].as_str().unwrap();
        assert!(shown.contains('…'), "masked: {shown}");
        assert!(!PROVIDER_KEYS.contains(&shown));
        assert_eq!(k["state"], "closed");
    }
    // The request that failed on every key is among the recent errors, and so are the client's
    // own: the unknown model, and the client key refused at the admin endpoint above.
    let errors = v["recent_errors"].as_array().unwrap();
    let mut statuses: Vec<u64> = errors
        .iter()
        .map(|e| e["status"].as_u64().unwrap())
        .collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [403, 404, 502], "{errors:?}");
    let failed = errors.iter().find(|e| e["status"] == 502).unwrap();
    assert_eq!(
        (failed["path"].as_str(), failed["count"].as_u64()),
        (Some("/v1/chat/completions"), Some(1))
    );
    // The page itself holds no data and needs no key.
    let page = call(Method::GET, &server.url("/dashboard"), &[], "").await;
    assert_eq!(page.status, 200);
    assert!(page.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(page.text().contains("<title>llm-router dashboard</title>"));
    // Nothing from elsewhere: the one address in it is the chart library's attribution.
    let text = page
        .text()
        .replace("/*! https://github.com/leeoniya/uPlot (v1.6.32) */", "");
    assert!(!text.contains("http://") && !text.contains("https://"));
    assert_eq!(
        call(Method::GET, &server.url("/demo"), &[], "")
            .await
            .text(),
        page.text()
    );
    server.shutdown().await;
}

/// Runs `promtool check metrics` on `/metrics` after traffic. Needs Debian's `prometheus`
/// package (`.ci/run` installs it).
#[tokio::test]
#[ignore = "needs promtool: run through scripts/test"]
async fn metrics_pass_promtool() {
    let mock = MockUpstream::start().await.unwrap();
    // A named client and its team, so the clients' families are checked too.
    let server = TestServer::start(&named_yaml(&mock.base_url())).await;
    traffic(&server, &mock).await;
    named_call(&server).await;
    let text = admin_get(&server, "/metrics", ADMIN).await.text();
    assert!(
        text.contains("llm_router_client_spend_usd{kind=\"team\",name=\"t1\"}"),
        "{text}"
    );
    let mut child = tokio::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) must be installed");
    use tokio::io::AsyncWriteExt;
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(text.as_bytes()).await.unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    server.shutdown().await;
}

/// Opens the dashboard in headless Chromium after traffic: the page shows the configured group
/// and the live token count, and a screenshot is a real PNG. Needs Debian's `chromium`
/// (`.ci/run` installs it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium: run through scripts/test"]
async fn dashboard_in_headless_chromium() {
    let mock = MockUpstream::start().await.unwrap();
    let server = TestServer::start(&named_yaml(&mock.base_url())).await;
    traffic(&server, &mock).await;
    named_call(&server).await;
    let tokens = mock.tokens_reported();
    let dir = temp_dir("dashboard-chromium");
    let url = format!("{}#key={ADMIN}", server.url("/dashboard"));
    let chromium = |extra: Vec<String>| {
        let mut c = common::headless_chromium(&dir.join("profile"));
        c.arg("--virtual-time-budget=5000").args(extra).arg(&url);
        c
    };
    let dom = tokio::time::timeout(
        Duration::from_secs(60),
        chromium(vec!["--dump-dom".into()]).output(),
    )
    .await
    .expect("chromium hung")
    .expect("chromium (Debian package chromium) must be installed");
    let dom = String::from_utf8_lossy(&dom.stdout).to_string();
    assert!(dom.contains(r#"data-group="g""#), "{dom}");
    let cells: u64 = dom
        .split(r#"<td class="num tokens">"#)
        .skip(1)
        // The page's own script holds the cell's template: only rendered cells are numbers.
        .filter_map(|c| c.split('<').next().unwrap().parse::<u64>().ok())
        .sum();
    assert_eq!(cells, tokens, "live usage on the page");
    assert!(dom.contains("upstream-model"));
    // The clients table: the named client with what it spent.
    let spent = server
        .router
        .snapshot()
        .client("c1")
        .unwrap()
        .account()
        .spend()[0]
        .1;
    let row = dom
        .split(r#"<tr data-client="c1">"#)
        .nth(1)
        .unwrap_or_else(|| panic!("no row for c1: {dom}"));
    let cell = row.split(r#"<td class="num spent">"#).nth(1).unwrap();
    let shown = cell.split('<').next().unwrap();
    let dollars = spent.picodollars as f64 / 1e12;
    assert!(dollars > 0.0);
    assert_eq!(shown, format!("${dollars:.4}"), "{row}");
    assert!(row.contains("$5 / month"), "{row}");
    let shot = dir.join("dashboard.png");
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        chromium(vec![
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,900".into(),
        ])
        .output(),
    )
    .await
    .expect("chromium hung")
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_request_whose_client_leaves_before_the_answer_is_counted_and_ends() {
    let mock = MockUpstream::start().await.unwrap();
    mock.set_response_delay(Duration::from_secs(600));
    let server = TestServer::start(&yaml(&mock.base_url())).await;
    let url = server.url("/v1/chat/completions");
    let waiting = tokio::spawn(async move {
        call(
            Method::POST,
            &url,
            &[("authorization", &format!("Bearer {KEY}"))],
            CHAT,
        )
        .await
    });
    assert!(eventually(Duration::from_secs(10), || mock.requests().len() == 1).await);
    // The client gives up while the router waits on the upstream.
    waiting.abort();
    let _ = waiting.await;
    let mut text = String::new();
    for _ in 0..500 {
        text = admin_get(&server, "/metrics", ADMIN).await.text();
        if metric(&text, "llm_router_requests_in_flight", &[]) == 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Only the scrape itself is in flight; the abandoned request is counted as a 4xx (499).
    assert_eq!(metric(&text, "llm_router_requests_in_flight", &[]), 1.0);
    assert_eq!(
        metric(
            &text,
            "llm_router_requests_total",
            &[("endpoint", "chat"), ("status_class", "4xx")]
        ),
        1.0
    );
    // Its pair's reservation was given back.
    assert!(server
        .router
        .usage()
        .iter()
        .all(|u| u.live_state().reserved == 0));
    server.shutdown().await;
}

#[tokio::test]
async fn prompt_cache_tokens_show_apart_in_usage_and_metrics() {
    let mock = MockUpstream::start().await.unwrap();
    mock.set_cache_tokens(5, 2);
    let server = TestServer::start(&yaml(&mock.base_url())).await;
    assert_eq!(post_chat(&server, CHAT).await.status, 200);
    let usage = admin_get(&server, "/admin/usage", ADMIN).await.json();
    let rows = usage["usage"].as_array().unwrap();
    let read: u64 = rows
        .iter()
        .map(|r| r["cache_read_tokens"].as_u64().unwrap())
        .sum();
    let write: u64 = rows
        .iter()
        .map(|r| r["cache_write_tokens"].as_u64().unwrap())
        .sum();
    assert_eq!((read, write), (5, 2));
    let text = admin_get(&server, "/metrics", ADMIN).await.text();
    assert_eq!(
        metric(&text, "llm_router_cache_tokens_total", &[("kind", "read")]),
        5.0
    );
    assert_eq!(
        metric(&text, "llm_router_cache_tokens_total", &[("kind", "write")]),
        2.0
    );
    server.shutdown().await;
}
