//! Named clients through the real server: who may call, what they may use, and budgets and
//! limits that hold when requests come at once.

mod common;

use common::{assert_openai_error, call, eventually, TestServer};
use http::Method;
use mock_upstream::{Fault, Gate, MockUpstream, Rule};
use std::sync::Arc;
use std::time::Duration;

/// Prices of the mock's model: $1 per million prompt tokens, $2 per million completion tokens.
const PICO_IN: u64 = 1_000_000;
const PICO_OUT: u64 = 2_000_000;

fn config(mock: &MockUpstream, clients: &str) -> String {
    format!(
        "admin_key: \"admin-key\"\n\
         clients:\n{clients}\n\
         teams:\n  - {{name: research, budget: {{tokens: 3000, period: day}}}}\n\
         prices:\n  upstream-model: {{input: 1, output: 2}}\n\
         groups:\n  - name: g\n    models: [{{provider: up, name: upstream-model}}]\n  - name: other\n    models: [{{provider: up, name: upstream-model}}]\n\
         providers:\n  - {{name: up, base_url: \"{}\", api_keys: [\"upstream-key\"]}}\n",
        mock.base_url()
    )
}

async fn chat(server: &TestServer, key: &str, body: &str) -> common::Reply {
    post(server, "/v1/chat/completions", key, body).await
}

/// `body` posted to `path` with `key`.
async fn post(server: &TestServer, path: &str, key: &str, body: &str) -> common::Reply {
    call(
        Method::POST,
        &server.url(path),
        &[
            ("authorization", &format!("Bearer {key}")),
            ("content-type", "application/json"),
        ],
        body.to_string(),
    )
    .await
}

const BODY: &str =
    r#"{"model":"g","max_tokens":10,"messages":[{"role":"user","content":"hello there"}]}"#;

#[tokio::test]
async fn keys_are_told_apart_and_groups_are_guarded() {
    let mock = MockUpstream::start().await.unwrap();
    let clients = "  - {name: open, key: key-open}\n\
                   \x20 - {name: narrow, key: key-narrow, groups: [other]}\n\
                   \x20 - {name: off, key: key-off, disabled: true}\n\
                   \x20 - {name: old, keys: [key-old], expires: 2020-01-01}\n";
    let server = TestServer::start(&config(&mock, clients)).await;
    assert_eq!(chat(&server, "key-open", BODY).await.status, 200);
    // Unknown, disabled and expired keys: 401, saying why, never the key.
    assert_openai_error(
        &chat(&server, "key-nobody", BODY).await,
        401,
        "authentication_error",
    );
    let off = chat(&server, "key-off", BODY).await;
    assert_openai_error(&off, 401, "authentication_error");
    assert!(
        off.text().contains("disabled") && !off.text().contains("key-off"),
        "{}",
        off.text()
    );
    let old = chat(&server, "key-old", BODY).await;
    assert_openai_error(&old, 401, "authentication_error");
    assert!(
        old.text().contains("expired at 2020-01-01T00:00:00Z"),
        "{}",
        old.text()
    );
    // A group the client may not use: 403, naming both.
    let denied = chat(&server, "key-narrow", BODY).await;
    assert_openai_error(&denied, 403, "permission_denied");
    let message = denied.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("'narrow'") && message.contains("'g'"),
        "{message}"
    );
    // The model list is the client's own.
    let models = call(
        Method::GET,
        &server.url("/v1/models"),
        &[("authorization", "Bearer key-narrow")],
        "",
    )
    .await;
    let ids: Vec<_> = models.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].clone())
        .collect();
    assert_eq!(ids, vec![serde_json::json!("other")]);
    // Named clients do not open the admin endpoints; the admin key does.
    let usage = call(
        Method::GET,
        &server.url("/admin/usage"),
        &[("authorization", "Bearer key-open")],
        "",
    )
    .await;
    // A client's key at an admin endpoint: it needs the admin key.
    assert_eq!(usage.status, 403);
    let usage = call(
        Method::GET,
        &server.url("/admin/usage"),
        &[("authorization", "Bearer admin-key")],
        "",
    )
    .await;
    assert_eq!(usage.status, 200);
    // Every team is listed, one with no client too.
    let listed = call(
        Method::GET,
        &server.url("/admin/clients"),
        &[("authorization", "Bearer admin-key")],
        "",
    )
    .await;
    assert_eq!(listed.json()["teams"][0]["name"], "research");
    // Only the admitted requests reached the upstream.
    assert_eq!(mock.request_count(), 1);
}

