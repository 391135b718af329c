//! Resilience: strategies, the failure table, cooldowns, disabling, the circuit breaker.
//! State-machine tests drive `Router::pick` on tokio's paused clock (no network); the fault
//! matrix drives the mock upstream's fault rules over real HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{chat, messages, LiveRecord};
use mock_upstream::{Fault, MockUpstream, Rule};
use router_core::{Dialect, Failure, Format, Router, RouterError, Source, TokenUsage};
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;

fn router(yaml: &str) -> Router {
    Router::from_source(&Source::from_text(yaml, Format::Yaml)).unwrap()
}

fn tokens(n: u64) -> TokenUsage {
    TokenUsage {
        prompt_tokens: n,
        completion_tokens: 0,
        total_tokens: n,
        ..TokenUsage::default()
    }
}

/// A group `g` of `models` (name, weight) on provider `p` with `keys`, and `extra` top-level YAML.
fn group(strategy: &str, models: &[(&str, f64)], keys: &[&str], extra: &str) -> String {
    let models: Vec<String> = models
        .iter()
        .map(|(m, w)| format!("      - {{provider: p, name: {m}, weight: {w}}}"))
        .collect();
    let keys: Vec<String> = keys.iter().map(|k| format!("\"{k}\"")).collect();
    format!(
        "{extra}\ngroups:\n  - name: g\n    strategy: {strategy}\n    models:\n{}\nproviders:\n  - {{name: p, base_url: \"http://127.0.0.1:9/v1\", api_keys: [{}]}}\n",
        models.join("\n"),
        keys.join(", ")
    )
}

fn picks(r: &Router, n: usize) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for _ in 0..n {
        let s = r.pick("g", 1).unwrap();
        *out.entry(format!("{} {}", s.model(), s.key_id()))
            .or_default() += 1;
        s.succeed(tokens(10));
    }
    out
}

fn state_of(r: &Router, model: &str, key_suffix: &str) -> (String, Option<String>) {
    let row = r
        .usage()
        .into_iter()
        .find(|u| u.model == model && u.key_masked.ends_with(key_suffix))
        .unwrap();
    let live = row.live.unwrap();
    (live.state, live.until)
}

#[test]
fn round_robin_visits_every_pair_evenly() {
    let r = router(&group(
        "round_robin",
        &[("a", 1.0), ("b", 5.0)],
        &["key-0000000001", "key-0000000002"],
        "",
    ));
    let p = picks(&r, 400);
    assert_eq!(p.len(), 4, "{p:?}");
    assert!(p.values().all(|&n| (99..=101).contains(&n)), "{p:?}");
}

#[test]
fn fallback_stays_on_the_first_model_then_reaches_the_last() {
    let r = router(&group(
        "fallback",
        &[("first", 1.0), ("second", 1.0), ("third", 1.0)],
        &["key-000000000A", "key-000000000B"],
        "",
    ));
    let p = picks(&r, 10);
    assert_eq!(p["first p#0"] + p["first p#1"], 10, "{p:?}");
    // One key of the first model disabled: the first model still serves.
    r.pick("g", 1).unwrap().fail(Failure::Unauthorized);
    let s = r.pick("g", 1).unwrap();
    assert_eq!(s.model(), "first");
    s.fail(Failure::Unauthorized);
    // First model gone: second; then the second gone too: really the third.
    let s = r.pick("g", 1).unwrap();
    assert_eq!(s.model(), "second");
    s.fail(Failure::Unauthorized);
    let s = r.pick("g", 1).unwrap();
    assert_eq!(s.model(), "second");
    s.fail(Failure::Unauthorized);
    let s = r.pick("g", 1).unwrap();
    assert_eq!(s.model(), "third");
    s.succeed(tokens(1));
    assert_eq!(r.pick("g", 1).unwrap().model(), "third");
}

#[test]
fn weighted_random_follows_weights_then_least_used_key() {
    let r = router(&group(
        "weighted_random",
        &[("one", 1.0), ("three", 3.0)],
        &["key-0000000001", "key-0000000002"],
        "",
    ));
    let p = picks(&r, 4000);
    let three = (p["three p#0"] + p["three p#1"]) as f64 / 4000.0;
    assert!(
        (0.72..0.78).contains(&three),
        "share of weight 3: {three} ({p:?})"
    );
    // Keys of one model are balanced by usage, not by chance.
    assert!(p["three p#0"].abs_diff(p["three p#1"]) <= 1, "{p:?}");
    assert!(p["one p#0"].abs_diff(p["one p#1"]) <= 1, "{p:?}");
}

#[test]
fn least_busy_picks_the_fewest_in_flight_then_the_least_used_then_config_order() {
    let r = router(&group(
        "least_busy",
        &[("a", 1.0), ("b", 1.0), ("c", 1.0)],
        &["key-0000000001"],
        "",
    ));
    // Nothing in flight, no usage: config order.
    let a = r.pick("g", 1).unwrap();
    assert_eq!(a.model(), "a");
    // a is busy: b, then c.
    let b = r.pick("g", 1).unwrap();
    assert_eq!(b.model(), "b");
    let c = r.pick("g", 1).unwrap();
    assert_eq!(c.model(), "c");
    // One each in flight: the least used; b has used more once it is done.
    b.succeed(tokens(50));
    let b2 = r.pick("g", 1).unwrap();
    assert_eq!(b2.model(), "b", "the only one with nothing in flight");
    a.succeed(tokens(10));
    c.succeed(tokens(20));
    // a, c at 0 in flight, b at 1: a (less used than c).
    assert_eq!(r.pick("g", 1).unwrap().model(), "a");
    // With nothing in flight, usage decides: the pairs even out (b was 41 tokens ahead).
    b2.succeed(tokens(1));
    let p = picks(&r, 30);
    let (lo, hi) = (p.values().min().unwrap(), p.values().max().unwrap());
    assert!(p.len() == 3 && hi - lo <= 6, "{p:?}");
}

