//! OpenAI chat streams: `data:` chunks, a usage chunk when asked for, `data: [DONE]`, and
//! `{"error":…}` events for failures mid-way.

use super::RawUsage;
use crate::codec::{Incomplete, StreamDecoder, StreamItem, StreamReader};
use crate::usage::TokenUsage;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;

/// A chunk's `choices` (only whether there are any) and `usage`.
#[derive(Deserialize)]
struct WithUsage {
    #[serde(default)]
    choices: Option<Vec<serde::de::IgnoredAny>>,
    #[serde(default)]
    usage: Option<RawUsage>,
}

/// Built once: a searcher costs more to build than a short event costs to search.
static USAGE_KEY: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"usage\""));

fn is_done(data: &[u8]) -> bool {
    data.trim_ascii() == b"[DONE]"
}

/// Reads a relayed OpenAI stream: the usage chunk (dropped when the client did not ask for
/// it), `[DONE]` (sent exactly once) and error events. Parses only the chunks that carry usage.
pub(super) struct Reader {
    strip_usage: bool,
    usage: Option<TokenUsage>,
    done: bool,
    failed: bool,
}

impl Reader {
    pub(super) fn new(strip_usage: bool) -> Self {
        Self {
            strip_usage,
            usage: None,
            done: false,
            failed: false,
        }
    }
}

impl StreamReader for Reader {
    fn keep(&mut self, data: &[u8]) -> bool {
        if is_done(data) {
            let first = !self.done;
            self.done = true;
            return first;
        }
        if USAGE_KEY.find(data).is_some() {
            if let Ok(chunk) = serde_json::from_slice::<WithUsage>(data) {
                if let Some(u) = chunk.usage {
                    self.usage = Some(u.into());
                    let no_choices = chunk.choices.as_ref().is_none_or(Vec::is_empty);
                    if self.strip_usage && no_choices {
                        return false;
                    }
                }
            }
        }
        if data.trim_ascii_start().starts_with(b"{\"error\"") {
            self.failed = true;
        }
        true
    }
    /// A stream that ended without `[DONE]` is complete all the same: it gets one.
    fn end(&mut self) -> Result<Option<Bytes>, Incomplete> {
        if self.done {
            return Ok(None);
        }
        self.done = true;
        Ok(Some(Bytes::from_static(b"data: [DONE]\n\n")))
    }
    fn usage(&self) -> Option<TokenUsage> {
        self.usage
    }
    fn failed(&self) -> bool {
        self.failed
    }
    fn done(&self) -> bool {
        self.done
    }
}

/// Decodes an OpenAI stream into the common form (which it already is): each chunk parsed,
/// its usage read, error events and `[DONE]` told apart.
#[derive(Default)]
pub(super) struct Decoder {
    usage: Option<TokenUsage>,
    done: bool,
    failed: bool,
}

impl StreamDecoder for Decoder {
    fn event(&mut self, data: &[u8], out: &mut Vec<StreamItem>) {
        if is_done(data) {
            if !std::mem::replace(&mut self.done, true) {
                out.push(StreamItem::Done);
            }
            return;
        }
        let Ok(chunk) = serde_json::from_slice::<Value>(data) else {
            self.failed = true;
            out.push(StreamItem::Error(crate::codec::unreadable(data)));
            return;
        };
        if chunk.get("error").is_some() {
            self.failed = true;
            out.push(StreamItem::Error(chunk));
            return;
        }
        if let Some(usage) = super::usage_of(&chunk) {
            self.usage = Some(usage);
        }
        out.push(StreamItem::Chunk(chunk));
    }
    /// An OpenAI stream that ended without `[DONE]` is complete all the same.
    fn end(&mut self, _out: &mut Vec<StreamItem>) -> Result<(), Incomplete> {
        Ok(())
    }
    fn usage(&self) -> Option<TokenUsage> {
        self.usage
    }
    fn failed(&self) -> bool {
        self.failed
    }
}
