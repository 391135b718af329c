//! A cached answer: its bytes as the client got them, what they are, and until when they may
//! be given again; written to Redis as one JSON line of those facts followed by the bytes.

use super::{CacheOutcome, CACHE_HEADER};
use crate::forward::{ChatBody, ChatResponse, Served};
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// One kept answer.
#[derive(Debug)]
pub(crate) struct Entry {
    /// What it says of itself.
    pub(crate) head: Head,
    /// The body sent to the client (for a stream, its events).
    pub(crate) body: Bytes,
    /// When it may no longer be given, on the runtime's clock.
    pub(crate) expires: Instant,
}

/// The facts of an entry besides its bytes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Head {
    /// A stream (server-sent events) rather than one JSON document.
    pub(crate) stream: bool,
    pub(crate) content_type: String,
    /// `x-llm-router-dropped` of the answer, if it had one.
    #[serde(default)]
    pub(crate) dropped: Option<String>,
    /// The upstream model that answered.
    pub(crate) model: String,
}

/// What goes to Redis before the bytes.
#[derive(Serialize, Deserialize)]
struct Stored {
    #[serde(flatten)]
    head: Head,
    /// Unix milliseconds after which it is stale (Redis drops it then too).
    expires_ms: u64,
}

impl Entry {
    /// Bytes it counts for against the cache's bound.
    pub(crate) fn weight(&self) -> u32 {
        let facts = self.head.content_type.len()
            + self.head.model.len()
            + self.head.dropped.as_ref().map_or(0, String::len)
            + 64;
        u32::try_from(self.body.len() + facts).unwrap_or(u32::MAX)
    }

    /// Whether it may still be given.
    pub(crate) fn fresh(&self) -> bool {
        Instant::now() < self.expires
    }

    /// The entry as written to Redis; it expires at `expires_ms` (Unix milliseconds).
    pub(crate) fn encode(&self, expires_ms: u64) -> Vec<u8> {
        let stored = Stored {
            head: self.head.clone(),
            expires_ms,
        };
        let mut out = serde_json::to_vec(&stored).unwrap_or_default();
        out.push(b'\n');
        out.extend_from_slice(&self.body);
        out
    }

    /// An entry read from Redis at `now_ms` (Unix milliseconds); `None` when it is not one or
    /// is stale.
    pub(crate) fn decode(bytes: &[u8], now_ms: u64) -> Option<Self> {
        let line = memchr::memchr(b'\n', bytes)?;
        let stored: Stored = serde_json::from_slice(&bytes[..line]).ok()?;
        let left = stored.expires_ms.checked_sub(now_ms).filter(|&ms| ms > 0)?;
        Some(Self {
            head: stored.head,
            body: Bytes::copy_from_slice(&bytes[line + 1..]),
            expires: crate::health::later(Instant::now(), Duration::from_millis(left)),
        })
    }

    /// The answer it gives to a request of `group`: charged nothing, as it was first sent
    /// (a stream is replayed event by event).
    pub(crate) fn answer(&self, group: &Arc<str>) -> ChatResponse {
        let mut headers = HeaderMap::new();
        let content_type = HeaderValue::from_str(&self.head.content_type)
            .unwrap_or_else(|_| HeaderValue::from_static("application/json"));
        headers.insert(header::CONTENT_TYPE, content_type);
        if self.head.stream {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        }
        if let Some(dropped) = (self.head.dropped.as_deref()).and_then(|d| d.parse().ok()) {
            headers.insert(crate::fields::DROPPED_HEADER, dropped);
        }
        headers.insert(CACHE_HEADER, HeaderValue::from_static("hit"));
        let body = if self.head.stream {
            ChatBody::replay(&self.body)
        } else {
            ChatBody::counted(self.body.clone())
        };
        ChatResponse {
            status: StatusCode::OK,
            headers,
            body,
            served: Served {
                group: group.clone(),
                requested: None,
                provider: "cache".into(),
                model: self.head.model.as_str().into(),
                key_id: "-".into(),
                attempts: 0,
                upstream_wait: Duration::ZERO,
                cache: Some(CacheOutcome::Hit),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            head: Head {
                stream: true,
                content_type: "text/event-stream".into(),
                dropped: Some("metadata".into()),
                model: "gpt-4o".into(),
            },
            body: Bytes::from_static(b"data: {\"a\":1}\n\ndata: [DONE]\n\n"),
            expires: Instant::now(),
        }
    }

    #[test]
    fn an_entry_reads_back_as_written_until_it_expires() {
        let written = entry().encode(10_000);
        let read = Entry::decode(&written, 9_000).expect("fresh");
        assert_eq!(read.body, entry().body);
        assert!(read.head.stream);
        assert_eq!(read.head.dropped.as_deref(), Some("metadata"));
        assert_eq!(read.head.model, "gpt-4o");
        assert!(Entry::decode(&written, 10_000).is_none());
        assert!(Entry::decode(b"not an entry", 0).is_none());
    }
}
