//! The config editor's JSON side: the same changes as on YAML, made by splicing the file's
//! text, so every byte outside the edited client (key order, spacing) stays as it was.
//! serde_json's `RawValue` gives the exact span of each value.

use crate::editor::{ClientEdit, EditError, NewClient};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::ops::Range;

/// An object's members: each key with its value's span in the document.
struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'de> serde::Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    out.push((key, map.next_value()?));
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V)
    }
}

fn invalid(e: impl std::fmt::Display) -> EditError {
    EditError::Invalid(format!("the config is not JSON this editor reads: {e}"))
}

/// Where `raw` (a piece of `text`) stands in it.
fn span(text: &str, raw: &RawValue) -> Range<usize> {
    let start = raw.get().as_ptr() as usize - text.as_ptr() as usize;
    start..start + raw.get().len()
}

/// The members of the object spanning `at` in `text`.
fn members<'a>(text: &'a str, at: &Range<usize>) -> Result<Vec<(String, Range<usize>)>, EditError> {
    let m: Members<'a> = serde_json::from_str(&text[at.clone()]).map_err(invalid)?;
    let base = at.start;
    Ok(m.0
        .into_iter()
        .map(|(k, v)| {
            let s = span(&text[at.clone()], v);
            (k, base + s.start..base + s.end)
        })
        .collect())
}

/// The start of the member whose value starts at `value`: its key's opening quote.
fn member_start(text: &str, value: usize) -> usize {
    let before = text[..value].trim_end();
    let before = before.strip_suffix(':').unwrap_or(before).trim_end();
    // The key is a JSON string: its opening quote is the last quote not escaped.
    let bytes = before.as_bytes();
    let mut at = before.len().saturating_sub(1);
    while at > 0 {
        at -= 1;
        if bytes[at] == b'"' && (at == 0 || bytes[at - 1] != b'\\') {
            return at;
        }
    }
    at
}

/// The whitespace that starts the line `at` is on.
fn indent_at(text: &str, at: usize) -> &str {
    let line = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let end = text[line..]
        .find(|c: char| c != ' ' && c != '\t')
        .map_or(text.len(), |i| line + i);
    &text[line..end.min(at)]
}

/// A new client as JSON, its fields in the config's documented order.
fn new_client(c: &NewClient, hash: &str) -> String {
    // Built as text so the order is kept (serde_json's maps sort their keys).
    let mut fields = vec![
        format!("\"name\": {}", serde_json::Value::from(c.name.as_str())),
        format!("\"key\": {}", serde_json::Value::from(hash)),
    ];
    if let Some(groups) = &c.groups {
        fields.push(format!("\"groups\": {}", serde_json::json!(groups)));
    }
    if c.budget_usd.is_some() || c.budget_tokens.is_some() {
        let mut b = Vec::new();
        if let Some(usd) = c.budget_usd {
            b.push(format!("\"usd\": {}", serde_json::json!(usd)));
        }
        if let Some(t) = c.budget_tokens {
            b.push(format!("\"tokens\": {t}"));
        }
        b.push(format!(
            "\"period\": {}",
            serde_json::json!(c.period.as_deref().unwrap_or("month"))
        ));
        fields.push(format!("\"budget\": {{{}}}", b.join(", ")));
    }
    let limits: Vec<String> = [
        ("rpm", c.rpm.map(u64::from)),
        ("tpm", c.tpm),
        ("parallel", c.parallel.map(u64::from)),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| format!("\"{k}\": {v}")))
    .collect();
    if !limits.is_empty() {
        fields.push(format!("\"limits\": {{{}}}", limits.join(", ")));
    }
    if let Some(e) = &c.expires {
        fields.push(format!("\"expires\": {}", serde_json::json!(e)));
    }
    if let Some(t) = &c.team {
        fields.push(format!("\"team\": {}", serde_json::json!(t)));
    }
    format!("{{{}}}", fields.join(", "))
}

