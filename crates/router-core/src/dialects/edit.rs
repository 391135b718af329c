//! The pieces [`ChatRequest::upstream_body`](super::request::ChatRequest::upstream_body) writes
//! in place of spans of the client's request, each straight into the new body.

use super::request::CompletionLimit;

type JsonObject = serde_json::Map<String, serde_json::Value>;

/// What goes in place of a span of the request.
pub(super) enum Edit<'e> {
    /// The upstream model's name, as a JSON string.
    Model(&'e str),
    /// `metadata` without the router's tags.
    Object(&'e JsonObject),
    /// `stream_options` with `include_usage` set.
    Options(JsonObject),
    /// A completion limit, as a further field.
    Limit(CompletionLimit),
    /// Text as it is.
    Text(&'static str),
}

impl Edit<'_> {
    /// Writes it straight into the body (strings and objects cannot fail to serialize).
    pub(super) fn write(&self, out: &mut Vec<u8>) {
        let _ = match self {
            Edit::Model(name) => serde_json::to_writer(&mut *out, name),
            Edit::Object(object) => serde_json::to_writer(&mut *out, object),
            Edit::Options(object) => serde_json::to_writer(&mut *out, object),
            Edit::Limit((field, tokens)) => {
                use std::io::Write as _;
                let _ = write!(out, ",\"{field}\":{tokens}");
                Ok(())
            }
            Edit::Text(text) => {
                out.extend_from_slice(text.as_bytes());
                Ok(())
            }
        };
    }
}
