//! Streams sent by the mock: chunks one by one, at the pace and with the faults asked for.

use crate::{Body, State};
use bytes::Bytes;
use http::Response;
use http_body::Frame;
use http_body_util::combinators::UnsyncBoxBody;
use std::pin::Pin;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;

/// Sends `chunks` as an event stream, honouring the chunk delay, the hold on the last chunk
/// and a cut; `usage_at` is the chunk whose sending reports `usage_total` tokens.
pub(crate) fn stream(
    state: Arc<State>,
    chunks: Vec<Bytes>,
    usage_at: Option<usize>,
    usage_total: u64,
    cut_stream: Option<usize>,
) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    let cut_after = state.cut_after.lock().unwrap().take().or(cut_stream);
    let delay = Duration::from_millis(state.chunk_delay_ms.load(SeqCst));
    let hold = state.hold_last_chunk.load(SeqCst);
    tokio::spawn(async move {
        let last = chunks.len() - 1;
        for (i, c) in chunks.into_iter().enumerate() {
            if i > 0 && !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if i == last && hold {
                let released = state.release.notified();
                tokio::select! {
                    _ = released => {}
                    _ = tx.closed() => {}
                }
            }
            if cut_after == Some(i) {
                let _ = tx
                    .send(Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        "cut on command",
                    )))
                    .await;
                return;
            }
            if tx.send(Ok(c)).await.is_err() {
                state.streams_cancelled.fetch_add(1, SeqCst);
                return;
            }
            if usage_at == Some(i) {
                state.tokens_reported.fetch_add(usage_total, SeqCst);
            }
        }
        state.streams_finished.fetch_add(1, SeqCst);
    });
    Response::builder()
        .status(200)
        .header("content-type", "text/event-stream")
        .body(UnsyncBoxBody::new(ChannelBody(rx)))
        .unwrap()
}

pub(crate) struct ChannelBody(pub(crate) mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.get_mut()
            .0
            .poll_recv(cx)
            .map(|o| o.map(|r| r.map(Frame::data)))
    }
}
