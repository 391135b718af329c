//! The tool call the mock makes. When the last user text asks to "use a tool" and the request
//! offers tools, the mock calls one:
//!
//! - when a command follows in backticks (`` use a tool to run `echo hi` ``) and a tool takes a
//!   shell command (a `command` or `cmd` property, as Claude Code's `Bash` and Codex's
//!   `exec_command` do), that tool, with the command;
//! - otherwise the first tool, with `{"query": <the text>}`.
//!
//! A request whose last turn is a tool's result is answered with text that repeats it
//! (`mock says: tool said: …`), so a round trip ends.

use serde_json::{json, Value};

/// The call of one of the `offered` tools (name, JSON schema of its input) that `last_user`
/// asks for: the tool's name and its input.
pub(crate) fn call<'a>(
    offered: impl Iterator<Item = (&'a str, &'a Value)> + Clone,
    last_user: &str,
) -> Option<(String, Value)> {
    let asked = &last_user[last_user.find("use a tool")?..];
    let command = asked
        .split_once('`')
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(command, _)| command);
    if let Some(command) = command {
        for (name, schema) in offered.clone() {
            for key in ["command", "cmd"] {
                if schema["properties"].get(key).is_some() {
                    return Some((name.to_string(), json!({ key: command })));
                }
            }
        }
    }
    let (name, _) = offered.into_iter().next()?;
    Some((name.to_string(), json!({ "query": last_user })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_goes_to_the_tool_that_takes_one() {
        let schemas = [
            ("Agent", json!({"properties": {"prompt": {}}})),
            (
                "Bash",
                json!({"properties": {"command": {}, "timeout": {}}}),
            ),
        ];
        let offered = schemas.iter().map(|(n, s)| (*n, s));
        assert_eq!(
            call(offered.clone(), "please use a tool to run `echo hi` now"),
            Some(("Bash".to_string(), json!({"command": "echo hi"})))
        );
        assert_eq!(
            call(offered.clone(), "use a tool"),
            Some(("Agent".to_string(), json!({"query": "use a tool"})))
        );
        assert_eq!(call(offered, "hello"), None);
        let codex = [("exec_command", json!({"properties": {"cmd": {}}}))];
        assert_eq!(
            call(codex.iter().map(|(n, s)| (*n, s)), "use a tool: `ls`"),
            Some(("exec_command".to_string(), json!({"cmd": "ls"})))
        );
    }
}