/// `text` with `edit` made (the client's index found by the caller), and what was done.
pub(crate) fn apply(
    text: &str,
    edit: &ClientEdit,
    index: Option<usize>,
) -> Result<(String, String), EditError> {
    let whole = 0..text.trim_end().len();
    let top = members(text, &(text.len() - text.trim_start().len()..whole.end))?;
    let clients = top
        .iter()
        .find(|(k, _)| k == "clients")
        .map(|(_, s)| s.clone());
    let items: Vec<Range<usize>> = match &clients {
        Some(at) => serde_json::from_str::<Vec<&RawValue>>(&text[at.clone()])
            .map_err(invalid)?
            .into_iter()
            .map(|raw| {
                let s = span(&text[at.clone()], raw);
                at.start + s.start..at.start + s.end
            })
            .collect(),
        None => Vec::new(),
    };
    let item_at = |i: usize, name: &str| {
        let missing = || EditError::NotFound(format!("no client named '{name}'"));
        items.get(i).cloned().ok_or_else(missing)
    };
    let mut out = text.to_string();
    let said = match (edit, index) {
        (ClientEdit::Add(c, _), Some(_)) => {
            return Err(EditError::Conflict(format!(
                "a client named '{}' exists already",
                c.name
            )))
        }
        (ClientEdit::Add(c, hash), None) => {
            let object = new_client(c, hash);
            match (&clients, items.last()) {
                (Some(_), Some(last)) => {
                    let indent = indent_at(text, last.start);
                    out.insert_str(last.end, &format!(",\n{indent}{object}"));
                }
                (Some(at), None) => out.replace_range(at.clone(), &format!("[{object}]")),
                (None, _) => {
                    let last = top.last().map_or(whole.start + 1, |(_, s)| s.end);
                    let indent = top
                        .last()
                        .map_or("  ", |(_, s)| indent_at(text, member_start(text, s.start)));
                    let inner = format!("{indent}  ");
                    out.insert_str(
                        last,
                        &format!(",\n{indent}\"clients\": [\n{inner}{object}\n{indent}]"),
                    );
                }
            }
            format!("added client '{}'", c.name)
        }
        (
            ClientEdit::SetDisabled(name, _)
            | ClientEdit::Remove(name)
            | ClientEdit::Rotate(name, _),
            None,
        ) => return Err(EditError::NotFound(format!("no client named '{name}'"))),
        (ClientEdit::Remove(name), Some(i)) => {
            let item = item_at(i, name)?;
            // With the comma and line break that join it to its neighbour.
            let cut = match (
                i.checked_sub(1).and_then(|p| items.get(p)),
                items.get(i + 1),
            ) {
                (Some(prev), _) => prev.end..item.end,
                (None, Some(next)) => item.start..next.start,
                (None, None) => item.clone(),
            };
            out.replace_range(cut, "");
            format!("removed client '{name}'")
        }
        (ClientEdit::SetDisabled(name, disabled), Some(i)) => {
            let item = item_at(i, name)?;
            let fields = members(text, &item)?;
            match fields.iter().find(|(k, _)| k == "disabled") {
                Some((_, at)) => out.replace_range(at.clone(), &disabled.to_string()),
                None => {
                    let end = fields.last().map_or(item.start + 1, |(_, s)| s.end);
                    out.insert_str(end, &format!(", \"disabled\": {disabled}"));
                }
            }
            format!(
                "{} client '{name}'",
                if *disabled { "disabled" } else { "enabled" }
            )
        }
        (ClientEdit::Rotate(name, hash), Some(i)) => {
            let item = item_at(i, name)?;
            rotate(text, &mut out, &item, hash)?;
            format!("rotated the key of client '{name}'")
        }
    };
    Ok((out, said))
}

