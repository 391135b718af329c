//! The dashboard's views in headless Chromium, checked by what the page holds (not by pixels):
//! the charts of the last hour, the request log with its filters, each group counting its own
//! calls to a pair it shares, a cooldown's end in local time, long errors that wrap, and no
//! reload button before the admin key is given. Needs Debian's `chromium` (`.ci/run` installs
//! it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{as_admin, say_hi, temp_dir, Running, KEY};
use http::Method;
use mock_upstream::MockUpstream;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

const ADMIN: &str = "admin-key-for-dashboard-views";

/// The page at `url` as headless Chromium leaves it after five seconds of virtual time
/// (`--dump-dom`), or a screenshot of it into `shot`.
async fn chromium(dir: &Path, url: &str, shot: Option<&Path>) -> String {
    let mut c = common::headless_chromium(&dir.join("profile"));
    c.args([
        "--lang=en-US",
        "--virtual-time-budget=5000",
        "--window-size=1280,2400",
    ]);
    match shot {
        Some(path) => c.arg(format!("--screenshot={}", path.display())),
        None => c.arg("--dump-dom"),
    };
    let out = tokio::time::timeout(Duration::from_secs(60), c.arg(url).output())
        .await
        .expect("chromium hung")
        .expect("chromium (Debian package chromium) must be installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The text of the first element after `marker` (up to its next tag).
fn cell_after<'a>(dom: &'a str, marker: &str) -> &'a str {
    let rest = dom
        .split(marker)
        .nth(1)
        .unwrap_or_else(|| panic!("no {marker} in {dom}"));
    rest.split('<').next().unwrap()
}

