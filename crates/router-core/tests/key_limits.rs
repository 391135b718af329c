//! Upstream key limits (`rpm` / `tpm` per provider key), the `lowest_tpm_rpm` strategy and a
//! group's `queue_timeout`, on tokio's paused clock: selection through `Router::pick`, the 429
//! and the wait through the mock upstream.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::chat;
use mock_upstream::MockUpstream;
use router_core::{Config, Format, Router, RouterError, Source, TokenUsage};
use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

fn router(yaml: &str) -> Router {
    Router::from_source(&Source::from_text(yaml, Format::Yaml)).unwrap()
}

fn used(n: u64) -> TokenUsage {
    TokenUsage {
        prompt_tokens: n,
        completion_tokens: 0,
        total_tokens: n,
        ..TokenUsage::default()
    }
}

/// A group `g` (`strategy`, `extra` group settings) of model `m` on provider `p` with `keys`
/// (as written in `api_keys`) and provider settings `provider`.
fn one_group(strategy: &str, extra: &str, keys: &str, provider: &str) -> String {
    format!(
        "groups:\n  - name: g\n    strategy: {strategy}\n{extra}    models: [{{provider: p, name: m}}]\n\
         providers:\n  - {{name: p, base_url: \"http://127.0.0.1:9/v1\", api_keys: [{keys}]{provider}}}\n"
    )
}

