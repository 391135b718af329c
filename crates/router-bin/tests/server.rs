//! The server over real HTTP: auth, errors, CORS, compression, body limit, streaming, h2c.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::Bytes;
use common::*;
use http::Method;
use http_body_util::{BodyExt, Full};
use mock_upstream::MockUpstream;
use std::io::Read;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CHAT: &str = r#"{"model":"g","messages":[{"role":"user","content":"hello server"}]}"#;

#[tokio::test]
async fn health_models_and_auth() {
    let mock = MockUpstream::start().await.unwrap();
    let server = TestServer::start(&config(&mock.base_url(), &["sk-1"], "")).await;
    let health = call(Method::GET, &server.url("/health"), &[], "").await;
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");

    let models = call(
        Method::GET,
        &server.url("/v1/models"),
        &[("authorization", &format!("Bearer {KEY}"))],
        "",
    )
    .await;
    assert_eq!(models.status, 200);
    assert_eq!(models.json()["object"], "list");
    assert_eq!(models.json()["data"][0]["id"], "g");

    for headers in [
        vec![],
        vec![("authorization", "Bearer wrong")],
        vec![("authorization", KEY)],
    ] {
        let r = call(Method::GET, &server.url("/v1/models"), &headers, "").await;
        assert_openai_error(&r, 401, "authentication_error");
        assert_eq!(r.headers["www-authenticate"], "Bearer");
    }
    let r = call(Method::POST, &server.url("/v1/chat/completions"), &[], CHAT).await;
    assert_openai_error(&r, 401, "authentication_error");
    assert!(mock.requests().is_empty());
    // x-api-key works too (as Anthropic SDKs send it).
    let r = call(
        Method::GET,
        &server.url("/admin/usage"),
        &[("x-api-key", KEY)],
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    server.shutdown().await;
}

#[tokio::test]
async fn chat_round_trip_and_client_key_never_goes_upstream() {
    let mock = MockUpstream::start().await.unwrap();
    let server = TestServer::start(&config(&mock.base_url(), &["sk-upstream-1"], "")).await;
    let r = post_chat(&server, CHAT).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "mock says: hello server"
    );
    let seen = &mock.requests()[0];
    assert_eq!(seen.bearer().as_deref(), Some("sk-upstream-1"));
    let all_headers = format!("{:?}", seen.headers);
    assert!(
        !all_headers.contains(KEY),
        "client key leaked upstream: {all_headers}"
    );
    let usage = call(
        Method::GET,
        &server.url("/admin/usage"),
        &[("authorization", &format!("Bearer {KEY}"))],
        "",
    )
    .await;
    let row = &usage.json()["usage"][0];
    assert_eq!(row["total_tokens"].as_u64(), Some(mock.tokens_reported()));
    assert_eq!(row["requests"], 1);
    // The key by its id and masked form; nothing else names it.
    assert_eq!(
        (row["key"].as_str(), row["key_masked"].as_str()),
        (Some("up#0"), Some("…-1"))
    );
    assert!(
        row.get("key_fingerprint").is_none() && row.get("key_id").is_none(),
        "{row}"
    );
    assert!(!usage.text().contains("sk-upstream-1"));
    server.shutdown().await;
}

#[tokio::test]
async fn every_error_case_is_openai_shaped() {
    let mock = MockUpstream::start().await.unwrap();
    let server = TestServer::start(&config(&mock.base_url(), &["sk-1"], "")).await;
    let cases: Vec<(&[u8], u16, &str, &str)> = vec![
        (b"{not json", 400, "invalid_request_error", "not valid JSON"),
        (
            b"[1,2,3]",
            400,
            "invalid_request_error",
            "must be a JSON object",
        ),
        (
            b"{\"model\":\"g\",\"messages\":[],\"x\":\"\xff\xfe\"}",
            400,
            "invalid_request_error",
            "UTF-8",
        ),
        (
            br#"{"messages":[]}"#,
            400,
            "invalid_request_error",
            "'model'",
        ),
        (
            br#"{"model":"g"}"#,
            400,
            "invalid_request_error",
            "'messages'",
        ),
        (
            br#"{"model":"nope","messages":[]}"#,
            404,
            "not_found_error",
            "'nope' does not exist",
        ),
    ];
    for (body, status, kind, needle) in cases {
        let r = call(
            Method::POST,
            &server.url("/v1/chat/completions"),
            &[("authorization", &format!("Bearer {KEY}"))],
            Bytes::from_static(body),
        )
        .await;
        assert_openai_error(&r, status, kind);
        assert!(
            r.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains(needle),
            "{}",
            r.text()
        );
    }
    let r = call(Method::GET, &server.url("/v1/chat/completions"), &[], "").await;
    assert_openai_error(&r, 405, "invalid_request_error");
    let r = call(Method::GET, &server.url("/nowhere"), &[], "").await;
    assert_openai_error(&r, 404, "not_found_error");
    assert!(mock.requests().is_empty());

    // Every upstream failing: 502 naming provider/model, never a key.
    mock.fail_next(&[500]);
    let r = post_chat(&server, CHAT).await;
    assert_openai_error(&r, 502, "upstream_error");
    assert!(r.text().contains("up/upstream-model"), "{}", r.text());
    assert!(!r.text().contains("sk-1"));
    server.shutdown().await;
}

