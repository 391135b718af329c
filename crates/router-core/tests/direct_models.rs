//! Models without a group: a provider's `models` are callable as `provider/model`, and as the
//! bare name when it is no one else's; a bare name several providers list is a 400 naming the
//! choices. Such calls are balanced over the provider's keys, fail over among them, and are
//! counted like any other.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::chat;
use mock_upstream::{Fault, MockUpstream, Rule};
use router_core::{Format, Router, Source};

fn router(mock: &MockUpstream) -> Router {
    let yaml = format!(
        "groups:\n  - name: shared\n    models: [{{provider: b, name: shared}}]\n\
         providers:\n\
         \x20 - {{name: a, base_url: \"{0}\", api_keys: [\"ka1\", \"ka2\"], models: [only-a, both, shared]}}\n\
         \x20 - {{name: b, base_url: \"{0}\", api_key: \"kb1\", models: [both]}}\n",
        mock.base_url()
    );
    Router::from_source(&Source::from_text(&yaml, Format::Yaml)).unwrap()
}

fn body(model: &str) -> String {
    format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#)
}

#[tokio::test]
async fn a_providers_models_are_callable_by_full_and_bare_name() {
    let mock = MockUpstream::start().await.unwrap();
    let r = router(&mock);
    for name in ["a/only-a", "only-a", "a/only-a", "only-a"] {
        let answer = chat(&r, body(name).as_bytes()).await.unwrap();
        assert_eq!(
            (&*answer.served.provider, &*answer.served.model),
            ("a", "only-a")
        );
        assert_eq!(&*answer.served.group, "a/only-a", "{name}");
    }
    // Balanced over the provider's keys, and counted.
    assert_eq!((mock.count("ka1", None), mock.count("ka2", None)), (2, 2));
    let usage = r.usage();
    let rows: Vec<_> = usage.iter().filter(|u| u.model == "only-a").collect();
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter().all(|u| u.provider == "a" && u.requests == 2),
        "{rows:?}"
    );
    // A group of that name wins over the bare name; the full name still reaches provider a.
    let answer = chat(&r, body("shared").as_bytes()).await.unwrap();
    assert_eq!(&*answer.served.provider, "b");
    let answer = chat(&r, body("a/shared").as_bytes()).await.unwrap();
    assert_eq!(&*answer.served.provider, "a");
    assert_eq!(
        &*chat(&r, body("b/both").as_bytes())
            .await
            .unwrap()
            .served
            .provider,
        "b"
    );
}

#[tokio::test]
async fn a_bare_name_of_several_providers_is_a_400_naming_them() {
    let mock = MockUpstream::start().await.unwrap();
    let r = router(&mock);
    let e = chat(&r, body("both").as_bytes()).await.unwrap_err();
    assert_eq!(e.status(), 400);
    let message = e.client_message();
    assert!(message.contains("a/both, b/both"), "{message}");
    let e = chat(&r, body("nobody").as_bytes()).await.unwrap_err();
    assert_eq!(e.status(), 404);
    assert_eq!(mock.request_count(), 0);
}

#[tokio::test]
async fn a_direct_call_fails_over_among_the_providers_keys() {
    let mock = MockUpstream::start().await.unwrap();
    mock.add_rule(Rule::new(Fault::Status(500)).key("ka1"));
    let r = router(&mock);
    let answer = chat(&r, body("only-a").as_bytes()).await.unwrap();
    assert_eq!((&*answer.served.key_id, answer.served.attempts), ("a#1", 2));
}

#[test]
fn providers_models_alone_are_a_config() {
    let yaml = "providers:\n  - {name: m, type: mock, models: [echo]}\n";
    let r = Router::from_source(&Source::from_text(yaml, Format::Yaml)).unwrap();
    assert!(r.snapshot().group("m/echo").is_some() && r.snapshot().group("echo").is_some());
    let e = Router::from_source(&Source::from_text(
        "providers:\n  - {name: m, type: mock}\n",
        Format::Yaml,
    ))
    .unwrap_err();
    assert!(e.to_string().contains("no groups defined"), "{e}");
}
