//! The mock's `/v1/completions` (legacy prompt API) and `/v1/embeddings`.

use crate::{full, stream, Body, State};
use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::{json, Value};
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;

fn texts(input: &Value) -> Vec<String> {
    match input {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
            .collect(),
        other => vec![other.to_string()],
    }
}

/// Embeddings: four numbers per input, derived from its length; one token per 4 bytes.
pub(crate) fn embeddings(state: Arc<State>, request: &Value, model: String) -> Response<Body> {
    let inputs = texts(&request["input"]);
    let tokens: u64 = inputs.iter().map(|t| 1 + t.len() as u64 / 4).sum();
    state.tokens_reported.fetch_add(tokens, SeqCst);
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let n = t.len() as f64;
            json!({"object": "embedding", "index": i, "embedding": [n, n / 2.0, n / 4.0, 1.0]})
        })
        .collect();
    let body = json!({
        "object": "list", "data": data, "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    });
    full(StatusCode::OK, "application/json", body.to_string())
}

/// Completions: the text is `mock says: ` + the prompt.
pub(crate) fn completions(
    state: Arc<State>,
    request: &Value,
    model: String,
    cut_stream: Option<usize>,
) -> Response<Body> {
    let prompt = texts(&request["prompt"]).join(" ");
    let text = format!("mock says: {prompt}");
    let prompt_tokens = 1 + prompt.len() as u64 / 4;
    let completion_tokens = text.split_whitespace().count() as u64;
    let usage = json!({"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                       "total_tokens": prompt_tokens + completion_tokens});
    if request["stream"] != Value::Bool(true) {
        state
            .tokens_reported
            .fetch_add(prompt_tokens + completion_tokens, SeqCst);
        let body = json!({
            "id": "cmpl-mock", "object": "text_completion", "created": 1_700_000_000, "model": model,
            "choices": [{"text": text, "index": 0, "logprobs": null, "finish_reason": "stop"}],
            "usage": usage,
        });
        return full(StatusCode::OK, "application/json", body.to_string());
    }
    let chunk = |text: &str, finish: Value| {
        let c = json!({"id": "cmpl-mock", "object": "text_completion", "created": 1_700_000_000,
                       "model": model, "choices": [{"text": text, "index": 0, "logprobs": null, "finish_reason": finish}]});
        Bytes::from(format!("data: {c}\n\n"))
    };
    let mut chunks: Vec<Bytes> = text
        .split_inclusive(' ')
        .map(|w| chunk(w, Value::Null))
        .collect();
    chunks.push(chunk("", json!("stop")));
    let include_usage = request["stream_options"]["include_usage"] == Value::Bool(true);
    if include_usage {
        let c = json!({"id": "cmpl-mock", "object": "text_completion", "created": 1_700_000_000,
                       "model": model, "choices": [], "usage": usage});
        chunks.push(Bytes::from(format!("data: {c}\n\n")));
    }
    chunks.push(Bytes::from_static(b"data: [DONE]\n\n"));
    let usage_at = include_usage.then(|| chunks.len() - 2);
    stream(
        state,
        chunks,
        usage_at,
        prompt_tokens + completion_tokens,
        cut_stream,
    )
}
