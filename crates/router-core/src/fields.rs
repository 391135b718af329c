//! The field policy of translations: what happens to a field of the client's request that the
//! chosen provider's format has no place for.
//!
//! - A field the translators know to *change the answer's meaning* (a sampling seed, log
//!   probabilities, a JSON schema, ...) is refused with a 400 naming it and the provider: the
//!   client would otherwise get an answer that is not what it asked for.
//! - A field the translators know to be a *hint* (caching, server-side context editing, tracing
//!   metadata, a service tier, ...) is left out, and the response says so in
//!   `x-llm-router-dropped`.
//! - A field they do not know at all follows the provider's `unknown_fields`: `drop` (the
//!   default: left out and reported, as clients add fields every month) or `refuse`.

use crate::RouterError;
use serde::Deserialize;

/// What a provider does with a request field that neither its format nor the router knows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownFields {
    /// Left out, and named in the response's `x-llm-router-dropped` header (the default).
    #[default]
    Drop,
    /// Refused with a 400 naming the field.
    Refuse,
}

/// The header that names the fields a translated request left out.
pub const DROPPED_HEADER: &str = "x-llm-router-dropped";

/// The fields one translation left out, and its policy for unknown ones.
#[derive(Debug, Default)]
pub(crate) struct Fields {
    unknown: UnknownFields,
    dropped: Vec<String>,
}

impl Fields {
    /// A translation under `unknown`.
    pub(crate) fn new(unknown: UnknownFields) -> Self {
        Self {
            unknown,
            dropped: Vec::new(),
        }
    }

    /// `field` is a hint the target has no place for: left out, and reported.
    pub(crate) fn hint(&mut self, field: &str) {
        if !self.dropped.iter().any(|d| d == field) {
            self.dropped.push(field.to_string());
        }
    }

    /// `field` is known to neither side: left out and reported, or refused with `refusal`, by
    /// the provider's policy.
    pub(crate) fn unknown(
        &mut self,
        field: &str,
        refusal: impl FnOnce() -> RouterError,
    ) -> Result<(), RouterError> {
        match self.unknown {
            UnknownFields::Drop => {
                self.hint(field);
                Ok(())
            }
            UnknownFields::Refuse => Err(refusal()),
        }
    }

    /// `cache_control` on a block, a message or a tool: a caching hint.
    pub(crate) fn note_cache_control(&mut self, value: &serde_json::Value) {
        if value.get("cache_control").is_some() {
            self.hint("cache_control");
        }
    }

    /// What was left out, in the order met.
    pub(crate) fn dropped(&self) -> &[String] {
        &self.dropped
    }
}

/// OpenAI chat fields that change what the answer is: a translation that cannot carry them
/// refuses them (each translator first takes the values that ask for nothing, and the ones it
/// can carry).
const OPENAI_CHANGES_MEANING: &[&str] = &[
    "logprobs",
    "top_logprobs",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "response_format",
    "logit_bias",
    "n",
    "modalities",
    "audio",
    "prediction",
    "functions",
    "function_call",
    "web_search_options",
    "parallel_tool_calls",
    // `store: true` asks OpenAI to keep the exchange; `false` is a hint (below).
    "store",
];

/// OpenAI chat fields that are hints: about caching, tracing, the service tier.
const OPENAI_HINTS: &[&str] = &[
    "metadata",
    "prompt_cache_key",
    "service_tier",
    "safety_identifier",
    "verbosity",
];

/// The policy for OpenAI chat field `key` (with `value`) that a translation for `to` (such as
/// "an Anthropic provider") has no place for.
pub(crate) fn untranslatable(
    fields: &mut Fields,
    key: &str,
    value: &serde_json::Value,
    to: &str,
) -> Result<(), RouterError> {
    let refusal = || {
        RouterError::bad_request(
            format!("the field '{key}' cannot be translated for {to}; remove it or route to an OpenAI-compatible one"),
            Some(key),
        )
    };
    if OPENAI_HINTS.contains(&key) || (key == "store" && value == &serde_json::Value::Bool(false)) {
        fields.hint(key);
        return Ok(());
    }
    if OPENAI_CHANGES_MEANING.contains(&key) {
        return Err(refusal());
    }
    fields.unknown(key, refusal)
}
