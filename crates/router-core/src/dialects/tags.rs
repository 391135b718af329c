//! The tags a request asks for (`x-llm-router-tags: a,b`, or the body's `metadata.tags`): only
//! the models of its group that carry all of them may serve it. The body's tags are the
//! router's own, so they are taken out of `metadata` before the request goes upstream.

use crate::RouterError;
use http::HeaderMap;
use serde_json::value::RawValue;

type JsonObject = serde_json::Map<String, serde_json::Value>;

/// The header a request names its tags in, comma-separated.
pub const TAGS_HEADER: &str = "x-llm-router-tags";

/// The tags in the request's `metadata` (`raw`), and `metadata` without them; `None` when it
/// has no `tags`. Tags must be an array of strings.
pub(super) fn from_metadata(
    raw: &RawValue,
) -> Result<Option<(Vec<String>, JsonObject)>, RouterError> {
    if memchr::memmem::find(raw.get().as_bytes(), b"\"tags\"").is_none() {
        // Most requests' metadata: nothing of the router's, nothing to parse.
        return Ok(None);
    }
    let Ok(mut metadata) = serde_json::from_str::<JsonObject>(raw.get()) else {
        // Not an object: the provider says what it thinks of it.
        return Ok(None);
    };
    let Some(tags) = metadata.remove("tags") else {
        return Ok(None);
    };
    let refused = || {
        RouterError::bad_request(
            "'metadata.tags' must be an array of strings (the tags a model must carry)",
            Some("metadata.tags"),
        )
    };
    let serde_json::Value::Array(items) = tags else {
        return Err(refused());
    };
    let mut tags = Vec::with_capacity(items.len());
    for item in items {
        match item {
            serde_json::Value::String(tag) => tags.push(tag),
            _ => return Err(refused()),
        }
    }
    Ok(Some((tags, metadata)))
}

/// The tags of the `x-llm-router-tags` header(s): comma-separated, trimmed, empty ones left out.
pub(crate) fn from_headers(headers: Option<&HeaderMap>) -> Vec<String> {
    let values = headers.map(|h| h.get_all(TAGS_HEADER));
    let mut tags = Vec::new();
    for value in values.into_iter().flatten() {
        let Ok(value) = value.to_str() else { continue };
        for tag in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            if !tags.iter().any(|t| t == tag) {
                tags.push(tag.to_string());
            }
        }
    }
    tags
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_string()).unwrap()
    }

    #[test]
    fn metadata_tags_are_read_and_taken_out() {
        let (tags, rest) = from_metadata(&raw(r#"{"tags":["fast","eu"],"user_id":"u1"}"#))
            .unwrap()
            .unwrap();
        assert_eq!(tags, ["fast", "eu"]);
        assert_eq!(
            serde_json::Value::Object(rest).to_string(),
            r#"{"user_id":"u1"}"#
        );
        assert!(from_metadata(&raw(r#"{"user_id":"u1"}"#))
            .unwrap()
            .is_none());
        let e = from_metadata(&raw(r#"{"tags":"fast"}"#)).unwrap_err();
        assert!(e.client_message().contains("metadata.tags"), "{e}");
        assert!(from_metadata(&raw(r#"{"tags":[1]}"#)).is_err());
    }

    #[test]
    fn header_tags_are_split_trimmed_and_unique() {
        let mut headers = HeaderMap::new();
        headers.append(TAGS_HEADER, " fast, eu ,,".parse().unwrap());
        headers.append(TAGS_HEADER, "eu,cheap".parse().unwrap());
        assert_eq!(from_headers(Some(&headers)), ["fast", "eu", "cheap"]);
        assert!(from_headers(None).is_empty());
    }
}
