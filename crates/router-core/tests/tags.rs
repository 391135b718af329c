//! Tags: a request asks for tags (`x-llm-router-tags`, or the body's `metadata.tags`), and only
//! the models of its group that carry all of them serve it, under every strategy, failing over
//! among them only; none is a 400 that names the tags and the group. The body's tags never
//! reach the upstream.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use http::HeaderMap;
use mock_upstream::{Fault, MockUpstream, Rule};
use router_core::{ChatResponse, ClientRequest, Format, Router, RouterError, Source};

const STRATEGIES: [&str; 5] = [
    "usage",
    "round_robin",
    "fallback",
    "weighted_random",
    "least_busy",
];

fn router(mock: &MockUpstream, strategy: &str) -> Router {
    let yaml = format!(
        "groups:\n  - name: g\n    strategy: {strategy}\n    models:\n\
         \x20     - {{provider: up, name: m-eu, tags: [eu]}}\n\
         \x20     - {{provider: up, name: m-us, tags: [us, fast]}}\n\
         \x20     - {{provider: up, name: m-eu-fast, tags: [eu, fast]}}\n\
         providers:\n  - {{name: up, base_url: \"{}\", api_keys: [\"sk-tags-1\", \"sk-tags-2\"]}}\n",
        mock.base_url()
    );
    Router::from_source(&Source::from_text(&yaml, Format::Yaml)).unwrap()
}

async fn ask(r: &Router, header: Option<&str>, body: &str) -> Result<ChatResponse, RouterError> {
    let mut headers = HeaderMap::new();
    if let Some(tags) = header {
        headers.insert(router_core::TAGS_HEADER, tags.parse().unwrap());
    }
    let client = ClientRequest::chat(body.as_bytes()).with_headers(&headers);
    r.forward(&r.snapshot(), client).await
}

const PLAIN: &str = r#"{"model":"g","messages":[{"role":"user","content":"hi"}]}"#;
const EU_IN_BODY: &str = r#"{"model":"g","metadata":{"tags":["eu"],"user_id":"u-1"},"messages":[{"role":"user","content":"hi"}]}"#;

#[tokio::test]
async fn only_models_carrying_every_tag_serve_under_every_strategy() {
    for strategy in STRATEGIES {
        let mock = MockUpstream::start().await.unwrap();
        let r = router(&mock, strategy);
        for _ in 0..12 {
            let answer = ask(&r, Some("fast, eu"), PLAIN).await.unwrap();
            assert_eq!(&*answer.served.model, "m-eu-fast", "{strategy}");
        }
        for _ in 0..12 {
            let answer = ask(&r, None, EU_IN_BODY).await.unwrap();
            assert!(
                answer.served.model.starts_with("m-eu"),
                "{strategy}: {}",
                answer.served.model
            );
        }
        // The header's and the body's tags together.
        let answer = ask(&r, Some("fast"), EU_IN_BODY).await.unwrap();
        assert_eq!(&*answer.served.model, "m-eu-fast", "{strategy}");
        // Without tags, every model may serve.
        let mut models = std::collections::HashSet::new();
        for _ in 0..30 {
            models.insert(ask(&r, None, PLAIN).await.unwrap().served.model);
        }
        if strategy != "fallback" {
            assert_eq!(models.len(), 3, "{strategy}: {models:?}");
        }
        // The body's tags stay in the router; the rest of `metadata` goes on.
        for seen in mock.requests() {
            let body = seen.json();
            assert!(body["metadata"].get("tags").is_none(), "{body}");
            if body["metadata"].is_object() {
                assert_eq!(body["metadata"]["user_id"], "u-1");
            }
        }
    }
}

#[tokio::test]
async fn failover_stays_among_the_tagged_models() {
    let mock = MockUpstream::start().await.unwrap();
    mock.add_rule(Rule::new(Fault::Status(500)).model("m-eu"));
    let r = router(&mock, "fallback");
    // m-eu fails; untagged, fallback would go to m-us next (model 2): with `eu`, m-eu-fast.
    let answer = ask(&r, Some("eu"), PLAIN).await.unwrap();
    assert_eq!(&*answer.served.model, "m-eu-fast");
    assert!(answer.served.attempts > 1);
    // Both eu models fail: the request fails rather than going to m-us.
    mock.add_rule(Rule::new(Fault::Status(500)).model("m-eu-fast"));
    let e = ask(&r, Some("eu"), PLAIN).await.unwrap_err();
    assert_eq!(e.status(), 502, "{e}");
    assert!(mock.requests().iter().all(|s| s.json()["model"] != "m-us"));
}

#[tokio::test]
async fn tags_no_model_carries_are_a_400_naming_them_and_the_group() {
    let mock = MockUpstream::start().await.unwrap();
    let r = router(&mock, "usage");
    let e = ask(&r, Some("eu, gpu"), PLAIN).await.unwrap_err();
    assert_eq!(e.status(), 400);
    let message = e.client_message();
    assert!(
        message.contains("'g'") && message.contains("eu, gpu"),
        "{message}"
    );
    // Pinned to a model without them.
    let pinned = PLAIN.replace(r#""model":"g""#, r#""model":"g$2""#);
    let e = ask(&r, Some("eu"), &pinned).await.unwrap_err();
    assert_eq!(e.status(), 400);
    assert!(
        e.client_message().contains("model 2 of group 'g'"),
        "{}",
        e.client_message()
    );
    // Tags in the body must be strings.
    let bad =
        r#"{"model":"g","metadata":{"tags":"eu"},"messages":[{"role":"user","content":"hi"}]}"#;
    let e = ask(&r, None, bad).await.unwrap_err();
    assert_eq!(e.status(), 400);
    assert!(e.client_message().contains("metadata.tags"));
    assert_eq!(mock.request_count(), 0);
}

#[test]
fn a_tag_must_be_a_word() {
    let yaml = "groups:\n  - name: g\n    models: [{provider: m, name: e, tags: [\"a b\"]}]\n\
                providers:\n  - {name: m, type: mock}\n";
    let e = Router::from_source(&Source::from_text(yaml, Format::Yaml)).unwrap_err();
    assert!(e.to_string().contains("groups[0].models[0].tags[0]"), "{e}");
}