/// What the router reserves for [`BODY`]: every byte of it as a prompt token, plus
/// `max_tokens`, at the prices above.
fn reservation() -> u64 {
    BODY.len() as u64 * PICO_IN + 10 * PICO_OUT
}

#[tokio::test]
async fn a_budget_that_fits_n_requests_serves_n_of_64_at_once() {
    let mock = MockUpstream::start().await.unwrap();
    let (open, gate) = tokio::sync::watch::channel(false);
    mock.add_rule(Rule::new(Fault::Gate(Gate(gate))));
    const N: u64 = 5;
    // The budget in dollars, exactly N reservations.
    let usd = (N * reservation()) as f64 / 1e12;
    let clients =
        format!("  - {{name: spender, key: key-s, budget: {{usd: {usd}, period: month}}}}\n");
    let server = Arc::new(TestServer::start(&config(&mock, &clients)).await);
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let server = server.clone();
        tasks.push(tokio::spawn(
            async move { chat(&server, "key-s", BODY).await },
        ));
    }
    // The admitted requests wait at the upstream until every one of the 64 is decided.
    let refused_all = eventually(Duration::from_secs(20), || {
        tasks.iter().filter(|t| t.is_finished()).count() as u64 == 64 - N
            && mock.request_count() == N
    })
    .await;
    assert!(refused_all, "served {} of 64", mock.request_count());
    open.send_replace(true);
    let mut served = 0;
    for task in tasks {
        let reply = task.await.unwrap();
        if reply.status == 200 {
            served += 1;
        } else {
            assert_openai_error(&reply, 429, "insufficient_quota");
            let message = reply.json()["error"]["message"]
                .as_str()
                .unwrap()
                .to_string();
            assert!(
                message.contains("client 'spender' is over its budget")
                    && message.contains("starts again at"),
                "{message}"
            );
        }
    }
    assert_eq!(served, N);
    // What was spent is exactly the upstream's usage at the table's prices, within budget.
    let snapshot = server.router.snapshot();
    let client = snapshot.client("spender").unwrap();
    let spend = client.account().spend();
    assert_eq!(spend.len(), 1);
    let s = spend[0].1;
    assert_eq!(s.requests, N);
    assert_eq!(
        s.prompt_tokens + s.completion_tokens,
        mock.tokens_reported()
    );
    assert_eq!(
        s.picodollars,
        s.prompt_tokens * PICO_IN + s.completion_tokens * PICO_OUT
    );
    assert!(s.picodollars <= N * reservation());
}

