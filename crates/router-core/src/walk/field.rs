//! A top-level field of a JSON object, found from the object's end.
//!
//! The answers whose usage the router reads from a pass-through body write it last or near
//! the end, after the answer's text: OpenAI's `usage` (then `service_tier` and
//! `system_fingerprint`), Anthropic's `usage`, Gemini's `usageMetadata`. Read from the end,
//! only what follows the field is looked at: for a 1 KB chat completion through the router,
//! the walk from the start (every string jumped, every bracket matched) cost about 4,700
//! instructions, this read about 1,500 (`instructions --keep`).
//!
//! What lies before the field is not looked at, so a body broken there still gives its
//! usage: the upstream answered, and counts it. What is read is followed as the walk
//! follows what it skips: strings jumped (a quote preceded by an odd run of backslashes is
//! inside one), brackets matched by kind, nesting no deeper than serde_json's limit.

use super::{is_ws, MAX_DEPTH};

/// The raw text of the top-level field `key` (as written, without its quotes) of the JSON
/// object `data`, the last one if the key is written twice, if it has one.
pub(crate) fn field<'a>(data: &'a [u8], key: &str) -> Option<&'a [u8]> {
    let data = trim_ws(data);
    let (start, end) = (0, data.len().checked_sub(1)?);
    if data[start] != b'{' || data[end] != b'}' || end == start {
        return None;
    }
    // Bit `i` of `arrays` says whether the container `i` levels out from the one being read
    // back through is an array; `depth` 1 is the object itself.
    let (mut arrays, mut depth) = (0u128, 1usize);
    // Just past the value being passed over at depth 1: the `,` or `}` after it.
    let mut value_end = end;
    let mut at = end;
    while at > start + 1 {
        at -= 1;
        match data[at] {
            b'"' => {
                let open = opening_quote(data, at)?;
                if depth == 1 {
                    let colon = at + 1 + data[at + 1..].iter().position(|b| !is_ws(*b))?;
                    if data[colon] == b':' && &data[open + 1..at] == key.as_bytes() {
                        let value = trim_ws(&data[colon + 1..value_end]);
                        return (!value.is_empty()).then_some(value);
                    }
                }
                at = open;
            }
            close @ (b'}' | b']') => {
                depth += 1;
                if depth > MAX_DEPTH + 1 {
                    return None;
                }
                arrays = (arrays << 1) | u128::from(close == b']');
            }
            open @ (b'{' | b'[') => {
                if depth == 1 || (arrays & 1 == 1) != (open == b'[') {
                    return None;
                }
                (arrays, depth) = (arrays >> 1, depth - 1);
            }
            b',' if depth == 1 => value_end = at,
            _ => {}
        }
    }
    None
}

/// The top-level field `key` of the JSON object `data`, parsed, if it has one that parses.
pub(crate) fn field_value(data: &[u8], key: &str) -> Option<serde_json::Value> {
    serde_json::from_slice(field(data, key)?).ok()
}

/// `text` without JSON's whitespace around it.
fn trim_ws(text: &[u8]) -> &[u8] {
    let start = text.iter().position(|&b| !is_ws(b)).unwrap_or(text.len());
    let end = text
        .iter()
        .rposition(|&b| !is_ws(b))
        .map_or(start, |e| e + 1);
    &text[start..end]
}

/// Where the string that closes at `close` opens: the last quote before it that no odd run
/// of backslashes escapes.
fn opening_quote(data: &[u8], close: usize) -> Option<usize> {
    let mut before = close;
    loop {
        let quote = memchr::memrchr(b'"', &data[..before])?;
        let backslashes = data[..quote]
            .iter()
            .rev()
            .take_while(|&&b| b == b'\\')
            .count();
        if backslashes % 2 == 0 {
            return Some(quote);
        }
        before = quote;
    }
}

#[cfg(test)]
mod tests {
    use super::field;
    use proptest::prelude::*;
    use serde_json::{Map, Value};

