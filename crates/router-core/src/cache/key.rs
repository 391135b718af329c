//! The cache key: what makes two requests the same one. Their group and the upstream models
//! it has now (a reload that changes them leaves the answers of the old ones behind), format,
//! endpoint and body (parsed: key order and spacing do not count), the headers of their
//! format that reach the upstream, and whether the router capped the completion; never the
//! client's key.

use crate::dialects::Dialect;
use http::HeaderMap;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A request's digest.
pub(crate) type Key = [u8; 32];

/// Client headers that change what the upstream answers (or which upstream does).
const HEADERS: [&str; 3] = [
    "anthropic-version",
    "anthropic-beta",
    crate::dialects::tags::TAGS_HEADER,
];

/// What names one request for the cache.
pub(crate) struct Request<'a> {
    pub(crate) group: &'a str,
    /// The group's (provider, upstream model) pairs, in order.
    pub(crate) models: &'a [(&'a str, &'a str)],
    pub(crate) dialect: Dialect,
    pub(crate) endpoint: &'a str,
    pub(crate) headers: Option<&'a HeaderMap>,
    /// The router set the completion limit the client left out.
    pub(crate) capped: bool,
    pub(crate) body: &'a [u8],
}

/// The key of `request`; `None` when its body is not JSON (such a request is refused first).
pub(crate) fn key(request: &Request<'_>) -> Option<Key> {
    let body: Value = serde_json::from_slice(request.body).ok()?;
    let mut h = Sha256::new();
    h.update(b"llm-router response cache 1");
    let dialect = match request.dialect {
        Dialect::OpenAi => "openai",
        Dialect::Anthropic => "anthropic",
        Dialect::Responses => "responses",
    };
    for part in [request.group, dialect, request.endpoint] {
        text(&mut h, part.as_bytes());
    }
    h.update((request.models.len() as u64).to_le_bytes());
    for (provider, model) in request.models {
        text(&mut h, provider.as_bytes());
        text(&mut h, model.as_bytes());
    }
    h.update([u8::from(request.capped)]);
    for name in HEADERS {
        match request.headers.and_then(|h| h.get(name)) {
            Some(value) => text(&mut h, value.as_bytes()),
            None => h.update(b"-"),
        }
    }
    canonical(&mut h, &body);
    Some(h.finalize().into())
}

/// A length-prefixed string: no two sequences of parts hash alike.
fn text(h: &mut Sha256, bytes: &[u8]) {
    h.update(b"s");
    h.update((bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

/// `value` with object keys in order, each kind tagged.
fn canonical(h: &mut Sha256, value: &Value) {
    match value {
        Value::Null => h.update(b"z"),
        Value::Bool(b) => h.update(if *b { b"t" } else { b"f" }),
        Value::Number(n) => {
            h.update(b"n");
            text(h, n.to_string().as_bytes());
        }
        Value::String(s) => text(h, s.as_bytes()),
        Value::Array(items) => {
            h.update(b"a");
            h.update((items.len() as u64).to_le_bytes());
            for item in items {
                canonical(h, item);
            }
        }
        Value::Object(map) => {
            let mut fields: Vec<(&String, &Value)> = map.iter().collect();
            fields.sort_unstable_by(|a, b| a.0.cmp(b.0));
            h.update(b"o");
            h.update((fields.len() as u64).to_le_bytes());
            for (name, value) in fields {
                text(h, name.as_bytes());
                canonical(h, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODELS: &[(&str, &str)] = &[("openai", "gpt-4o")];

    fn of(body: &str, group: &str, capped: bool) -> Key {
        key(&Request {
            group,
            models: MODELS,
            dialect: Dialect::OpenAi,
            endpoint: "chat/completions",
            headers: None,
            capped,
            body: body.as_bytes(),
        })
        .expect("JSON")
    }

    #[test]
    fn key_order_and_spacing_do_not_count() {
        let a = of(
            r#"{"model":"g","messages":[{"role":"user","content":"hi"}],"temperature":0}"#,
            "g",
            false,
        );
        let b = of(
            "{ \"temperature\": 0, \"messages\": [ {\"content\": \"hi\", \"role\": \"user\"} ], \"model\": \"g\" }",
            "g",
            false,
        );
        assert_eq!(a, b);
    }

    #[test]
    fn content_parameters_group_and_cap_count() {
        let base = of(
            r#"{"model":"g","messages":[{"role":"user","content":"hi"}]}"#,
            "g",
            false,
        );
        for other in [
            of(
                r#"{"model":"g","messages":[{"role":"user","content":"ho"}]}"#,
                "g",
                false,
            ),
            of(
                r#"{"model":"g","messages":[{"role":"user","content":"hi"}],"temperature":1}"#,
                "g",
                false,
            ),
            of(
                r#"{"model":"g","messages":[{"role":"user","content":"hi"}]}"#,
                "h",
                false,
            ),
            of(
                r#"{"model":"g","messages":[{"role":"user","content":"hi"}]}"#,
                "g",
                true,
            ),
            // The same text split differently between parts is another request.
            of(
                r#"{"model":"g","messages":[{"role":"user","content":"h"},{"role":"user","content":"i"}]}"#,
                "g",
                false,
            ),
        ] {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn the_groups_models_count() {
        let body = br#"{"model":"g","messages":[{"role":"user","content":"hi"}]}"#;
        let with = |models: &[(&str, &str)]| {
            key(&Request {
                group: "g",
                models,
                dialect: Dialect::OpenAi,
                endpoint: "chat/completions",
                headers: None,
                capped: false,
                body,
            })
        };
        assert_ne!(with(MODELS), with(&[("openai", "gpt-4o-mini")]));
        assert_ne!(
            with(MODELS),
            with(&[("openai", "gpt-4o"), ("azure", "gpt-4o")])
        );
        assert_eq!(with(MODELS), with(&[("openai", "gpt-4o")]));
    }

    #[test]
    fn the_format_headers_count() {
        let body = br#"{"model":"g","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#;
        let mut headers = HeaderMap::new();
        let with = |headers: &HeaderMap| {
            key(&Request {
                group: "g",
                models: MODELS,
                dialect: Dialect::Anthropic,
                endpoint: "messages",
                headers: Some(headers),
                capped: false,
                body,
            })
        };
        let none = with(&headers);
        headers.insert("anthropic-beta", "context-1m-2025-08-07".parse().unwrap());
        assert_ne!(none, with(&headers));
        // Any other header (the client's key among them) does not.
        let mut keyed = HeaderMap::new();
        keyed.insert("authorization", "Bearer sk-one".parse().unwrap());
        assert_eq!(none, with(&keyed));
    }
}