#[tokio::test]
async fn least_busy_sends_new_traffic_away_from_a_pair_that_holds_its_requests() {
    let mock = MockUpstream::start().await.unwrap();
    let (open, gate) = tokio::sync::watch::channel(false);
    mock.add_rule(Rule::new(Fault::Gate(mock_upstream::Gate(gate))).key("k-slow"));
    let yaml = format!(
        "groups:\n  - name: g\n    strategy: least_busy\n    models: [{{provider: up, name: m}}]\n\
         providers:\n  - {{name: up, base_url: \"{}\", api_keys: [\"k-slow\", \"k-fast\"]}}\n",
        mock.base_url()
    );
    let r = std::sync::Arc::new(router(&yaml));
    const BODY: &str = r#"{"model":"g","messages":[{"role":"user","content":"hi"}]}"#;
    // The first request goes to k-slow (config order), which holds it.
    let held = {
        let r = r.clone();
        tokio::spawn(async move { chat(&r, BODY.as_bytes()).await.map(|a| a.status) })
    };
    let arrived = async {
        while mock.requests().is_empty() {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), arrived)
        .await
        .expect("the held request reaches the upstream");
    // While k-slow holds its request, every new one goes to k-fast.
    for _ in 0..20 {
        assert_eq!(chat(&r, BODY.as_bytes()).await.unwrap().status, 200);
    }
    assert_eq!(mock.count("k-slow", None), 1, "only the held request");
    open.send_replace(true);
    assert_eq!(held.await.unwrap().unwrap(), 200);
    // Nothing in flight now: k-slow, the less used, is picked again.
    assert_eq!(
        &*chat(&r, BODY.as_bytes()).await.unwrap().served.key_id,
        "up#0"
    );
}

const BREAKER: &str = "resilience:\n  breaker: {consecutive_failures: 2, open_for: 10s, min_requests: 100}\n  rate_limit_cooldown: 5s\n  model_cooldown: 3s";

#[tokio::test(start_paused = true)]
async fn breaker_opens_then_half_opens_for_one_probe_then_closes() {
    let r = router(&group(
        "usage",
        &[("m", 1.0)],
        &["key-00000000AA", "key-00000000BB"],
        BREAKER,
    ));
    // Two failures in a row on AA open its breaker.
    for _ in 0..2 {
        let s = r.pick("g", 1).unwrap();
        assert_eq!(s.key_id(), "p#0");
        s.fail(Failure::Upstream);
    }
    assert_eq!(state_of(&r, "m", "AA").0, "open");
    assert!(state_of(&r, "m", "AA").1.is_some());
    // While open, BB serves even though it carries far more usage.
    for _ in 0..5 {
        let s = r.pick("g", 1).unwrap();
        assert_eq!(s.key_id(), "p#1");
        s.succeed(tokens(1000));
    }
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(state_of(&r, "m", "AA").0, "half_open");
    // One probe goes through; while it is in flight nobody else gets AA.
    let probe = r.pick("g", 1).unwrap();
    assert_eq!(probe.key_id(), "p#0");
    let other = r.pick("g", 1).unwrap();
    assert_eq!(other.key_id(), "p#1");
    other.succeed(tokens(1));
    probe.succeed(tokens(1));
    assert_eq!(state_of(&r, "m", "AA").0, "closed");
    assert_eq!(r.pick("g", 1).unwrap().key_id(), "p#0");
}

#[tokio::test(start_paused = true)]
async fn failed_probe_reopens_the_breaker() {
    let r = router(&group(
        "usage",
        &[("m", 1.0)],
        &["key-00000000AA", "key-00000000BB"],
        BREAKER,
    ));
    for _ in 0..2 {
        r.pick("g", 1).unwrap().fail(Failure::Upstream);
    }
    tokio::time::advance(Duration::from_secs(10)).await;
    let probe = r.pick("g", 1).unwrap();
    assert_eq!(probe.key_id(), "p#0");
    probe.fail(Failure::Upstream);
    assert_eq!(state_of(&r, "m", "AA").0, "open");
}

#[tokio::test(start_paused = true)]
async fn a_single_deployment_is_never_locked_out() {
    let r = router(&group("usage", &[("m", 1.0)], &["key-00000000AA"], BREAKER));
    for _ in 0..3 {
        r.pick("g", 1).unwrap().fail(Failure::Upstream);
    }
    assert_eq!(state_of(&r, "m", "AA").0, "open");
    // Open, but the only one: still tried; a success closes it.
    let s = r.pick("g", 1).unwrap();
    s.succeed(tokens(1));
    assert_eq!(state_of(&r, "m", "AA").0, "closed");
    // Model cooldown (404) on the only model: still tried as well.
    r.pick("g", 1).unwrap().fail(Failure::ModelUnavailable);
    assert_eq!(state_of(&r, "m", "AA").0, "model_cooldown");
    assert!(r.pick("g", 1).is_ok());
}

#[tokio::test(start_paused = true)]
async fn rate_limit_cooldown_follows_retry_after_or_the_default() {
    let r = router(&group(
        "usage",
        &[("m", 1.0)],
        &["key-00000000AA", "key-00000000BB"],
        BREAKER,
    ));
    r.pick("g", 1).unwrap().fail(Failure::RateLimited {
        retry_after: Some(Duration::from_secs(7)),
    });
    assert_eq!(state_of(&r, "m", "AA").0, "rate_limited");
    let s = r.pick("g", 1).unwrap();
    assert_eq!(s.key_id(), "p#1");
    s.fail(Failure::RateLimited { retry_after: None }); // default: 5s
                                                        // Both cooling down: nothing is picked, and the wait is the smallest.
    match r.pick("g", 1) {
        Err(RouterError::RateLimited { retry_after, .. }) => {
            assert_eq!(retry_after, Duration::from_secs(5))
        }
        other => panic!("{other:?}"),
    }
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(r.pick("g", 1).unwrap().key_id(), "p#1");
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(state_of(&r, "m", "AA").0, "closed");
}

