//! Provider kinds: one room per kind of upstream API, each registered once in [`KINDS`].
//!
//! A room owns everything about its kind: the URL of each operation, the auth headers, the
//! request built from the common form, its answers and streams turned back into the common
//! form, its in-band stream errors and its usage reports. The common form is OpenAI's chat
//! completions format (requests, answers, stream chunks and error bodies). Kinds whose answers
//! are in one wire format share its [`WireFormat`]: `azure` and `mock` answer as `openai` does.

pub(crate) mod anthropic;
pub(crate) mod azure;
pub(crate) mod gemini;
pub(crate) mod mock;
pub(crate) mod openai;

use crate::codec::{StreamDecoder, StreamReader};
use crate::dialects::{ChatRequest, Endpoint};
use crate::fields::Fields;
use crate::snapshot::Provider;
use crate::usage::TokenUsage;
use crate::{RouterError, Secret};
use bytes::Bytes;
use http::{HeaderMap, HeaderName};
use serde_json::{Map, Value};
use std::fmt;

/// Every provider kind. Adding one is its room and a line here.
const KINDS: &[&dyn Kind] = &[
    &openai::OpenAi,
    &azure::Azure,
    &anthropic::Anthropic,
    &gemini::Gemini,
    &mock::Mock,
];

/// The body of an upstream answer.
pub(crate) type UpstreamBody =
    http_body_util::combinators::UnsyncBoxBody<Bytes, crate::forward::BoxError>;

/// What a provider kind does; one implementation per room. The defaults are those of an
/// OpenAI-compatible API: OpenAI's wire format, every operation, a bearer key, the common form
/// as it is.
pub(crate) trait Kind: Sync {
    /// The `type` that names the kind in the config.
    fn name(&self) -> &'static str;
    /// The format its answers and streams to operation `op` are in.
    fn wire(&self, op: Endpoint) -> &'static dyn WireFormat {
        match op {
            Endpoint::Responses => &openai::RESPONSES_WIRE,
            _ => &openai::WIRE,
        }
    }
    /// The operation `provider` performs for a client's `endpoint` (chat-only kinds answer the
    /// prompt API and Responses through chat, see [`chat_only`]); `None` when it offers no such
    /// operation. By default, OpenAI's operations, and Responses natively when the provider
    /// speaks it (its `responses`).
    fn operation(&self, provider: &Provider, endpoint: Endpoint) -> Option<Endpoint> {
        match endpoint {
            Endpoint::Chat | Endpoint::Completions | Endpoint::Embeddings => Some(endpoint),
            Endpoint::Responses if provider.responses_native() => Some(endpoint),
            Endpoint::Responses => Some(Endpoint::Chat),
            Endpoint::CountTokens => None,
        }
    }
    /// Whether a provider of this kind at `base_url` speaks the Responses API when its config
    /// does not say (`responses`); `None` when the kind never does. By default, OpenAI's own
    /// API does and other OpenAI-compatible servers are taken to have chat completions only.
    fn speaks_responses(&self, base_url: &str) -> Option<bool> {
        let host = base_url
            .parse::<http::Uri>()
            .ok()
            .and_then(|u| u.host().map(str::to_ascii_lowercase));
        Some(host.as_deref() == Some("api.openai.com"))
    }
    /// The base URL of the kind's official API, used when a provider whose `type` names this
    /// kind has no `base_url`; `None` when there is no single one.
    fn official_base_url(&self) -> Option<&'static str> {
        None
    }
    /// Whether it answers in process: no base URL, no keys, no network.
    fn is_local(&self) -> bool {
        false
    }
    /// The URL of `op` for `model` (a stream's, when `stream`).
    fn url(&self, provider: &Provider, op: Endpoint, model: &str, stream: bool) -> String;
    /// Whether [`Kind::url`] depends on the provider and the operation alone (not on the model
    /// or streaming), so that it is built once for each.
    fn url_per_operation(&self) -> bool {
        false
    }
    /// Puts the credential, and any header the kind requires, on an upstream request.
    /// `client` holds the client's headers when the client speaks the kind's own format.
    fn authorize(
        &self,
        _provider: &Provider,
        credential: Credential<'_>,
        _client: Option<&HeaderMap>,
        headers: &mut HeaderMap,
    ) -> Result<(), &'static str> {
        put_credential(headers, "authorization", credential)
    }
    /// A request of operation `op` in the common form, in the kind's format, for `model`;
    /// what it leaves out goes by the field policy in `fields`.
    fn request(
        &self,
        _op: Endpoint,
        common: Map<String, Value>,
        provider: &Provider,
        _model: &str,
        _fields: &mut Fields,
    ) -> Result<Value, RouterError> {
        Ok(openai::request(common, provider))
    }
    /// The answer of a kind that [`Kind::is_local`], to a request body in its format.
    fn answer_locally(
        &self,
        _body: &[u8],
        _request_id: u64,
    ) -> Option<http::Response<UpstreamBody>> {
        None
    }
}

