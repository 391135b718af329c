//! A request's input tokens counted in the router, for `/v1/messages/count_tokens` to a group
//! with no provider that counts them itself (Anthropic's do): the request in the common form,
//! tokenized with `o200k_base`, the encoding of OpenAI's current models, plus the tokens OpenAI's
//! chat format adds around each message. For other models' tokenizers it is an estimate.

use crate::dialects::{ChatRequest, INLINE_DATA_TOKENS};
use crate::fields::Fields;
use crate::forward::{ChatBody, ChatResponse, Served};
use crate::json::text_of;
use crate::RouterError;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, StatusCode};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// Tokens OpenAI's chat format adds for each message, and to prime the reply.
const PER_MESSAGE: u64 = 3;
const REPLY_PRIMING: u64 = 3;

/// The tokens of `text` in `o200k_base`.
fn tokens(text: &str) -> u64 {
    tiktoken_rs::o200k_base_singleton()
        .encode_ordinary(text)
        .len() as u64
}

/// The input tokens of a chat request in the common form: each message's role, text, images
/// (a flat [`INLINE_DATA_TOKENS`] each, as the prompt estimate counts them), tool calls and
/// results, and the tools' definitions.
pub(crate) fn count(common: &Map<String, Value>) -> u64 {
    let mut total = REPLY_PRIMING;
    for m in common
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        total += PER_MESSAGE + tokens(m["role"].as_str().unwrap_or(""));
        total += tokens(&text_of(&m["content"], "\n"));
        let images = m["content"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["type"] == "image_url")
            .count() as u64;
        total += images * INLINE_DATA_TOKENS;
        for call in m["tool_calls"].as_array().into_iter().flatten() {
            let f = &call["function"];
            total += tokens(f["name"].as_str().unwrap_or(""));
            total += tokens(f["arguments"].as_str().unwrap_or(""));
        }
    }
    for tool in common
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        total += tokens(&tool["function"].to_string());
    }
    total
}

/// The answer to a count request of `group` that no provider of it counts: Anthropic's shape,
/// `{"input_tokens": N}`, counted here.
pub(crate) fn answer(
    request: &ChatRequest<'_>,
    group: &Arc<str>,
) -> Result<ChatResponse, RouterError> {
    let mut fields = Fields::default();
    let common = request.dialect().room().decode(
        request,
        crate::Endpoint::Chat,
        request.model(),
        &mut fields,
    )?;
    let body = json!({"input_tokens": count(&common)});
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(ChatResponse {
        status: StatusCode::OK,
        headers,
        body: ChatBody::counted(Bytes::from(body.to_string())),
        served: Served {
            group: group.clone(),
            requested: None,
            provider: "local".into(),
            model: "o200k_base".into(),
            key_id: "-".into(),
            attempts: 1,
            upstream_wait: Duration::ZERO,
            cache: None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_messages_and_tools_with_o200k_base() {
        let one = json!({"messages": [{"role": "user", "content": "hello world"}]});
        // "hello world" is two tokens, "user" one, plus 3 per message and 3 for the reply.
        assert_eq!(count(one.as_object().unwrap()), 2 + 1 + 3 + 3);
        let more = json!({"messages": [
            {"role": "user", "content": [{"type": "text", "text": "hello world"},
                                         {"type": "image_url", "image_url": {"url": "data:x"}}]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "look", "arguments": "{}"}}]},
        ], "tools": [{"type": "function", "function": {"name": "look"}}]});
        let n = count(more.as_object().unwrap());
        assert!(n > 9 + INLINE_DATA_TOKENS, "{n}");
    }
}
