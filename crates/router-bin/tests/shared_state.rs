//! Replicas sharing state through a real `redis-server`: selection balanced over what every
//! replica sent, a 429 seen by one cooling the key for the other, and Redis going away in the
//! middle of a load without a failed request, its counters coming back to the exact total.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::redis_server::RedisServer;
use common::{call, eventually, post_chat, TestServer, KEY};
use http::Method;
use mock_upstream::{Fault, MockUpstream, Rule};
use router_core::UsageRecord;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

const BODY: &str = r#"{"model":"g","messages":[{"role":"user","content":"share me"}]}"#;
const BODY_WITH_LIMIT: &str =
    r#"{"model":"g","max_tokens":10,"messages":[{"role":"user","content":"spend"}]}"#;

/// A router serving `keys` of one upstream, sharing state through `redis`.
fn config(mock: &MockUpstream, redis: &str, keys: &[&str]) -> String {
    let keys: Vec<String> = keys.iter().map(|k| format!("\"{k}\"")).collect();
    format!(
        "api_key: \"{KEY}\"\n\
         state:\n  redis: {{url: \"{redis}\", prefix: \"test:\", sync_interval: 50ms}}\n\
         groups:\n  - name: g\n    models: [{{provider: up, name: upstream-model}}]\n\
         providers:\n  - {{name: up, base_url: \"{}\", api_keys: [{}]}}\n",
        mock.base_url(),
        keys.join(", ")
    )
}

/// A replica: the server, and its exchange with Redis until it is dropped.
struct Replica {
    server: Arc<TestServer>,
    _stop: oneshot::Sender<()>,
}

impl Replica {
    async fn start(yaml: &str) -> Self {
        let server = Arc::new(TestServer::start(yaml).await);
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(router_core::shared::run(server.router.clone(), async {
            let _ = stopped.await;
        }));
        Self {
            server,
            _stop: stop,
        }
    }

    async fn ready(&self) -> serde_json::Value {
        let reply = call(Method::GET, &self.server.url("/health/ready"), &[], "").await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.json()
    }

    fn usage(&self) -> Vec<UsageRecord> {
        self.server.router.usage()
    }
}

/// Each upstream key's share of the requests the mock received.
fn requests_by_key(mock: &MockUpstream) -> HashMap<String, usize> {
    let mut by_key = HashMap::new();
    for r in mock.requests() {
        *by_key.entry(r.key().unwrap_or_default()).or_default() += 1;
    }
    by_key
}

/// What Redis holds for each pair.
async fn shared_totals(redis: &RedisServer) -> HashMap<String, u64> {
    let mut c = redis.connection().await;
    redis::cmd("HGETALL")
        .arg("test:usage")
        .query_async(&mut c)
        .await
        .unwrap()
}

/// What the replicas counted, by the id pairs are shared under.
fn counted(replicas: &[&Replica]) -> HashMap<String, u64> {
    let mut total = HashMap::new();
    for replica in replicas {
        for r in replica.usage() {
            let id = format!("{}/{}/{}", r.provider, r.key_fingerprint, r.model);
            let penalty = r.live.as_ref().map_or(0, |l| l.penalty);
            *total.entry(id).or_default() += r.total_tokens + penalty;
        }
    }
    total
}