#[tokio::test(start_paused = true)]
async fn a_key_with_rpm_10_gets_at_most_10_requests_in_any_minute() {
    let r = router(&one_group(
        "usage",
        "",
        "{key: k-limited, rpm: 10}, k-free",
        "",
    ));
    // A request a second for three minutes, each settled at once.
    let start = Instant::now();
    let mut limited = Vec::new();
    for _ in 0..180 {
        let s = r.pick("g", 1).unwrap();
        if s.key_id() == "p#0" {
            limited.push(start.elapsed().as_secs());
        }
        s.succeed(used(10));
        tokio::time::advance(Duration::from_secs(1)).await;
    }
    // In every minute of the run, no more than 10...
    for t in 0..=120 {
        let in_minute = limited
            .iter()
            .filter(|&&s| (t..t + 60).contains(&s))
            .count();
        assert!(
            in_minute <= 10,
            "{in_minute} in [{t}, {}): {limited:?}",
            t + 60
        );
    }
    // ...and 10 in each calendar minute: the key is used up to its limit, its sibling takes the
    // rest.
    for m in 0..3 {
        let n = limited.iter().filter(|&&s| s / 60 == m).count();
        assert_eq!(n, 10, "minute {m}: {limited:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn rpm_admits_the_whole_minute_at_once_then_says_when_the_key_is_free() {
    let r = router(&one_group("usage", "", "k", ", limits: {rpm: 10}"));
    // Ten at once, none settled yet.
    let held: Vec<_> = (0..10).map(|_| r.pick("g", 1).unwrap()).collect();
    tokio::time::advance(Duration::from_secs(15)).await;
    match r.pick("g", 1) {
        Err(e @ RouterError::RateLimited { retry_after, .. }) => {
            assert_eq!(retry_after, Duration::from_secs(45));
            assert_eq!(e.status(), 429);
            assert_eq!(e.retry_after_secs(), Some(45));
        }
        other => panic!("expected a 429, got {other:?}"),
    }
    // Settling gives no request back; the minute does.
    held.into_iter().for_each(|s| s.succeed(used(1)));
    assert!(r.pick("g", 1).is_err());
    tokio::time::advance(Duration::from_secs(45)).await;
    assert!(r.pick("g", 1).is_ok());
}

#[tokio::test(start_paused = true)]
async fn tpm_reserves_the_estimate_and_is_settled_to_the_reported_usage() {
    // Fallback: key a's model first, b's only when a cannot take the request.
    let r = router(
        "groups:\n  - name: g\n    strategy: fallback\n    models: [{provider: pa, name: m}, {provider: pb, name: m}]\n\
         providers:\n  - {name: pa, base_url: \"http://127.0.0.1:9/v1\", api_keys: [{key: a, tpm: 1000}]}\n\
         \x20 - {name: pb, base_url: \"http://127.0.0.1:9/v1\", api_key: b}\n",
    );
    let first = r.pick("g", 600).unwrap();
    assert_eq!(first.key_id(), "pa#0");
    // 600 held of a's 1000: the next 600 goes to b.
    let second = r.pick("g", 600).unwrap();
    assert_eq!(second.key_id(), "pb#0");
    second.succeed(used(600));
    // The first used 100 in the end: a has room for 600 again.
    first.succeed(used(100));
    let third = r.pick("g", 600).unwrap();
    assert_eq!(third.key_id(), "pa#0");
    // A request nothing was sent for does not count: a has 300 left, then 900.
    assert_eq!(r.pick("g", 400).unwrap().key_id(), "pb#0");
    third.withdraw();
    assert_eq!(r.pick("g", 800).unwrap().key_id(), "pa#0");
}

#[tokio::test(start_paused = true)]
async fn a_limit_counts_every_group_and_model_of_the_key_and_outlives_a_reload() {
    let yaml = "groups:\n  - name: g1\n    models: [{provider: p, name: m1}]\n\
                \x20 - name: g2\n    models: [{provider: p, name: m2}, {provider: q, name: m2}]\n\
                providers:\n  - {name: p, base_url: \"http://127.0.0.1:9/v1\", api_keys: [{key: shared, rpm: 3}]}\n\
                \x20 - {name: q, base_url: \"http://127.0.0.1:9/v1\", api_key: other}\n";
    let r = router(yaml);
    for _ in 0..2 {
        r.pick("g1", 1).unwrap().succeed(used(1));
    }
    assert_eq!(r.pick("g2", 1).unwrap().provider().name(), "p");
    // The key's three are spent: g2 goes to q, g1 has nothing left.
    assert_eq!(r.pick("g2", 1).unwrap().provider().name(), "q");
    assert!(matches!(
        r.pick("g1", 1),
        Err(RouterError::RateLimited { .. })
    ));
    // A reload (to a higher limit) keeps what the key was sent.
    let config: Config = serde_yaml::from_str(&yaml.replace("rpm: 3", "rpm: 4")).unwrap();
    r.apply(&config).unwrap();
    r.pick("g1", 1).unwrap().succeed(used(1));
    assert!(r.pick("g1", 1).is_err());
}

/// Picks settled at once, counted by key.
fn keys_picked(r: &Router, n: usize, estimate: u64) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for _ in 0..n {
        let s = r.pick("g", estimate).unwrap();
        *out.entry(s.key_id().to_string()).or_default() += 1;
        s.succeed(used(estimate));
    }
    out
}

#[tokio::test(start_paused = true)]
async fn lowest_tpm_rpm_keeps_the_keys_equally_far_from_their_limits() {
    let r = router(&one_group(
        "lowest_tpm_rpm",
        "",
        "{key: small, rpm: 10}, {key: large, rpm: 30}",
        "",
    ));
    // The share left stays even: a quarter of the traffic to the key with a quarter the room.
    let by_key = keys_picked(&r, 20, 1);
    assert_eq!(by_key["p#0"], 5, "{by_key:?}");
    assert_eq!(by_key["p#1"], 15, "{by_key:?}");
    // By tokens too: the tighter of the two limits decides.
    let r = router(&one_group(
        "lowest_tpm_rpm",
        "",
        "{key: few, tpm: 1000}, {key: many, tpm: 4000}",
        ", limits: {rpm: 1000}",
    ));
    let by_key = keys_picked(&r, 10, 100);
    assert_eq!(by_key["p#0"], 2, "{by_key:?}");
    assert_eq!(by_key["p#1"], 8, "{by_key:?}");
    // A minute later both are free again, and the first in config order goes first.
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(r.pick("g", 1).unwrap().key_id(), "p#0");
}

#[tokio::test]
async fn lowest_tpm_rpm_warns_of_keys_without_limits() {
    let r = router(&one_group("lowest_tpm_rpm", "", "{key: a, rpm: 5}, b", ""));
    assert!(
        r.snapshot()
            .warnings()
            .iter()
            .any(|w| w.starts_with("groups[0]: lowest_tpm_rpm") && w.contains("always free")),
        "{:?}",
        r.snapshot().warnings()
    );
}

const BODY: &[u8] = br#"{"model":"g","messages":[{"role":"user","content":"hi"}]}"#;

#[tokio::test(start_paused = true)]
async fn with_every_key_at_its_limit_a_request_gets_429_or_waits_its_queue_timeout() {
    let mock = MockUpstream::start().await.unwrap();
    let yaml = |queue: &str| {
        format!(
            "groups:\n  - name: g\n{queue}    models: [{{provider: p, name: m}}]\n\
             providers:\n  - {{name: p, base_url: \"{}\", api_keys: [k1, k2], limits: {{rpm: 1}}}}\n",
            mock.base_url()
        )
    };
    let r = router(&yaml(""));
    chat(&r, BODY).await.unwrap();
    tokio::time::advance(Duration::from_secs(20)).await;
    chat(&r, BODY).await.unwrap();
    // Both keys spent; no queue: 429 at once, Retry-After when the first is free (at 60 s).
    let asked = Instant::now();
    let e = chat(&r, BODY).await.unwrap_err();
    assert_eq!(e.status(), 429, "{e}");
    assert_eq!(e.retry_after_secs(), Some(40), "{e}");
    assert!(asked.elapsed() < Duration::from_secs(1));
    assert_eq!(mock.requests().len(), 2);
    // A queue shorter than the wait: the same 429, at once.
    let config: Config = serde_yaml::from_str(&yaml("    queue_timeout: 30s\n")).unwrap();
    r.apply(&config).unwrap();
    let e = chat(&r, BODY).await.unwrap_err();
    assert_eq!(e.retry_after_secs(), Some(40), "{e}");
    assert!(asked.elapsed() < Duration::from_secs(1));
    // Long enough: served when k1 is free, 40 s later, and not before.
    let config: Config = serde_yaml::from_str(&yaml("    queue_timeout: 45s\n")).unwrap();
    r.apply(&config).unwrap();
    let answer = chat(&r, BODY).await.unwrap();
    assert_eq!(&*answer.served.key_id, "p#0");
    let waited = asked.elapsed();
    assert!(
        waited >= Duration::from_secs(40) && waited < Duration::from_secs(41),
        "{waited:?}"
    );
    assert_eq!(mock.requests().len(), 3);
}

#[test]
fn limits_are_checked_at_load_and_never_show_the_key() {
    let load = |yaml: &str| Router::from_source(&Source::from_text(yaml, Format::Yaml));
    let err = |yaml: &str| load(yaml).unwrap_err().to_string();
    let msg = err(&one_group("usage", "", "k", ", limits: {rpm: 0}"));
    assert!(
        msg.contains("providers[0].limits.rpm: must be at least 1"),
        "{msg}"
    );
    let msg = err(&one_group("usage", "", "{key: sk-secret-1234, tpm: 0}", ""));
    assert!(
        msg.contains("providers[0].api_keys[0].tpm: must be at least 1"),
        "{msg}"
    );
    assert!(!msg.contains("sk-secret-1234"), "{msg}");
    let msg = err(&one_group("usage", "", "{key: sk-secret-1234, rmp: 5}", ""));
    assert!(
        msg.contains("providers[0].api_keys[0]") && msg.contains("unknown field `rmp`"),
        "{msg}"
    );
    assert!(!msg.contains("sk-secret-1234"), "{msg}");
    let msg = err(&one_group("usage", "", "{rpm: 5}", ""));
    assert!(msg.contains("missing field `key`"), "{msg}");
    let msg = err(&one_group("usage", "", "{key: 12345, rpm: 5}", ""));
    assert!(msg.contains("a key must be a string"), "{msg}");
    // A key's own limit wins over the provider's; the provider's applies to the others.
    let r = load(&one_group(
        "usage",
        "",
        "{key: a, rpm: 1}, b",
        ", limits: {rpm: 2}",
    ))
    .unwrap();
    let picked: Vec<_> = (0..3).map(|_| r.pick("g", 1).unwrap()).collect();
    let on_a = picked.iter().filter(|s| s.key_id() == "p#0").count();
    assert_eq!(on_a, 1);
    assert!(r.pick("g", 1).is_err());
}
