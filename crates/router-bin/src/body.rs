//! Reading a request body under the configured limits, enforced while reading:
//! - a size limit, so a chunked body without Content-Length cannot exhaust memory; an
//!   oversized body is drained (up to a cap) so the connection can keep serving after the 413;
//! - a total time and a longest gap between chunks, so a client that stops sending gets a 408
//!   instead of holding the request open;
//! - memory follows what arrives: the declared length is never reserved up front (300 clients
//!   each declaring 10 MiB and sending nothing hold nothing), and the body ends in one buffer
//!   of exactly its size.

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use router_core::{RouterError, ServerSettings};
use std::time::Duration;
use tokio::time::Instant;

/// Bytes past the limit that are read and discarded to keep the connection usable; beyond this
/// the connection is closed instead.
const DRAIN_CAP: u64 = 16 * 1024 * 1024;

/// The limits a body is read under.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimits {
    /// Largest body, in bytes.
    pub(crate) max: usize,
    /// Time for the whole body.
    pub(crate) total: Duration,
    /// Longest gap between two chunks.
    pub(crate) idle: Duration,
}

impl BodyLimits {
    pub(crate) fn of(server: &ServerSettings) -> Self {
        Self {
            max: server.max_body_bytes,
            total: server.body_timeout,
            idle: server.body_idle_timeout,
        }
    }
}

/// Reads the body; `declared` is the Content-Length, if any.
pub(crate) async fn read_limited(
    mut body: Incoming,
    declared: Option<u64>,
    limits: BodyLimits,
) -> Result<Bytes, RouterError> {
    let limit = limits.max;
    let limit64 = limit as u64;
    if declared.is_some_and(|n| n > limit64 + DRAIN_CAP) {
        return Err(RouterError::PayloadTooLarge { limit });
    }
    let deadline = Instant::now() + limits.total;
    let mut parts: Vec<Bytes> = Vec::new();
    let mut seen: u64 = 0;
    loop {
        let gap_ends = Instant::now() + limits.idle;
        let frame = match tokio::time::timeout_at(gap_ends.min(deadline), body.frame()).await {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(_) => return Err(timed_out(limits, gap_ends >= deadline)),
        };
        let frame = frame.map_err(|e| {
            RouterError::bad_request(format!("could not read the request body: {e}"), None)
        })?;
        if let Ok(data) = frame.into_data() {
            seen += data.len() as u64;
            if seen > limit64 {
                parts = Vec::new();
                if seen > limit64 + DRAIN_CAP {
                    break;
                }
            } else if !data.is_empty() {
                parts.push(data);
            }
        }
    }
    if seen > limit64 {
        return Err(RouterError::PayloadTooLarge { limit });
    }
    Ok(join(parts, seen as usize))
}

fn timed_out(limits: BodyLimits, whole: bool) -> RouterError {
    RouterError::RequestTimeout(if whole {
        format!(
            "the whole body must arrive within {:?} (server.body_timeout)",
            limits.total
        )
    } else {
        format!(
            "nothing arrived for {:?} (server.body_idle_timeout)",
            limits.idle
        )
    })
}

/// The chunks as one buffer of exactly `len` bytes (a single chunk as it is).
fn join(mut parts: Vec<Bytes>, len: usize) -> Bytes {
    if parts.len() == 1 {
        return parts.pop().unwrap_or_default();
    }
    let mut buf = BytesMut::with_capacity(len);
    for part in parts {
        buf.extend_from_slice(&part);
    }
    buf.freeze()
}
