//! Log lines are lines: a message that spans several (a config's list of problems) is folded
//! into one, its lines joined by ` | `, so a line-based log shipper keeps it whole. JSON logs
//! escape their newlines already; this is for the text format, and harmless for JSON.

use std::borrow::Cow;
use std::io::{self, Write};

/// The log's writer: standard error, each event on one line.
pub struct OneLine(io::Stderr);

/// What the log is written with (a `tracing_subscriber` `MakeWriter`).
pub fn one_line_stderr() -> OneLine {
    OneLine(io::stderr())
}

impl Write for OneLine {
    /// Takes one whole event (the formatter writes each with one `write_all`).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_all(&fold(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// `event` with its inner line breaks (and the indentation after them) turned into ` | `; its
/// final line break kept.
fn fold(event: &[u8]) -> Cow<'_, [u8]> {
    let body = event.strip_suffix(b"\n").unwrap_or(event);
    if !body.contains(&b'\n') {
        return Cow::Borrowed(event);
    }
    let mut out = Vec::with_capacity(event.len() + 16);
    for (i, line) in body.split(|b| *b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if i > 0 {
            out.extend_from_slice(b" | ");
            out.extend_from_slice(line.trim_ascii_start());
        } else {
            out.extend_from_slice(line);
        }
    }
    if event.ends_with(b"\n") {
        out.push(b'\n');
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::fold;

    #[test]
    fn a_multi_line_event_becomes_one_line() {
        let event = b"ERROR config cannot be used:\nconfig.yaml is invalid:\n  line 3: groups[0].name: empty\n  line 9: port: too big\n";
        assert_eq!(
            &*fold(event),
            b"ERROR config cannot be used: | config.yaml is invalid: | line 3: groups[0].name: empty | line 9: port: too big\n"
        );
        let one = b"INFO listening on http://127.0.0.1:8080\n";
        assert!(matches!(fold(one), std::borrow::Cow::Borrowed(_)));
        assert_eq!(
            &*fold(b"no newline\nat the end"),
            b"no newline | at the end"
        );
    }
}
