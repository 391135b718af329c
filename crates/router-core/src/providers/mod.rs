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

/// Seconds since the Unix epoch, for the `created` field of translated answers.
pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
