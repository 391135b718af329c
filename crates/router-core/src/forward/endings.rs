//! What ends a relayed stream besides its upstream: a gap in the upstream's events as long as
//! the idle timeout, or the caller's cut (a server's shutdown). Both sleep nearly always, and
//! a stream is polled at least once per event, so they are polled only when they woke (a
//! [`FuturesUnordered`]), and an event costs the idle watch one flag, not a timer reset.

use futures_util::stream::{FuturesUnordered, StreamExt};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// What ends a stream from outside: it completes with the message for the client.
pub(crate) type Cut = Pin<Box<dyn Future<Output = String> + Send>>;

/// Why a stream is ended from outside.
pub(crate) enum Ending {
    /// The upstream sent nothing for this long (the idle timeout).
    Idle(Duration),
    /// The caller cut it, with this message for the client.
    Cut(String),
}

/// The watches of one stream.
pub(crate) struct Endings {
    watches: FuturesUnordered<Pin<Box<dyn Future<Output = Ending> + Send>>>,
    /// Something arrived since the idle watch last looked.
    heard: Arc<AtomicBool>,
}

impl Endings {
    /// Watches for a gap of `idle`. The watch looks every quarter of it, so a gap ends the
    /// stream once it has lasted `idle` and before it has lasted `idle` and a quarter.
    pub(crate) fn new(idle: Duration) -> Self {
        let heard = Arc::new(AtomicBool::new(false));
        let watches = FuturesUnordered::new();
        watches.push(Box::pin(idle_watch(idle, heard.clone())) as Pin<Box<_>>);
        Self { watches, heard }
    }

    /// The upstream sent something.
    pub(crate) fn heard(&self) {
        self.heard.store(true, Relaxed);
    }

    /// Also ends the stream when `cut` completes.
    pub(crate) fn cut_when(&mut self, cut: Cut) {
        self.watches
            .push(Box::pin(async move { Ending::Cut(cut.await) }));
    }

    /// An ending, once one has come.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Ending> {
        match self.watches.poll_next_unpin(cx) {
            Poll::Ready(Some(ending)) => Poll::Ready(ending),
            // Every watch has ended (none is left to wake this stream).
            Poll::Ready(None) | Poll::Pending => Poll::Pending,
        }
    }
}

/// Completes once four looks in a row, a quarter of `idle` apart, found nothing `heard`.
async fn idle_watch(idle: Duration, heard: Arc<AtomicBool>) -> Ending {
    let quarter = idle / 4;
    let mut quiet = 0;
    loop {
        tokio::time::sleep(quarter).await;
        if heard.swap(false, Relaxed) {
            quiet = 0;
        } else {
            quiet += 1;
            if quiet == 4 {
                return Ending::Idle(idle);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;
    use tokio::time::{advance, Instant};

    /// Whether a watch has ended (each that woke is polled here).
    async fn ended(endings: &mut Endings) -> Option<Ending> {
        match poll_fn(|cx| Poll::Ready(endings.poll(cx))).await {
            Poll::Ready(ending) => Some(ending),
            Poll::Pending => None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_gap_ends_the_stream_after_idle_and_before_a_quarter_more() {
        let mut endings = Endings::new(Duration::from_secs(8));
        assert!(ended(&mut endings).await.is_none());
        // Events every second for 20 s: no ending.
        for _ in 0..20 {
            advance(Duration::from_secs(1)).await;
            endings.heard();
            assert!(ended(&mut endings).await.is_none());
        }
        // Then silence: nothing before 8 s of it, an ending before 10.
        let last = Instant::now();
        loop {
            advance(Duration::from_millis(250)).await;
            if let Some(ending) = ended(&mut endings).await {
                assert!(matches!(ending, Ending::Idle(d) if d == Duration::from_secs(8)));
                break;
            }
            assert!(last.elapsed() < Duration::from_secs(10));
        }
        let gap = last.elapsed();
        assert!(
            gap >= Duration::from_secs(8) && gap < Duration::from_secs(10),
            "{gap:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_cut_ends_the_stream_with_its_message() {
        let mut endings = Endings::new(Duration::from_secs(60));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        endings.cut_when(Box::pin(async move {
            let _ = rx.await;
            "bye".to_string()
        }));
        assert!(ended(&mut endings).await.is_none());
        tx.send(()).unwrap();
        match ended(&mut endings).await {
            Some(Ending::Cut(message)) => assert_eq!(message, "bye"),
            _ => panic!("no cut"),
        }
    }
}
