//! The inbound chat request: validated once, then rewritten by splicing bytes, so that every
//! field but `model` (and, for streams, `stream_options`; for a capped request, its completion
//! limit) reaches the upstream byte for byte.

use super::edit::Edit;
use super::top_level::{span_of, string_of, TopLevel};
use super::{prompt, Dialect, Endpoint};
use crate::RouterError;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::ops::Range;

type JsonObject = serde_json::Map<String, serde_json::Value>;

/// Tokens an inline data URL (an image, a document) counts in a prompt estimate: about what
/// the providers charge for a large image.
pub const INLINE_DATA_TOKENS: u64 = 1_000;

/// Tokens a provider may add to a prompt that offers tools: the instructions it writes for
/// them, beside their definitions.
pub const TOOLS_PROMPT_TOKENS: u64 = 1_000;

/// A validated chat completions request and the positions of what may be rewritten.
#[derive(Debug)]
pub struct ChatRequest<'a> {
    dialect: Dialect,
    endpoint: Endpoint,
    body: &'a str,
    model: String,
    model_span: Range<usize>,
    stream: bool,
    client_wants_usage: bool,
    stream_options: Option<(Range<usize>, Option<JsonObject>)>,
    object_end: usize,
    max_tokens: u64,
    capped: bool,
    /// The tags `metadata.tags` asks for, and where `metadata` is with what it holds besides.
    tags: Vec<String>,
    metadata: Option<(Range<usize>, JsonObject)>,
}