/// Whether Redis comes to hold exactly what the replicas counted, within 10 s.
async fn converges(redis: &RedisServer, replicas: &[&Replica]) -> bool {
    for _ in 0..500 {
        let counted = counted(replicas);
        let shared = shared_totals(redis).await;
        if !counted.is_empty() && shared == counted {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn replicas_balance_keys_over_what_all_of_them_sent() {
    let redis = RedisServer::start().await;
    let mock = MockUpstream::start().await.unwrap();
    // Replica A has two of the four keys; B has all four. A sends first.
    let a = Replica::start(&config(&mock, &redis.url(), &["k1", "k2"])).await;
    let b = Replica::start(&config(&mock, &redis.url(), &["k1", "k2", "k3", "k4"])).await;
    for _ in 0..1000 {
        assert_eq!(post_chat(&a.server, BODY).await.status, 200);
    }
    assert!(
        converges(&redis, &[&a]).await,
        "A's usage never reached Redis"
    );
    // B sees what A sent on k1 and k2, and sends to k3 and k4 until they catch up: over the
    // 2,000 requests, each key has a quarter (alone, B would have split its 1,000 evenly,
    // leaving k1 and k2 at 37.5% each).
    for _ in 0..1000 {
        assert_eq!(post_chat(&b.server, BODY).await.status, 200);
    }
    let by_key = requests_by_key(&mock);
    for key in ["k1", "k2", "k3", "k4"] {
        let share = by_key.get(key).copied().unwrap_or(0) as f64 / 2000.0;
        assert!(
            (0.20..=0.30).contains(&share),
            "{key}: {share} of {by_key:?}"
        );
    }
    assert_eq!(a.ready().await["state"], "shared");
}

/// `yaml` with named `clients` (YAML list items, one per line) beside the unnamed key.
fn with_clients(yaml: &str, clients: &[&str]) -> String {
    let list: String = clients.iter().map(|c| format!("  - {c}\n")).collect();
    yaml.replace(
        &format!("api_key: \"{KEY}\"\n"),
        &format!("api_key: \"{KEY}\"\nclients:\n{list}"),
    )
}

/// Two replicas of `yaml`, both sharing state.
async fn two_replicas(yaml: &str) -> (Replica, Replica) {
    let a = Replica::start(yaml).await;
    let b = Replica::start(yaml).await;
    for replica in [&a, &b] {
        assert!(becomes(replica, "shared").await);
    }
    (a, b)
}

/// `n` chat requests with `key` at once, alternately to `a` and `b`.
fn at_once(
    a: &Replica,
    b: &Replica,
    n: usize,
    key: &str,
    body: &'static str,
) -> Vec<tokio::task::JoinHandle<common::Reply>> {
    (0..n)
        .map(|i| {
            let server = if i % 2 == 0 {
                a.server.clone()
            } else {
                b.server.clone()
            };
            let key = key.to_string();
            tokio::spawn(async move { post_with_key(&server, &key, body).await })
        })
        .collect()
}

/// A chat request to `server` with the client key `key`.
async fn post_with_key(
    server: &TestServer,
    key: &str,
    body: impl Into<bytes::Bytes>,
) -> common::Reply {
    let auth = format!("Bearer {key}");
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    let url = server.url("/v1/chat/completions");
    call(Method::POST, &url, &headers, body).await
}

/// What `replica` shows of upstream key `key`.
fn record(replica: &Replica, key: &str) -> Option<UsageRecord> {
    let fingerprint = router_core::Secret::new(key).fingerprint();
    (replica.usage().into_iter()).find(|r| r.key_fingerprint == fingerprint)
}

/// The health state `replica` shows for upstream key `key`.
fn key_state(replica: &Replica, key: &str) -> String {
    record(replica, key)
        .and_then(|r| r.live.map(|l| l.state))
        .unwrap_or_default()
}

#[tokio::test]
async fn a_429_one_replica_saw_cools_the_key_for_the_other() {
    let redis = RedisServer::start().await;
    let mock = MockUpstream::start().await.unwrap();
    mock.add_rule(Rule::new(Fault::StatusRetryAfter(429, "120".into())).key("k1"));
    let yaml = config(&mock, &redis.url(), &["k1", "k2"]);
    let a = Replica::start(&yaml).await;
    let b = Replica::start(&yaml).await;
    // A meets the 429 on k1 (and fails over to k2): its first request goes there.
    assert_eq!(post_chat(&a.server, BODY).await.status, 200);
    assert_eq!(key_state(&a, "k1"), "rate_limited");
    let told = eventually(Duration::from_secs(10), || {
        key_state(&b, "k1") == "rate_limited"
    })
    .await;
    assert!(
        told,
        "B never heard of k1's cooldown: {}",
        key_state(&b, "k1")
    );
    // B has never sent to k1 itself, and does not now.
    let before = requests_by_key(&mock).get("k1").copied().unwrap_or(0);
    for _ in 0..20 {
        assert_eq!(post_chat(&b.server, BODY).await.status, 200);
    }
    assert_eq!(
        requests_by_key(&mock).get("k1").copied().unwrap_or(0),
        before
    );
    assert_eq!(record(&b, "k1").unwrap().requests, 0);
}

/// Whether `replica`'s readiness comes to report `state` within 10 s (ready all along).
async fn becomes(replica: &Replica, state: &str) -> bool {
    for _ in 0..500 {
        if replica.ready().await["state"] == state {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

async fn metrics(replica: &Replica) -> String {
    let auth = format!("Bearer {KEY}");
    call(
        Method::GET,
        &replica.server.url("/metrics"),
        &[("authorization", &auth)],
        "",
    )
    .await
    .text()
}

#[tokio::test]
async fn requests_are_served_while_redis_is_away_and_its_counters_come_back_exact() {
    let mut redis = RedisServer::start().await;
    let mock = MockUpstream::start().await.unwrap();
    let yaml = config(&mock, &redis.url(), &["k1", "k2"])
        .replace("sync_interval: 50ms", "sync_interval: 50ms, timeout: 250ms");
    let a = Replica::start(&yaml).await;
    let b = Replica::start(&yaml).await;
    for replica in [&a, &b] {
        assert!(becomes(replica, "shared").await);
    }
    // Four clients send without pause, to both replicas, the whole time.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for i in 0..4 {
        let server = if i % 2 == 0 {
            a.server.clone()
        } else {
            b.server.clone()
        };
        let stop = stop.clone();
        load.push(tokio::spawn(async move {
            let (mut ok, mut failed) = (0u32, 0u32);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if post_chat(&server, BODY).await.status == 200 {
                    ok += 1;
                } else {
                    failed += 1;
                }
            }
            (ok, failed)
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    redis.kill();
    for replica in [&a, &b] {
        assert!(becomes(replica, "degraded").await, "Redis gone unnoticed");
        assert!(metrics(replica).await.contains("llm_router_redis_up 0"));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Back, and empty: every replica sends everything it counted again.
    redis.restart().await;
    for replica in [&a, &b] {
        assert!(becomes(replica, "shared").await, "Redis never found again");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut ok, mut failed) = (0, 0);
    for task in load {
        let (o, f) = task.await.unwrap();
        ok += o;
        failed += f;
    }
    assert_eq!(failed, 0, "{failed} of {} requests failed", ok + failed);
    assert!(ok > 0);
    assert!(
        converges(&redis, &[&a, &b]).await,
        "{:?} != {:?}",
        shared_totals(&redis).await,
        counted(&[&a, &b])
    );
    assert!(metrics(&a).await.contains("llm_router_redis_up 1"));
}

#[tokio::test]
async fn a_clients_requests_per_minute_are_counted_over_every_replica() {
    let redis = RedisServer::start().await;
    let mock = MockUpstream::start().await.unwrap();
    let yaml = config(&mock, &redis.url(), &["k1"]);
    let yaml = with_clients(&yaml, &["{name: paced, key: key-paced, limits: {rpm: 60}}"]);
    let (a, b) = two_replicas(&yaml).await;
    // 100 requests at once, half to each replica: the minute's 60 are admitted in total (each
    // replica alone would admit 60 of its 50).
    let started = std::time::Instant::now();
    let tasks = at_once(&a, &b, 100, "key-paced", BODY);
    let mut admitted = 0;
    for task in tasks {
        let reply = task.await.unwrap();
        if reply.status == 200 {
            admitted += 1;
            assert!(reply.headers.contains_key("x-ratelimit-remaining-requests"));
        } else {
            common::assert_openai_error(&reply, 429, "rate_limit_exceeded");
            assert!(reply.text().contains("limits.rpm 60"), "{}", reply.text());
            assert!(reply.headers.contains_key("retry-after"));
        }
    }
    // One more comes back every second.
    let refilled = started.elapsed().as_secs();
    assert!(
        (60..=60 + refilled).contains(&admitted),
        "{admitted} admitted in {refilled} s"
    );
}

#[tokio::test]
async fn a_budget_hit_through_both_replicas_at_once_is_never_overshot() {
    let redis = RedisServer::start().await;
    let mock = MockUpstream::start().await.unwrap();
    let (open, gate) = tokio::sync::watch::channel(false);
    mock.add_rule(Rule::new(Fault::Gate(mock_upstream::Gate(gate))));
    const N: usize = 5;
    // Tokens for exactly N reservations: every byte of the request, and max_tokens.
    let budget = N * (BODY_WITH_LIMIT.len() + 10);
    let yaml = config(&mock, &redis.url(), &["k1"]);
    let spender =
        format!("{{name: spender, key: key-s, budget: {{tokens: {budget}, period: day}}}}");
    let (a, b) = two_replicas(&with_clients(&yaml, &[&spender])).await;
    let tasks = at_once(&a, &b, 64, "key-s", BODY_WITH_LIMIT);
    // The admitted wait at the upstream until all 64 are decided: N in all (each replica
    // alone would have admitted N of its 32).
    let decided = eventually(Duration::from_secs(20), || {
        tasks.iter().filter(|t| t.is_finished()).count() == 64 - N
            && mock.request_count() == N as u64
    })
    .await;
    assert!(decided, "{} reached the upstream", mock.request_count());
    open.send_replace(true);
    let mut served = 0;
    for task in tasks {
        let reply = task.await.unwrap();
        if reply.status == 200 {
            served += 1;
        } else {
            common::assert_openai_error(&reply, 429, "insufficient_quota");
            assert!(
                reply.text().contains("client 'spender' is over its budget"),
                "{}",
                reply.text()
            );
        }
    }
    assert_eq!(served, N);
    // What they used is counted in Redis, and the reservations are given back.
    let mut c = redis.connection().await;
    let mut counted = 0;
    for _ in 0..500 {
        let window: HashMap<String, String> = redis::cmd("HGETALL")
            .arg("test:budget:client/spender")
            .query_async(&mut c)
            .await
            .unwrap();
        let held = window.keys().filter(|k| k.starts_with("r:")).count();
        counted = window
            .get("tokens")
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        if held == 0 && counted == mock.tokens_reported() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(counted, mock.tokens_reported());
    assert!(counted <= budget as u64);
}

#[tokio::test]
async fn while_redis_is_away_each_client_gets_its_share_or_its_open_door() {
    let mut redis = RedisServer::start().await;
    let mock = MockUpstream::start().await.unwrap();
    let yaml = config(&mock, &redis.url(), &["k1"])
        .replace("sync_interval: 50ms", "sync_interval: 50ms, timeout: 250ms");
    let yaml = with_clients(
        &yaml,
        &[
            "{name: sharer, key: key-share, limits: {rpm: 10}}",
            "{name: opener, key: key-open, limits: {rpm: 10}, outage: open}",
        ],
    );
    let (a, b) = two_replicas(&yaml).await;
    // A has seen both runs alive.
    let mut both = false;
    for _ in 0..500 {
        if a.ready().await["replicas"] == 2 {
            both = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(both, "{}", a.ready().await);
    redis.kill();
    assert!(becomes(&a, "degraded").await);
    let send = |key: &'static str| {
        let server = a.server.clone();
        async move {
            let mut admitted = 0;
            for _ in 0..10 {
                let auth = format!("Bearer {key}");
                let reply = call(
                    Method::POST,
                    &server.url("/v1/chat/completions"),
                    &[
                        ("authorization", &auth),
                        ("content-type", "application/json"),
                    ],
                    BODY,
                )
                .await;
                if reply.status == 200 {
                    admitted += 1;
                }
            }
            admitted
        }
    };
    // Two replicas were alive: A enforces half of `rpm: 10` for the sharer, nothing for the
    // opener.
    let shared = send("key-share").await;
    assert_eq!(shared, 5);
    assert_eq!(send("key-open").await, 10);
    drop(b);
}

#[tokio::test]
async fn a_redis_that_asks_for_a_password_is_shared_and_the_password_is_never_shown() {
    const PASSWORD: &str = "redis-secret-password-4242";
    let redis = RedisServer::start_with(Some(PASSWORD)).await;
    let mock = MockUpstream::start().await.unwrap();
    let a = Replica::start(&config(&mock, &redis.url(), &["k1"])).await;
    assert!(becomes(&a, "shared").await, "{}", a.ready().await);
    assert_eq!(post_chat(&a.server, BODY).await.status, 200);
    assert!(converges(&redis, &[&a]).await);
    for page in [a.ready().await.to_string(), metrics(&a).await] {
        assert!(!page.contains(PASSWORD));
    }
    // A wrong password: the replica serves on its own state, and says so.
    let wrong = redis.url().replace(PASSWORD, "not-the-password-0000");
    let b = Replica::start(&config(&mock, &wrong, &["k1"])).await;
    assert!(becomes(&b, "degraded").await, "{}", b.ready().await);
    assert_eq!(post_chat(&b.server, BODY).await.status, 200);
}

/// Whether Redis comes to hold `n` cached answers under the tests' prefix, within 10 s.
async fn holds_answers(redis: &RedisServer, n: usize) -> bool {
    let mut c = redis.connection().await;
    for _ in 0..500 {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("test:cache:*")
            .query_async(&mut c)
            .await
            .unwrap();
        if keys.len() >= n {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn an_answer_one_replica_kept_in_redis_is_a_hit_on_the_other() {
    let mut redis = RedisServer::start().await;
    let mock = MockUpstream::start().await.unwrap();
    let yaml = config(&mock, &redis.url(), &["k1"]).replace(
        "  - name: g\n",
        "  - name: g\n    cache: {ttl: 1h, backend: both}\n",
    );
    let (a, b) = two_replicas(&yaml).await;
    const STREAM: &str =
        r#"{"model":"g","stream":true,"messages":[{"role":"user","content":"a b c"}]}"#;
    // The status and what the cache did.
    let cache = |reply: &common::Reply| {
        let header = reply.headers["x-llm-router-cache"].to_str().unwrap();
        (reply.status.as_u16(), header.to_string())
    };
    let mut first = Vec::new();
    for body in [BODY, STREAM] {
        let reply = post_chat(&a.server, body).await;
        assert_eq!(cache(&reply), (200, "miss".into()));
        first.push(reply.body);
    }
    // A keeps them in Redis by a task of its own.
    assert!(
        holds_answers(&redis, 2).await,
        "A's answers never reached Redis"
    );
    for (body, sent) in [BODY, STREAM].into_iter().zip(&first) {
        let reply = post_chat(&b.server, body).await;
        assert_eq!(cache(&reply), (200, "hit".into()));
        assert_eq!(&reply.body, sent);
    }
    assert_eq!(mock.request_count(), 2);
    // Nothing was charged on B.
    assert!(b
        .usage()
        .iter()
        .all(|r| r.requests == 0 && r.total_tokens == 0));
    // `both`: B kept what it read from Redis in its memory, which answers with Redis gone.
    redis.kill();
    assert!(becomes(&b, "degraded").await);
    let reply = post_chat(&b.server, BODY).await;
    assert_eq!(cache(&reply), (200, "hit".into()));
    assert_eq!(mock.request_count(), 2);
    let text = metrics(&b).await;
    assert!(
        text.contains("llm_router_response_cache_requests_total{group=\"g\",result=\"hit\"} 3"),
        "{text}"
    );
    assert!(
        text.contains("llm_router_response_cache_entries 2"),
        "{text}"
    );
}

#[tokio::test]
async fn a_redis_over_tls_with_a_private_ca_is_shared() {
    let redis = RedisServer::start_tls().await;
    assert!(redis.url().starts_with("rediss://"));
    let mock = MockUpstream::start().await.unwrap();
    let plain = config(&mock, &redis.url(), &["k1"]);
    let trusting = plain.replace(
        "sync_interval: 50ms}",
        &format!(
            "sync_interval: 50ms, ca_file: \"{}\"}}",
            redis.ca_file().display()
        ),
    );
    assert_ne!(plain, trusting);
    let a = Replica::start(&trusting).await;
    assert!(becomes(&a, "shared").await, "{}", a.ready().await);
    assert_eq!(post_chat(&a.server, BODY).await.status, 200);
    assert!(converges(&redis, &[&a]).await);
    // Without the CA the server's certificate is not trusted: on its own state, serving.
    let b = Replica::start(&plain).await;
    assert!(becomes(&b, "degraded").await, "{}", b.ready().await);
    assert_eq!(post_chat(&b.server, BODY).await.status, 200);
}

/// What Redis holds of `client`'s budget: tokens counted, reservations held.
async fn shared_budget(redis: &RedisServer, client: &str) -> (u64, usize) {
    let mut c = redis.connection().await;
    let window: HashMap<String, String> = redis::cmd("HGETALL")
        .arg(format!("test:budget:client/{client}"))
        .query_async(&mut c)
        .await
        .unwrap();
    let held = window.keys().filter(|k| k.starts_with("r:")).count();
    let tokens = window.get("tokens").and_then(|t| t.parse().ok());
    (tokens.unwrap_or(0), held)
}

#[tokio::test]
async fn a_redis_that_stops_answering_costs_requests_its_timeout_and_loses_nothing() {
    let redis = RedisServer::start().await;
    let mock = MockUpstream::start().await.unwrap();
    let yaml = config(&mock, &redis.url(), &["k1"])
        .replace(
            "sync_interval: 50ms}",
            "sync_interval: 50ms, timeout: 200ms}",
        )
        .replace(
            "  - name: g\n",
            "  - name: g\n    cache: {ttl: 1h, backend: redis}\n",
        );
    let spender = "{name: spender, key: key-s, budget: {tokens: 1000000, period: day}}";
    let a = Replica::start(&with_clients(&yaml, &[spender])).await;
    assert!(becomes(&a, "shared").await);
    let ask = |i: usize| {
        let server = a.server.clone();
        let body = BODY_WITH_LIMIT.replace("spend", &format!("spend {i}"));
        async move { post_with_key(&server, "key-s", body).await }
    };
    assert_eq!(ask(0).await.status, 200);
    // Stopped: every call to it (a budget's reservation, a cache lookup, the exchange) runs
    // into the timeout, and the replica serves on its own state.
    redis.pause();
    for i in 1..=10 {
        let reply = ask(i).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    assert!(becomes(&a, "degraded").await, "{}", a.ready().await);
    for i in 11..=20 {
        assert_eq!(ask(i).await.status, 200);
    }
    redis.resume();
    assert!(becomes(&a, "shared").await, "{}", a.ready().await);
    // Nothing counted while it was stopped is lost: the pairs' usage and the client's budget
    // come back to the exact totals, and no reservation is left held.
    assert!(converges(&redis, &[&a]).await);
    // Reservations whose calls timed out but ran are given back at the first exchange (one
    // still unread on a connection given up goes when its holder's ten seconds are out).
    let mut budget = (0, 0);
    for _ in 0..1000 {
        budget = shared_budget(&redis, "spender").await;
        if budget == (mock.tokens_reported(), 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(budget, (mock.tokens_reported(), 0));
    assert_eq!(mock.request_count(), 21);
}