    #[test]
    fn a_top_level_field_is_read_from_the_end() {
        let doc = br#" {"id":"x","choices":[{"usage":1}],"usage" : {"prompt_tokens": 3} } "#;
        assert_eq!(field(doc, "usage"), Some(&br#"{"prompt_tokens": 3}"#[..]));
        assert_eq!(field(doc, "id"), Some(&br#""x""#[..]));
        // A nested field of that name is not it; written twice, the last one is.
        assert_eq!(field(br#"{"choices":[{"usage":1}]}"#, "usage"), None);
        assert_eq!(
            field(br#"{"usage":1,"b":[2],"usage":3}"#, "usage"),
            Some(&b"3"[..])
        );
        // Not an object, cut short, something after it, no value.
        assert_eq!(field(br#"[{"usage":1}]"#, "usage"), None);
        assert_eq!(field(br#"{"usage":{"a":1}"#, "usage"), None);
        assert_eq!(field(br#"{"usage":1} {"#, "usage"), None);
        assert_eq!(field(br#"{"usage":}"#, "usage"), None);
        // JSON's whitespace is trimmed, a form feed is not (serde_json then refuses it).
        assert_eq!(field(b"{\"usage\": \n3\r\t}", "usage"), Some(&b"3"[..]));
        assert_eq!(field(b"{\"usage\":3\x0c}", "usage"), Some(&b"3\x0c"[..]));
        assert_eq!(field(b"{}", "usage"), None);
        assert_eq!(field(b"}", "usage"), None);
        assert_eq!(field(b"", "usage"), None);
        // Quotes inside strings do not end them, whatever runs of backslashes come before.
        assert_eq!(
            field(br#"{"usage":3,"a":"\"usage\":2,\\"}"#, "usage"),
            Some(&b"3"[..])
        );
        assert_eq!(
            field(br#"{"usage":3,"a":"\\\"usage\":2}"}"#, "usage"),
            Some(&b"3"[..])
        );
        // A string that never opens.
        assert_eq!(field(br#"{usage":3}"#, "usage"), None);
    }

    #[test]
    fn what_follows_the_field_must_hold_together() {
        // Brackets closed by the other kind, or a container closing the object.
        assert_eq!(field(br#"{"usage":2,"a":[1}}"#, "usage"), None);
        assert_eq!(field(br#"{"usage":2,"a":{"b":1]}"#, "usage"), None);
        assert_eq!(field(br#"{"usage":2,"a":1]}"#, "usage"), None);
        assert_eq!(field(br#"{"usage":2},"a":1}"#, "usage"), None);
        // What comes before the field is not looked at.
        assert_eq!(field(br#"{"a":[1},"usage":2}"#, "usage"), Some(&b"2"[..]));
        // Nesting after the field: as deep as serde_json reads, and no deeper.
        let nested = |n: usize| format!(r#"{{"usage":2,"a":{}{}}}"#, "[".repeat(n), "]".repeat(n));
        assert_eq!(field(nested(128).as_bytes(), "usage"), Some(&b"2"[..]));
        assert_eq!(field(nested(129).as_bytes(), "usage"), None);
    }

    /// JSON whose strings hold what could mislead a reader from the end.
    fn any_json() -> impl Strategy<Value = Value> {
        let text = prop::sample::select(vec![
            "",
            "usage",
            "\"usage\":1",
            "\\",
            "\\\"",
            "}",
            "]",
            "{[",
            ",\"usage\":",
            "é ✓",
        ]);
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<i64>().prop_map(Value::from),
            prop::collection::vec(text, 0..3).prop_map(|parts| Value::String(parts.concat())),
        ];
        leaf.prop_recursive(4, 32, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                object(inner),
            ]
        })
    }

    fn object(values: impl Strategy<Value = Value>) -> impl Strategy<Value = Value> {
        let key = prop::sample::select(vec!["usage", "a", "usage\"", "b\\"]);
        prop::collection::btree_map(key, values, 0..4).prop_map(|map| {
            Value::Object(
                map.into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect::<Map<_, _>>(),
            )
        })
    }

    proptest! {
        /// Every top-level field of an object serde_json writes, compact or pretty, reads as
        /// the value serde_json gives for it.
        #[test]
        fn reads_what_serde_json_reads(doc in object(any_json()), pretty in any::<bool>()) {
            let text = if pretty {
                serde_json::to_vec_pretty(&doc).unwrap()
            } else {
                serde_json::to_vec(&doc).unwrap()
            };
            for key in ["usage", "a", "missing"] {
                let read = field(&text, key).map(|raw| serde_json::from_slice::<Value>(raw).unwrap());
                prop_assert_eq!(read.as_ref(), doc.get(key), "{}", String::from_utf8_lossy(&text));
            }
        }
    }
}
