//! OpenAI embeddings (`/v1/embeddings`) on Gemini's `batchEmbedContents`: one embed request
//! per input, vectors back as an OpenAI list (floats, or base64 of little-endian `f32`s as
//! OpenAI's SDKs ask for by default).
//!
//! Gemini's embedding answers carry no token count. When an answer has no `usageMetadata`,
//! usage is estimated at one token per four bytes of input (at least one per input), the rule
//! the router reserves by; asking `countTokens` would cost a second call per request.

use crate::fields::Fields;
use crate::providers::bad;
use crate::usage::TokenUsage;
use crate::RouterError;
use base64::Engine;
use serde_json::{json, Map, Value};

/// Most texts `batchEmbedContents` takes in one request.
const MAX_BATCH: usize = 100;

/// The inputs as texts; token-id inputs cannot be sent to Gemini.
fn inputs(input: &Value) -> Result<Vec<&str>, RouterError> {
    let token_ids = || {
        bad(
            "'input' as token ids cannot be sent to a Gemini provider: send text".into(),
            "input",
        )
    };
    match input {
        Value::String(s) => Ok(vec![s]),
        Value::Array(items) if items.is_empty() => {
            Err(bad("'input' must not be empty".into(), "input"))
        }
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.as_str()),
                Value::Number(_) | Value::Array(_) => Err(token_ids()),
                _ => Err(bad(
                    "'input' must be a string or an array of strings".into(),
                    "input",
                )),
            })
            .collect(),
        _ => Err(bad(
            "'input' must be a string or an array of strings".into(),
            "input",
        )),
    }
}

/// How the client wants vectors encoded: `false` for floats, `true` for base64.
fn base64_wanted(request: &Map<String, Value>) -> Result<bool, RouterError> {
    match request.get("encoding_format") {
        None | Some(Value::Null) => Ok(false),
        Some(v) if v == "float" => Ok(false),
        Some(v) if v == "base64" => Ok(true),
        Some(_) => Err(bad(
            "'encoding_format' must be 'float' or 'base64'".into(),
            "encoding_format",
        )),
    }
}

/// Translates an OpenAI embeddings request into a Gemini `batchEmbedContents` request.
pub(crate) fn request(
    openai: &Map<String, Value>,
    model: &str,
    fields: &mut Fields,
) -> Result<Value, RouterError> {
    let mut dimensions = None;
    for (key, value) in openai {
        if value.is_null() {
            continue;
        }
        match key.as_str() {
            "model" | "input" | "user" => {}
            "encoding_format" => {
                base64_wanted(openai)?;
            }
            "dimensions" => {
                if value.as_u64().is_none_or(|d| d == 0) {
                    return Err(bad(
                        "'dimensions' must be a positive integer".into(),
                        "dimensions",
                    ));
                }
                dimensions = Some(value.clone());
            }
            other => fields.unknown(other, || {
                bad(
                    format!("'{other}' cannot be sent to a Gemini provider"),
                    other,
                )
            })?,
        }
    }
    let texts = inputs(openai.get("input").unwrap_or(&Value::Null))?;
    if texts.len() > MAX_BATCH {
        return Err(bad(
            format!(
                "'input' holds {} texts; a Gemini provider embeds at most {MAX_BATCH} per request",
                texts.len()
            ),
            "input",
        ));
    }
    let name = format!("models/{model}");
    let requests: Vec<Value> = texts
        .iter()
        .map(|text| {
            let mut r = json!({"model": name, "content": {"parts": [{"text": text}]}});
            if let Some(d) = &dimensions {
                r["outputDimensionality"] = d.clone();
            }
            r
        })
        .collect();
    Ok(json!({ "requests": requests }))
}

/// Tokens charged for `texts` when the provider reports none: one per four bytes, at least one
/// per input.
fn estimate(texts: &[&str]) -> u64 {
    texts
        .iter()
        .map(|t| (t.len() as u64).div_ceil(4).max(1))
        .sum()
}