/// A completion limit to add to a request that sets none: the field it goes in, and tokens.
pub type CompletionLimit = (&'static str, u64);

impl<'a> ChatRequest<'a> {
    /// Validates an OpenAI chat request body: UTF-8, a JSON object, a string `model`, an array
    /// `messages`, and a boolean `stream` if present.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, RouterError> {
        Self::parse_as(bytes, Dialect::OpenAi)
    }

    /// Validates a chat request body in `dialect` (the checks are the same for both formats).
    pub fn parse_as(bytes: &'a [u8], dialect: Dialect) -> Result<Self, RouterError> {
        Self::parse_for(bytes, dialect, Endpoint::Chat)
    }

    /// Validates a request body for `endpoint`: as for chat, with `prompt` (completions) or
    /// `input` (embeddings) required instead of `messages`.
    pub fn parse_for(
        bytes: &'a [u8],
        dialect: Dialect,
        endpoint: Endpoint,
    ) -> Result<Self, RouterError> {
        let body = std::str::from_utf8(bytes).map_err(|e| {
            RouterError::bad_request(
                format!(
                    "request body is not valid UTF-8 (invalid byte at offset {})",
                    e.valid_up_to()
                ),
                None,
            )
        })?;
        let top: TopLevel<'a> = serde_json::from_str(body).map_err(|e| {
            let msg = if e.classify() == serde_json::error::Category::Data {
                "request body must be a JSON object".to_string()
            } else {
                format!("request body is not valid JSON: {e}")
            };
            RouterError::bad_request(msg, None)
        })?;
        let mut model = None;
        let mut messages = false;
        let mut stream = false;
        let mut stream_options = None;
        let mut max_tokens = 0u64;
        let (mut tags, mut metadata) = (Vec::new(), None);
        for (key, raw) in &top.0 {
            match key.0.as_ref() {
                "model" => {
                    if model.is_some() {
                        return Err(RouterError::bad_request(
                            "'model' appears more than once",
                            Some("model"),
                        ));
                    }
                    let name = string_of(raw).ok_or_else(|| {
                        RouterError::bad_request("'model' must be a string", Some("model"))
                    })?;
                    model = Some((name, span_of(body, raw)));
                }
                k if k == endpoint.required() => {
                    required_shape(endpoint, raw)?;
                    messages = true;
                }
                "stream" => {
                    stream = match raw.get() {
                        "true" => true,
                        "false" | "null" => false,
                        _ => {
                            return Err(RouterError::bad_request(
                                "'stream' must be a boolean",
                                Some("stream"),
                            ))
                        }
                    }
                }
                "stream_options" => {
                    let parsed: Option<JsonObject> =
                        serde_json::from_str(raw.get()).map_err(|_| {
                            RouterError::bad_request(
                                "'stream_options' must be an object",
                                Some("stream_options"),
                            )
                        })?;
                    stream_options = Some((span_of(body, raw), parsed));
                }
                "metadata" => {
                    if let Some((asked, rest)) = super::tags::from_metadata(raw)? {
                        (tags, metadata) = (asked, Some((span_of(body, raw), rest)));
                    }
                }
                "max_tokens" | "max_completion_tokens" | "max_output_tokens" => {
                    if let Ok(n) = raw.get().parse::<u64>() {
                        max_tokens = max_tokens.max(n);
                    }
                }
                _ => {}
            }
        }
        let Some((model, model_span)) = model else {
            return Err(RouterError::bad_request(
                "missing required field 'model'",
                Some("model"),
            ));
        };
        if !messages {
            let field = endpoint.required();
            return Err(RouterError::bad_request(
                format!("missing required field '{field}'"),
                Some(field),
            ));
        }
        let client_wants_usage = stream_options
            .as_ref()
            .and_then(|(_, o)| o.as_ref())
            .and_then(|o| o.get("include_usage"))
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        let object_end = body.trim_end().len() - 1;
        Ok(Self {
            dialect,
            endpoint,
            body,
            model,
            model_span,
            stream,
            client_wants_usage,
            stream_options,
            object_end,
            max_tokens,
            capped: false,
            tags,
            metadata,
        })
    }

    /// The whole request as a JSON object (for providers that need it translated).
    /// `metadata.tags`, the router's own, is not part of it.
    pub fn to_object(&self) -> Result<JsonObject, RouterError> {
        let mut object: JsonObject = serde_json::from_str(self.body).map_err(|e| {
            RouterError::bad_request(format!("request body is not valid JSON: {e}"), None)
        })?;
        if let Some((_, rest)) = &self.metadata {
            object.insert("metadata".into(), serde_json::Value::Object(rest.clone()));
        }
        Ok(object)
    }

    /// The tags the body asks for (`metadata.tags`).
    pub fn tags(&self) -> &[String] {
        &self.tags
    }

    /// The operation asked for.
    pub fn endpoint(&self) -> Endpoint {
        self.endpoint
    }

    /// The format the request arrived in.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The `model` the client asked for (a group name).
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Whether the client asked for a stream.
    pub fn stream(&self) -> bool {
        self.stream
    }

    /// Whether the client asked for the usage chunk (`stream_options.include_usage`).
    pub fn client_wants_usage(&self) -> bool {
        self.client_wants_usage
    }

    /// The prompt's tokens by estimate (one per four bytes of request), charged when a stream
    /// ends before the provider reported them.
    ///
    /// Data sent inline (`"data:…"` URLs, base64 `data`, such as images) or by reference (an
    /// image's URL, a file's id) is not text: each counts a flat [`INLINE_DATA_TOKENS`] instead
    /// of its bytes. Capped like [`Self::estimate_tokens`].
    pub fn prompt_estimate(&self) -> u64 {
        let parts = prompt::parts(self.body.as_bytes());
        parts
            .text
            .div_ceil(4)
            .saturating_add(Self::data_tokens(parts))
            .clamp(1, 1 << 24)
    }

    /// The prompt's tokens at most, for budgets: no token is shorter than a byte of text; data
    /// sent inline or by reference counts [`INLINE_DATA_TOKENS`] each (an estimate: providers
    /// bill images by size and model); a request that offers `tools` counts
    /// [`TOOLS_PROMPT_TOKENS`] more.
    pub fn prompt_bound(&self) -> u64 {
        let parts = prompt::parts(self.body.as_bytes());
        let offers_tools = memchr::memmem::find(self.body.as_bytes(), b"\"tools\"").is_some();
        let tools = if offers_tools { TOOLS_PROMPT_TOKENS } else { 0 };
        (parts.text)
            .saturating_add(Self::data_tokens(parts))
            .saturating_add(tools)
    }

    fn data_tokens(parts: prompt::Parts) -> u64 {
        (parts.inline)
            .saturating_add(parts.referenced)
            .saturating_mul(INLINE_DATA_TOKENS)
    }

    /// The completion budget the client set (`max_tokens`, `max_completion_tokens` or
    /// `max_output_tokens`), if any.
    pub fn max_tokens(&self) -> Option<u64> {
        (self.max_tokens > 0).then_some(self.max_tokens)
    }

    /// Marks the request to be sent with a completion limit when it sets none (see
    /// [`Self::completion_cap`]), so what a budget reserved for it bounds what it can cost.
    pub fn cap_completion(&mut self) {
        self.capped = true;
    }

    /// The completion limit to add for an upstream whose default limit is `default`: for a
    /// request marked by [`Self::cap_completion`] that sets none itself and asks for a
    /// completion (not embeddings, not a token count).
    pub fn completion_cap(&self, default: u64) -> Option<u64> {
        let completes = !matches!(self.endpoint, Endpoint::Embeddings | Endpoint::CountTokens);
        (self.capped && completes && self.max_tokens().is_none()).then_some(default)
    }

    /// Tokens to reserve while the request is in flight: about a token per 4 bytes of request,
    /// plus the completion budget the client set (capped, so no request can reserve absurd
    /// amounts).
    pub fn estimate_tokens(&self) -> u64 {
        const CAP: u64 = 1 << 24;
        (self.body.len() as u64 / 4)
            .saturating_add(self.max_tokens.min(CAP))
            .clamp(1, 2 * CAP)
    }

    /// The body to send upstream: `model` replaced, for streams `stream_options.include_usage`
    /// set so usage can be counted, `limit` added when given, and `metadata.tags` taken out.
    /// Every other byte is kept.
    pub fn upstream_body(&self, upstream_model: &str, limit: Option<CompletionLimit>) -> Vec<u8> {
        let end = self.object_end..self.object_end;
        let mut edits: [Option<(Range<usize>, Edit<'_>)>; 4] = [
            Some((self.model_span.clone(), Edit::Model(upstream_model))),
            // The router's tags go no further.
            (self.metadata.as_ref())
                .map(|(span, rest)| (span.clone(), Edit::Object(Cow::Borrowed(rest)))),
            limit.map(|limit| (end.clone(), Edit::Limit(limit))),
            None,
        ];
        if self.dialect == Dialect::OpenAi && self.stream && !self.client_wants_usage {
            edits[3] = Some(match &self.stream_options {
                Some((span, options)) => {
                    let mut options = options.clone().unwrap_or_default();
                    options.insert("include_usage".into(), serde_json::Value::Bool(true));
                    (span.clone(), Edit::Object(Cow::Owned(options)))
                }
                None => (
                    end,
                    Edit::Text(",\"stream_options\":{\"include_usage\":true}"),
                ),
            });
        }
        edits.sort_by_key(|e| e.as_ref().map_or(usize::MAX, |(r, _)| r.start));
        let mut out = Vec::with_capacity(self.body.len() + 64);
        let mut pos = 0;
        for (range, edit) in edits.into_iter().flatten() {
            out.extend_from_slice(&self.body.as_bytes()[pos..range.start]);
            edit.write(&mut out);
            pos = range.end;
        }
        out.extend_from_slice(&self.body.as_bytes()[pos..]);
        out
    }
}