#[test]
fn unauthorized_key_is_disabled_until_the_config_is_reloaded() {
    let yaml = group(
        "usage",
        &[("m", 1.0)],
        &["key-00000000AA", "key-00000000BB"],
        "",
    );
    let r = router(&yaml);
    r.pick("g", 1).unwrap().fail(Failure::Unauthorized);
    assert_eq!(state_of(&r, "m", "AA").0, "disabled");
    for _ in 0..3 {
        let s = r.pick("g", 1).unwrap();
        assert_eq!(s.key_id(), "p#1");
        s.succeed(tokens(100));
    }
    r.apply(&Source::from_text(yaml, Format::Yaml).parse().unwrap())
        .unwrap();
    assert_eq!(state_of(&r, "m", "AA").0, "closed");
    assert_eq!(r.pick("g", 1).unwrap().key_id(), "p#0");
}

#[tokio::test(start_paused = true)]
async fn model_unavailable_cools_down_every_key_of_that_model() {
    let r = router(&group(
        "usage",
        &[("a", 1.0), ("b", 1.0)],
        &["key-00000000AA", "key-00000000BB"],
        BREAKER,
    ));
    let s = r.pick("g", 1).unwrap();
    assert_eq!((s.model(), s.key_id()), ("a", "p#0"));
    s.fail(Failure::ModelUnavailable);
    assert_eq!(state_of(&r, "a", "BB").0, "model_cooldown");
    for _ in 0..4 {
        let s = r.pick("g", 1).unwrap();
        assert_eq!(s.model(), "b");
        s.succeed(tokens(50));
    }
    tokio::time::advance(Duration::from_secs(3)).await;
    assert_eq!(r.pick("g", 1).unwrap().model(), "a");
}

// ---- The fault matrix over real HTTP ----

const CHAT: &str = r#"{"model":"g","messages":[{"role":"user","content":"fault matrix"}]}"#;

/// Group `g`: model `a` and model `b` on the mock, keys AA and BB; a second provider `down`
/// (nothing listening) may be added in front.
fn http_group(mock: &MockUpstream, extra: &str) -> String {
    format!(
        "{extra}\ngroups:\n  - name: g\n    models:\n      - {{provider: up, name: a}}\n      - {{provider: up, name: b}}\nproviders:\n  - {{name: up, base_url: \"{}\", api_keys: [\"key-00000000AA\", \"key-00000000BB\"]}}\n",
        mock.base_url()
    )
}

async fn ok_body(r: &Router, body: &str) -> (router_core::Served, Value) {
    let answer = chat(r, body.as_bytes()).await.unwrap();
    assert_eq!(answer.status, 200);
    let served = answer.served.clone();
    (
        served,
        serde_json::from_slice(&answer.body.collect_bytes().await).unwrap(),
    )
}

#[tokio::test]
async fn fault_429_fails_over_and_cools_the_key_for_retry_after() {
    let mock = MockUpstream::start().await.unwrap();
    let r = router(&http_group(&mock, ""));
    mock.add_rule(
        Rule::new(Fault::StatusRetryAfter(429, "120".into()))
            .key("key-00000000AA")
            .times(1),
    );
    let (served, _) = ok_body(&r, CHAT).await;
    assert_eq!((&*served.key_id, served.attempts), ("up#1", 2));
    let (state, until) = state_of(&r, "a", "AA");
    assert_eq!(state, "rate_limited");
    let until = humantime::parse_rfc3339(&until.unwrap()).unwrap();
    let left = until.duration_since(std::time::SystemTime::now()).unwrap();
    assert!(
        left > Duration::from_secs(110) && left <= Duration::from_secs(120),
        "{left:?}"
    );
    // HTTP-date form, on a fresh router.
    let r = router(&http_group(&mock, ""));
    let date = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(300));
    mock.add_rule(
        Rule::new(Fault::StatusRetryAfter(429, date))
            .key("key-00000000AA")
            .times(1),
    );
    let (served, _) = ok_body(&r, CHAT).await;
    assert_eq!(&*served.key_id, "up#1");
    let until = humantime::parse_rfc3339(&state_of(&r, "a", "AA").1.unwrap()).unwrap();
    let left = until.duration_since(std::time::SystemTime::now()).unwrap();
    assert!(
        left > Duration::from_secs(290) && left <= Duration::from_secs(300),
        "{left:?}"
    );
}

#[tokio::test]
async fn fault_429_everywhere_is_a_429_with_the_smallest_retry_after() {
    let mock = MockUpstream::start().await.unwrap();
    let r = router(&http_group(&mock, "resilience: {max_attempts: 4}"));
    mock.add_rule(Rule::new(Fault::StatusRetryAfter(429, "50".into())).key("key-00000000AA"));
    mock.add_rule(Rule::new(Fault::StatusRetryAfter(429, "20".into())).key("key-00000000BB"));
    let err = chat(&r, CHAT.as_bytes()).await.unwrap_err();
    assert_eq!(err.status(), 429);
    assert_eq!(err.retry_after_secs(), Some(20));
    assert_eq!(
        err.reply(Dialect::OpenAi).body["error"]["code"],
        "rate_limit_exceeded"
    );
    assert_eq!(mock.requests().len(), 4);
    // Next request: nothing is tried at all, same answer.
    let err = chat(&r, CHAT.as_bytes()).await.unwrap_err();
    assert_eq!(err.status(), 429);
    assert!(err.retry_after_secs().unwrap() <= 20);
    assert_eq!(mock.requests().len(), 4);
}

#[tokio::test]
async fn fault_401_and_403_fail_over_and_disable_the_key() {
    for status in [401u16, 403] {
        let mock = MockUpstream::start().await.unwrap();
        let r = router(&http_group(&mock, ""));
        mock.add_rule(Rule::new(Fault::Status(status)).key("key-00000000AA"));
        let (served, _) = ok_body(&r, CHAT).await;
        assert_eq!((&*served.model, &*served.key_id), ("a", "up#1"));
        assert_eq!(state_of(&r, "a", "AA").0, "disabled");
        assert_eq!(
            state_of(&r, "b", "AA").0,
            "closed",
            "only that (key, model)"
        );
        for _ in 0..4 {
            ok_body(&r, CHAT).await;
        }
        assert_eq!(mock.count("key-00000000AA", Some("a")), 1);
    }
}