/// Replaces the keys of the client spanning `item` in `text` (edited into `out`) by `hash`:
/// its `keys` member goes, its `key` member is set (or added after its name).
fn rotate(text: &str, out: &mut String, item: &Range<usize>, hash: &str) -> Result<(), EditError> {
    let fields = members(text, item)?;
    let quoted = serde_json::Value::from(hash).to_string();
    // From the end, so earlier spans stay right: `keys` out, `key` set.
    let mut edits: Vec<(Range<usize>, String)> = Vec::new();
    if let Some(pos) = fields.iter().position(|(k, _)| k == "keys") {
        let start = member_start(text, fields[pos].1.start);
        let cut = match pos.checked_sub(1).map(|p| &fields[p]) {
            Some((_, prev)) => prev.end..fields[pos].1.end,
            None => {
                start
                    ..fields
                        .get(pos + 1)
                        .map_or(fields[pos].1.end, |(_, n)| member_start(text, n.start))
            }
        };
        edits.push((cut, String::new()));
    }
    match fields.iter().find(|(k, _)| k == "key") {
        Some((_, at)) => edits.push((at.clone(), quoted)),
        None => {
            let name_end = fields
                .iter()
                .find(|(k, _)| k == "name")
                .map_or(item.start + 1, |(_, s)| s.end);
            edits.push((name_end..name_end, format!(", \"key\": {quoted}")));
        }
    }
    edits.sort_by_key(|(r, _)| std::cmp::Reverse(r.start));
    for (range, with) in edits {
        out.replace_range(range, &with);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use router_core::{Format, Source};

    fn clients(text: &str) -> Vec<router_core::config::ClientConfig> {
        Source::from_text(text, Format::Json)
            .parse()
            .unwrap()
            .clients
    }

    fn index(text: &str, name: &str) -> Option<usize> {
        clients(text).iter().position(|c| c.name == name)
    }

    fn run(text: &str, edit: ClientEdit) -> String {
        let name = match &edit {
            ClientEdit::Add(c, _) => c.name.clone(),
            ClientEdit::SetDisabled(n, _) | ClientEdit::Remove(n) | ClientEdit::Rotate(n, _) => {
                n.clone()
            }
        };
        apply(text, &edit, index(text, &name)).unwrap().0
    }

    #[test]
    fn edits_keep_every_other_byte_of_the_example_and_its_key_order() {
        let example = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config.example.json"),
        )
        .unwrap();
        let new = |name: &str| NewClient {
            name: name.into(),
            groups: Some(vec!["demo".into()]),
            budget_usd: Some(5.0),
            rpm: Some(60),
            ..NewClient::default()
        };
        let one = run(&example, ClientEdit::Add(new("a"), "sha256:aa".into()));
        // The example's text is all there, in order; the new key comes last.
        assert!(
            one.starts_with(example.trim_end().trim_end_matches('}').trim_end()),
            "{one}"
        );
        let two = run(&one, ClientEdit::Add(new("b"), "sha256:bb".into()));
        let got = clients(&two);
        assert_eq!((got[0].name.as_str(), got[1].name.as_str()), ("a", "b"));
        assert_eq!(got[1].limits.rpm, Some(60));
        assert!(two.contains(r#"{"name": "b", "key": "sha256:bb", "groups": ["demo"], "budget": {"usd": 5.0, "period": "month"}, "limits": {"rpm": 60}}"#), "{two}");
        let disabled = run(&two, ClientEdit::SetDisabled("a".into(), true));
        assert!(clients(&disabled)[0].disabled && !clients(&disabled)[1].disabled);
        let enabled = run(&disabled, ClientEdit::SetDisabled("a".into(), false));
        assert!(!clients(&enabled)[0].disabled);
        let rotated = run(&enabled, ClientEdit::Rotate("b".into(), "sha256:cc".into()));
        assert_eq!(
            clients(&rotated)[1].key.as_ref().unwrap().as_str(),
            "sha256:cc"
        );
        // Removing both leaves an empty list; the rest is the example's text.
        let less = run(&rotated, ClientEdit::Remove("a".into()));
        assert_eq!(clients(&less).len(), 1);
        let none = run(&less, ClientEdit::Remove("b".into()));
        assert!(clients(&none).is_empty());
        assert!(
            none.starts_with(example.trim_end().trim_end_matches('}').trim_end()),
            "{none}"
        );
    }

    #[test]
    fn rotation_replaces_a_list_of_keys() {
        let text = "{\n  \"clients\": [\n    {\"name\": \"r\", \"keys\": [\"k1\", \"k2\"], \"team\": null},\n    {\"keys\": [\"k3\"], \"name\": \"s\"}\n  ]\n}\n";
        let rotated = run(text, ClientEdit::Rotate("r".into(), "sha256:dd".into()));
        let c = &clients(&rotated)[0];
        assert_eq!(
            (c.key.as_ref().unwrap().as_str(), c.keys.len()),
            ("sha256:dd", 0),
            "{rotated}"
        );
        let first_member = run(&rotated, ClientEdit::Rotate("s".into(), "sha256:ee".into()));
        let c = &clients(&first_member)[1];
        assert_eq!(
            (c.key.as_ref().unwrap().as_str(), c.keys.len()),
            ("sha256:ee", 0),
            "{first_member}"
        );
    }
}