/// Checks the shape of the field `endpoint` requires, where the router reads it: `messages`
/// an array, Responses' `input` a string or an array of items.
fn required_shape(endpoint: Endpoint, raw: &RawValue) -> Result<(), RouterError> {
    let text = raw.get();
    let (ok, message) = match endpoint {
        Endpoint::Chat | Endpoint::CountTokens => {
            (text.starts_with('['), "'messages' must be an array")
        }
        Endpoint::Responses => (
            text.starts_with('[') || text.starts_with('"'),
            "'input' must be a string or an array of items",
        ),
        Endpoint::Completions | Endpoint::Embeddings => (true, ""),
    };
    if ok {
        Ok(())
    } else {
        Err(RouterError::bad_request(message, Some(endpoint.required())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<ChatRequest<'_>, RouterError> {
        ChatRequest::parse(s.as_bytes())
    }

    #[test]
    fn rewrites_only_model() {
        let body = r#"{ "x_unknown": {"a":[1,2.50,"é"]}, "model" : "grp", "messages":[{"role":"user","content":"hi"}], "temperature": 0 }"#;
        let r = parse(body).unwrap();
        assert_eq!(r.model(), "grp");
        let out = String::from_utf8(r.upstream_body("gpt-\"4\"", None)).unwrap();
        assert_eq!(out, body.replace(r#""grp""#, r#""gpt-\"4\"""#));
    }

    #[test]
    fn the_prompt_bound_counts_bytes_images_and_tools() {
        let text = r#"{"model":"g","messages":[{"role":"user","content":"hi"}]}"#;
        assert_eq!(parse(text).unwrap().prompt_bound(), text.len() as u64);
        let tools = r#"{"model":"g","messages":[],"tools":[]}"#;
        let bound = tools.len() as u64 + TOOLS_PROMPT_TOKENS;
        assert_eq!(parse(tools).unwrap().prompt_bound(), bound);
        let image = r#"{"model":"g","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]}"#;
        let data = "data:image/png;base64,AAAA".len() as u64;
        let bound = image.len() as u64 - data + INLINE_DATA_TOKENS;
        assert_eq!(parse(image).unwrap().prompt_bound(), bound);
    }

    #[test]
    fn a_capped_request_without_a_limit_gets_one() {
        let body = r#"{"model":"g","messages":[],"stream":true}"#;
        let mut r = parse(body).unwrap();
        assert_eq!(r.completion_cap(64), None);
        r.cap_completion();
        assert_eq!(r.completion_cap(64), Some(64));
        let out = String::from_utf8(r.upstream_body("m", Some(("max_tokens", 64)))).unwrap();
        assert_eq!(
            out,
            r#"{"model":"m","messages":[],"stream":true,"max_tokens":64,"stream_options":{"include_usage":true}}"#
        );
        let mut own = parse(r#"{"model":"g","messages":[],"max_output_tokens":9}"#).unwrap();
        own.cap_completion();
        assert_eq!(own.completion_cap(64), None);
        let embed = r#"{"model":"g","input":"x"}"#;
        let mut e = ChatRequest::parse_for(embed.as_bytes(), Dialect::OpenAi, Endpoint::Embeddings)
            .unwrap();
        e.cap_completion();
        assert_eq!(e.completion_cap(64), None);
    }

    #[test]
    fn stream_asks_for_usage() {
        let r = parse(r#"{"model":"g","messages":[],"stream":true}"#).unwrap();
        assert!(!r.client_wants_usage());
        let out = String::from_utf8(r.upstream_body("m", None)).unwrap();
        assert_eq!(
            out,
            r#"{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":true}}"#
        );
        let r =
            parse(r#"{"model":"g","messages":[],"stream":true,"stream_options":{"x":1}}"#).unwrap();
        let out: serde_json::Value = serde_json::from_slice(&r.upstream_body("m", None)).unwrap();
        assert_eq!(
            out["stream_options"],
            serde_json::json!({"x":1,"include_usage":true})
        );
        let body =
            r#"{"model":"g","messages":[],"stream":true,"stream_options":{"include_usage":true}}"#;
        let r = parse(body).unwrap();
        assert!(r.client_wants_usage());
        assert_eq!(r.upstream_body("g", None), body.as_bytes());
    }

    #[test]
    fn rejects_bad_requests() {
        let msg = |s: &[u8]| match ChatRequest::parse(s) {
            Err(RouterError::BadRequest { message, .. }) => message,
            other => panic!("expected 400, got {other:?}"),
        };
        assert!(msg(b"{\"model\":\"a\"").contains("not valid JSON"));
        assert!(msg(b"[1,2]").contains("must be a JSON object"));
        assert!(msg(b"\"text\"").contains("must be a JSON object"));
        assert!(msg(b"{\"model\":\"\xff\"}").contains("UTF-8"));
        assert!(msg(br#"{"messages":[]}"#).contains("'model'"));
        assert!(msg(br#"{"model":1,"messages":[]}"#).contains("must be a string"));
        assert!(msg(br#"{"model":null,"messages":[]}"#).contains("must be a string"));
        // A name with escapes is read unescaped; one without is its text.
        assert_eq!(
            parse(r#"{"model":"g\u0031\"","messages":[]}"#)
                .unwrap()
                .model(),
            "g1\""
        );
        assert_eq!(parse(r#"{"model":"","messages":[]}"#).unwrap().model(), "");
        // So is a field's name.
        let escaped = parse(r#"{"\u006dodel":"g","messages":[],"stre\u0061m":true}"#).unwrap();
        assert_eq!((escaped.model(), escaped.stream()), ("g", true));
        assert!(msg(br#"{"model":"a"}"#).contains("'messages'"));
        assert!(msg(br#"{"model":"a","messages":{}}"#).contains("must be an array"));
        assert!(msg(br#"{"model":"a","messages":[],"stream":"yes"}"#).contains("boolean"));
        assert!(msg(br#"{"model":"a","model":"b","messages":[]}"#).contains("more than once"));
    }

    #[test]
    fn inline_data_counts_a_flat_estimate_not_its_bytes() {
        let text = r#"{"model":"g","messages":[{"role":"user","content":"hello there"}]}"#;
        let plain = parse(text).unwrap().prompt_estimate();
        assert_eq!(plain, (text.len() as u64).div_ceil(4));
        let image = format!(
            r#"{{"model":"g","messages":[{{"role":"user","content":[{{"type":"image_url","image_url":{{"url":"data:image/png;base64,{}"}}}}]}}]}}"#,
            "A".repeat(4_000_000)
        );
        let estimate = parse(&image).unwrap().prompt_estimate();
        assert!(
            (INLINE_DATA_TOKENS..INLINE_DATA_TOKENS + 100).contains(&estimate),
            "{estimate}"
        );
    }
}