#[tokio::test]
async fn cors_preflight_and_responses() {
    let mock = MockUpstream::start().await.unwrap();
    let server = TestServer::start(&config(&mock.base_url(), &["sk-1"], "")).await;
    let r = call(
        Method::OPTIONS,
        &server.url("/v1/chat/completions"),
        &[
            ("origin", "https://app.example"),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "authorization, content-type",
            ),
        ],
        "",
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(r.headers["access-control-allow-origin"], "*");
    let allowed = r.headers["access-control-allow-headers"].to_str().unwrap();
    for h in [
        "authorization",
        "content-type",
        "x-api-key",
        "anthropic-version",
        "anthropic-beta",
        "cache-control",
        "x-llm-router-tags",
    ] {
        assert!(allowed.contains(h), "{allowed}");
    }
    assert!(r.headers["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));
    let r = call(
        Method::GET,
        &server.url("/health"),
        &[("origin", "https://app.example")],
        "",
    )
    .await;
    assert_eq!(r.headers["access-control-allow-origin"], "*");
    // Errors carry CORS too, so a browser can read them.
    let r = call(
        Method::GET,
        &server.url("/v1/models"),
        &[("origin", "https://app.example")],
        "",
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.headers["access-control-allow-origin"], "*");
    server.shutdown().await;

    let restricted = config(
        &mock.base_url(),
        &["sk-1"],
        "server: {cors_origins: [\"https://good.example\"]}",
    );
    let server = TestServer::start(&restricted).await;
    let r = call(
        Method::GET,
        &server.url("/health"),
        &[("origin", "https://good.example")],
        "",
    )
    .await;
    assert_eq!(
        r.headers["access-control-allow-origin"],
        "https://good.example"
    );
    assert!(r.headers.get_all("vary").iter().any(|v| v == "Origin"));
    let r = call(
        Method::GET,
        &server.url("/health"),
        &[("origin", "https://evil.example")],
        "",
    )
    .await;
    assert!(r.headers.get("access-control-allow-origin").is_none());
    server.shutdown().await;
}

async fn post_encoded(server: &TestServer, body: &str, accept_encoding: Option<&str>) -> Reply {
    let auth = format!("Bearer {KEY}");
    let mut headers = vec![("authorization", auth.as_str())];
    if let Some(enc) = accept_encoding {
        headers.push(("accept-encoding", enc));
    }
    call(
        Method::POST,
        &server.url("/v1/chat/completions"),
        &headers,
        body.to_string(),
    )
    .await
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn unbrotli(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::Decompressor::new(data, 4096)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// The default minimum (4 KB): a typical chat answer goes as it is, a larger one is gzipped.
#[tokio::test]
async fn by_default_only_answers_from_4_kb_are_compressed() {
    let mock = MockUpstream::start().await.unwrap();
    let server = TestServer::start(&config(&mock.base_url(), &["sk-1"], "")).await;
    let ask = |words: usize| {
        let text = "word ".repeat(words);
        format!(r#"{{"model":"g","messages":[{{"role":"user","content":"{text}"}}]}}"#)
    };
    // About 1.5 KB of answer.
    let typical = post_encoded(&server, &ask(250), Some("gzip, deflate, br")).await;
    assert!(typical.body.len() > 1024 && typical.body.len() < 4096);
    assert!(typical.headers.get("content-encoding").is_none());
    // About 5.5 KB of answer.
    let large = post_encoded(&server, &ask(1000), Some("gzip, deflate, br")).await;
    assert_eq!(large.headers["content-encoding"], "gzip");
    assert!(gunzip(&large.body).len() > 4096);
    server.shutdown().await;
}

#[tokio::test]
async fn compression_by_accept_encoding() {
    let mock = MockUpstream::start().await.unwrap();
    let server = TestServer::start(&config(
        &mock.base_url(),
        &["sk-1"],
        "server: {compression_min_bytes: 100}",
    ))
    .await;
    let long = "word ".repeat(200);
    let body = format!(r#"{{"model":"g","messages":[{{"role":"user","content":"{long}"}}]}}"#);
    let plain = post_encoded(&server, &body, None).await;
    assert!(plain.headers.get("content-encoding").is_none());
    assert!(plain.body.len() > 1000);

    let gz = post_encoded(&server, &body, Some("gzip")).await;
    assert_eq!(gz.headers["content-encoding"], "gzip");
    assert!(gz
        .headers
        .get_all("vary")
        .iter()
        .any(|v| v == "Accept-Encoding"));
    assert!(gz.body.len() < plain.body.len());
    assert_eq!(gunzip(&gz.body), plain.body.to_vec());

    let br = post_encoded(&server, &body, Some("gzip;q=0.5, br;q=1")).await;
    assert_eq!(br.headers["content-encoding"], "br");
    assert_eq!(unbrotli(&br.body), plain.body.to_vec());

    let refused = post_encoded(&server, &body, Some("br;q=0, gzip;q=0")).await;
    assert!(refused.headers.get("content-encoding").is_none());

    // Below the minimum size: sent as is.
    let small = call(
        Method::GET,
        &server.url("/health"),
        &[("accept-encoding", "gzip")],
        "",
    )
    .await;
    assert!(small.headers.get("content-encoding").is_none());

    // A stream is gzipped when gzip is accepted, even if brotli is preferred, and decodes to
    // the same events; brotli alone leaves it as is.
    let stream_body =
        r#"{"model":"g","stream":true,"messages":[{"role":"user","content":"a b c"}]}"#;
    let plain = post_encoded(&server, stream_body, None).await;
    assert!(plain.text().ends_with("data: [DONE]\n\n"));
    let gz = post_encoded(&server, stream_body, Some("gzip;q=0.5, br")).await;
    assert_eq!(gz.headers["content-encoding"], "gzip");
    assert_eq!(String::from_utf8(gunzip(&gz.body)).unwrap(), plain.text());
    let br = post_encoded(&server, stream_body, Some("br")).await;
    assert!(br.headers.get("content-encoding").is_none());
    assert_eq!(br.text(), plain.text());
    server.shutdown().await;
}

async fn raw_exchange(stream: &mut tokio::net::TcpStream, request: &[u8]) -> String {
    stream.write_all(request).await.unwrap();
    // Read one response: headers, then a Content-Length body.
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(
            n > 0,
            "connection closed; got {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return text;
            }
        }
    }
}

#[tokio::test]
async fn body_limit_while_reading_and_connection_survives() {
    let mock = MockUpstream::start().await.unwrap();
    let server = TestServer::start(&config(
        &mock.base_url(),
        &["sk-1"],
        "server: {max_body_bytes: 1000}",
    ))
    .await;
    let mut conn = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let big = format!(
        r#"{{"model":"g","messages":[{{"role":"user","content":"{}"}}]}}"#,
        "x".repeat(3000)
    );

    // Declared length over the limit.
    let req = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {KEY}\r\ncontent-length: {}\r\n\r\n{big}",
        big.len()
    );
    let resp = raw_exchange(&mut conn, req.as_bytes()).await;
    assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");
    assert!(resp.contains("request_too_large"), "{resp}");

    // Chunked, no Content-Length: stopped while reading, same connection.
    let mut req = format!("POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {KEY}\r\ntransfer-encoding: chunked\r\n\r\n");
    for piece in big.as_bytes().chunks(500) {
        req.push_str(&format!(
            "{:x}\r\n{}\r\n",
            piece.len(),
            std::str::from_utf8(piece).unwrap()
        ));
    }
    req.push_str("0\r\n\r\n");
    let resp = raw_exchange(&mut conn, req.as_bytes()).await;
    assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");

    // The connection keeps serving.
    let req = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {KEY}\r\ncontent-length: {}\r\n\r\n{CHAT}",
        CHAT.len()
    );
    let resp = raw_exchange(&mut conn, req.as_bytes()).await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains("mock says: hello server"));
    assert_eq!(mock.requests().len(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn first_chunk_arrives_before_upstream_finishes() {
    let mock = MockUpstream::start().await.unwrap();
    mock.hold_last_chunk(true);
    let server = TestServer::start(&config(&mock.base_url(), &["sk-1"], "")).await;
    let req = stream_request(&server, "one two", Some("gzip"));
    let resp = client().request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.into_body();
    let mut received = Vec::new();
    // The mock holds its last chunk until released: everything before it must arrive now,
    // compressed and flushed per event.
    while !String::from_utf8_lossy(&gunzip_partial(&received))
        .contains("\"finish_reason\":\"stop\"")
    {
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("events before the last were buffered")
            .unwrap()
            .unwrap();
        received.extend_from_slice(&frame.into_data().unwrap());
    }
    assert_eq!(mock.streams_finished(), 0);
    mock.release();
    while let Some(frame) = body.frame().await {
        received.extend_from_slice(&frame.unwrap().into_data().unwrap());
    }
    let text = String::from_utf8(gunzip(&received)).unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert_eq!(mock.streams_finished(), 1);
    server.shutdown().await;
}

/// Decodes as much of a gzip stream as has arrived.
fn gunzip_partial(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut decoder = flate2::read::GzDecoder::new(data);
    let mut buf = [0u8; 4096];
    while let Ok(n) = decoder.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    out
}

#[tokio::test]
async fn client_disconnect_cancels_the_upstream_stream() {
    let mock = MockUpstream::start().await.unwrap();
    mock.hold_last_chunk(true);
    let server = TestServer::start(&config(&mock.base_url(), &["sk-1"], "")).await;
    let req = stream_request(&server, "bye", None);
    let resp = client().request(req).await.unwrap();
    let mut body = resp.into_body();
    body.frame().await.unwrap().unwrap();
    drop(body);
    assert!(
        eventually(Duration::from_secs(10), || mock.streams_cancelled() == 1).await,
        "the upstream stream was not cancelled"
    );
    assert_eq!(mock.streams_finished(), 0);
    // The reservation was released.
    assert!(
        eventually(Duration::from_secs(5), || server
            .router
            .usage()
            .iter()
            .all(|u| u.live_state().reserved == 0))
        .await
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_client_that_leaves_before_the_usage_chunk_is_charged_an_estimate() {
    let mock = MockUpstream::start().await.unwrap();
    // Only the first chunk (the role, no text) comes before the client leaves.
    mock.set_chunk_delay(Duration::from_secs(600));
    let server = TestServer::start(&config(&mock.base_url(), &["sk-1"], "")).await;
    let resp = client()
        .request(stream_request(&server, "bye", None))
        .await
        .unwrap();
    let mut body = resp.into_body();
    body.frame().await.unwrap().unwrap();
    drop(body);
    assert!(
        eventually(Duration::from_secs(10), || server
            .router
            .usage()
            .iter()
            .all(|u| u.live_state().reserved == 0 && u.total_tokens > 0))
        .await,
        "the stream was not settled"
    );
    // The usage chunk never came, but the provider bills the prompt all the same: it is
    // charged by estimate, a token per four bytes of request.
    let sent = serde_json::json!({"model": "g", "stream": true, "messages": [{"role": "user", "content": "bye"}]});
    let u = &server.router.usage()[0];
    let prompt = sent.to_string().len().div_ceil(4) as u64;
    assert_eq!(
        (u.prompt_tokens, u.completion_tokens, u.total_tokens),
        (prompt, 0, prompt)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn h2c_prior_knowledge() {
    let mock = MockUpstream::start().await.unwrap();
    let server = TestServer::start(&config(&mock.base_url(), &["sk-1"], "")).await;
    let h2 = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    let req = http::Request::post(server.url("/v1/chat/completions"))
        .header("authorization", format!("Bearer {KEY}"))
        .body(Full::new(Bytes::from_static(CHAT.as_bytes())))
        .unwrap();
    let resp = h2.request(req).await.unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("mock says: hello server"));
    server.shutdown().await;
}

#[tokio::test]
async fn graceful_shutdown_lets_streams_finish() {
    let mock = MockUpstream::start().await.unwrap();
    mock.hold_last_chunk(true);
    let mut server = TestServer::start(&config(&mock.base_url(), &["sk-1"], "")).await;
    let req = stream_request(&server, "drain me", None);
    let resp = client().request(req).await.unwrap();
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    server.begin_shutdown();
    // New connections are refused once the listener is closed.
    let addr = server.addr;
    assert!(
        eventually(Duration::from_secs(10), || std::net::TcpStream::connect(
            addr
        )
        .is_err())
        .await,
        "still accepting after shutdown"
    );
    mock.release();
    let mut rest = first.to_vec();
    while let Some(frame) = body.frame().await {
        rest.extend_from_slice(&frame.unwrap().into_data().unwrap());
    }
    assert!(String::from_utf8(rest)
        .unwrap()
        .ends_with("data: [DONE]\n\n"));
    server.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_deadline_ends_open_streams_with_an_error_event() {
    let mock = MockUpstream::start().await.unwrap();
    mock.hold_last_chunk(true);
    let mut server = TestServer::start(&config(
        &mock.base_url(),
        &["sk-1"],
        "server: {shutdown_timeout: 5s}",
    ))
    .await;
    let resp = client()
        .request(stream_request(&server, "never ends", None))
        .await
        .unwrap();
    let mut body = resp.into_body();
    body.frame().await.unwrap().unwrap();
    server.begin_shutdown();
    // The held stream never finishes by itself: at the deadline it ends with an error event
    // the client can read, then serve returns and the connection is closed.
    let rest = tokio::spawn(async move {
        let mut rest = Vec::new();
        while let Some(Ok(frame)) = body.frame().await {
            rest.extend_from_slice(&frame.into_data().unwrap());
        }
        String::from_utf8(rest).unwrap()
    });
    server.shutdown().await;
    let rest = tokio::time::timeout(Duration::from_secs(60), rest)
        .await
        .expect("the connection outlived the shutdown deadline")
        .unwrap();
    assert!(
        rest.contains("\"code\":\"stream_interrupted\"")
            && rest.contains("the router is shutting down"),
        "{rest}"
    );
    mock.release();
}

#[tokio::test]
async fn all_rate_limited_is_a_429_with_retry_after_and_state_is_visible() {
    let mock = MockUpstream::start().await.unwrap();
    mock.add_rule(mock_upstream::Rule::new(
        mock_upstream::Fault::StatusRetryAfter(429, "42".into()),
    ));
    let server = TestServer::start(&config(&mock.base_url(), &["sk-only-key-0001"], "")).await;
    let r = post_chat(&server, CHAT).await;
    assert_openai_error(&r, 429, "rate_limit_error");
    assert_eq!(r.headers["retry-after"], "42");
    let usage = call(
        Method::GET,
        &server.url("/admin/usage"),
        &[("authorization", &format!("Bearer {KEY}"))],
        "",
    )
    .await;
    let row = &usage.json()["usage"][0];
    assert_eq!(row["state"], "rate_limited", "{row}");
    assert!(
        row["until"].as_str().is_some_and(|u| u.ends_with('Z')),
        "{row}"
    );
    assert_eq!(row["errors"], 1);
    server.shutdown().await;
}

/// `/health/ready` answers 503, with the reason, while the only pair of a group cools down
/// after a 429, and 200 again once the cooldown has run out; `/health/live` answers 200 all
/// along.
#[tokio::test]
async fn ready_is_503_while_a_groups_only_pair_cools_down() {
    use mock_upstream::{Fault, Rule};
    let mock = MockUpstream::start().await.unwrap();
    let server = TestServer::start(&config(&mock.base_url(), &["k1"], "")).await;
    let (ready_url, live_url) = (server.url("/health/ready"), server.url("/health/live"));
    let ready = || call(Method::GET, &ready_url, &[], "");
    let live = || call(Method::GET, &live_url, &[], "");
    let first = ready().await;
    assert_eq!(
        (first.status.as_u16(), first.json()["status"].clone()),
        (200, "ready".into())
    );
    mock.add_rule(Rule::new(Fault::StatusRetryAfter(429, "1".into())));
    assert_eq!(post_chat(&server, CHAT).await.status, 429);
    let cooling = ready().await;
    assert_eq!(cooling.status, 503, "{}", cooling.text());
    let body = cooling.json();
    assert_eq!(body["status"], "not_ready");
    let reason = body["reasons"][0].as_str().unwrap();
    assert!(reason.contains("group 'g' has no usable pair"), "{reason}");
    assert_eq!(live().await.status, 200);
    // Retry-After: 1 s, then usable again.
    mock.clear_rules();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while ready().await.status != 200 {
        assert!(tokio::time::Instant::now() < deadline, "never ready again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(post_chat(&server, CHAT).await.status, 200);
}
