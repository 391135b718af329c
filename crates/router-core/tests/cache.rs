//! The response cache of a group, through router-core to the mock upstream: a repeated
//! request is answered from the cache (charged nothing, the upstream not asked), a stream is
//! replayed event by event, the client's Cache-Control is obeyed, entries expire with their
//! ttl on the runtime's clock, and errors and broken streams are never kept.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::chat;
use http::HeaderMap;
use mock_upstream::MockUpstream;
use router_core::{CacheOutcome, ChatResponse, ClientRequest, Format, Router, Source};
use std::time::Duration;

const CHAT: &str = r#"{"model":"g","messages":[{"role":"user","content":"keep me"}]}"#;
const STREAM: &str =
    r#"{"model":"g","stream":true,"messages":[{"role":"user","content":"one two three"}]}"#;

/// One group `g` of `model` on the mock, with this `cache`.
fn yaml(mock: &MockUpstream, cache: &str, model: &str) -> String {
    format!(
        "groups:\n  - name: g\n    cache: {cache}\n    models: [{{provider: up, name: {model}}}]\n\
         providers:\n  - {{name: up, base_url: \"{}\", api_key: \"sk-cache-test-1\"}}\n",
        mock.base_url()
    )
}

fn router(mock: &MockUpstream, cache: &str) -> Router {
    let yaml = yaml(mock, cache, "upstream-model");
    Router::from_source(&Source::from_text(&yaml, Format::Yaml)).unwrap()
}

fn cache_header(answer: &ChatResponse) -> &str {
    answer.headers[router_core::CACHE_HEADER].to_str().unwrap()
}

