//! Maps key paths (`groups[1].models[0].provider`) to their line in a YAML source, so that
//! errors found after deserialization can still point at a line.
//!
//! This is the one job of `yaml-rust2` beside `serde_yaml`, which loads the config:
//! `serde_yaml` gives a position only with an error, never for a value it parsed, and keeps its
//! parser's events (which carry the positions) private. `yaml-rust2`'s event parser gives each
//! key's line; it cannot replace `serde_yaml` either, having no serde deserializer.

use std::collections::HashMap;
use yaml_rust2::parser::{Event, Parser};

enum Frame {
    Map { key: Option<String> },
    Seq { index: usize },
}

fn path_of(stack: &[Frame]) -> String {
    let mut path = String::new();
    for frame in stack {
        match frame {
            Frame::Map { key: Some(k) } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
            }
            Frame::Map { key: None } => {}
            Frame::Seq { index } => path.push_str(&format!("[{index}]")),
        }
    }
    path
}

/// Line (1-based) of every key path in `src`; empty if the source does not parse.
pub(crate) fn line_index(src: &str) -> HashMap<String, usize> {
    let mut lines = HashMap::new();
    let mut parser = Parser::new_from_str(src);
    let mut stack: Vec<Frame> = Vec::new();
    // For maps: whether the next scalar is a key.
    let mut expect_key: Vec<bool> = Vec::new();

    // Called after a complete value: advance the parent container.
    fn advance(stack: &mut [Frame], expect_key: &mut [bool]) {
        match stack.last_mut() {
            Some(Frame::Map { key }) => {
                *key = None;
                if let Some(e) = expect_key.last_mut() {
                    *e = true;
                }
            }
            Some(Frame::Seq { index }) => *index += 1,
            None => {}
        }
    }

    while let Ok((event, marker)) = parser.next_token() {
        let line = marker.line();
        match event {
            Event::StreamEnd => break,
            Event::Scalar(value, ..) => {
                let is_key = matches!(stack.last(), Some(Frame::Map { .. }))
                    && expect_key.last().copied().unwrap_or(false);
                if is_key {
                    if let Some(Frame::Map { key }) = stack.last_mut() {
                        *key = Some(value);
                    }
                    if let Some(e) = expect_key.last_mut() {
                        *e = false;
                    }
                    lines.entry(path_of(&stack)).or_insert(line);
                } else {
                    lines.entry(path_of(&stack)).or_insert(line);
                    advance(&mut stack, &mut expect_key);
                }
            }
            Event::Alias(_) => {
                lines.entry(path_of(&stack)).or_insert(line);
                advance(&mut stack, &mut expect_key);
            }
            Event::MappingStart(..) => {
                lines.entry(path_of(&stack)).or_insert(line);
                stack.push(Frame::Map { key: None });
                expect_key.push(true);
            }
            Event::SequenceStart(..) => {
                lines.entry(path_of(&stack)).or_insert(line);
                stack.push(Frame::Seq { index: 0 });
                expect_key.push(false);
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
                expect_key.pop();
                advance(&mut stack, &mut expect_key);
            }
            _ => {}
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::line_index;

    #[test]
    fn finds_lines_of_nested_paths() {
        let src = "port: 8080\ngroups:\n  - name: a\n    models:\n      - provider: x\n        name: m\n  - name: b\n    models: []\nproviders: [{name: p}]\n";
        let idx = line_index(src);
        assert_eq!(idx.get("port"), Some(&1));
        assert_eq!(idx.get("groups[0].name"), Some(&3));
        assert_eq!(idx.get("groups[0].models[0].provider"), Some(&5));
        assert_eq!(idx.get("groups[0].models[0].name"), Some(&6));
        assert_eq!(idx.get("groups[1].name"), Some(&7));
        assert_eq!(idx.get("groups[1].models"), Some(&8));
        assert_eq!(idx.get("providers[0].name"), Some(&9));
    }
}
