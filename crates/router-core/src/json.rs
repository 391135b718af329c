//! Small readers of JSON values shared by the translations.

use serde_json::Value;

/// The text of a message's `content`: a string as it is, or the `text` of each part joined by
/// `separator` (each format joins parts its own way); anything else is no text.
pub(crate) fn text_of(content: &Value, separator: &str) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join(separator),
        _ => String::new(),
    }
}

/// Seconds since the Unix epoch, for the `created` field of translated answers.
pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::text_of;
    use serde_json::json;

    #[test]
    fn text_of_strings_and_parts() {
        assert_eq!(text_of(&json!("hi"), "\n"), "hi");
        let parts = json!([{"type": "text", "text": "a"}, {"type": "image"}, {"text": "b"}]);
        assert_eq!(text_of(&parts, "\n"), "a\nb");
        assert_eq!(text_of(&parts, ""), "ab");
        assert_eq!(text_of(&json!(null), " "), "");
    }
}
