//! A stream in the common form as an OpenAI client reads it: `data:` chunks, the usage chunk
//! only when asked for, `data: [DONE]` exactly once; for the prompt API, `text_completion`
//! chunks.

use super::completions;
use crate::codec::{StreamEncoder, StreamItem};
use bytes::Bytes;
use serde_json::Value;

/// Encodes the common form for an OpenAI client.
pub(super) struct Encoder {
    strip_usage: bool,
    completions: bool,
    done: bool,
}

impl Encoder {
    /// `strip_usage`: the client did not ask for the usage chunk; `completions`: it asked the
    /// prompt API.
    pub(super) fn new(strip_usage: bool, completions: bool) -> Self {
        Self {
            strip_usage,
            completions,
            done: false,
        }
    }

    /// Whether a chunk is the usage report alone.
    fn usage_only(chunk: &Value) -> bool {
        chunk["usage"].is_object() && chunk["choices"].as_array().is_none_or(Vec::is_empty)
    }
}

fn data(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

impl StreamEncoder for Encoder {
    fn encode(&mut self, item: StreamItem, out: &mut Vec<Bytes>) {
        match item {
            StreamItem::Chunk(chunk) => {
                if self.strip_usage && Self::usage_only(&chunk) {
                    return;
                }
                if !self.completions {
                    out.push(data(&chunk));
                } else if let Some(c) = completions::chunk(&chunk) {
                    out.push(data(&c));
                }
            }
            StreamItem::Error(error) => out.push(data(&error)),
            StreamItem::Done => {
                if !std::mem::replace(&mut self.done, true) {
                    out.push(Bytes::from_static(b"data: [DONE]\n\n"));
                }
            }
        }
    }
    fn done(&self) -> bool {
        self.done
    }
}
