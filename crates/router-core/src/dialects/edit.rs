//! The pieces [`ChatRequest::upstream_body`](super::request::ChatRequest::upstream_body) writes
//! in place of spans of the client's request, each straight into the new body.

use super::request::CompletionLimit;
use std::borrow::Cow;

type JsonObject = serde_json::Map<String, serde_json::Value>;

/// What goes in place of a span of the request.
pub(super) enum Edit<'e> {
    /// The upstream model's name, as a JSON string.
    Model(&'e str),
    /// An object: `metadata` without the router's tags, `stream_options` with
    /// `include_usage` set.
    Object(Cow<'e, JsonObject>),
    /// A completion limit, as a further field.
    Limit(CompletionLimit),
    /// Text as it is.
    Text(&'static str),
}

impl Edit<'_> {
    /// Writes it straight into the body: writing into a `Vec` cannot fail, nor can
    /// serializing a string or a map with string keys.
    pub(super) fn write(&self, out: &mut Vec<u8>) {
        use std::io::Write as _;
        let _ = match self {
            Edit::Model(name) => serde_json::to_writer(&mut *out, name),
            Edit::Object(object) => serde_json::to_writer(&mut *out, object.as_ref()),
            Edit::Limit((field, tokens)) => {
                write!(out, ",\"{field}\":{tokens}").map_err(serde_json::Error::io)
            }
            Edit::Text(text) => {
                out.extend_from_slice(text.as_bytes());
                Ok(())
            }
        };
    }
}