#[tokio::test]
async fn fault_404_fails_over_to_another_model_not_another_key() {
    let mock = MockUpstream::start().await.unwrap();
    let r = router(&http_group(&mock, ""));
    mock.add_rule(Rule::new(Fault::Status(404)).model("a"));
    let (served, body) = ok_body(&r, CHAT).await;
    assert_eq!((&*served.model, served.attempts), ("b", 2));
    assert_eq!(body["model"], "b");
    assert_eq!(
        mock.count("key-00000000BB", Some("a")),
        0,
        "the other key of model a was not tried"
    );
    assert_eq!(state_of(&r, "a", "BB").0, "model_cooldown");
}

#[tokio::test]
async fn fault_connection_refused_fails_over_to_another_model() {
    let mock = MockUpstream::start().await.unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let yaml = format!(
        "groups:\n  - name: g\n    strategy: fallback\n    models:\n      - {{provider: down, name: a}}\n      - {{provider: up, name: b}}\nproviders:\n  - {{name: down, base_url: \"http://127.0.0.1:{port}/v1\", api_keys: [k1, k2]}}\n  - {{name: up, base_url: \"{}\", api_key: k3}}\n",
        mock.base_url()
    );
    let r = router(&yaml);
    let (served, _) = ok_body(&r, CHAT).await;
    assert_eq!((&*served.provider, served.attempts), ("up", 2));
    let states: Vec<String> = r
        .usage()
        .iter()
        .filter(|u| u.provider == "down")
        .map(|u| u.live_state().state.clone())
        .collect();
    assert_eq!(states, ["model_cooldown", "model_cooldown"]);
}

#[tokio::test]
async fn fault_5xx_reset_and_first_byte_timeout_fail_over_and_count_for_the_breaker() {
    for fault in [
        Fault::Status(503),
        Fault::ResetBody,
        Fault::Delay(Duration::from_secs(30)),
    ] {
        let mock = MockUpstream::start().await.unwrap();
        // A fresh router picks (a, AA) first: that is the pair the fault hits.
        let r = router(&http_group(&mock, "server: {first_byte_timeout: 300ms}"));
        mock.add_rule(
            Rule::new(fault.clone())
                .key("key-00000000AA")
                .model("a")
                .times(1),
        );
        let (served, _) = ok_body(&r, CHAT).await;
        assert_eq!((&*served.key_id, served.attempts), ("up#1", 2), "{fault:?}");
        assert_eq!(mock.requests().len(), 2, "{fault:?}");
        let row = r
            .usage()
            .into_iter()
            .find(|u| u.model == "a" && u.key_masked.ends_with("AA"))
            .unwrap();
        assert_eq!(
            (row.live_state().consecutive_failures, row.errors),
            (1, 1),
            "{fault:?}: {row:?}"
        );
    }
}

#[tokio::test]
async fn other_4xx_is_returned_as_is_without_retry() {
    let mock = MockUpstream::start().await.unwrap();
    let r = router(&http_group(&mock, ""));
    for status in [400u16, 413, 422] {
        mock.add_rule(Rule::new(Fault::Status(status)).times(1));
        let answer = chat(&r, CHAT.as_bytes()).await.unwrap();
        assert_eq!(answer.status, status);
    }
    assert_eq!(mock.requests().len(), 3);
    assert!(r
        .usage()
        .iter()
        .all(|u| u.errors == 0 && u.live_state().state == "closed"));
}

#[tokio::test]
async fn no_retry_after_the_first_byte() {
    let mock = MockUpstream::start().await.unwrap();
    let r = router(&http_group(&mock, ""));
    mock.add_rule(Rule::new(Fault::CutStreamAfter(2)).times(1));
    let answer = chat(
        &r,
        br#"{"model":"g","stream":true,"messages":[{"role":"user","content":"cut"}]}"#,
    )
    .await
    .unwrap();
    let text = String::from_utf8(answer.body.collect_bytes().await.to_vec()).unwrap();
    assert!(text.contains("stream_interrupted"), "{text}");
    assert_eq!(mock.requests().len(), 1);
    assert_eq!(r.usage().iter().map(|u| u.errors).sum::<u64>(), 1);
}

#[tokio::test]
async fn per_provider_timeout_overrides_the_server_one() {
    let mock = MockUpstream::start().await.unwrap();
    let slow = MockUpstream::start().await.unwrap();
    slow.set_response_delay(Duration::from_secs(30));
    let yaml = format!(
        "groups:\n  - name: g\n    strategy: fallback\n    models:\n      - {{provider: slow, name: a}}\n      - {{provider: up, name: b}}\nproviders:\n  - {{name: slow, base_url: \"{}\", api_key: k1, timeouts: {{first_byte: 200ms}}}}\n  - {{name: up, base_url: \"{}\", api_key: k2}}\n",
        slow.base_url(),
        mock.base_url()
    );
    let r = router(&yaml);
    let (served, _) = ok_body(&r, CHAT).await;
    assert_eq!((&*served.provider, served.attempts), ("up", 2));
}

