//! A collector that takes the router's spans (`POST /v1/traces`) and answers 200 at once, on
//! the bench's cores, for the runs with `--traced`: what tracing costs the router, not what a
//! collector costs.

use bytes::Bytes;
use http_body_util::Full;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// What the sink took.
#[derive(Debug, Default)]
pub(crate) struct Taken {
    /// Exports (batches of spans).
    pub(crate) exports: AtomicU64,
    /// Their bytes.
    pub(crate) bytes: AtomicU64,
}

impl Taken {
    /// What the sink took, for the report. Spans leave the router every 5 s (the batch
    /// processor's delay): the last ones are sent at its shutdown, which is not counted.
    pub(crate) fn said(&self) -> String {
        format!(
            "Traced: the router sent {} exports ({} bytes) to the bench's OTLP sink.\n",
            self.exports.load(Relaxed),
            self.bytes.load(Relaxed)
        )
    }
}

/// The sink when `traced`: its OTLP/HTTP endpoint and what it takes.
pub(crate) async fn start_if(traced: bool) -> Option<(String, Arc<Taken>)> {
    match traced {
        true => Some(start().await.unwrap_or_else(|e| panic!("OTLP sink: {e}"))),
        false => None,
    }
}

/// Starts the sink; its OTLP/HTTP endpoint and what it takes.
async fn start() -> std::io::Result<(String, Arc<Taken>)> {
    let taken = Arc::new(Taken::default());
    let counted = taken.clone();
    let (addr, _task) = mock_upstream::serve(move |asked| {
        counted.exports.fetch_add(1, Relaxed);
        counted.bytes.fetch_add(asked.body.len() as u64, Relaxed);
        async { http::Response::new(Full::new(Bytes::new())) }
    })
    .await?;
    Ok((format!("http://{addr}"), taken))
}
