//! The config editor's YAML side: [`Op`]s made on a lossless YAML tree (`yaml-edit`), so
//! comments, ordering and formatting outside the edited node stay as written.

use super::{EditError, Node, Op, Step};
use std::str::FromStr;
use yaml_edit::{Mapping, ScalarValue, Sequence, YamlFile, YamlNode};

/// A node built for the tree.
enum Built {
    Str(ScalarValue),
    Int(u64),
    Float(f64),
    Bool(bool),
    Map(Mapping),
    List(Sequence),
}

/// `node` as YAML: strings double-quoted (words bare), collections in flow style (`{a: 1}`, `[a]`), but the
/// top mapping in block style when `block`.
fn build(node: &Node, block: bool) -> Built {
    match node {
        Node::Str(s) => Built::Str(ScalarValue::double_quoted(s.as_str())),
        Node::Word(w) if w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
            Built::Str(ScalarValue::plain(w.as_str()))
        }
        Node::Word(w) => Built::Str(ScalarValue::double_quoted(w.as_str())),
        Node::Int(n) => Built::Int(*n),
        Node::Float(f) => Built::Float(*f),
        Node::Bool(b) => Built::Bool(*b),
        Node::Map(entries) => {
            let m = if block {
                Mapping::new()
            } else {
                Mapping::new_flow()
            };
            for (k, v) in entries {
                set(&m, k, &build(v, false));
            }
            Built::Map(m)
        }
        Node::List(items) => {
            let s = Sequence::new_flow();
            for item in items {
                push(&s, &build(item, false));
            }
            Built::List(s)
        }
    }
}

/// Calls `$f` with the built value as the `AsYaml` it is.
macro_rules! with_built {
    ($built:expr, $f:expr) => {
        match $built {
            Built::Str(v) => $f(v),
            Built::Int(v) => $f(*v),
            Built::Float(v) => $f(*v),
            Built::Bool(v) => $f(*v),
            Built::Map(v) => $f(v),
            Built::List(v) => $f(v),
        }
    };
}

fn set(m: &Mapping, key: &str, value: &Built) {
    with_built!(value, |v| m.set(key, v))
}

fn push(s: &Sequence, value: &Built) {
    with_built!(value, |v| s.push(v))
}

fn set_item(s: &Sequence, index: usize, value: &Built) {
    with_built!(value, |v| {
        s.set(index, v);
    })
}

fn unreadable(e: impl std::fmt::Display) -> EditError {
    EditError::Invalid(format!("the config is not YAML this editor reads: {e}"))
}