#[tokio::test]
async fn a_team_budget_binds_its_clients_together() {
    let mock = MockUpstream::start().await.unwrap();
    // The team allows 3,000 tokens a day; neither client has a budget of its own.
    let clients = "  - {name: r1, key: key-r1, team: research}\n\
                   \x20 - {name: r2, key: key-r2, team: research}\n";
    let server = Arc::new(TestServer::start(&config(&mock, clients)).await);
    // Reserves its bytes plus 1,500: a little over half of the team's day.
    let big = r#"{"model":"g","max_tokens":1500,"messages":[{"role":"user","content":"hello"}]}"#;
    let (open, gate) = tokio::sync::watch::channel(false);
    mock.add_rule(Rule::new(Fault::Gate(Gate(gate))));
    let held = {
        let server = server.clone();
        tokio::spawn(async move { chat(&server, "key-r1", big).await })
    };
    assert!(eventually(Duration::from_secs(10), || mock.request_count() == 1).await);
    // While r1's request is in flight, r2's does not fit beside it in the team's budget.
    let refused = chat(&server, "key-r2", big).await;
    assert_openai_error(&refused, 429, "insufficient_quota");
    assert!(
        refused
            .text()
            .contains("team 'research' is over its budget"),
        "{}",
        refused.text()
    );
    // A small one still fits.
    open.send_replace(true);
    assert_eq!(chat(&server, "key-r2", BODY).await.status, 200);
    assert_eq!(held.await.unwrap().status, 200);
    // Once r1's answer is settled, its reservation is given back: r2's big request fits.
    assert_eq!(chat(&server, "key-r2", big).await.status, 200);
    let team = server
        .router
        .snapshot()
        .client("r2")
        .unwrap()
        .team()
        .unwrap()
        .clone();
    let spent: u64 = team
        .account()
        .spend()
        .iter()
        .map(|(_, s)| s.prompt_tokens + s.completion_tokens)
        .sum();
    assert_eq!(spent, mock.tokens_reported());
}

#[tokio::test]
async fn requests_per_minute_and_in_flight_limits_refuse_with_openai_headers() {
    let mock = MockUpstream::start().await.unwrap();
    let clients = "  - {name: limited, key: key-l, limits: {rpm: 2}}\n\
                   \x20 - {name: one-at-a-time, key: key-p, limits: {parallel: 1}}\n";
    let server = Arc::new(TestServer::start(&config(&mock, clients)).await);
    let first = chat(&server, "key-l", BODY).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.headers["x-ratelimit-limit-requests"], "2");
    assert_eq!(first.headers["x-ratelimit-remaining-requests"], "1");
    assert_eq!(chat(&server, "key-l", BODY).await.status, 200);
    let third = chat(&server, "key-l", BODY).await;
    assert_openai_error(&third, 429, "rate_limit_exceeded");
    assert_eq!(third.json()["error"]["code"], "rate_limit_exceeded");
    assert_eq!(third.headers["x-ratelimit-remaining-requests"], "0");
    let retry: u64 = third.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    // One in flight at a time: a second while the first is held is refused.
    let (open, gate) = tokio::sync::watch::channel(false);
    mock.add_rule(Rule::new(Fault::Gate(Gate(gate))));
    let held = {
        let server = server.clone();
        tokio::spawn(async move { chat(&server, "key-p", BODY).await })
    };
    assert!(eventually(Duration::from_secs(10), || mock.request_count() == 3).await);
    let second = chat(&server, "key-p", BODY).await;
    assert_openai_error(&second, 429, "rate_limit_exceeded");
    assert!(
        second.text().contains("limits.parallel"),
        "{}",
        second.text()
    );
    open.send_replace(true);
    assert_eq!(held.await.unwrap().status, 200);
    assert_eq!(chat(&server, "key-p", BODY).await.status, 200);
}

#[tokio::test]
async fn a_config_with_a_bad_client_is_refused_with_located_problems() {
    let mock = MockUpstream::start().await.unwrap();
    let clients = "  - {name: a, key: same}\n\
                   \x20 - {name: b, key: same, groups: [nope], team: nobody}\n\
                   \x20 - {name: c, key: k3, limits: {rpm: 0}, expires: soon}\n";
    let text = config(&mock, clients);
    let error = router_core::Router::from_source(&router_core::Source::from_text(
        &text,
        router_core::Format::Yaml,
    ))
    .map(|_| ())
    .expect_err("refused")
    .to_string();
    for expected in [
        "clients[1].key",
        "already another client's",
        "clients[1].groups[0]",
        "no group named 'nope'",
        "clients[1].team",
        "clients[2].limits.rpm",
        "clients[2].expires",
    ] {
        assert!(error.contains(expected), "{expected} in {error}");
    }
    assert!(!error.contains("same"), "a key is never shown: {error}");
}

