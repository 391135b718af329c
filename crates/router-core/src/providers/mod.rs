//! Provider adapters. `openai` (any OpenAI-compatible API) and `azure` are forwarded as is by
//! [`crate::forward`] (only the URL and the key header differ); `anthropic` is translated both
//! ways, and so is `gemini`; `mock` answers in-process. `completions` carries the prompt API to
//! chat-only providers and `embeddings` carries OpenAI embeddings to Gemini.

pub(crate) mod anthropic;
pub(crate) mod anthropic_in;
pub(crate) mod completions;
pub(crate) mod embeddings;
pub(crate) mod gemini;
#[cfg(test)]
mod golden;
pub(crate) mod mock;
#[cfg(test)]
mod properties;

/// A 400 naming the offending field, for the translators.
pub(crate) fn bad(message: String, param: &str) -> crate::RouterError {
    crate::RouterError::bad_request(message, Some(param))
}

/// What an OpenAI message may carry beyond `role` and `content` for a provider of another
/// format (`to`): a field with no counterpart (`name`, `audio`, the legacy `function_call`) is
/// refused by name. An assistant's earlier `refusal` is text; its `reasoning_content` and
/// `annotations` are left out, as the other formats have no place for them.
pub(crate) fn check_message_fields(
    m: &serde_json::Value,
    path: &str,
    to: &str,
) -> Result<(), crate::RouterError> {
    let allowed: &[&str] = match m["role"].as_str() {
        Some("assistant") => &[
            "role",
            "content",
            "tool_calls",
            "refusal",
            "reasoning_content",
            // URL citations of an earlier OpenAI answer, which SDKs send back: metadata of
            // that answer, with no place in the other format.
            "annotations",
        ],
        Some("tool") => &["role", "content", "tool_call_id"],
        _ => &["role", "content"],
    };
    for (key, value) in m.as_object().into_iter().flatten() {
        // An empty value asks for nothing (SDKs send back `"tool_calls": []` and the like).
        let empty = match value {
            serde_json::Value::Null => true,
            serde_json::Value::Array(a) => a.is_empty(),
            serde_json::Value::Object(o) => o.is_empty(),
            _ => false,
        };
        if !empty && !allowed.contains(&key.as_str()) {
            return Err(bad(
                format!("{path}.{key} cannot be sent to {to}"),
                "messages",
            ));
        }
    }
    Ok(())
}

/// An `image_url` part's `detail` for a provider (`to`) that reads every image in full:
/// `auto` and `high` ask for nothing more, `low` asks for less and cannot be kept.
pub(crate) fn check_detail(
    part: &serde_json::Value,
    path: &str,
    to: &str,
) -> Result<(), crate::RouterError> {
    match part["image_url"]["detail"].as_str() {
        None | Some("auto") | Some("high") => Ok(()),
        Some(other) => Err(bad(
            format!("{path}.image_url.detail '{other}' cannot be sent to {to} (it reads every image in full)"),
            "messages",
        )),
    }
}

/// Seconds since the Unix epoch, for the `created` field of translated answers.
pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