/// Where a path leads: `steps` written as `providers[2].api_keys`.
pub(super) fn shown(steps: &[Step]) -> String {
    let mut out = String::new();
    for step in steps {
        match step {
            Step::Key(k) if out.is_empty() => out.push_str(k),
            Step::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Step::Item(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// The node at `steps` under `top`.
fn walk(top: &Mapping, steps: &[Step]) -> Result<YamlNode, EditError> {
    let missing = |i: usize| {
        EditError::Invalid(format!(
            "{} is not written as this editor expects (a list or a mapping where the config has \
             one); edit it by hand",
            shown(&steps[..=i])
        ))
    };
    let mut node: Option<YamlNode> = None;
    for (i, step) in steps.iter().enumerate() {
        let next = match (step, &node) {
            (Step::Key(k), None) => top.get(k.as_str()),
            (Step::Key(k), Some(n)) => n.as_mapping().and_then(|m| m.get(k.as_str())),
            (Step::Item(j), Some(n)) => n.as_sequence().and_then(|s| s.get(*j)),
            (Step::Item(_), None) => None,
        };
        node = Some(next.ok_or_else(|| missing(i))?);
    }
    node.ok_or_else(|| EditError::Invalid("an edit with no path".into()))
}

/// The mapping holding the last step of `steps`, and that step.
fn parent<'a>(top: &Mapping, steps: &'a [Step]) -> Result<(YamlNode, &'a Step), EditError> {
    let (last, up) = steps
        .split_last()
        .ok_or_else(|| EditError::Invalid("an edit with no path".into()))?;
    let holder = if up.is_empty() {
        YamlNode::Mapping(top.clone())
    } else {
        walk(top, up)?
    };
    Ok((holder, last))
}

fn not_a(what: &str, steps: &[Step]) -> EditError {
    EditError::Invalid(format!(
        "{} is not written as {what}; edit it by hand",
        shown(steps)
    ))
}

/// `node` in YAML's flow style on one line: strings double-quoted (JSON's escapes are YAML's),
/// words bare when they are plain words.
fn flow(node: &Node) -> String {
    match node {
        Node::Word(w) if w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => w.clone(),
        Node::Str(s) | Node::Word(s) => serde_json::Value::from(s.as_str()).to_string(),
        Node::Int(n) => n.to_string(),
        Node::Float(f) => format!("{f:?}"),
        Node::Bool(b) => b.to_string(),
        Node::Map(entries) => {
            let fields: Vec<String> = (entries.iter())
                .map(|(k, v)| format!("{k}: {}", flow(v)))
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
        Node::List(items) => format!(
            "[{}]",
            items.iter().map(flow).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// `text` with `node` added to the block list whose last item starts at `last`: after every
/// line of that item (its deeper-indented lines, comments among them), before the blank line
/// or the shallower line that ends it; a mapping one key a line, as block lists are written.
fn append_item(text: &str, last: usize, node: &Node) -> String {
    let line_start = text[..last].rfind('\n').map_or(0, |i| i + 1);
    let dash = text[line_start..].len() - text[line_start..].trim_start_matches(' ').len();
    let mut end = text[last..].find('\n').map_or(text.len(), |i| last + i);
    while end < text.len() {
        let next_end = text[end + 1..]
            .find('\n')
            .map_or(text.len(), |i| end + 1 + i);
        let line = &text[end + 1..next_end];
        let indent = line.len() - line.trim_start_matches(' ').len();
        if line.trim().is_empty() || indent <= dash {
            break;
        }
        end = next_end;
    }
    let pad = " ".repeat(dash);
    let item = match node {
        Node::Map(entries) => (entries.iter().enumerate())
            .map(|(i, (k, v))| {
                let lead = if i == 0 { "- " } else { "  " };
                format!("{pad}{lead}{k}: {}", flow(v))
            })
            .collect::<Vec<_>>()
            .join("\n"),
        other => format!("{pad}- {}", flow(other)),
    };
    let mut out = String::with_capacity(text.len() + item.len() + 1);
    out.push_str(&text[..end]);
    out.push('\n');
    out.push_str(&item);
    out.push_str(&text[end..]);
    out
}

/// `text` with `op` made.
pub(super) fn apply(text: &str, op: &Op) -> Result<String, EditError> {
    let file = YamlFile::from_str(text).map_err(unreadable)?;
    let top = file
        .document()
        .and_then(|d| d.as_mapping())
        .ok_or_else(|| EditError::Invalid("the config is not a mapping of keys".into()))?;
    match op {
        Op::Set(steps, node) => match parent(&top, steps)? {
            (YamlNode::Mapping(m), Step::Key(k)) => set(&m, k, &build(node, false)),
            (YamlNode::Sequence(s), Step::Item(i)) => set_item(&s, *i, &build(node, false)),
            _ => return Err(not_a("a mapping", steps)),
        },
        Op::Remove(steps) => match parent(&top, steps)? {
            (YamlNode::Mapping(m), Step::Key(k)) => {
                m.remove(k.as_str());
            }
            (YamlNode::Sequence(s), Step::Item(i)) => {
                s.remove(*i);
            }
            _ => return Err(not_a("a mapping", steps)),
        },
        Op::Push(steps, node) => match parent(&top, steps)? {
            (YamlNode::Mapping(m), Step::Key(k)) => match m.get(k.as_str()) {
                Some(YamlNode::Sequence(s)) if !s.is_flow_style() => {
                    if let Some(last) = s.last() {
                        return Ok(append_item(text, last.byte_range().start as usize, node));
                    }
                    push(&s, &build(node, true));
                }
                Some(YamlNode::Sequence(s)) => push(&s, &build(node, false)),
                Some(_) => return Err(not_a("a list", steps)),
                None if steps.len() == 1 => {
                    // A new top-level list, in block style as the config's others.
                    let s = Sequence::new();
                    push(&s, &build(node, true));
                    m.set(k.as_str(), &s);
                }
                None => set(&m, k, &build(&Node::List(vec![node.clone()]), false)),
            },
            _ => return Err(not_a("a mapping", steps)),
        },
        Op::Wrap(steps) => {
            if let YamlNode::Scalar(key) = walk(&top, steps)? {
                let wrapped = Node::Map(vec![("key".into(), Node::Str(key.as_string()))]);
                match parent(&top, steps)? {
                    (YamlNode::Mapping(m), Step::Key(k)) => set(&m, k, &build(&wrapped, false)),
                    (YamlNode::Sequence(s), Step::Item(i)) => {
                        set_item(&s, *i, &build(&wrapped, false));
                    }
                    _ => return Err(not_a("a mapping", steps)),
                }
            }
        }
    }
    Ok(file.to_string())
}
