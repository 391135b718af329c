//! The hostile-input campaign: generated inputs, thousands per property, through every parser
//! and translator the router has, checked for what must hold whatever comes:
//! - a client's request is parsed or refused with a 4xx, never a panic or a 5xx; what parses
//!   becomes an upstream body (JSON) for every provider kind, or a 4xx refusal;
//! - an upstream's answer, complete or streamed, in any provider's format, reaches the client
//!   as JSON, or well-formed events, or not at all; never a panic;
//! - the SSE scanner never holds or hands out more than its limit;
//! - the config loader answers any text with a config or an error, and no error shows a key.
//!
//! Every input that ever failed is kept by proptest in `proptest-regressions/` (committed) and
//! replayed first on every run.

use super::properties::any_json;
use crate::config::{Format, Source};
use crate::dialects::{ChatRequest, Dialect, Endpoint};
use crate::exchange::Exchange;
use crate::snapshot::{Provider, Snapshot};
use crate::sse::{event_data, SseScanner};
use crate::Router;
use bytes::Bytes;
use http::StatusCode;
use proptest::prelude::*;
use serde_json::{json, Value};
use std::sync::OnceLock;

/// Cases per property: six properties make the campaign tens of thousands of inputs.
const CASES: u32 = 5_000;

const DIALECTS: [(Dialect, Endpoint); 7] = [
    (Dialect::OpenAi, Endpoint::Chat),
    (Dialect::OpenAi, Endpoint::Completions),
    (Dialect::OpenAi, Endpoint::Embeddings),
    (Dialect::OpenAi, Endpoint::Responses),
    (Dialect::Anthropic, Endpoint::Chat),
    (Dialect::Anthropic, Endpoint::CountTokens),
    (Dialect::Responses, Endpoint::Responses),
];

/// One provider of every kind and wire format.
fn router() -> &'static Router {
    static ROUTER: OnceLock<Router> = OnceLock::new();
    ROUTER.get_or_init(|| {
        let kinds = [
            ("oai", "base_url: \"http://127.0.0.1:9/v1\""),
            (
                "oai-native",
                "base_url: \"http://127.0.0.1:9/v1\", responses: native",
            ),
            ("claude", "type: anthropic, base_url: \"http://127.0.0.1:9\""),
            ("gem", "type: gemini, base_url: \"http://127.0.0.1:9\""),
            (
                "az",
                "type: azure, base_url: \"http://127.0.0.1:9\", api_version: \"2024-06-01\"",
            ),
        ];
        let mut yaml = String::from("groups:\n");
        for (name, _) in kinds {
            yaml += &format!("  - name: {name}\n    models: [{{provider: {name}, name: m}}]\n");
        }
        yaml += "  - name: local\n    models: [{provider: local, name: m}]\nproviders:\n  - {name: local, type: mock}\n";
        for (name, rest) in kinds {
            yaml += &format!("  - {{name: {name}, {rest}, api_key: \"sk-campaign-0123456789ab\"}}\n");
        }
        Router::from_source(&Source::from_text(yaml, Format::Yaml))
            .unwrap_or_else(|e| panic!("campaign config: {e}"))
    })
}

/// The provider of each group of `snapshot`.
fn providers(snapshot: &Snapshot) -> Vec<&Provider> {
    snapshot
        .groups()
        .iter()
        .map(|g| g.pairs()[0].provider())
        .collect()
}

/// Request bodies: raw bytes, any JSON, JSON shaped like a request, and well-formed requests
/// with one byte changed.
fn request_bytes() -> impl Strategy<Value = Vec<u8>> {
    let valid = prop::sample::select(vec![
        r#"{"model":"g","messages":[{"role":"user","content":"hi"}],"stream":true,"max_tokens":9}"#,
        r#"{"model":"g","max_tokens":9,"system":"s","messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],"tools":[{"name":"f","input_schema":{"type":"object"}}]}"#,
        r#"{"model":"g","input":[{"role":"user","content":"hi"},{"type":"function_call","call_id":"c","name":"f","arguments":"{}"}],"tools":[{"type":"function","name":"f"}]}"#,
        r#"{"model":"g","prompt":"hi","max_tokens":3}"#,
        r#"{"model":"g","input":["a","b"]}"#,
    ]);
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        any_json().prop_map(|v| v.to_string().into_bytes()),
        (any_json(), any_json(), any::<bool>()).prop_map(|(messages, extra, stream)| {
            json!({"model": "g", "messages": messages, "input": extra, "stream": stream,
                   "max_tokens": 5, "tools": extra, "system": messages})
            .to_string()
            .into_bytes()
        }),
        (valid, any::<prop::sample::Index>(), any::<u8>()).prop_map(|(text, at, byte)| {
            let mut bytes = text.as_bytes().to_vec();
            let i = at.index(bytes.len());
            bytes[i] = byte;
            bytes
        }),
    ]
}