#[tokio::test]
async fn request_deadline_bounds_all_attempts() {
    let mock = MockUpstream::start().await.unwrap();
    mock.set_response_delay(Duration::from_secs(30));
    let r = router(&http_group(&mock, "resilience: {request_timeout: 300ms}"));
    let started = std::time::Instant::now();
    let err = chat(&r, CHAT.as_bytes()).await.unwrap_err();
    assert_eq!(err.status(), 504);
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn pinned_model_uses_only_that_model_and_fails_over_among_its_keys() {
    let mock = MockUpstream::start().await.unwrap();
    let r = router(&http_group(&mock, ""));
    let pinned = CHAT.replace("\"g\"", "\"g$2\"");
    for _ in 0..6 {
        let (served, _) = ok_body(&r, &pinned).await;
        assert_eq!(&*served.model, "b");
    }
    assert_eq!(mock.count("key-00000000AA", Some("b")), 3, "keys balanced");
    assert_eq!(mock.count("key-00000000BB", Some("b")), 3);
    mock.add_rule(Rule::new(Fault::Status(500)).key("key-00000000AA").times(1));
    let (served, _) = ok_body(&r, &pinned.replace("g$2", "g$1")).await;
    assert_eq!(
        (&*served.model, &*served.key_id, served.attempts),
        ("a", "up#1", 2)
    );
    // Both keys of the pinned model fail: it never falls to the other model.
    mock.add_rule(Rule::new(Fault::Status(500)).model("b"));
    let err = chat(&r, pinned.as_bytes()).await.unwrap_err();
    assert_eq!(err.status(), 502);
    assert_eq!(
        mock.count("key-00000000AA", Some("a")) + mock.count("key-00000000BB", Some("a")),
        2
    );
    for (model, needle) in [
        ("g$0", "from 1 to 2"),
        ("g$3", "from 1 to 2"),
        ("g$x", "must be a number"),
        // Only plain numbers pin: no sign, no leading zero.
        ("g$+1", "must be a number"),
        ("g$01", "must be a number"),
    ] {
        let err = chat(
            &r,
            CHAT.replace("\"g\"", &format!("\"{model}\"")).as_bytes(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.status(), 400, "{model}");
        assert!(
            err.client_message().contains(needle),
            "{}",
            err.client_message()
        );
    }
    let err = chat(&r, CHAT.replace("\"g\"", "\"nope$1\"").as_bytes())
        .await
        .unwrap_err();
    assert_eq!(err.status(), 404);
    // A huge unknown name is not echoed whole.
    for name in ["x".repeat(10_000), format!("g${}", "9".repeat(9_998))] {
        let err = chat(&r, CHAT.replace("\"g\"", &format!("\"{name}\"")).as_bytes())
            .await
            .unwrap_err();
        let message = err.client_message();
        assert!(message.len() < 400, "{} bytes: {message}", message.len());
        assert!(message.contains("10000 bytes"), "{message}");
    }
}

#[tokio::test(start_paused = true)]
async fn failure_rate_over_the_window_opens_the_breaker() {
    let extra = "resilience:\n  breaker: {consecutive_failures: 100, failure_rate: 0.5, min_requests: 4, window: 60s, open_for: 5s}";
    let r = router(&group(
        "usage",
        &[("m", 1.0)],
        &["key-00000000AA", "key-00000000BB"],
        extra,
    ));
    // AA holds a huge reservation for the whole test, so every pick below lands on BB.
    let held = r.pick("g", 1_000_000).unwrap();
    assert_eq!(held.key_id(), "p#0");
    let on_bb = |r: &Router| {
        let s = r.pick("g", 1).unwrap();
        assert_eq!(s.key_id(), "p#1");
        s
    };
    on_bb(&r).fail(Failure::Upstream);
    on_bb(&r).succeed(tokens(0));
    on_bb(&r).succeed(tokens(0));
    assert_eq!(
        state_of(&r, "m", "BB").0,
        "closed",
        "3 calls: under min_requests"
    );
    on_bb(&r).fail(Failure::Upstream);
    // 4 calls in the window, 2 failed: 50% -> open, though never two failures in a row.
    assert_eq!(state_of(&r, "m", "BB").0, "open");
    // After open_for (well inside the window), the probe closes it and the window starts
    // afresh: kept, the old outcomes would make S F below 3 failures in 6 (50%) and trip it.
    tokio::time::advance(Duration::from_secs(6)).await;
    on_bb(&r).succeed(tokens(0));
    on_bb(&r).fail(Failure::Upstream);
    assert_eq!(
        state_of(&r, "m", "BB").0,
        "closed",
        "1 of 2 in a fresh window"
    );
    drop(held);
}

#[tokio::test(start_paused = true)]
async fn when_all_rest_the_least_recently_failed_is_tried_and_state_survives_reload() {
    let yaml = group(
        "usage",
        &[("m", 1.0)],
        &["key-00000000AA", "key-00000000BB"],
        BREAKER,
    );
    let r = router(&yaml);
    // BB (second in config order) fails first: AA holds a reservation meanwhile.
    let held = r.pick("g", 1_000_000).unwrap();
    assert_eq!(held.key_id(), "p#0");
    for _ in 0..2 {
        let s = r.pick("g", 1).unwrap();
        assert_eq!(s.key_id(), "p#1");
        s.fail(Failure::Upstream);
    }
    drop(held);
    tokio::time::advance(Duration::from_secs(1)).await;
    for _ in 0..2 {
        let s = r.pick("g", 1).unwrap();
        assert_eq!(s.key_id(), "p#0");
        s.fail(Failure::Upstream);
    }
    // A reload keeps the breakers (state lives outside the config).
    r.apply(&Source::from_text(yaml, Format::Yaml).parse().unwrap())
        .unwrap();
    assert_eq!(state_of(&r, "m", "AA").0, "open");
    assert_eq!(state_of(&r, "m", "BB").0, "open");
    // Nothing healthy: the least recently failed (BB, not the first in order) is tried.
    assert_eq!(r.pick("g", 1).unwrap().key_id(), "p#1");
}

#[tokio::test]
async fn retrying_on_the_same_provider_waits_a_jittered_backoff() {
    let mock = MockUpstream::start().await.unwrap();
    let r = router(&http_group(&mock, "resilience: {retry_backoff: 200ms}"));
    mock.add_rule(Rule::new(Fault::Status(500)).times(1));
    let started = std::time::Instant::now();
    let (served, _) = ok_body(&r, CHAT).await;
    assert_eq!(served.attempts, 2);
    // Jitter is within [0.5, 1.5) of the base: at least 100 ms passed.
    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn absurd_retry_after_is_capped_not_a_panic() {
    let mock = MockUpstream::start().await.unwrap();
    let r = router(&http_group(&mock, ""));
    mock.add_rule(
        Rule::new(Fault::StatusRetryAfter(429, u64::MAX.to_string()))
            .key("key-00000000AA")
            .times(1),
    );
    let (served, _) = ok_body(&r, CHAT).await;
    assert_eq!(&*served.key_id, "up#1");
    let until = humantime::parse_rfc3339(&state_of(&r, "a", "AA").1.unwrap()).unwrap();
    let left = until.duration_since(std::time::SystemTime::now()).unwrap();
    assert!(
        left <= Duration::from_secs(24 * 3600) && left > Duration::from_secs(23 * 3600),
        "{left:?}"
    );
    // Every pair of model a rate limited far away: the client's Retry-After is capped too.
    mock.add_rule(Rule::new(Fault::StatusRetryAfter(
        429,
        u64::MAX.to_string(),
    )));
    let err = chat(&r, CHAT.as_bytes()).await.unwrap_err();
    assert_eq!(err.status(), 429);
    assert!(err.retry_after_secs().unwrap() <= 24 * 3600);
}

#[test]
fn unusable_durations_are_config_errors() {
    for (extra, path) in [
        (
            "resilience: {breaker: {open_for: 100000000000000000s}}",
            "resilience.breaker.open_for",
        ),
        (
            "resilience: {retry_backoff: 18446744073709551615}",
            "resilience.retry_backoff",
        ),
        (
            "resilience: {request_timeout: 0s}",
            "resilience.request_timeout",
        ),
        ("server: {idle_timeout: 0}", "server.idle_timeout"),
    ] {
        let yaml = group("usage", &[("m", 1.0)], &["k"], extra);
        let e = Router::from_source(&Source::from_text(yaml, Format::Yaml)).unwrap_err();
        assert!(e.problems.iter().any(|p| p.path == path), "{extra}: {e}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_or_neutral_probe_is_given_back() {
    let r = router(&group(
        "usage",
        &[("m", 1.0)],
        &["key-00000000AA", "key-00000000BB"],
        BREAKER,
    ));
    let held = r.pick("g", 1_000_000).unwrap(); // AA busy: BB is the one under test
    for _ in 0..2 {
        r.pick("g", 1).unwrap().fail(Failure::Upstream);
    }
    assert_eq!(state_of(&r, "m", "BB").0, "open");
    tokio::time::advance(Duration::from_secs(10)).await;
    // The probe is cancelled (dropped): the next request probes instead.
    let probe = r.pick("g", 1).unwrap();
    assert_eq!(probe.key_id(), "p#1");
    drop(probe);
    // A 4xx that is the request's fault gives the probe back too.
    let probe = r.pick("g", 1).unwrap();
    assert_eq!(probe.key_id(), "p#1");
    probe.release();
    let probe = r.pick("g", 1).unwrap();
    assert_eq!(probe.key_id(), "p#1");
    probe.succeed(tokens(1));
    assert_eq!(state_of(&r, "m", "BB").0, "closed");
    drop(held);
}

#[tokio::test(start_paused = true)]
async fn a_stale_success_does_not_close_an_open_breaker() {
    let r = router(&group("usage", &[("m", 1.0)], &["key-00000000AA"], BREAKER));
    let early = r.pick("g", 1).unwrap(); // picked while healthy, answers late
    for _ in 0..2 {
        r.pick("g", 1).unwrap().fail(Failure::Upstream);
    }
    assert_eq!(state_of(&r, "m", "AA").0, "open");
    early.succeed(tokens(5));
    assert_eq!(
        state_of(&r, "m", "AA").0,
        "open",
        "a success from before the opening"
    );
    assert_eq!(r.usage()[0].total_tokens, 5, "its tokens still count");
}

#[test]
fn round_robin_stays_even_with_pinned_requests_mixed_in() {
    let r = router(&group(
        "round_robin",
        &[("a", 1.0), ("b", 1.0)],
        &["key-0000000001", "key-0000000002"],
        "",
    ));
    let snapshot = r.snapshot();
    let g = snapshot.group("g").unwrap();
    let mut unpinned: HashMap<usize, usize> = HashMap::new();
    let mut pinned: HashMap<usize, usize> = HashMap::new();
    for _ in 0..400 {
        let s = g.pick(&snapshot, &[], None, 1).unwrap();
        *unpinned.entry(s.pair_index()).or_default() += 1;
        s.succeed(tokens(1));
        let s = g.pick(&snapshot, &[], Some(0), 1).unwrap();
        *pinned.entry(s.pair_index()).or_default() += 1;
        s.succeed(tokens(1));
    }
    assert_eq!(unpinned.len(), 4, "{unpinned:?}");
    assert!(unpinned.values().all(|&n| n == 100), "{unpinned:?}");
    assert_eq!(pinned, HashMap::from([(0, 200), (1, 200)]));
    // A retry (the failed pair excluded) does not make the rotation skip anyone afterwards.
    let s = g.pick(&snapshot, &[], None, 1).unwrap();
    let first = s.pair_index();
    s.release();
    let s = g.pick(&snapshot, &[first], None, 1).unwrap();
    let second = s.pair_index();
    s.release();
    let third = g.pick(&snapshot, &[], None, 1).unwrap().pair_index();
    assert_eq!((second, third), ((first + 1) % 4, (first + 2) % 4));
}

#[tokio::test]
async fn attempts_running_out_on_429s_is_a_502_when_healthy_pairs_remain() {
    let mock = MockUpstream::start().await.unwrap();
    let yaml = format!(
        "groups:\n  - name: g\n    models: [{{provider: up, name: m}}]\nproviders:\n  - {{name: up, base_url: \"{}\", api_keys: [k1, k2, k3, k4]}}\n",
        mock.base_url()
    );
    let r = router(&yaml);
    for k in ["k1", "k2", "k3"] {
        mock.add_rule(Rule::new(Fault::StatusRetryAfter(429, "60".into())).key(k));
    }
    let err = chat(&r, CHAT.as_bytes()).await.unwrap_err();
    assert_eq!(
        err.status(),
        502,
        "k4 is healthy, only the attempts ran out: {err}"
    );
    // The next request skips the three cooling keys and reaches k4.
    let (served, _) = ok_body(&r, CHAT).await;
    assert_eq!(&*served.key_id, "up#3");
}

#[tokio::test]
async fn per_provider_total_timeout() {
    let mock = MockUpstream::start().await.unwrap();
    let slow = MockUpstream::start().await.unwrap();
    slow.set_response_delay(Duration::from_secs(30));
    let yaml = format!(
        "groups:\n  - name: g\n    strategy: fallback\n    models:\n      - {{provider: slow, name: a}}\n      - {{provider: up, name: b}}\nproviders:\n  - {{name: slow, base_url: \"{}\", api_key: k1, timeouts: {{total: 200ms}}}}\n  - {{name: up, base_url: \"{}\", api_key: k2}}\n",
        slow.base_url(),
        mock.base_url()
    );
    let (served, _) = ok_body(&router(&yaml), CHAT).await;
    assert_eq!((&*served.provider, served.attempts), ("up", 2));
}

/// A stream whose events never end is cut at `server.max_event_bytes`: before the client got
/// anything, another provider answers; after, the client's stream ends with an error event in
/// its own format, what came before it intact.
#[tokio::test]
async fn an_endless_stream_line_fails_the_attempt_at_the_limit() {
    let (flood, good) = (
        MockUpstream::start().await.unwrap(),
        MockUpstream::start().await.unwrap(),
    );
    flood.add_rule(Rule::new(Fault::Flood {
        head: String::new(),
        bytes: 8 * 1024 * 1024,
    }));
    let yaml = format!(
        "server: {{max_event_bytes: 65536}}\ngroups:\n  - name: g\n    strategy: fallback\n    models: [{{provider: a, name: m}}, {{provider: b, name: m}}]\nproviders:\n  - {{name: a, base_url: \"{}\", api_key: k1}}\n  - {{name: b, base_url: \"{}\", api_key: k2}}\n",
        flood.base_url(),
        good.base_url()
    );
    let r = Router::from_source(&Source::from_text(yaml, Format::Yaml)).unwrap();
    let body = br#"{"model":"g","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let answer = chat(&r, body).await.unwrap();
    assert_eq!(&*answer.served.provider, "b");
    let text = String::from_utf8(answer.body.collect_bytes().await.to_vec()).unwrap();
    assert!(
        text.contains("\"says: \"") && text.ends_with("data: [DONE]\n\n"),
        "{text}"
    );

    // After the first event: the stream ends with an error event, in the client's format.
    flood.clear_rules();
    let first = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hel\"}}]}\n\n";
    flood.add_rule(Rule::new(Fault::Flood {
        head: first.to_string(),
        bytes: 8 * 1024 * 1024,
    }));
    let answer = chat(&r, body).await.unwrap();
    assert_eq!(&*answer.served.provider, "a");
    let text = String::from_utf8(answer.body.collect_bytes().await.to_vec()).unwrap();
    assert!(text.starts_with(first), "{text}");
    assert!(
        text.contains("server.max_event_bytes") && !text.contains("xxxx"),
        "{}",
        &text[..text.len().min(600)]
    );
    let answer = messages(
        &r,
        br#"{"model":"g","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await
    .unwrap();
    let text = String::from_utf8(answer.body.collect_bytes().await.to_vec()).unwrap();
    assert!(text.starts_with("event: message_start"), "{text}");
    assert!(
        text.contains("event: error") && text.contains("server.max_event_bytes"),
        "{text}"
    );
}

/// A translated stream never drops an event it cannot read: it ends with an error instead.
#[tokio::test]
async fn an_unreadable_event_in_a_translated_stream_is_an_error() {
    let mock = MockUpstream::start().await.unwrap();
    let stream = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"a\"}}]}\n\ndata: {not json\n\ndata: [DONE]\n\n";
    mock.add_rule(Rule::new(Fault::EventStream(stream.into())));
    let yaml = format!(
        "groups:\n  - name: g\n    models: [{{provider: a, name: m}}]\nproviders:\n  - {{name: a, base_url: \"{}\", api_key: k1}}\n",
        mock.base_url()
    );
    let r = Router::from_source(&Source::from_text(yaml, Format::Yaml)).unwrap();
    let answer = messages(
        &r,
        br#"{"model":"g","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await
    .unwrap();
    let text = String::from_utf8(answer.body.collect_bytes().await.to_vec()).unwrap();
    assert!(
        text.contains("event: error") && text.contains("not JSON"),
        "{text}"
    );
}

/// A stream cut from outside (a server's shutdown deadline) ends with an error event in the
/// client's format, charges what was streamed, and does not blame the pair.
#[tokio::test]
async fn a_cut_stream_ends_with_an_error_event_and_is_charged() {
    use http_body_util::BodyExt;
    let mock = MockUpstream::start().await.unwrap();
    mock.hold_last_chunk(true);
    let yaml = format!(
        "groups:\n  - name: g\n    models: [{{provider: a, name: m}}]\nproviders:\n  - {{name: a, base_url: \"{}\", api_key: k1}}\n",
        mock.base_url()
    );
    let r = Router::from_source(&Source::from_text(yaml, Format::Yaml)).unwrap();
    let cases: [(Dialect, &[u8], &str); 2] = [
        (
            Dialect::OpenAi,
            br#"{"model":"g","stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
            "data: {\"error\"",
        ),
        (
            Dialect::Anthropic,
            br#"{"model":"g","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
            "event: error",
        ),
    ];
    for (dialect, body, error_event) in cases {
        let mut answer = match dialect {
            Dialect::Anthropic => messages(&r, body).await.unwrap(),
            _ => chat(&r, body).await.unwrap(),
        };
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        answer.body.cut_when(async move {
            let _ = rx.await;
            "the router is shutting down".to_string()
        });
        let mut text = Vec::new();
        // Everything but the held last chunk arrives; then the cut ends the stream.
        while !String::from_utf8_lossy(&text).contains("says") {
            let frame = answer.body.frame().await.unwrap().unwrap();
            text.extend_from_slice(&frame.into_data().unwrap());
        }
        tx.send(()).unwrap();
        while let Some(frame) = answer.body.frame().await {
            text.extend_from_slice(&frame.unwrap().into_data().unwrap());
        }
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.contains(error_event) && text.contains("the router is shutting down"),
            "{text}"
        );
        assert!(
            !text.contains("[DONE]") && !text.contains("message_stop"),
            "{text}"
        );
        let charged = answer.body.settle_usage().unwrap();
        assert!(charged.completion_tokens > 0, "{charged:?}");
    }
    let row = &r.usage()[0];
    assert_eq!((row.requests, row.errors), (2, 0), "{row:?}");
    assert!(row.completion_tokens > 0);
    assert_eq!(row.live_state().state, "closed", "the pair is not blamed");
    mock.release();
}

/// A `lowest_cost` group of four models on the mock, priced in config (`free` unpriced).
fn lowest_cost(mock: &MockUpstream) -> Router {
    router(&format!(
        "resilience: {{max_attempts: 6}}\nprices:\n  dear: {{input: 5, output: 15}}\n  cheap: {{input: 0.1, output: 0.4}}\n\
         \x20 long-in: {{input: 1, output: 10}}\n  long-out: {{input: 5, output: 2}}\n\
         groups:\n  - name: g\n    strategy: lowest_cost\n    models:\n\
         \x20     - {{provider: up, name: free}}\n      - {{provider: up, name: dear}}\n\
         \x20     - {{provider: up, name: cheap}}\n\
         \x20 - name: h\n    strategy: lowest_cost\n    models:\n\
         \x20     - {{provider: up, name: long-in}}\n      - {{provider: up, name: long-out}}\n\
         providers:\n  - {{name: up, base_url: \"{}\", api_keys: [\"k1\", \"k2\"]}}\n",
        mock.base_url()
    ))
}

#[tokio::test]
async fn lowest_cost_picks_the_cheaper_model_and_fails_over_to_the_dearer() {
    let mock = MockUpstream::start().await.unwrap();
    let r = lowest_cost(&mock);
    assert!(
        r.snapshot()
            .warnings()
            .iter()
            .any(|w| w.contains("'up/free' has no price")),
        "{:?}",
        r.snapshot().warnings()
    );
    const BODY: &str = r#"{"model":"g","messages":[{"role":"user","content":"hi"}]}"#;
    for _ in 0..10 {
        assert_eq!(
            &*chat(&r, BODY.as_bytes()).await.unwrap().served.model,
            "cheap"
        );
    }
    // Its keys share the load: the least used first.
    assert_eq!(mock.count("k1", Some("cheap")), 5);
    // The cheap model fails: the dearer one, not the unpriced one.
    mock.add_rule(Rule::new(Fault::Status(500)).model("cheap"));
    let answer = chat(&r, BODY.as_bytes()).await.unwrap();
    assert_eq!(&*answer.served.model, "dear");
    // Only when no priced model can serve does the unpriced one (after both keys of each).
    mock.add_rule(Rule::new(Fault::Status(500)).model("dear"));
    let answer = chat(&r, BODY.as_bytes()).await.unwrap();
    assert_eq!(&*answer.served.model, "free");
}

#[tokio::test]
async fn lowest_cost_prices_the_request_it_is_given() {
    let mock = MockUpstream::start().await.unwrap();
    let r = lowest_cost(&mock);
    // A long prompt and a short answer: long-in (1 in, 10 out) is cheaper than long-out (5, 2).
    let words = "word ".repeat(2_000);
    let prompt_heavy = format!(
        r#"{{"model":"h","max_tokens":10,"messages":[{{"role":"user","content":"{words}"}}]}}"#
    );
    let answer = chat(&r, prompt_heavy.as_bytes()).await.unwrap();
    assert_eq!(&*answer.served.model, "long-in");
    // A short prompt and a long answer: long-out.
    let answer_heavy =
        r#"{"model":"h","max_tokens":4000,"messages":[{"role":"user","content":"hi"}]}"#;
    let answer = chat(&r, answer_heavy.as_bytes()).await.unwrap();
    assert_eq!(&*answer.served.model, "long-out");
}

/// Requests sent one after another to `r`'s group `g`, by key of the answer.
async fn keys_of(r: &Router, n: usize) -> HashMap<String, usize> {
    const BODY: &str = r#"{"model":"g","messages":[{"role":"user","content":"hi"}]}"#;
    let mut out = HashMap::new();
    for _ in 0..n {
        let answer = chat(r, BODY.as_bytes()).await.unwrap();
        *out.entry(answer.served.key_id.to_string()).or_default() += 1;
    }
    out
}

/// On tokio's paused clock: a key made slow gets at most a fifth of the traffic, and gets
/// traffic again once it is fast again (its average halves every ten seconds without calls,
/// so it is tried again).
#[tokio::test(start_paused = true)]
async fn lowest_latency_leaves_a_slow_pair_and_comes_back_when_it_heals() {
    let mock = MockUpstream::start().await.unwrap();
    let yaml = format!(
        "groups:\n  - name: g\n    strategy: lowest_latency\n    models: [{{provider: up, name: m}}]\n\
         providers:\n  - {{name: up, base_url: \"{}\", api_keys: [\"k0\", \"k1\", \"k2\", \"k-slow\"]}}\n",
        mock.base_url()
    );
    let r = router(&yaml);
    // Answers take 100 ms (on the paused clock), the slow key's 2 s.
    let delays = |slow: u64| {
        mock.clear_rules();
        for (key, ms) in [("k0", 100), ("k1", 100), ("k2", 100), ("k-slow", slow)] {
            mock.add_rule(Rule::new(Fault::Delay(Duration::from_millis(ms))).key(key));
        }
    };
    delays(2_000);
    let by_key = keys_of(&r, 200).await;
    let slow = by_key.get("up#3").copied().unwrap_or(0);
    // Power of two choices: the slow key wins a draw only against a pair as slow.
    assert!(slow <= 40, "{slow} of 200: {by_key:?}");
    assert!(slow >= 1, "it was measured: {by_key:?}");
    // Healed; a minute later its old average has faded and it is tried, then kept.
    delays(100);
    tokio::time::advance(Duration::from_secs(60)).await;
    let by_key = keys_of(&r, 200).await;
    let healed = by_key.get("up#3").copied().unwrap_or(0);
    assert!(healed >= 20, "{healed} of 200 after healing: {by_key:?}");
}