/// Translates a `batchEmbedContents` answer into an OpenAI embeddings list for the client's
/// request; `None` if the answer is not one.
pub(crate) fn response(
    answer: &Value,
    openai: &Map<String, Value>,
    model: &str,
) -> Option<(Value, TokenUsage)> {
    let embeddings = answer["embeddings"].as_array()?;
    let encode = base64_wanted(openai).unwrap_or(false);
    let mut data = Vec::with_capacity(embeddings.len());
    for (index, e) in embeddings.iter().enumerate() {
        let values = e["values"].as_array()?;
        let embedding = if encode {
            let mut bytes = Vec::with_capacity(values.len() * 4);
            for v in values {
                // OpenAI's base64 vectors are little-endian 32-bit floats.
                bytes.extend_from_slice(&(v.as_f64()? as f32).to_le_bytes());
            }
            json!(base64::engine::general_purpose::STANDARD.encode(bytes))
        } else {
            Value::Array(values.clone())
        };
        data.push(json!({"object": "embedding", "index": index, "embedding": embedding}));
    }
    let reported = answer["usageMetadata"]["promptTokenCount"].as_u64();
    let prompt_tokens = match reported {
        Some(n) => n,
        None => estimate(&inputs(openai.get("input")?).ok()?),
    };
    let usage = TokenUsage {
        prompt_tokens,
        completion_tokens: 0,
        total_tokens: prompt_tokens,
        ..TokenUsage::default()
    };
    let body = json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    });
    Some((body, usage))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The translation under the default field policy.
    fn request(openai: &Map<String, Value>, model: &str) -> Result<Value, RouterError> {
        super::request(openai, model, &mut Fields::default())
    }

    fn object(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn one_embed_request_per_input() {
        let r = request(
            &object(json!({"model": "g", "input": ["a", "bc"], "dimensions": 8, "user": "u"})),
            "text-embedding-004",
        )
        .unwrap();
        assert_eq!(
            r,
            json!({"requests": [
                {"model": "models/text-embedding-004", "content": {"parts": [{"text": "a"}]}, "outputDimensionality": 8},
                {"model": "models/text-embedding-004", "content": {"parts": [{"text": "bc"}]}, "outputDimensionality": 8},
            ]})
        );
        let param = |v: Value| match request(&object(v), "m") {
            Err(RouterError::BadRequest { param, message, .. }) => (param.unwrap(), message),
            other => panic!("expected 400, got {other:?}"),
        };
        assert!(param(json!({"input": [[1, 2]]})).1.contains("token ids"));
        assert!(param(json!({"input": [1, 2]})).1.contains("token ids"));
        assert_eq!(param(json!({"input": []})).0, "input");
        assert_eq!(
            param(json!({"input": "a", "dimensions": 0})).0,
            "dimensions"
        );
        assert_eq!(
            param(json!({"input": "a", "encoding_format": "hex"})).0,
            "encoding_format"
        );
        // A field neither side knows: refused under `unknown_fields: refuse`, else left out
        // and reported.
        let task = object(json!({"input": "a", "task": 1}));
        let mut refusing = Fields::new(crate::fields::UnknownFields::Refuse);
        match super::request(&task, "m", &mut refusing) {
            Err(RouterError::BadRequest { param, .. }) => {
                assert_eq!(param.as_deref(), Some("task"))
            }
            other => panic!("expected 400, got {other:?}"),
        }
        let mut dropping = Fields::default();
        assert!(super::request(&task, "m", &mut dropping).is_ok());
        assert_eq!(dropping.dropped(), ["task"]);
    }

    #[test]
    fn vectors_as_floats_or_base64_with_usage() {
        let answer = json!({"embeddings": [{"values": [1.0, -2.5]}, {"values": [0.5]}]});
        let req = object(json!({"model": "g", "input": ["abcde", "x"]}));
        let (body, usage) = response(&answer, &req, "m").unwrap();
        assert_eq!(
            body["data"][0],
            json!({"object": "embedding", "index": 0, "embedding": [1.0, -2.5]})
        );
        assert_eq!(body["data"][1]["index"], 1);
        // "abcde" is two tokens by the estimate, "x" one.
        assert_eq!(usage.prompt_tokens, 3);
        assert_eq!(
            body["usage"],
            json!({"prompt_tokens": 3, "total_tokens": 3})
        );

        let req = object(json!({"model": "g", "input": "abc", "encoding_format": "base64"}));
        let answer = json!({"embeddings": [{"values": [1.0, -2.5]}], "usageMetadata": {"promptTokenCount": 9}});
        let (body, usage) = response(&answer, &req, "m").unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(body["data"][0]["embedding"].as_str().unwrap())
            .unwrap();
        let floats: Vec<f32> = bytes
            .chunks(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(floats, [1.0, -2.5]);
        assert_eq!(usage.total_tokens, 9);
        assert!(response(&json!({"error": {}}), &req, "m").is_none());
    }

    #[test]
    fn at_most_a_hundred_inputs() {
        let many: Vec<String> = (0..101).map(|i| i.to_string()).collect();
        match request(&object(json!({"input": many})), "m") {
            Err(RouterError::BadRequest { message, param, .. }) => {
                assert_eq!(param.as_deref(), Some("input"));
                assert!(message.contains("at most 100"), "{message}");
            }
            other => panic!("expected 400, got {other:?}"),
        }
        let hundred: Vec<String> = (0..100).map(|i| i.to_string()).collect();
        assert!(request(&object(json!({"input": hundred})), "m").is_ok());
    }
}