/// The request log as `GET /admin/requests?query` gives it.
async fn rows(addr: &str, query: &str) -> Vec<Value> {
    let reply = as_admin(
        addr,
        ADMIN,
        Method::GET,
        &format!("/admin/requests?{query}"),
        "",
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["rows"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium: run through scripts/test"]
async fn charts_request_log_and_shared_pairs_in_chromium() {
    let upstream = MockUpstream::start().await.unwrap();
    let dir = temp_dir("dashboard-views");
    // Two groups share one pair; c1 is a named client.
    let yaml = format!(
        "api_key: \"{KEY}\"\nadmin_key: \"{ADMIN}\"\nresilience: {{max_attempts: 1}}\nclients:\n  - {{name: c1, key: key-c1}}\ngroups:\n  - {{name: g1, models: [{{provider: up, name: m}}]}}\n  - {{name: g2, models: [{{provider: up, name: m}}]}}\nproviders:\n  - {{name: up, base_url: \"{}\", api_key: sk-views-key-0001}}\n",
        upstream.base_url()
    );
    std::fs::write(dir.join("config.yaml"), yaml).unwrap();
    let router = Running::start(&dir, &["--config", "config.yaml"]);
    let base = format!("http://{}", router.addr);
    for _ in 0..3 {
        assert_eq!(say_hi(&base, KEY, "g1").await.status, 200);
    }
    assert_eq!(say_hi(&base, "key-c1", "g2").await.status, 200);
    let typo = format!("gpt-{}", "x".repeat(300));
    for _ in 0..2 {
        assert_eq!(say_hi(&base, KEY, &typo).await.status, 404);
    }
    assert_eq!(say_hi(&base, "a-wrong-key", "g1").await.status, 401);
    // Last: a 429 cools the shared pair down for a while.
    upstream.fail_next(&[429]);
    assert_eq!(say_hi(&base, KEY, "g2").await.status, 429);

    request_log_filters(&router.addr).await;
    let url = format!("{base}/dashboard#key={ADMIN}");
    let dom = chromium(&dir, &url, None).await;
    // Charts: four, each over the points since start, the requests one with traffic in it.
    for (chart, title) in [
        ("requests", "requests/s"),
        ("errors", "errors/s"),
        ("tokens", "tokens/s"),
        ("latency_ms", "mean latency (ms)"),
    ] {
        let at = dom
            .find(&format!("id=\"chart-{chart}\""))
            .unwrap_or_else(|| panic!("no chart {chart}: {dom}"));
        let chart_dom = &dom[at..];
        assert!(
            chart_dom.contains("class=\"uplot"),
            "{chart} not drawn: {chart_dom}"
        );
        assert!(chart_dom.contains(&format!(">{title}<")), "{chart}");
    }
    let points: u64 = cell_after(&dom, "id=\"chart-requests\" data-points=\"")
        .split('"')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(points >= 1, "{points}");
    let total = dom
        .split("id=\"chart-requests\" data-points=\"")
        .nth(1)
        .unwrap();
    let total: f64 = total
        .split("data-total=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(total > 0.0, "requests/s drawn: {total}");
    for group in ["g1", "g2"] {
        assert!(
            dom.contains(&format!(">{group}<")),
            "{group} in the legends"
        );
    }

    groups_log_and_errors(&dom, &typo);

    // Without the key: the login form, and no reload button.
    let bare = chromium(&dir, &format!("{base}/dashboard"), None).await;
    assert!(
        bare.contains("<button id=\"reload\" type=\"button\" hidden=\"\">"),
        "{bare}"
    );
    assert!(bare.contains("admin key needed"), "{bare}");

    let shot = dir.join("views.png");
    chromium(&dir, &url, Some(&shot)).await;
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    router.stop();
}

/// `GET /admin/requests`, once the rows are written (every second): all of them, newest first,
/// and each filter.
async fn request_log_filters(addr: &str) {
    // The request log, once written (every second), and its filters.
    let mut all = Vec::new();
    for _ in 0..100 {
        all = rows(addr, "").await;
        if all.len() == 8 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(all.len(), 8, "{all:?}");
    assert_eq!(all[0]["status"], 429, "newest first");
    assert_eq!(rows(addr, "status=404").await.len(), 2);
    assert_eq!(rows(addr, "status=4xx").await.len(), 4);
    assert_eq!(rows(addr, "status=error").await.len(), 4);
    assert_eq!(rows(addr, "group=g1").await.len(), 3);
    let c1 = rows(addr, "client=c1").await;
    assert_eq!((c1.len(), c1[0]["group"].as_str()), (1, Some("g2")));
    let refused = as_admin(addr, ADMIN, Method::GET, "/admin/requests?status=6xx", "").await;
    assert_eq!(refused.status, 400);
    assert!(
        refused.text().contains("status '6xx' is none of"),
        "{}",
        refused.text()
    );
}

/// The page's groups (a shared pair counted apart, a cooldown's end in local time), its
/// request log and its recent errors.
fn groups_log_and_errors(dom: &str, typo: &str) {
    // The shared pair: each group counts its own calls, and says who else uses it.
    let g1 = dom.split("data-group=\"g1\"").nth(1).unwrap();
    let g2 = dom.split("data-group=\"g2\"").nth(1).unwrap();
    assert_eq!(cell_after(g1, "<td class=\"num requests\">"), "3");
    assert_eq!(cell_after(g2, "<td class=\"num requests\">"), "2");
    assert!(cell_after(g1, "<small class=\"shared\">")
        .starts_with("also in g2; all groups: 5 requests"));
    // The cooldown's end in local time (en-US: 6:01:02 AM), not UTC ISO.
    let (until, shown) = cell_after(g2, "<td class=\"until\" title=\"")
        .split_once("\">")
        .unwrap();
    assert!(
        until.ends_with('Z') && until.contains('T'),
        "ISO kept in the title: {until}"
    );
    assert!(shown.ends_with(" AM") || shown.ends_with(" PM"), "{shown}");

    // The request log view: every row, the model asked for the refused ones.
    // (The page's script holds the row's template too: only rendered rows have a number.)
    let rendered = (dom.split("<tr data-status=\"").skip(1))
        .filter(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        .count();
    assert_eq!(rendered, 8, "{dom}");
    assert!(
        dom.contains(&format!("<td class=\"asked\">{}", &typo[..60])),
        "{dom}"
    );
    // Errors wrap rather than widen the page; grouped with their counts.
    assert!(dom.contains("td.message { white-space: normal; overflow-wrap: anywhere;"));
    let errors = dom.split("id=\"errors\"").nth(1).unwrap();
    assert!(
        errors.contains("<td class=\"num\">2</td><td>404</td>"),
        "{errors}"
    );
}