/// Well-formed requests of each dialect, streamed or not.
fn requests() -> Vec<(Dialect, Endpoint, &'static [u8])> {
    vec![
        (Dialect::OpenAi, Endpoint::Chat, br#"{"model":"g","messages":[{"role":"user","content":"hi"}]}"#),
        (Dialect::OpenAi, Endpoint::Chat, br#"{"model":"g","stream":true,"messages":[{"role":"user","content":"hi"}]}"#),
        (Dialect::Anthropic, Endpoint::Chat, br#"{"model":"g","max_tokens":9,"messages":[{"role":"user","content":"hi"}]}"#),
        (Dialect::Anthropic, Endpoint::Chat, br#"{"model":"g","max_tokens":9,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#),
        (Dialect::Responses, Endpoint::Responses, br#"{"model":"g","input":"hi"}"#),
        (Dialect::Responses, Endpoint::Responses, br#"{"model":"g","stream":true,"input":"hi"}"#),
    ]
}

/// Upstream events in every provider's shape, with generated insides.
fn upstream_event() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        any_json().prop_map(|v| format!("data: {v}\n\n").into_bytes()),
        any_json().prop_map(|v| {
            format!("data: {}\n\n", json!({"choices": [{"index": 0, "delta": v}], "usage": null}))
                .into_bytes()
        }),
        (prop::sample::select(vec!["message_start", "content_block_start", "content_block_delta", "message_delta", "error", "response.output_text.delta", "response.completed"]), any_json())
            .prop_map(|(kind, v)| format!("event: {kind}\ndata: {}\n\n", json!({"type": kind, "message": v, "delta": v, "content_block": v, "index": 0, "response": v})).into_bytes()),
        any_json().prop_map(|v| format!("data: {}\n\n", json!({"candidates": [{"content": {"parts": [v]}}], "usageMetadata": v})).into_bytes()),
        Just(b"data: [DONE]\n\n".to_vec()),
        prop::collection::vec(any::<u8>(), 0..80).prop_map(|mut b| {
            b.extend_from_slice(b"\n\n");
            b
        }),
    ]
}

/// A translated event the client gets: whole, and its data JSON (or `[DONE]`).
fn well_formed(event: &[u8]) -> bool {
    if !event.ends_with(b"\n\n") {
        return false;
    }
    match event_data(event) {
        None => true,
        Some(data) => &*data == b"[DONE]" || serde_json::from_slice::<Value>(&data).is_ok(),
    }
}

/// Pieces of YAML, some carrying a key in places where errors quote text.
const SECRET: &str = "sk-hostile0123456789abcdef";

fn config_text() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "groups:\n",
        "providers:\n",
        "  - name: g\n",
        "    models: [{provider: p, name: m}]\n",
        "  - {name: p, base_url: \"http://x\", api_key: KEY}\n",
        "  - {name: p, type: mock}\n",
        "    api_keys: [KEY, 5]\n",
        "  KEY: 1\n",
        "KEY: true\n",
        "api_key: KEY\n",
        "api_keys: [\"KEY\"]\n",
        "admin_key: {KEY: 1}\n",
        "server: {max_body_bytes: KEY}\n",
        "    headers: {x-k: KEY}\n",
        "  - name: KEY\n",
        "strategy: KEY\n",
        "    strategy: usage\n",
        "\t- [\n",
        "{\"groups\": [KEY]}\n",
        "&a [*a]\n",
        "providers: [{name: p, api_key: \"KEY\\n\"}]\n",
        "listen: KEY\n",
    ]);
    prop::collection::vec((piece, "[ a-z:\\[\\]{},-]{0,6}"), 0..10).prop_map(|pieces| {
        pieces
            .into_iter()
            .map(|(p, noise)| format!("{noise}{p}").replace("KEY", SECRET))
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    #[test]
    fn a_request_is_parsed_or_refused_with_a_4xx(bytes in request_bytes()) {
        let snapshot = router().snapshot();
        let providers = providers(&snapshot);
        for (dialect, endpoint) in DIALECTS {
            let request = match ChatRequest::parse_for(&bytes, dialect, endpoint) {
                Ok(r) => r,
                Err(e) => {
                    prop_assert!(e.status().is_client_error(), "{:?} {:?}: {}", dialect, endpoint, e);
                    continue;
                }
            };
            let _ = request.estimate_tokens();
            for provider in providers.iter().copied() {
                let Some(exchange) = Exchange::new(&request, None, provider, snapshot.redactor()) else {
                    continue;
                };
                match exchange.body(provider, "m") {
                    Ok((body, _)) => prop_assert!(
                        serde_json::from_slice::<Value>(&body).is_ok(),
                        "{} got a body that is not JSON", provider.name()
                    ),
                    Err(e) => prop_assert!(e.status().is_client_error(), "{}: {}", provider.name(), e),
                }
            }
        }
    }

    #[test]
    fn an_upstream_answer_reaches_the_client_as_json_or_not_at_all(
        answer in prop_oneof![
            any_json().prop_map(|v| v.to_string().into_bytes()),
            any_json().prop_map(|v| json!({"choices": [{"message": v}], "usage": v, "content": [v], "candidates": [{"content": {"parts": [v]}}], "output": [v]}).to_string().into_bytes()),
            prop::collection::vec(any::<u8>(), 0..100),
        ],
        status in prop::sample::select(vec![200u16, 400, 401, 429, 500, 503]),
    ) {
        let snapshot = router().snapshot();
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
        for (dialect, endpoint, body) in requests() {
            let request = ChatRequest::parse_for(body, dialect, endpoint).unwrap();
            for provider in providers(&snapshot) {
                let Some(exchange) = Exchange::new(&request, None, provider, snapshot.redactor()) else {
                    continue;
                };
                let relayed = exchange.answer(status, Bytes::from(answer.clone()), "m");
                if let Some((bytes, _)) = relayed {
                    if bytes != answer[..] {
                        prop_assert!(serde_json::from_slice::<Value>(&bytes).is_ok(), "{}: {:?}", provider.name(), bytes);
                    }
                }
            }
        }
    }

    #[test]
    fn an_upstream_stream_reaches_the_client_as_whole_events(
        events in prop::collection::vec(upstream_event(), 0..8),
        end in any::<bool>(),
    ) {
        let snapshot = router().snapshot();
        for (dialect, endpoint, body) in requests() {
            let request = ChatRequest::parse_for(body, dialect, endpoint).unwrap();
            for provider in providers(&snapshot) {
                let Some(exchange) = Exchange::new(&request, None, provider, snapshot.redactor()) else {
                    continue;
                };
                let mut codec = exchange.stream("m");
                let translated = matches!(codec, crate::codec::Codec::Translate { .. });
                let mut out = Vec::new();
                let mut scanner = SseScanner::new();
                for event in &events {
                    for e in scanner.push(event) {
                        let data = event_data(&e).map(|d| d.into_owned());
                        codec.relay(e, data.as_deref(), &mut out);
                    }
                }
                if end {
                    let _ = codec.end(&mut out);
                } else {
                    let mut broken = Vec::new();
                    let _ = codec.interrupt(&json!({"error": {"message": "cut", "type": "server_error"}}), &mut broken);
                    out.extend(broken);
                }
                let _ = (codec.usage(), codec.failed(), codec.done());
                if translated {
                    for e in &out {
                        prop_assert!(well_formed(e), "{} -> {:?}: {:?}", provider.name(), dialect, String::from_utf8_lossy(e));
                    }
                }
            }
        }
    }

    #[test]
    fn the_sse_scanner_never_holds_more_than_its_limit(
        input in prop::collection::vec(prop::sample::select(vec![b'a', b':', b' ', b'\n', b'\r', b'd', 0xff]), 0..2000),
        cuts in prop::collection::vec(1usize..300, 1..20),
        limit in 1usize..400,
    ) {
        let mut scanner = SseScanner::with_limit(limit);
        let mut out = Vec::new();
        let mut rest: &[u8] = &input;
        let mut i = 0;
        while !rest.is_empty() {
            let n = cuts[i % cuts.len()].min(rest.len());
            let was_over = scanner.too_large();
            let events = scanner.push(&rest[..n]);
            prop_assert!(!was_over || events.is_empty(), "events after the limit");
            for event in events {
                prop_assert!(event.len() <= limit, "an event of {} over {}", event.len(), limit);
                out.extend_from_slice(&event);
            }
            rest = &rest[n..];
            i += 1;
        }
        prop_assert!(input.starts_with(&out));
    }

    #[test]
    fn any_config_text_loads_or_fails_without_showing_a_key(text in config_text()) {
        for format in [Format::Yaml, Format::Json] {
            if let Err(e) = Router::from_source(&Source::from_text(text.clone(), format)) {
                let shown = e.to_string();
                prop_assert!(!shown.contains(SECRET), "{}\n--- from ---\n{}", shown, text);
            }
        }
    }

    #[test]
    fn any_bytes_as_config_load_or_fail(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        for format in [Format::Yaml, Format::Json] {
            let _ = Router::from_source(&Source::from_text(text.clone(), format));
        }
    }
}
