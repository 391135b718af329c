//! Answers of groups whose cache is kept in Redis, under `{prefix}cache:{digest}` and expiring
//! with the entry. Redis failing to answer in time is a miss (and a kept answer not sent):
//! the request goes upstream as without a cache.

use super::Handle;
use crate::cache::{Entry, Key};
use std::time::Duration;

fn name(handle: &Handle, key: &Key) -> String {
    format!("{}cache:{}", handle.prefix, hex::encode(key))
}

/// The fresh entry kept under `key`, if any.
pub(crate) async fn get(handle: &Handle, key: &Key) -> Option<Entry> {
    let mut connection = handle.connection.clone();
    let mut command = redis::cmd("GET");
    command.arg(name(handle, key));
    let call = command.query_async::<Option<Vec<u8>>>(&mut connection);
    match tokio::time::timeout(handle.timeout, call).await {
        Ok(Ok(Some(bytes))) => Entry::decode(&bytes, super::unix_ms()),
        Ok(Ok(None)) => None,
        Ok(Err(e)) => {
            tracing::debug!("response cache: Redis gave {e}; a miss");
            None
        }
        Err(_) => {
            tracing::debug!("response cache: no answer from Redis in time; a miss");
            None
        }
    }
}

/// Keeps `entry` under `key` for `ttl`.
pub(crate) async fn put(handle: &Handle, key: &Key, entry: &Entry, ttl: Duration) {
    let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
    let value = entry.encode(super::unix_ms().saturating_add(ms));
    let mut connection = handle.connection.clone();
    let mut command = redis::cmd("SET");
    command.arg(name(handle, key)).arg(value).arg("PX").arg(ms);
    let call = command.query_async::<()>(&mut connection);
    match tokio::time::timeout(handle.timeout, call).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!("response cache: Redis gave {e}; the answer is not kept"),
        Err(_) => tracing::debug!("response cache: no answer from Redis in time; not kept"),
    }
}
