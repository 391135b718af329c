//! OAuth upstream credentials in the binary: a rotated refresh token kept in the ledger's
//! SQLite file and used after a restart of the process; a 401 whose renewal is refused rests
//! the key, with the reason in `/admin/usage`, the dashboard's data and the page in Chromium;
//! no token or secret in the log, the admin JSON or `check`; replicas sharing a real
//! `redis-server` going on from each other's rotation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::redis_server::RedisServer;
use common::{as_admin, call, post_chat, say_hi, temp_dir, Running, TestServer, BIN, KEY};
use http::Method;
use mock_upstream::{Fault, MockUpstream, Rule, TokenEndpoint};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

const ADMIN: &str = "admin-key-for-oauth-tests";

/// The secrets of the tests' credential, none of which may be shown.
const SECRETS: [&str; 5] = [
    "refresh-0",
    "refresh-1",
    "refresh-2",
    "client-secret-value",
    "access-",
];

/// A config at `dir` whose one key is a refresh-token credential of `endpoint`.
fn write_config(dir: &Path, mock: &MockUpstream, endpoint: &TokenEndpoint) {
    let yaml = format!(
        "api_key: \"{KEY}\"\nadmin_key: \"{ADMIN}\"\nresilience: {{max_attempts: 1}}\ngroups:\n  - {{name: g, models: [{{provider: up, name: m}}]}}\nproviders:\n  - name: up\n    base_url: \"{}\"\n    api_keys:\n      - oauth:\n          grant: refresh_token\n          token_url: \"{}\"\n          client_id: router-test\n          client_secret: client-secret-value\n          refresh_token: refresh-0\n",
        mock.base_url(),
        endpoint.url()
    );
    std::fs::write(dir.join("config.yaml"), yaml).unwrap();
}

/// The `/admin/usage` row of the one key.
async fn usage_row(addr: &str) -> Value {
    let usage = as_admin(addr, ADMIN, Method::GET, "/admin/usage", "").await;
    assert_eq!(usage.status, 200);
    for secret in SECRETS {
        assert!(
            !usage.text().contains(secret),
            "{secret} in {}",
            usage.text()
        );
    }
    usage.json()["usage"][0].clone()
}

