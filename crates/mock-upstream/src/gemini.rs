//! The mock's Gemini API: `/v1beta/models/{model}:generateContent` and
//! `:streamGenerateContent` (SSE with `\r\n` line ends, each event a partial answer, the last
//! with `finishReason` and `usageMetadata`); a `functionCall` when tools are offered and the
//! last user text asks to "use a tool"; `:batchEmbedContents` (three numbers per text, derived
//! from its length, and no token count, as Gemini reports none).

use crate::{full, stream, tools, Body, State};
use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use serde_json::{json, Value};
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;

fn error(status: u16, code: &str, message: &str) -> Response<Body> {
    let body = json!({"error": {"code": status, "message": message, "status": code}});
    full(
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        "application/json",
        body.to_string(),
    )
}

fn parts_text(parts: &Value) -> String {
    parts
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            if let Some(r) = p.get("functionResponse") {
                // A text result comes as `{"content": text}`.
                match r["response"]["content"].as_str() {
                    Some(text) => format!("tool said: {text}"),
                    None => format!("tool said: {}", r["response"]),
                }
            } else {
                p["text"].as_str().unwrap_or("").to_string()
            }
        })
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn answer(
    state: Arc<State>,
    model_and_method: &str,
    request: &Value,
    headers: &HeaderMap,
    cut_stream: Option<usize>,
) -> Response<Body> {
    if !headers.contains_key("x-goog-api-key") {
        return error(
            403,
            "PERMISSION_DENIED",
            "x-goog-api-key header is required",
        );
    }
    let Some((model, method)) = model_and_method.split_once(':') else {
        return error(404, "NOT_FOUND", "unknown method");
    };
    if method == "batchEmbedContents" {
        return embed(model, request);
    }
    let Some(contents) = request["contents"].as_array() else {
        return error(400, "INVALID_ARGUMENT", "contents is required");
    };
    let last_user = contents
        .iter()
        .rev()
        .find(|c| c["role"] == "user")
        .map(|c| parts_text(&c["parts"]))
        .unwrap_or_default();
    let prompt_bytes: usize = contents.iter().map(|c| parts_text(&c["parts"]).len()).sum();
    let prompt = 1 + prompt_bytes as u64 / 4;
    let offered = request["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|t| t["functionDeclarations"].as_array().into_iter().flatten())
        .filter_map(|f| Some((f["name"].as_str()?, &f["parameters"])));
    let tool = tools::call(offered, &last_user);
    let reply = format!("mock says: {last_user}");
    let completion = if tool.is_some() {
        3
    } else {
        reply.split_whitespace().count() as u64
    };
    let usage = json!({"promptTokenCount": prompt, "candidatesTokenCount": completion, "totalTokenCount": prompt + completion});
    let final_parts = match &tool {
        Some((name, args)) => json!([{"functionCall": {"name": name, "args": args}}]),
        None => Value::Null,
    };
    match method {
        "generateContent" => {
            state.tokens_reported.fetch_add(prompt + completion, SeqCst);
            let parts = if final_parts.is_null() {
                json!([{"text": reply}])
            } else {
                final_parts
            };
            let body = json!({
                "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
                "usageMetadata": usage, "modelVersion": model, "responseId": "gem-mock",
            });
            full(StatusCode::OK, "application/json", body.to_string())
        }
        "streamGenerateContent" => {
            let event = |v: Value| Bytes::from(format!("data: {v}\r\n\r\n"));
            let mut chunks: Vec<Bytes> = Vec::new();
            if tool.is_none() {
                for word in reply.split_inclusive(' ') {
                    chunks.push(event(json!({"candidates": [{"content": {"role": "model", "parts": [{"text": word}]}, "index": 0}], "modelVersion": model})));
                }
            }
            let last_parts = if final_parts.is_null() {
                json!([{"text": ""}])
            } else {
                final_parts
            };
            chunks.push(event(json!({
                "candidates": [{"content": {"role": "model", "parts": last_parts}, "finishReason": "STOP", "index": 0}],
                "usageMetadata": usage, "modelVersion": model,
            })));
            let usage_at = chunks.len() - 1;
            stream(
                state,
                chunks,
                Some(usage_at),
                prompt + completion,
                cut_stream,
            )
        }
        _ => error(404, "NOT_FOUND", "unknown method"),
    }
}

fn embed(model: &str, request: &Value) -> Response<Body> {
    let Some(requests) = request["requests"].as_array() else {
        return error(400, "INVALID_ARGUMENT", "requests is required");
    };
    let mut embeddings = Vec::new();
    for r in requests {
        if r["model"] != format!("models/{model}") {
            return error(
                400,
                "INVALID_ARGUMENT",
                "each request's model must be the path's",
            );
        }
        let n = parts_text(&r["content"]["parts"]).len() as f64;
        let mut values = vec![n, n / 2.0, -1.0];
        if let Some(d) = r["outputDimensionality"].as_u64() {
            values.resize(d as usize, 0.25);
        }
        embeddings.push(json!({ "values": values }));
    }
    full(
        StatusCode::OK,
        "application/json",
        json!({ "embeddings": embeddings }).to_string(),
    )
}
