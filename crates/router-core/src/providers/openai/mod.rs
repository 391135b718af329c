//! `openai`: any OpenAI-compatible API. Its wire format is the common form itself, so
//! requests, answers and streams pass as they are; what this room adds is reading the usage
//! report, the end of a stream and in-band errors. `azure` and `mock` answer in this format.

mod responses;
mod stream;

pub(crate) use responses::RESPONSES_WIRE;

use super::{Kind, WireFormat};
use crate::codec::{StreamDecoder, StreamReader};
use crate::dialects::{ChatRequest, Endpoint};
use crate::snapshot::Provider;
use crate::usage::TokenUsage;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// The `openai` kind.
pub(crate) struct OpenAi;

/// The OpenAI wire format.
pub(crate) struct OpenAiWire;

/// The format every OpenAI-compatible kind answers in.
pub(crate) static WIRE: OpenAiWire = OpenAiWire;

impl Kind for OpenAi {
    fn name(&self) -> &'static str {
        "openai"
    }
    fn official_base_url(&self) -> Option<&'static str> {
        Some("https://api.openai.com/v1")
    }
    /// Responses at `{base_url}/responses`, as the other operations.
    fn url(&self, provider: &Provider, op: Endpoint, _model: &str, _stream: bool) -> String {
        format!("{}/{}", provider.base_url(), op.path())
    }
    fn url_per_operation(&self) -> bool {
        true
    }
}

/// A translated request for an OpenAI-compatible provider: the completion limit goes in the
/// field this provider's models take.
pub(crate) fn request(mut common: Map<String, Value>, provider: &Provider) -> Value {
    if let Some(limit) = common.remove("max_tokens") {
        common.insert(provider.max_tokens_field().into(), limit);
    }
    Value::Object(common)
}

/// OpenAI's `usage` object: the prompt's cached tokens in `prompt_tokens_details`, and the
/// ones written to the cache in `cache_creation_input_tokens` where an OpenAI-compatible
/// server reports them (the router does too, for answers translated from Anthropic's).
#[derive(Deserialize)]
pub(crate) struct RawUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    total_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

impl From<RawUsage> for TokenUsage {
    fn from(u: RawUsage) -> Self {
        TokenUsage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: u
                .total_tokens
                .unwrap_or(u.prompt_tokens.saturating_add(u.completion_tokens)),
            cache_read_tokens: u
                .prompt_tokens_details
                .and_then(|d| d.cached_tokens)
                .unwrap_or(0),
            cache_write_tokens: u.cache_creation_input_tokens.unwrap_or(0),
        }
    }
}

/// Usage of a complete OpenAI-format answer (`usage.*_tokens`), if it reports one. Only the
/// `usage` field is parsed, found from the answer's end: what comes before it is not read
/// (see `walk::field`).
pub fn usage_of_body(body: &[u8]) -> Option<TokenUsage> {
    let usage = crate::walk::field(body, "usage")?;
    // Read as text when it is (as JSON must be): serde then checks no key's UTF-8 again.
    let parsed = match std::str::from_utf8(usage) {
        Ok(text) => serde_json::from_str::<Option<RawUsage>>(text),
        Err(_) => serde_json::from_slice::<Option<RawUsage>>(usage),
    };
    parsed.ok().flatten().map(Into::into)
}

/// The `usage` of a parsed answer or chunk, if it has one.
pub(crate) fn usage_of(value: &Value) -> Option<TokenUsage> {
    let usage = value.get("usage").filter(|u| u.is_object())?;
    RawUsage::deserialize(usage).ok().map(Into::into)
}

impl WireFormat for OpenAiWire {
    fn name(&self) -> &'static str {
        "openai"
    }
    fn answer(
        &self,
        _op: Endpoint,
        answer: Value,
        _request: &ChatRequest<'_>,
        _model: &str,
    ) -> Option<(Value, TokenUsage)> {
        let usage = usage_of(&answer).unwrap_or_default();
        Some((answer, usage))
    }
    fn error(&self, body: &[u8]) -> Value {
        serde_json::from_slice(body).unwrap_or_else(|_| {
            json!({"error": {"message": "upstream error", "type": "upstream_error", "param": null, "code": null}})
        })
    }
    fn passthrough_usage(&self, body: &[u8]) -> TokenUsage {
        usage_of_body(body).unwrap_or_default()
    }
    fn stream_reader(&self, strip_usage: bool) -> Box<dyn StreamReader> {
        Box::new(stream::Reader::new(strip_usage))
    }
    fn stream_decoder(&self, _model: &str) -> Box<dyn StreamDecoder> {
        Box::<stream::Decoder>::default()
    }
}

#[cfg(test)]
mod tests {
    use super::usage_of_body;

    fn total(body: &[u8]) -> Option<(u64, u64, u64, u64)> {
        usage_of_body(body).map(|u| {
            let read = u.cache_read_tokens;
            (u.prompt_tokens, u.completion_tokens, u.total_tokens, read)
        })
    }

    #[test]
    fn an_answers_usage_is_read_as_serde_reads_it() {
        let usage = |u: &str| format!(r#"{{"id":"x","choices":[],"usage":{u}}}"#);
        let of = |u: &str| total(usage(u).as_bytes());
        let full = r#"{"prompt_tokens":5,"completion_tokens":2,"total_tokens":8,"prompt_tokens_details":{"cached_tokens":3}}"#;
        assert_eq!(of(full), Some((5, 2, 8, 3)));
        // The total, when missing, is the sum; an escaped key is its unescaped name.
        assert_eq!(
            of(r#"{"prompt\u005ftokens":5,"completion_tokens":2}"#),
            Some((5, 2, 7, 0))
        );
        // What serde refuses counts nothing: a key twice, a count that is no integer, details
        // that are no object; no usage at all is none.
        for refused in [
            r#"{"prompt_tokens":5,"prompt_tokens":6}"#,
            r#"{"prompt_tokens":5.5}"#,
            r#"{"prompt_tokens":"5"}"#,
            r#"{"prompt_tokens":-1}"#,
            r#"{"prompt_tokens":5,"prompt_tokens_details":7}"#,
            "null",
        ] {
            assert_eq!(of(refused), None, "{refused}");
        }
        // Text that is not UTF-8 in a field the router does not read is passed over, as serde
        // passes over what it ignores.
        let mut odd = usage(r#"{"prompt_tokens":4,"note":"?"}"#).into_bytes();
        let at = odd.iter().position(|&b| b == b'?').unwrap();
        odd[at] = 0xff;
        assert_eq!(total(&odd), Some((4, 0, 4, 0)));
    }
}