#[tokio::test]
async fn spend_is_what_the_ledger_charges_for_answers_streams_and_cut_streams() {
    let mock = MockUpstream::start().await.unwrap();
    let clients = "  - {name: mixed, key: key-m, budget: {usd: 100, period: week}}\n";
    let server = TestServer::start(&config(&mock, clients)).await;
    assert_eq!(chat(&server, "key-m", BODY).await.status, 200);
    let stream = r#"{"model":"g","stream":true,"messages":[{"role":"user","content":"one two three four five six"}]}"#;
    let streamed = chat(&server, "key-m", stream).await;
    assert_eq!(streamed.status, 200);
    assert!(streamed.text().contains("[DONE]"));
    // Cut after three chunks: the client gets an error event; what was streamed is charged.
    mock.add_rule(Rule::new(Fault::CutStreamAfter(3)).times(1));
    let cut = chat(&server, "key-m", stream).await;
    assert!(cut.text().contains("error"), "{}", cut.text());
    let snapshot = server.router.snapshot();
    let client = snapshot.client("mixed").unwrap();
    let budget = *client.budget().unwrap();
    let now = time::OffsetDateTime::now_utc;
    // Settled when the last request's reservation is given back.
    let charged = eventually(Duration::from_secs(10), || {
        let (_, reserved) = client.account().budget_use(&budget, now());
        let requests = client.account().spend().first().map(|(_, s)| s.requests);
        requests == Some(3) && reserved == router_core::tenants::Amount::default()
    })
    .await;
    assert!(charged, "{:?}", client.account().spend());
    let s = client.account().spend()[0].1;
    let ledger = server.router.usage();
    let pair = ledger.iter().find(|r| r.model == "upstream-model").unwrap();
    assert_eq!(
        (s.prompt_tokens, s.completion_tokens),
        (pair.prompt_tokens, pair.completion_tokens)
    );
    assert_eq!(
        s.picodollars,
        s.prompt_tokens * PICO_IN + s.completion_tokens * PICO_OUT
    );
    // The week's budget window holds the same.
    let (used, _) = client.account().budget_use(&budget, now());
    assert_eq!(used.picodollars, s.picodollars);
    assert_eq!(used.tokens, s.prompt_tokens + s.completion_tokens);
}