/// Asks `CHAT` with these `Cache-Control` values; the outcome and the body.
async fn ask_with(r: &Router, cache_control: &[&str]) -> (Option<CacheOutcome>, String) {
    let mut headers = HeaderMap::new();
    for value in cache_control {
        headers.append("cache-control", value.parse().unwrap());
    }
    let client = ClientRequest::chat(CHAT.as_bytes()).with_headers(&headers);
    let answer = r.forward(&r.snapshot(), client).await.unwrap();
    assert_eq!(answer.status, 200);
    let outcome = answer.served.cache;
    let body = answer.body.collect_bytes().await;
    (outcome, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn a_repeated_request_is_answered_from_the_cache_and_charged_once() {
    let mock = MockUpstream::start().await.unwrap();
    let r = router(&mock, "{ttl: 1h}");
    let first = chat(&r, CHAT.as_bytes()).await.unwrap();
    assert_eq!(cache_header(&first), "miss");
    assert_eq!(first.served.cache, Some(CacheOutcome::Miss));
    assert_eq!(&*first.served.provider, "up");
    let first_body = first.body.collect_bytes().await;

    // The same request written differently (key order, spacing) is the same request.
    let again = r#"{ "messages": [ {"content": "keep me", "role": "user"} ], "model": "g" }"#;
    let mut second = chat(&r, again.as_bytes()).await.unwrap();
    assert_eq!(second.status, 200);
    assert_eq!(cache_header(&second), "hit");
    assert_eq!(second.headers["content-type"], "application/json");
    assert_eq!(second.served.cache, Some(CacheOutcome::Hit));
    assert_eq!(
        (&*second.served.provider, second.served.attempts),
        ("cache", 0)
    );
    assert_eq!(&*second.served.model, "upstream-model");
    assert_eq!(second.body.settle_usage(), None, "a hit charges nothing");
    assert_eq!(second.body.collect_bytes().await, first_body);

    assert_eq!(mock.request_count(), 1);
    let usage = r.usage();
    assert_eq!(
        (usage[0].requests, usage[0].total_tokens),
        (1, mock.tokens_reported())
    );

    // Another question is another request.
    let other = CHAT.replace("keep me", "something else");
    let third = chat(&r, other.as_bytes()).await.unwrap();
    assert_eq!(cache_header(&third), "miss");
    assert_eq!(mock.request_count(), 2);
    assert_eq!(r.cached_answers(), 2);
}

#[tokio::test]
async fn a_stream_is_replayed_as_a_stream() {
    let mock = MockUpstream::start().await.unwrap();
    let r = router(&mock, "{ttl: 10m, backend: local}");
    let first = chat(&r, STREAM.as_bytes()).await.unwrap();
    assert_eq!(cache_header(&first), "miss");
    let sent = first.body.collect_bytes().await;
    assert!(sent.ends_with(b"data: [DONE]\n\n"));

    let second = chat(&r, STREAM.as_bytes()).await.unwrap();
    assert_eq!(cache_header(&second), "hit");
    assert!(second.body.is_stream());
    assert_eq!(second.headers["content-type"], "text/event-stream");
    assert_eq!(second.headers["cache-control"], "no-cache");
    // One frame per event, as a stream is sent.
    let mut body = second.body;
    let mut frames = Vec::new();
    while let Some(frame) = http_body_util::BodyExt::frame(&mut body).await {
        frames.push(frame.unwrap().into_data().unwrap());
    }
    let events = sent.windows(2).filter(|w| w == b"\n\n").count();
    assert!(events > 3, "{events}");
    assert_eq!(frames.len(), events);
    assert!(frames.iter().all(|f| f.ends_with(b"\n\n")));
    assert_eq!(frames.concat(), sent.to_vec());
    assert_eq!(mock.request_count(), 1);
    // A complete request is another request: its answer is not the stream's.
    let complete = chat(&r, STREAM.replace("\"stream\":true,", "").as_bytes())
        .await
        .unwrap();
    assert_eq!(cache_header(&complete), "miss");
}

#[tokio::test]
async fn cache_control_skips_the_lookup_and_no_store_the_keeping() {
    let mock = MockUpstream::start().await.unwrap();
    let r = router(&mock, "{ttl: 1h}");
    // no-store: asked upstream, and not kept.
    assert_eq!(
        ask_with(&r, &["no-store"]).await.0,
        Some(CacheOutcome::Bypass)
    );
    assert_eq!(ask_with(&r, &[]).await.0, Some(CacheOutcome::Miss));
    assert_eq!(mock.request_count(), 2);
    // Kept now; no-cache asks upstream all the same (and keeps the fresh answer).
    assert_eq!(
        ask_with(&r, &["max-age=0", "no-cache"]).await.0,
        Some(CacheOutcome::Bypass)
    );
    assert_eq!(mock.request_count(), 3);
    assert_eq!(ask_with(&r, &[]).await.0, Some(CacheOutcome::Hit));
    assert_eq!(mock.request_count(), 3);
}

#[tokio::test(start_paused = true)]
async fn an_answer_expires_with_its_ttl() {
    let mock = MockUpstream::start().await.unwrap();
    let r = router(&mock, "{ttl: 10s}");
    assert_eq!(ask_with(&r, &[]).await.0, Some(CacheOutcome::Miss));
    tokio::time::advance(Duration::from_secs(9)).await;
    assert_eq!(ask_with(&r, &[]).await.0, Some(CacheOutcome::Hit));
    tokio::time::advance(Duration::from_millis(1_001)).await;
    assert_eq!(ask_with(&r, &[]).await.0, Some(CacheOutcome::Miss));
    assert_eq!(mock.request_count(), 2);
    // The fresh answer is kept for a full ttl again.
    tokio::time::advance(Duration::from_secs(9)).await;
    assert_eq!(ask_with(&r, &[]).await.0, Some(CacheOutcome::Hit));
}

#[tokio::test]
async fn errors_and_broken_streams_are_never_kept() {
    let mock = MockUpstream::start().await.unwrap();
    let r = router(&mock, "{ttl: 1h}");
    // The request's own 4xx is relayed, marked a miss, and not kept.
    mock.fail_next(&[400]);
    let refused = chat(&r, CHAT.as_bytes()).await.unwrap();
    assert_eq!(
        (refused.status.as_u16(), cache_header(&refused)),
        (400, "miss")
    );
    drop(refused);
    assert_eq!(ask_with(&r, &[]).await.0, Some(CacheOutcome::Miss));
    assert_eq!(mock.request_count(), 2);

    // A stream cut before its end: relayed with an error event, not kept.
    mock.cut_next_stream_after(3);
    let cut = chat(&r, STREAM.as_bytes()).await.unwrap();
    let text = cut.body.collect_bytes().await;
    assert!(!text.ends_with(b"data: [DONE]\n\n"));
    let whole = chat(&r, STREAM.as_bytes()).await.unwrap();
    assert_eq!(cache_header(&whole), "miss");
    assert!(whole
        .body
        .collect_bytes()
        .await
        .ends_with(b"data: [DONE]\n\n"));
    // A stream its client left before the end: not kept either.
    let other = STREAM.replace("one two three", "four five six");
    let left = chat(&r, other.as_bytes()).await.unwrap();
    drop(left);
    let after = chat(&r, other.as_bytes()).await.unwrap();
    assert_eq!(cache_header(&after), "miss");
    drop(after);
    // Only the whole stream was kept.
    assert_eq!(
        chat(&r, STREAM.as_bytes()).await.unwrap().served.cache,
        Some(CacheOutcome::Hit)
    );
    assert_eq!(mock.request_count(), 6);
}

#[tokio::test]
async fn a_reload_that_changes_the_groups_models_leaves_their_answers_behind() {
    let mock = MockUpstream::start().await.unwrap();
    let r = router(&mock, "{ttl: 1h}");
    assert_eq!(ask_with(&r, &[]).await.0, Some(CacheOutcome::Miss));
    assert_eq!(ask_with(&r, &[]).await.0, Some(CacheOutcome::Hit));
    let apply = |model: &str| {
        let text = yaml(&mock, "{ttl: 1h}", model);
        r.apply(&Source::from_text(&text, Format::Yaml).parse().unwrap())
            .unwrap();
    };
    // Another model answers now: not the old one's answer.
    apply("another-model");
    let (outcome, body) = ask_with(&r, &[]).await;
    assert_eq!(outcome, Some(CacheOutcome::Miss));
    assert!(body.contains("another-model"), "{body}");
    // The same models again (a reload of an unchanged group): its answers are still there.
    apply("upstream-model");
    assert_eq!(ask_with(&r, &[]).await.0, Some(CacheOutcome::Hit));
    assert_eq!(mock.request_count(), 2);
}

#[test]
fn a_cache_in_redis_needs_state_redis_and_a_ttl() {
    let refused = |cache: &str| {
        let yaml = format!(
            "groups:\n  - name: g\n    cache: {cache}\n    models: [{{provider: m, name: e}}]\n\
             providers:\n  - {{name: m, type: mock}}\n"
        );
        Router::from_source(&Source::from_text(&yaml, Format::Yaml))
            .unwrap_err()
            .to_string()
    };
    let e = refused("{ttl: 1h, backend: redis}");
    assert!(
        e.contains("groups[0].cache.backend") && e.contains("state.redis"),
        "{e}"
    );
    let e = refused("{ttl: 1h, backend: both}");
    assert!(e.contains("groups[0].cache.backend"), "{e}");
    let e = refused("{ttl: 0s}");
    assert!(e.contains("groups[0].cache.ttl"), "{e}");
    let e = refused("{ttl: 1h, backend: disk}");
    assert!(e.contains("groups[0].cache") && e.contains("local"), "{e}");
}