/// The operation of a kind that only chats: chat, and the prompt API and Responses through
/// chat.
pub(crate) fn chat_only(endpoint: Endpoint) -> Option<Endpoint> {
    match endpoint {
        Endpoint::Chat | Endpoint::Completions | Endpoint::Responses => Some(Endpoint::Chat),
        Endpoint::Embeddings | Endpoint::CountTokens => None,
    }
}

/// The answers and streams of one wire format, shared by the kinds that answer in it.
pub(crate) trait WireFormat: Sync {
    /// Its name (the kind that defines it), telling wire formats apart.
    fn name(&self) -> &'static str;
    /// A complete answer to operation `op` in the common form, and the tokens it used; `None`
    /// when it is not such an answer.
    fn answer(
        &self,
        op: Endpoint,
        answer: Value,
        request: &ChatRequest<'_>,
        model: &str,
    ) -> Option<(Value, TokenUsage)>;
    /// An error answer (the request's own 4xx) as an OpenAI error body.
    fn error(&self, body: &[u8]) -> Value;
    /// The tokens of a complete answer relayed as it came.
    fn passthrough_usage(&self, body: &[u8]) -> TokenUsage;
    /// A reader of a stream relayed as it came; `strip_usage` drops a usage report the client
    /// did not ask for.
    fn stream_reader(&self, strip_usage: bool) -> Box<dyn StreamReader>;
    /// A decoder of a stream into the common form, for `model`.
    fn stream_decoder(&self, model: &str) -> Box<dyn StreamDecoder>;
    /// Whether a stream's first bytes are an error event (nothing reached the client yet, so
    /// another upstream can still be tried).
    fn opens_with_error(&self, _first: &[u8]) -> bool {
        false
    }
}

/// A provider kind, as the config's `type` names it: `openai` (any OpenAI-compatible API,
/// the default), `azure`, `anthropic`, `gemini` or `mock` (in process, no key).
#[derive(Clone, Copy)]
pub struct ProviderKind(&'static dyn Kind);

impl ProviderKind {
    /// The kind named `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Self> {
        KINDS.iter().find(|k| k.name() == name).map(|k| Self(*k))
    }

    /// Its name in the config.
    pub fn name(self) -> &'static str {
        self.0.name()
    }

    /// Its room.
    pub(crate) fn room(self) -> &'static dyn Kind {
        self.0
    }
}

impl Default for ProviderKind {
    fn default() -> Self {
        Self(KINDS[0])
    }
}

impl PartialEq for ProviderKind {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl Eq for ProviderKind {}

impl fmt::Debug for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for ProviderKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Self::from_name(&name).ok_or_else(|| {
            let known: Vec<String> = KINDS.iter().map(|k| format!("`{}`", k.name())).collect();
            serde::de::Error::custom(format!(
                "unknown variant `{name}`, expected one of {}",
                known.join(", ")
            ))
        })
    }
}

/// What an upstream request is authorized with.
#[derive(Clone, Copy)]
pub(crate) enum Credential<'a> {
    /// A key, in the header the kind takes keys in.
    Key(&'a Secret),
    /// An OAuth access token: `Authorization: Bearer`, whatever the kind.
    Bearer(&'a Secret),
}

/// Puts `credential` on an upstream request: a key in `key_header` (as a bearer token when
/// that is `authorization`), an access token as a bearer token; unless the provider's own
/// `headers` set that header already (a custom scheme).
pub(crate) fn put_credential(
    headers: &mut HeaderMap,
    key_header: &'static str,
    credential: Credential<'_>,
) -> Result<(), &'static str> {
    let (name, secret, bearer) = match credential {
        Credential::Key(key) if key_header != "authorization" => (key_header, key, false),
        Credential::Key(token) | Credential::Bearer(token) => ("authorization", token, true),
    };
    let name = HeaderName::from_static(name);
    if !headers.contains_key(&name) {
        let value = secret
            .header_value(bearer)
            .ok_or("provider key has invalid characters")?;
        headers.insert(name, value);
    }
    Ok(())
}

/// What a URL path segment keeps as it is: RFC 3986's unreserved characters.
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Escapes what may not stand in a URL path segment (a model or deployment name).
pub(crate) fn path_segment(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, PATH_SEGMENT).to_string()
}

/// A 400 naming the offending field, for the translators.
pub(crate) fn bad(message: String, param: &str) -> RouterError {
    RouterError::bad_request(message, Some(param))
}

/// What an OpenAI message may carry beyond `role` and `content` for a provider of another
/// format (`to`): a field with no counterpart (`name`, `audio`, the legacy `function_call`) is
/// refused by name. An assistant's earlier `refusal` is text; its `reasoning_content` and
/// `annotations` are left out, as the other formats have no place for them.
pub(crate) fn check_message_fields(m: &Value, path: &str, to: &str) -> Result<(), RouterError> {
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
            Value::Null => true,
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
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
pub(crate) fn check_detail(part: &Value, path: &str, to: &str) -> Result<(), RouterError> {
    match part["image_url"]["detail"].as_str() {
        None | Some("auto") | Some("high") => Ok(()),
        Some(other) => Err(bad(
            format!("{path}.image_url.detail '{other}' cannot be sent to {to} (it reads every image in full)"),
            "messages",
        )),
    }
}
