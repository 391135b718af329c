//! Upstream keys that are OAuth 2.0 credentials, against an in-process token endpoint: the
//! token obtained when first needed, renewed ahead of expiry (tokio's paused clock) and once
//! after a 401, one token request for any number of requests at once, a refused credential
//! resting its key with the reason shown, rotated refresh tokens kept for a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{chat, LiveRecord};
use mock_upstream::{Fault, MockUpstream, Rule, TokenEndpoint};
use router_core::{Format, Router, Secret, Source, TokenVault, VaultFuture};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CHAT: &str = r#"{"model":"g","messages":[{"role":"user","content":"hi"}]}"#;

/// Group `g` on provider `p` (at `mock`), whose keys are `keys` (YAML flow items).
fn config(mock: &MockUpstream, kind: &str, keys: &[String]) -> String {
    format!(
        "groups:\n  - name: g\n    models: [{{provider: p, name: m}}]\nproviders:\n  - name: p\n    type: {kind}\n    base_url: \"{}\"\n    api_keys:\n{}\n",
        match kind {
            "azure" => format!("http://{}", mock.addr()),
            _ => mock.base_url(),
        },
        keys.iter()
            .map(|k| format!("      - {k}"))
            .collect::<Vec<_>>()
            .join("\n")
    )
}

/// A refresh-token credential of `endpoint`, logged in with `refresh-0`.
fn refreshing(endpoint: &TokenEndpoint) -> String {
    format!(
        "{{oauth: {{grant: refresh_token, token_url: \"{}\", client_id: router-test, refresh_token: refresh-0}}}}",
        endpoint.url()
    )
}

fn router(yaml: &str) -> Arc<Router> {
    Arc::new(Router::from_source(&Source::from_text(yaml, Format::Yaml)).unwrap())
}

/// The mock upstream, a token endpoint that accepts `refresh-0` (rotating refresh tokens when
/// `rotate`), and a router whose one key logs in with it.
async fn logged_in(rotate: bool) -> (MockUpstream, TokenEndpoint, Arc<Router>) {
    let mock = MockUpstream::start().await.unwrap();
    let endpoint = TokenEndpoint::start().await.unwrap();
    endpoint.accept_refresh_token("refresh-0");
    endpoint.rotate_refresh_tokens(rotate);
    let r = router(&config(&mock, "openai", &[refreshing(&endpoint)]));
    (mock, endpoint, r)
}

/// The bearer tokens the mock upstream was sent, in order.
fn bearers(mock: &MockUpstream) -> Vec<String> {
    mock.requests().iter().filter_map(|r| r.bearer()).collect()
}