fn assert_no_secret(lines: &[String]) {
    for line in lines {
        for secret in SECRETS {
            assert!(!line.contains(secret), "{secret} logged: {line}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_refresh_token_outlives_a_restart_and_a_refusal_rests_the_key() {
    let mock = MockUpstream::start().await.unwrap();
    let endpoint = TokenEndpoint::start().await.unwrap();
    endpoint.accept_refresh_token("refresh-0");
    endpoint.rotate_refresh_tokens(true);
    let dir = temp_dir("oauth-restart");
    write_config(&dir, &mock, &endpoint);

    let checked = std::process::Command::new(BIN)
        .args(["check", "--config"])
        .arg(dir.join("config.yaml"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&checked.stdout).to_string()
        + &String::from_utf8_lossy(&checked.stderr);
    assert!(checked.status.success(), "{said}");
    assert!(said.contains("oauth:router-test"), "{said}");
    assert_no_secret(&[said]);

    let first = Running::start(&dir, &["--config", "config.yaml"]);
    let base = format!("http://{}", first.addr);
    assert_eq!(say_hi(&base, KEY, "g").await.status, 200);
    assert_eq!(endpoint.refresh_tokens(), ["refresh-1"]);
    let row = usage_row(&first.addr).await;
    assert_eq!(row["key"], "up#0");
    assert_eq!(row["key_masked"], "oauth:router-test");
    assert_no_secret(&first.stop_with_log());

    // A new process: it asks with the rotated token, which the ledger kept, not the one
    // written (spent, the endpoint would refuse it).
    let mut second = Running::start(&dir, &["--config", "config.yaml"]);
    let base = format!("http://{}", second.addr);
    assert_eq!(say_hi(&base, KEY, "g").await.status, 200);
    let forms = endpoint.forms();
    assert_eq!(forms.len(), 2);
    assert_eq!(forms[1]["refresh_token"], "refresh-1");
    assert_eq!(forms[1]["client_secret"], "client-secret-value");

    // The upstream refuses the token, and the endpoint the renewal (a revoked login): the
    // key rests, and says why.
    mock.add_rule(Rule::new(Fault::Status(401)).key("access-2"));
    endpoint.refuse(true);
    assert_eq!(say_hi(&base, KEY, "g").await.status, 502);
    let row = usage_row(&second.addr).await;
    assert_eq!(row["state"], "credential_refused", "{row}");
    assert!(row["until"].is_string(), "{row}");
    let reason = row["last_error"].as_str().unwrap();
    // The endpoint named the rotated refresh token it was sent (in no config): masked.
    assert!(
        reason.contains("refused the refresh_token grant (400 Bad Request): invalid_grant (the grant of refresh token …-2 was revoked)"),
        "{reason}"
    );
    let dashboard = as_admin(&second.addr, ADMIN, Method::GET, "/admin/dashboard", "").await;
    let key = &dashboard.json()["groups"][0]["models"][0]["keys"][0];
    assert_eq!(key["state"], "credential_refused", "{key}");
    assert_eq!(key["last_error"].as_str(), Some(reason));
    second.wait_for("the key rests for 1m");
    // While it rests, a request it is the last resort for fails at once with the reason, in
    // the client's error, without asking the endpoint again (and not as a 429: waiting does
    // not mend a revoked login).
    let again = say_hi(&base, KEY, "g").await;
    assert_eq!(again.status, 502, "{}", again.text());
    assert!(again.text().contains("invalid_grant"), "{}", again.text());
    assert!(!again.text().contains("refresh-2"), "{}", again.text());
    assert_eq!(endpoint.forms().len(), 3);
    assert_no_secret(&second.stop_with_log());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium: run through scripts/test"]
async fn the_dashboard_shows_why_a_credential_rests() {
    let mock = MockUpstream::start().await.unwrap();
    let endpoint = TokenEndpoint::start().await.unwrap();
    let dir = temp_dir("oauth-dashboard");
    write_config(&dir, &mock, &endpoint);
    let router = Running::start(&dir, &["--config", "config.yaml"]);
    let base = format!("http://{}", router.addr);
    // `refresh-0` is not accepted: the first request finds the credential refused.
    assert_eq!(say_hi(&base, KEY, "g").await.status, 502);
    let mut chromium = common::headless_chromium(&dir.join("profile"));
    chromium.args(["--virtual-time-budget=3000", "--dump-dom"]);
    chromium.arg(format!("{base}/dashboard#key={ADMIN}"));
    let out = tokio::time::timeout(Duration::from_secs(60), chromium.output())
        .await
        .expect("chromium hung")
        .expect("chromium (Debian package chromium) must be installed");
    let dom = String::from_utf8_lossy(&out.stdout);
    let cell = dom
        .split("class=\"state-credential_refused\">")
        .nth(1)
        .unwrap_or_else(|| panic!("no refused key in {dom}"));
    let cell = cell.split("</td>").next().unwrap();
    assert!(cell.starts_with("credential_refused"), "{cell}");
    assert!(
        cell.contains("<small class=\"reason\">")
            && cell.contains("refused the refresh_token grant (400 Bad Request): invalid_grant"),
        "{cell}"
    );
    router.stop();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A replica of `yaml` whose exchange with Redis runs until `stop` is dropped, once it reports
/// its state shared.
async fn replica(yaml: &str) -> (TestServer, tokio::sync::oneshot::Sender<()>) {
    let server = TestServer::start(yaml).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(router_core::shared::run(server.router.clone(), async {
        let _ = stopped.await;
    }));
    for _ in 0..500 {
        let ready = call(Method::GET, &server.url("/health/ready"), &[], "").await;
        if ready.json()["state"] == "shared" {
            return (server, stop);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the replica never shared its state");
}

/// Redis, the mock upstream and a token endpoint that accepts `refresh-0` and rotates; the
/// config of a replica whose one key is that credential, its state shared in Redis.
async fn shared_setup() -> (RedisServer, MockUpstream, TokenEndpoint, String) {
    let redis = RedisServer::start().await;
    let mock = MockUpstream::start().await.unwrap();
    let endpoint = TokenEndpoint::start().await.unwrap();
    endpoint.accept_refresh_token("refresh-0");
    endpoint.rotate_refresh_tokens(true);
    let yaml = format!(
        "api_key: \"{KEY}\"\nstate:\n  redis: {{url: \"{}\", prefix: \"oauth-test:\", sync_interval: 50ms}}\ngroups:\n  - {{name: g, models: [{{provider: up, name: m}}]}}\nproviders:\n  - name: up\n    base_url: \"{}\"\n    api_key: {{oauth: {{grant: refresh_token, token_url: \"{}\", client_id: router-test, refresh_token: refresh-0}}}}\n",
        redis.url(),
        mock.base_url(),
        endpoint.url()
    );
    (redis, mock, endpoint, yaml)
}

/// The name Redis keeps the one credential's refresh token under, and a connection.
async fn kept_name(redis: &RedisServer) -> (redis::aio::MultiplexedConnection, String) {
    let mut c = redis.connection().await;
    let names: Vec<String> = redis::cmd("KEYS")
        .arg("oauth-test:oauth:*")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(
        !names[0].contains("refresh"),
        "a digest, not a token: {names:?}"
    );
    (c, names[0].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_sharing_redis_go_on_from_each_others_rotation() {
    let (redis, _mock, endpoint, yaml) = shared_setup().await;
    let body = r#"{"model":"g","messages":[{"role":"user","content":"hi"}]}"#;
    let (a, _a) = replica(&yaml).await;
    assert_eq!(post_chat(&a, body).await.status, 200);
    // Redis holds the rotated token, under the credential's digest.
    let (mut c, name) = kept_name(&redis).await;
    let kept: String = redis::cmd("GET")
        .arg(&name)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(kept, "refresh-1");
    // A replica that starts now (or A after a restart) asks with it, not the spent one.
    let (b, _b) = replica(&yaml).await;
    assert_eq!(post_chat(&b, body).await.status, 200);
    let forms = endpoint.forms();
    assert_eq!(forms.len(), 2);
    assert_eq!(forms[1]["refresh_token"], "refresh-1");
    assert_eq!(endpoint.refresh_tokens(), ["refresh-2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_by_another_replica_in_the_middle_of_a_refresh_is_taken_up() {
    let (redis, mock, endpoint, yaml) = shared_setup().await;
    let (a, _a) = replica(&yaml).await;
    let body = r#"{"model":"g","messages":[{"role":"user","content":"hi"}]}"#;
    assert_eq!(post_chat(&a, body).await.status, 200);
    // The upstream refuses access-1: A renews with refresh-1, which it read from Redis; its
    // request is held at the endpoint.
    mock.add_rule(Rule::new(Fault::Status(401)).key("access-1"));
    endpoint.hold();
    let a = std::sync::Arc::new(a);
    let call = {
        let a = a.clone();
        tokio::spawn(async move { post_chat(&a, body).await.status })
    };
    for _ in 0..500 {
        if endpoint.forms().len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(endpoint.forms()[1]["refresh_token"], "refresh-1");
    // Meanwhile another replica refreshed: refresh-1 is retired, Redis holds its successor.
    endpoint.rotate_now("refresh-1", "refresh-other");
    let (mut c, name) = kept_name(&redis).await;
    let () = redis::cmd("SET")
        .arg(&name)
        .arg("refresh-other")
        .query_async(&mut c)
        .await
        .unwrap();
    endpoint.release();
    // Refused, A reads Redis again and asks with the other replica's token: the call goes
    // through, and the key does not rest.
    assert_eq!(call.await.unwrap(), 200);
    let forms = endpoint.forms();
    assert_eq!(forms.len(), 3, "{forms:?}");
    assert_eq!(forms[2]["refresh_token"], "refresh-other");
    assert_eq!(a.router.usage()[0].live.as_ref().unwrap().state, "closed");
    assert_eq!(mock.count("access-2", None), 1);
}
