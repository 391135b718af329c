//! The config editor's JSON side: [`Op`]s made by splicing the file's text, so every byte
//! outside the edited value (key order, spacing) stays as it was. serde_json's `RawValue`
//! gives the exact span of each value.

use super::{EditError, Node, Op, Step};
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

/// `node` as compact JSON, its keys in the order given (serde_json's maps would sort them).
fn render(node: &Node) -> String {
    match node {
        Node::Str(s) | Node::Word(s) => serde_json::Value::from(s.as_str()).to_string(),
        Node::Int(n) => n.to_string(),
        Node::Float(f) => serde_json::json!(f).to_string(),
        Node::Bool(b) => b.to_string(),
        Node::Map(entries) => {
            let fields: Vec<String> = (entries.iter())
                .map(|(k, v)| format!("{}: {}", render(&Node::Str(k.clone())), render(v)))
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
        Node::List(items) => {
            let items: Vec<String> = items.iter().map(render).collect();
            format!("[{}]", items.join(", "))
        }
    }
}

/// The items of the array spanning `at` in `text`.
fn items(text: &str, at: &Range<usize>) -> Result<Vec<Range<usize>>, EditError> {
    let list: Vec<&RawValue> = serde_json::from_str(&text[at.clone()]).map_err(invalid)?;
    Ok(list
        .into_iter()
        .map(|raw| {
            let s = span(&text[at.clone()], raw);
            at.start + s.start..at.start + s.end
        })
        .collect())
}

fn not_as_expected(steps: &[Step]) -> EditError {
    EditError::Invalid(format!(
        "{} is not written as this editor expects (a list or an object where the config has          one); edit it by hand",
        super::yaml::shown(steps)
    ))
}

/// The span of the value at `steps` in `text`.
fn resolve(text: &str, steps: &[Step]) -> Result<Range<usize>, EditError> {
    let mut at = text.len() - text.trim_start().len()..text.trim_end().len();
    for (i, step) in steps.iter().enumerate() {
        let trimmed = text[at.clone()].trim_start();
        let next = match step {
            Step::Key(k) if trimmed.starts_with('{') => (members(text, &at)?.into_iter())
                .find(|(key, _)| key == k)
                .map(|(_, s)| s),
            Step::Item(j) if trimmed.starts_with('[') => items(text, &at)?.get(*j).cloned(),
            _ => None,
        };
        at = next.ok_or_else(|| not_as_expected(&steps[..=i]))?;
    }
    Ok(at)
}

/// Whether the value at `item` starts a line of its own inside the collection opened at `open`.
fn on_own_line(text: &str, open: usize, item: usize) -> bool {
    text[open..item].contains('\n')
}

/// Inserts `piece` (a member `"k": v` or an item) after the last of `last` in the collection
/// spanning `at`, on a line of its own when the others are.
fn append(
    text: &str,
    out: &mut String,
    at: &Range<usize>,
    last: Option<(usize, usize)>,
    piece: &str,
) {
    match last {
        Some((start, end)) if on_own_line(text, at.start, start) => {
            let indent = indent_at(text, start);
            out.insert_str(end, &format!(",\n{indent}{piece}"));
        }
        Some((_, end)) => out.insert_str(end, &format!(", {piece}")),
        None => {
            let (open, close) = (&text[at.start..=at.start], &text[at.end - 1..at.end]);
            out.replace_range(at.clone(), &format!("{open}{piece}{close}"));
        }
    }
}

/// `text` with `op` made.
pub(super) fn apply(text: &str, op: &Op) -> Result<String, EditError> {
    let split = |steps: &[Step]| -> Result<(Range<usize>, Step), EditError> {
        let (last, up) = (steps.split_last())
            .ok_or_else(|| EditError::Invalid("an edit with no path".into()))?;
        Ok((resolve(text, up)?, last.clone()))
    };
    let mut out = text.to_string();
    match op {
        Op::Set(steps, node) => {
            let value = render(node);
            match split(steps)? {
                (at, Step::Key(k)) => {
                    let fields = members(text, &at).map_err(|_| not_as_expected(steps))?;
                    match fields.iter().find(|(key, _)| *key == k) {
                        Some((_, span)) => out.replace_range(span.clone(), &value),
                        None => {
                            let last =
                                (fields.last()).map(|(_, s)| (member_start(text, s.start), s.end));
                            let member = format!("{}: {value}", render(&Node::Str(k)));
                            append(text, &mut out, &at, last, &member);
                        }
                    }
                }
                (at, Step::Item(i)) => {
                    let list = items(text, &at).map_err(|_| not_as_expected(steps))?;
                    let item = list.get(i).ok_or_else(|| not_as_expected(steps))?;
                    out.replace_range(item.clone(), &value);
                }
            }
        }
        Op::Remove(steps) => {
            let (at, last) = split(steps)?;
            // Each entry with its start (a member's key) and its value's end.
            let entries: Vec<(usize, usize)> = match &last {
                Step::Key(_) => (members(text, &at).map_err(|_| not_as_expected(steps))?)
                    .iter()
                    .map(|(_, s)| (member_start(text, s.start), s.end))
                    .collect(),
                Step::Item(_) => (items(text, &at).map_err(|_| not_as_expected(steps))?)
                    .iter()
                    .map(|s| (s.start, s.end))
                    .collect(),
            };
            let index = match &last {
                Step::Key(k) => (members(text, &at)?.iter()).position(|(key, _)| key == k),
                Step::Item(i) => Some(*i).filter(|i| *i < entries.len()),
            };
            let Some(i) = index else {
                return Ok(out);
            };
            // With the comma and line break that join it to its neighbour.
            let cut = match (i.checked_sub(1).map(|p| entries[p]), entries.get(i + 1)) {
                (Some(prev), _) => prev.1..entries[i].1,
                (None, Some(next)) => entries[i].0..next.0,
                (None, None) => at.start + 1..at.end - 1,
            };
            out.replace_range(cut, "");
        }
        Op::Push(steps, node) => {
            let value = render(node);
            match resolve(text, steps) {
                Ok(list_at) if text[list_at.clone()].starts_with('[') => {
                    let list = items(text, &list_at)?;
                    let last = list.last().map(|s| (s.start, s.end));
                    append(text, &mut out, &list_at, last, &value);
                }
                Ok(_) => return Err(not_as_expected(steps)),
                Err(_) => {
                    let list = Node::List(vec![node.clone()]);
                    return apply(text, &Op::Set(steps.clone(), list));
                }
            }
        }
        Op::Wrap(steps) => {
            let at = resolve(text, steps)?;
            if text[at.clone()].starts_with('"') {
                out.replace_range(at.clone(), &format!("{{\"key\": {}}}", &text[at]));
            }
        }
    }
    Ok(out)
}