/// Waits (on the paused clock, a millisecond at a time) until `endpoint` has granted `n`
/// tokens; fails after a simulated minute.
async fn granted(endpoint: &TokenEndpoint, n: u64) {
    for _ in 0..60_000 {
        if endpoint.issued() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!(
        "the token endpoint granted {} tokens, not {n}",
        endpoint.issued()
    );
}

#[tokio::test(start_paused = true)]
async fn a_token_is_renewed_ahead_of_expiry_then_waited_for_once_expired() {
    let (mock, endpoint, r) = logged_in(true).await;
    endpoint.set_expires_in(Some(600));

    assert_eq!(chat(&r, CHAT.as_bytes()).await.unwrap().status, 200);
    assert_eq!(endpoint.issued(), 1);
    let form = &endpoint.forms()[0];
    assert_eq!(form["grant_type"], "refresh_token");
    assert_eq!(form["refresh_token"], "refresh-0");
    assert_eq!(form["client_id"], "router-test");
    // Renewal is due a fifth of the lifetime before expiry, less up to a fifth of that:
    // between 480 s and 504 s. At 400 s the token is simply used.
    tokio::time::advance(Duration::from_secs(400)).await;
    assert_eq!(chat(&r, CHAT.as_bytes()).await.unwrap().status, 200);
    assert_eq!(endpoint.issued(), 1);
    // At 505 s it is due: the request goes with the token still good, and the renewal runs
    // beside it, with the rotated refresh token.
    tokio::time::advance(Duration::from_secs(105)).await;
    assert_eq!(chat(&r, CHAT.as_bytes()).await.unwrap().status, 200);
    granted(&endpoint, 2).await;
    assert_eq!(endpoint.forms()[1]["refresh_token"], "refresh-1");
    assert_eq!(chat(&r, CHAT.as_bytes()).await.unwrap().status, 200);
    assert_eq!(
        bearers(&mock),
        ["access-1", "access-1", "access-1", "access-2"]
    );
    // Long past expiry, a request waits for the new token rather than send a dead one.
    tokio::time::advance(Duration::from_secs(3600)).await;
    assert_eq!(chat(&r, CHAT.as_bytes()).await.unwrap().status, 200);
    assert_eq!(endpoint.issued(), 3);
    assert_eq!(bearers(&mock).last().unwrap(), "access-3");
    assert_eq!(endpoint.refresh_tokens(), ["refresh-3"]);
}

#[tokio::test(start_paused = true)]
async fn a_401_renews_the_token_once_and_sends_the_call_again() {
    let (mock, endpoint, r) = logged_in(false).await;
    // The upstream revoked access-1 before its time.
    mock.add_rule(Rule::new(Fault::Status(401)).key("access-1"));
    let answer = chat(&r, CHAT.as_bytes()).await.unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(bearers(&mock), ["access-1", "access-2"]);
    assert_eq!(endpoint.issued(), 2);
    let row = &r.usage()[0];
    assert_eq!(row.live_state().state, "closed");
    // A token refused again right after its renewal is not renewed a second time: the key is
    // refused as any key the upstream refuses.
    mock.add_rule(Rule::new(Fault::Status(401)).key("access-2"));
    mock.add_rule(Rule::new(Fault::Status(401)).key("access-3"));
    let err = chat(&r, CHAT.as_bytes()).await.unwrap_err();
    assert_eq!(err.status(), 502, "{err:?}");
    assert!(err.client_message().contains("status 401"), "{err:?}");
    assert_eq!(endpoint.issued(), 3);
    assert_eq!(r.usage()[0].live_state().state, "disabled");
}

/// The body of `answer`, as text.
async fn text_of(answer: router_core::ChatResponse) -> String {
    String::from_utf8(answer.body.collect_bytes().await.to_vec()).unwrap()
}

#[tokio::test(start_paused = true)]
async fn an_access_token_the_upstream_echoes_reaches_the_client_masked() {
    let (mock, _endpoint, r) = logged_in(false).await;
    // An error answer naming the token it was sent (in no config: the endpoint issued it).
    mock.add_rule(Rule::new(Fault::EchoKey(400)));
    let answer = chat(&r, CHAT.as_bytes()).await.unwrap();
    assert_eq!(answer.status, 400);
    let text = text_of(answer).await;
    assert!(text.contains("you sent auth Bearer …-1"), "{text}");
    assert!(!text.contains("access-1"), "{text}");
    // A stream's error event naming it.
    mock.clear_rules();
    let events = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"error\":{\"message\":\"bad auth access-1\",\"type\":\"server_error\"}}\n\n";
    mock.add_rule(Rule::new(Fault::EventStream(events.to_string())));
    let streamed = r#"{"model":"g","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let text = text_of(chat(&r, streamed.as_bytes()).await.unwrap()).await;
    assert!(text.contains("bad auth …-1"), "{text}");
    assert!(!text.contains("access-1"), "{text}");
    assert_eq!(bearers(&mock), ["access-1", "access-1"]);
}

/// Sends `n` requests at once; each is answered 200.
async fn all_served(r: &Arc<Router>, n: usize) {
    let calls: Vec<_> = (0..n)
        .map(|_| {
            let r = r.clone();
            tokio::spawn(async move { chat(&r, CHAT.as_bytes()).await.map(|a| a.status) })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap(), 200);
    }
}

#[tokio::test(start_paused = true)]
async fn a_hundred_requests_at_once_cause_one_token_request() {
    let (mock, endpoint, r) = logged_in(true).await;
    all_served(&r, 100).await;
    assert_eq!(endpoint.forms().len(), 1, "one token request");
    // A hundred 401s at once: one renewal, and each call sent again with its token.
    mock.add_rule(Rule::new(Fault::Status(401)).key("access-1"));
    all_served(&r, 100).await;
    assert_eq!(endpoint.forms().len(), 2, "one renewal");
    assert_eq!(mock.count("access-2", None), 100);
}

#[tokio::test(start_paused = true)]
async fn a_refused_credential_rests_its_key_with_the_reason_shown() {
    let mock = MockUpstream::start().await.unwrap();
    let endpoint = TokenEndpoint::start().await.unwrap();
    // `refresh-0` was revoked: the endpoint does not accept it. A static key stands beside.
    let keys = [
        refreshing(&endpoint),
        "\"sk-static-0000000001\"".to_string(),
    ];
    let r = router(&config(&mock, "openai", &keys));
    for _ in 0..3 {
        let answer = chat(&r, CHAT.as_bytes()).await.unwrap();
        assert_eq!(answer.status, 200);
        assert_eq!(&*answer.served.key_id, "p#1");
    }
    assert_eq!(endpoint.forms().len(), 1, "asked once, then rested");
    let rows: HashMap<String, _> = (r.usage().into_iter())
        .map(|u| (u.key_id.clone().unwrap(), u))
        .collect();
    let refused = rows["p#0"].live_state();
    assert_eq!(rows["p#0"].key_masked, "oauth:router-test");
    assert_eq!(refused.state, "credential_refused");
    assert!(refused.until.is_some());
    let reason = refused.last_error.as_deref().unwrap();
    assert!(
        reason.contains("refused the refresh_token grant (400 Bad Request): invalid_grant (the refresh token …-0 is not valid)"),
        "{reason}"
    );
    assert!(!reason.contains("refresh-0"), "{reason}");
    assert_eq!(refused.failures.unauthorized, 1);
    // After the rest, the endpoint is asked again; now it accepts.
    endpoint.accept_refresh_token("refresh-0");
    tokio::time::advance(Duration::from_secs(61)).await;
    let answer = chat(&r, CHAT.as_bytes()).await.unwrap();
    assert_eq!(&*answer.served.key_id, "p#0");
    assert_eq!(endpoint.forms().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn client_credentials_reach_azure_as_a_bearer_token() {
    let mock = MockUpstream::start().await.unwrap();
    let endpoint = TokenEndpoint::start().await.unwrap();
    endpoint.accept_client_secret("entra-secret-value");
    let key = format!(
        "{{oauth: {{grant: client_credentials, token_url: \"{}\", client_id: app-1, client_secret: entra-secret-value, scope: \"https://cognitiveservices.azure.com/.default\"}}}}",
        endpoint.url()
    );
    let r = router(&config(&mock, "azure", &[key]));
    assert_eq!(chat(&r, CHAT.as_bytes()).await.unwrap().status, 200);
    let seen = &mock.requests()[0];
    assert_eq!(seen.bearer().as_deref(), Some("access-1"));
    assert!(seen.headers.get("api-key").is_none());
    let form = &endpoint.forms()[0];
    assert_eq!(form["grant_type"], "client_credentials");
    assert_eq!(form["client_secret"], "entra-secret-value");
    assert_eq!(
        form["scope"],
        "https://cognitiveservices.azure.com/.default"
    );
    assert!(!form.contains_key("refresh_token"));
    // An embedder that sends its own calls gets the same token from a pick.
    let picked = r.pick("g", 1).unwrap();
    let token = picked.access_token().await.unwrap().unwrap();
    assert_eq!(token.expose(), "access-1");
    picked.release();
    assert_eq!(endpoint.issued(), 1);
}

/// A vault in memory, as an embedder's store would be.
#[derive(Default)]
struct MemoryVault(Mutex<HashMap<String, String>>);

impl TokenVault for MemoryVault {
    fn load<'a>(&'a self, credential: &'a str) -> VaultFuture<'a, Option<Secret>> {
        let token = self.0.lock().unwrap().get(credential).cloned();
        Box::pin(async move { Ok(token.map(Secret::new)) })
    }
    fn save<'a>(&'a self, credential: &'a str, token: &'a Secret) -> VaultFuture<'a, ()> {
        (self.0.lock().unwrap()).insert(credential.to_string(), token.expose().to_string());
        Box::pin(async { Ok(()) })
    }
}

#[tokio::test(start_paused = true)]
async fn a_restart_goes_on_with_the_rotated_refresh_token() {
    let mock = MockUpstream::start().await.unwrap();
    let endpoint = TokenEndpoint::start().await.unwrap();
    endpoint.accept_refresh_token("refresh-0");
    endpoint.rotate_refresh_tokens(true);
    let yaml = config(&mock, "openai", &[refreshing(&endpoint)]);
    let vault = Arc::new(MemoryVault::default());
    let first = router(&yaml);
    first.keep_tokens_in(vault.clone());
    assert_eq!(chat(&first, CHAT.as_bytes()).await.unwrap().status, 200);
    drop(first);
    // `refresh-0` is spent; the vault holds `refresh-1`, under a digest, not a secret.
    assert_eq!(endpoint.refresh_tokens(), ["refresh-1"]);
    let kept = vault.0.lock().unwrap().clone();
    assert_eq!(kept.values().collect::<Vec<_>>(), ["refresh-1"]);
    assert!(kept.keys().all(|k| k.len() == 16 && !k.contains("refresh")));
    let second = router(&yaml);
    second.keep_tokens_in(vault.clone());
    assert_eq!(chat(&second, CHAT.as_bytes()).await.unwrap().status, 200);
    assert_eq!(endpoint.forms()[1]["refresh_token"], "refresh-1");
    assert_eq!(endpoint.refresh_tokens(), ["refresh-2"]);
}

/// The config's problems with `key` as provider `p`'s one key.
fn problems(key: &str) -> String {
    let yaml = format!(
        "groups:\n  - name: g\n    models: [{{provider: p, name: m}}]\nproviders:\n  - name: p\n    base_url: \"http://127.0.0.1:9/v1\"\n    api_keys:\n      - {key}\n"
    );
    match Router::from_source(&Source::from_text(&yaml, Format::Yaml)) {
        Ok(_) => panic!("expected problems with {key}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_credential_that_cannot_ask_for_a_token_is_refused_where_it_is_written() {
    let e = problems("{oauth: {grant: refresh_token, token_url: \"ftp://x/token\", client_id: c, refresh_token: secret-refresh-value}}");
    assert!(
        e.contains("providers[0].api_keys[0].oauth.token_url: must be an http:// or https:// URL"),
        "{e}"
    );
    assert!(!e.contains("secret-refresh-value"), "{e}");
    let e =
        problems("{oauth: {grant: refresh_token, token_url: \"https://x/token\", client_id: c}}");
    assert!(
        e.contains(
            "providers[0].api_keys[0].oauth.refresh_token: the refresh_token grant needs one"
        ),
        "{e}"
    );
    let e = problems("{oauth: {grant: client_credentials, token_url: \"https://x/token\", client_id: \"\", client_secret: s3cr3t-value}}");
    assert!(
        e.contains("providers[0].api_keys[0].oauth.client_id: must not be empty"),
        "{e}"
    );
    assert!(!e.contains("s3cr3t-value"), "{e}");
    let e = problems("{key: sk-0000000000000001, oauth: {grant: client_credentials, token_url: \"https://x/token\", client_id: c, client_secret: s}}");
    assert!(e.contains("either `key` or `oauth`"), "{e}");
    let e = problems("{oauth: {grant: password, token_url: \"https://x/token\", client_id: c}}");
    assert!(e.contains("unknown variant `password`"), "{e}");
}

#[test]
fn a_credential_whose_secret_is_unset_is_skipped_with_a_warning() {
    let yaml = "groups:\n  - name: g\n    models: [{provider: p, name: m}]\nproviders:\n  - name: p\n    base_url: \"http://127.0.0.1:9/v1\"\n    api_keys:\n      - {oauth: {grant: refresh_token, token_url: \"https://x/token\", client_id: c, refresh_token: \"${OAUTH_TEST_UNSET_REFRESH}\"}}\n      - sk-0000000000000001\n";
    let r = Router::from_source(&Source::from_text(yaml, Format::Yaml)).unwrap();
    let snapshot = r.snapshot();
    let warnings = snapshot.warnings().join("\n");
    assert!(
        warnings.contains("providers[0].api_keys[0].oauth.refresh_token: ${OAUTH_TEST_UNSET_REFRESH} is empty; key skipped"),
        "{warnings}"
    );
    assert_eq!(snapshot.group("g").unwrap().pairs().len(), 1);
}
