//! Reading a request body under the configured limit, enforced while reading: a chunked body
//! without Content-Length cannot exhaust memory, and an oversized body is drained (up to a cap)
//! so the connection can keep serving after the 413.

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use router_core::RouterError;

/// Bytes past the limit that are read and discarded to keep the connection usable; beyond this
/// the connection is closed instead.
const DRAIN_CAP: u64 = 16 * 1024 * 1024;

/// Reads the body; `declared` is the Content-Length, if any.
pub(crate) async fn read_limited(
    mut body: Incoming,
    declared: Option<u64>,
    limit: usize,
) -> Result<Bytes, RouterError> {
    let limit64 = limit as u64;
    if declared.is_some_and(|n| n > limit64 + DRAIN_CAP) {
        return Err(RouterError::PayloadTooLarge { limit });
    }
    let mut buf = BytesMut::with_capacity(declared.map_or(8 * 1024, |n| n as usize).min(limit));
    let mut seen: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            RouterError::bad_request(format!("could not read the request body: {e}"), None)
        })?;
        if let Ok(data) = frame.into_data() {
            seen += data.len() as u64;
            if seen > limit64 {
                buf = BytesMut::new();
                if seen > limit64 + DRAIN_CAP {
                    break;
                }
            } else {
                buf.extend_from_slice(&data);
            }
        }
    }
    if seen > limit64 {
        return Err(RouterError::PayloadTooLarge { limit });
    }
    Ok(buf.freeze())
}