#[tokio::test]
async fn tokens_per_minute_reserve_the_worst_case_and_settle_to_the_real_use() {
    let mock = MockUpstream::start().await.unwrap();
    let clients = "  - {name: tpm, key: key-t, limits: {tpm: 300}}\n";
    let server = TestServer::start(&config(&mock, clients)).await;
    let reserve = BODY.len() as u64 + 10;
    // Reserved alone, only two requests would fit in 300 tokens; settled to their real use
    // (far less), more do.
    let mut served = 0;
    let refused = loop {
        let reply = chat(&server, "key-t", BODY).await;
        if reply.status != 200 {
            break reply;
        }
        assert_eq!(reply.headers["x-ratelimit-limit-tokens"], "300");
        served += 1;
        assert!(served < 100, "never refused");
    };
    assert!(served > 300 / reserve, "served {served}");
    assert_openai_error(&refused, 429, "rate_limit_exceeded");
    assert!(
        refused.text().contains("limits.tpm 300"),
        "{}",
        refused.text()
    );
    assert_eq!(refused.headers["x-ratelimit-limit-tokens"], "300");
    let remaining: u64 = refused.headers["x-ratelimit-remaining-tokens"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(remaining < reserve, "{remaining}");
    assert!(refused.headers.contains_key("retry-after"));
}

#[tokio::test]
async fn the_admin_api_shows_each_clients_budget_limits_and_spend() {
    let mock = MockUpstream::start().await.unwrap();
    let clients = "  - {name: shown, key: key-x, team: research, budget: {usd: 1, tokens: 5000, period: total}, limits: {rpm: 60, parallel: 4}}\n";
    let server = TestServer::start(&config(&mock, clients)).await;
    assert_eq!(chat(&server, "key-x", BODY).await.status, 200);
    let reply = call(
        Method::GET,
        &server.url("/admin/clients"),
        &[("authorization", "Bearer admin-key")],
        "",
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let v = reply.json();
    let c = &v["clients"][0];
    assert_eq!(c["name"], "shown");
    assert_eq!(c["team"], "research");
    let used = mock.tokens_reported();
    assert_eq!(c["budget"]["period"], "total");
    assert_eq!(c["budget"]["used"]["tokens"], used);
    assert_eq!(c["budget"]["remaining"]["tokens"], 5000 - used);
    assert_eq!(c["budget"]["resets_at"], serde_json::Value::Null);
    assert_eq!(c["limits"]["rpm"], 60);
    assert_eq!(c["limits"]["in_flight"], 0);
    assert_eq!(c["spend"][0]["group"], "g");
    assert_eq!(c["spend"][0]["requests"], 1);
    let spent = c["spend_usd"].as_f64().unwrap();
    let remaining = c["budget"]["remaining"]["usd"].as_f64().unwrap();
    assert!(
        (spent + remaining - 1.0).abs() < 1e-9,
        "{spent} + {remaining}"
    );
    assert_eq!(v["teams"][0]["name"], "research");
    assert_eq!(v["teams"][0]["budget"]["used"]["tokens"], used);
    // The metrics name the client too.
    let metrics = call(
        Method::GET,
        &server.url("/metrics"),
        &[("authorization", "Bearer admin-key")],
        "",
    )
    .await;
    let text = metrics.text();
    assert!(
        text.lines()
            .any(|l| l.starts_with("llm_router_requests_total{")
                && l.contains("client=\"shown\"")
                && l.ends_with(" 1")),
        "{text}"
    );
    let spend_line = text
        .lines()
        .find(|l| l.starts_with("llm_router_client_spend_usd{kind=\"client\",name=\"shown\"}"))
        .unwrap_or_else(|| panic!("{text}"));
    let spend: f64 = spend_line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((spend - spent).abs() < 1e-12, "{spend_line}");
    assert!(
        text.contains("llm_router_client_budget_remaining_usd{kind=\"client\",name=\"shown\"}"),
        "{text}"
    );
    assert!(
        text.contains("llm_router_client_in_flight{kind=\"team\",name=\"research\"} 0"),
        "{text}"
    );
    // Not for clients.
    let denied = call(
        Method::GET,
        &server.url("/admin/clients"),
        &[("authorization", "Bearer key-x")],
        "",
    )
    .await;
    assert_eq!(denied.status, 403);
}

#[tokio::test]
async fn the_admin_api_adds_changes_and_removes_clients_in_the_served_file() {
    let mock = MockUpstream::start().await.unwrap();
    let text = format!(
        "# the operator's comment\n{}",
        config(&mock, "  - {name: first, key: key-first}\n")
    );
    let (server, path) = common::start_with_file("admin-clients", &text).await;
    let admin = [
        ("authorization", "Bearer admin-key"),
        ("content-type", "application/json"),
    ];
    let added = call(
        Method::POST,
        &server.url("/admin/clients"),
        &admin,
        r#"{"name":"made","groups":["g"],"rpm":10}"#,
    )
    .await;
    assert_eq!(added.status, 201, "{}", added.text());
    let key = added.json()["key"].as_str().unwrap().to_string();
    let file = std::fs::read_to_string(&path).unwrap();
    assert!(
        file.starts_with("# the operator's comment\n")
            && file.contains("name: \"made\"")
            && !file.contains(&key),
        "{file}"
    );
    // The router serves the file as edited once it reloads it (its watcher does; here, now).
    server.router.reload().unwrap();
    assert_eq!(chat(&server, &key, BODY).await.status, 200);
    // Disabled, then rotated: the old key stops working.
    let url = server.url("/admin/clients/made");
    assert_eq!(
        call(Method::PATCH, &url, &admin, r#"{"disabled":true}"#)
            .await
            .status,
        200
    );
    server.router.reload().unwrap();
    assert_openai_error(
        &chat(&server, &key, BODY).await,
        401,
        "authentication_error",
    );
    assert_eq!(
        call(Method::PATCH, &url, &admin, r#"{"disabled":false}"#)
            .await
            .status,
        200
    );
    let rotated = call(Method::PATCH, &url, &admin, r#"{"rotate":true}"#).await;
    assert_eq!(rotated.status, 200, "{}", rotated.text());
    let new_key = rotated.json()["key"].as_str().unwrap().to_string();
    server.router.reload().unwrap();
    assert_eq!(chat(&server, &key, BODY).await.status, 401);
    assert_eq!(chat(&server, &new_key, BODY).await.status, 200);
    // Refusals: the right status, the file untouched.
    let before = std::fs::read_to_string(&path).unwrap();
    let twice = call(
        Method::POST,
        &server.url("/admin/clients"),
        &admin,
        r#"{"name":"made"}"#,
    )
    .await;
    assert_eq!(twice.status, 409, "{}", twice.text());
    let unknown_group = call(
        Method::POST,
        &server.url("/admin/clients"),
        &admin,
        r#"{"name":"x","groups":["nope"]}"#,
    )
    .await;
    assert_eq!(unknown_group.status, 422);
    assert!(
        unknown_group.text().contains("no group named 'nope'"),
        "{}",
        unknown_group.text()
    );
    let missing = call(
        Method::DELETE,
        &server.url("/admin/clients/nobody"),
        &admin,
        "",
    )
    .await;
    assert_eq!(missing.status, 404);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
    assert_eq!(call(Method::DELETE, &url, &admin, "").await.status, 200);
    assert!(!std::fs::read_to_string(&path)
        .unwrap()
        .contains("name: made"));
    // A read-only file: 409 saying so.
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&path, perms).unwrap();
    let read_only = call(
        Method::POST,
        &server.url("/admin/clients"),
        &admin,
        r#"{"name":"late"}"#,
    )
    .await;
    assert_eq!(read_only.status, 409);
    assert!(
        read_only.text().contains("read-only"),
        "{}",
        read_only.text()
    );
    // Named clients cannot edit.
    let by_client = call(
        Method::DELETE,
        &server.url("/admin/clients/first"),
        &[("authorization", "Bearer key-first")],
        "",
    )
    .await;
    assert_eq!(by_client.status, 403);
}

#[tokio::test]
async fn every_route_that_reaches_an_upstream_is_admitted_first() {
    let mock = MockUpstream::start().await.unwrap();
    let clients = "  - {name: broke, key: key-broke, budget: {usd: 0.000001, period: day}}\n\
                   \x20 - {name: narrow, key: key-narrow, groups: [other]}\n";
    let server = TestServer::start(&config(&mock, clients)).await;
    let routes = [
        ("/v1/chat/completions", BODY),
        (
            "/v1/messages",
            r#"{"model":"g","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#,
        ),
        (
            "/v1/messages/count_tokens",
            r#"{"model":"g","messages":[{"role":"user","content":"hi"}]}"#,
        ),
        ("/v1/responses", r#"{"model":"g","input":"hi"}"#),
        ("/v1/completions", r#"{"model":"g","prompt":"hi"}"#),
        ("/v1/embeddings", r#"{"model":"g","input":"hi"}"#),
    ];
    for (path, body) in routes {
        for (key, status) in [("key-broke", 429), ("key-narrow", 403)] {
            let reply = post(&server, path, key, body).await;
            assert_eq!(reply.status, status, "{path} with {key}: {}", reply.text());
        }
    }
    // Nothing reached the upstream.
    assert_eq!(mock.request_count(), 0);
}

/// A request that sets no completion limit, from a client whose budget reserves for it, is
/// sent with its provider's `default_max_tokens` in the field of its own format, so what it
/// reserved bounds what it can cost; other requests keep their bytes.
#[tokio::test]
async fn a_budgeted_request_without_a_limit_is_capped_at_what_it_reserved() {
    let mock = MockUpstream::start().await.unwrap();
    let body = r#"{"model":"g","messages":[{"role":"user","content":"one two three four five six seven eight nine ten"}]}"#;
    // Exactly one reservation: every byte as a prompt token, and the provider's default.
    let budget = body.len() + 5;
    let yaml = format!(
        "admin_key: \"admin-key\"\n\
         clients:\n\
         \x20 - {{name: capped, key: key-c, budget: {{tokens: {budget}, period: day}}}}\n\
         \x20 - {{name: free, key: key-f, limits: {{rpm: 100}}}}\n\
         \x20 - {{name: wide, key: key-w, budget: {{usd: 10}}}}\n\
         groups:\n\
         \x20 - {{name: g, models: [{{provider: up, name: upstream-model}}]}}\n\
         \x20 - {{name: reasoning, models: [{{provider: o, name: o-model}}]}}\n\
         providers:\n\
         \x20 - {{name: up, base_url: \"{url}\", api_keys: [k], default_max_tokens: 5}}\n\
         \x20 - {{name: o, base_url: \"{url}\", api_keys: [k], default_max_tokens: 7, max_tokens_field: max_completion_tokens, responses: native}}\n",
        url = mock.base_url()
    );
    let server = TestServer::start(&yaml).await;
    let upstream_body = |n: usize| mock.requests()[n].json();

    let reply = chat(&server, "key-c", body).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(upstream_body(0)["max_tokens"], 5);
    assert_eq!(reply.json()["choices"][0]["finish_reason"], "length");
    assert_eq!(reply.json()["usage"]["completion_tokens"], 5);
    // The budget held one reservation; the spend is within it, and the next is refused.
    let spend = server
        .router
        .snapshot()
        .client("capped")
        .unwrap()
        .account()
        .spend();
    let s = spend[0].1;
    assert!(s.prompt_tokens + s.completion_tokens <= budget as u64);
    assert_openai_error(
        &chat(&server, "key-c", body).await,
        429,
        "insufficient_quota",
    );

    // A client without a budget or a TPM limit: its bytes pass as they are.
    let reply = chat(&server, "key-f", body).await;
    assert_eq!(reply.json()["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        mock.requests()[1].body.len(),
        body.len() - 1 + "upstream-model".len()
    );

    // OpenAI's reasoning models take `max_completion_tokens`; the Responses API its own field.
    let reasoning = body.replace("\"g\"", "\"reasoning\"");
    assert_eq!(chat(&server, "key-w", &reasoning).await.status, 200);
    assert_eq!(upstream_body(2)["max_completion_tokens"], 7);
    assert!(upstream_body(2).get("max_tokens").is_none());
    let responses = post(
        &server,
        "/v1/responses",
        "key-w",
        r#"{"model":"reasoning","input":"hi"}"#,
    )
    .await;
    assert_eq!(responses.status, 200, "{}", responses.text());
    assert_eq!(upstream_body(3)["max_output_tokens"], 7);
    // Translated (the Responses API to chat completions), the limit goes where chat has it.
    let translated = post(
        &server,
        "/v1/responses",
        "key-w",
        r#"{"model":"g","input":"hi"}"#,
    )
    .await;
    assert_eq!(translated.status, 200, "{}", translated.text());
    assert_eq!(upstream_body(4)["max_tokens"], 5);
    // A limit the client set is its own.
    let own = body.replace("\"messages\"", "\"max_tokens\":3,\"messages\"");
    assert_eq!(chat(&server, "key-w", &own).await.status, 200);
    assert_eq!(upstream_body(5)["max_tokens"], 3);
    assert_eq!(
        mock.requests()[5].body.len(),
        own.len() - 1 + "upstream-model".len()
    );
}
