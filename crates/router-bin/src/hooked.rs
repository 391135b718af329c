//! One wrapper for what is done to a response body on its way out: each data frame seen (or
//! replaced), a last frame when the inner body ends, and a last act, exactly once, when the
//! body ends or is dropped before its end (a client that left).

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

/// What a [`Hooked`] body does.
pub(crate) trait BodyHook<B> {
    /// A data frame on its way out; returns what to send instead (an empty result is skipped).
    fn on_data(&mut self, data: Bytes) -> Bytes {
        data
    }
    /// The inner body ended: a last frame to send, if any.
    fn on_end(&mut self) -> Option<Bytes> {
        None
    }
    /// Called once, with the inner body, when it ended or when the wrapper is dropped first.
    fn finish(&mut self, _inner: B) {}
    /// Whether the frames keep their length (else the size is not known in advance).
    fn keeps_length(&self) -> bool {
        true
    }
}

/// A body with a [`BodyHook`].
pub(crate) struct Hooked<B, H: BodyHook<B>> {
    inner: Option<B>,
    hook: H,
}

impl<B, H: BodyHook<B>> Hooked<B, H> {
    pub(crate) fn new(inner: B, hook: H) -> Self {
        Self {
            inner: Some(inner),
            hook,
        }
    }

    fn finish(&mut self) {
        if let Some(inner) = self.inner.take() {
            self.hook.finish(inner);
        }
    }
}

impl<B, H> Body for Hooked<B, H>
where
    B: Body<Data = Bytes, Error = Infallible> + Unpin,
    H: BodyHook<B> + Unpin,
{
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        loop {
            let Some(inner) = this.inner.as_mut() else {
                return Poll::Ready(None);
            };
            match Pin::new(inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        let out = this.hook.on_data(data);
                        if !out.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(out))));
                        }
                    }
                    Err(other) => return Poll::Ready(Some(Ok(other))),
                },
                Poll::Ready(Some(Err(never))) => match never {},
                Poll::Ready(None) => {
                    let last = this.hook.on_end().filter(|b| !b.is_empty());
                    this.finish();
                    return Poll::Ready(last.map(|b| Ok(Frame::data(b))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.hook.keeps_length() && self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Some(inner) if self.hook.keeps_length() => inner.size_hint(),
            Some(_) => SizeHint::default(),
            None => SizeHint::with_exact(0),
        }
    }
}

impl<B, H: BodyHook<B>> Drop for Hooked<B, H> {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full};
    use std::sync::{Arc, Mutex};

    /// Upper-cases data, adds a last frame, and notes how it finished.
    struct Shout(Arc<Mutex<Vec<String>>>);

    impl BodyHook<Full<Bytes>> for Shout {
        fn on_data(&mut self, data: Bytes) -> Bytes {
            Bytes::from(data.to_ascii_uppercase())
        }
        fn on_end(&mut self) -> Option<Bytes> {
            Some(Bytes::from_static(b"!"))
        }
        fn finish(&mut self, inner: Full<Bytes>) {
            let ended = inner.is_end_stream();
            self.0
                .lock()
                .unwrap()
                .push(format!("finished, ended {ended}"));
        }
        fn keeps_length(&self) -> bool {
            false
        }
    }

    #[tokio::test]
    async fn frames_pass_through_the_hook_and_it_finishes_once() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let body = Hooked::new(Full::new(Bytes::from_static(b"hey")), Shout(log.clone()));
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"HEY!");
        assert_eq!(*log.lock().unwrap(), ["finished, ended true"]);
    }

    #[tokio::test]
    async fn a_body_dropped_before_its_end_finishes_too() {
        let log = Arc::new(Mutex::new(Vec::new()));
        drop(Hooked::new(
            Full::new(Bytes::from_static(b"never read")),
            Shout(log.clone()),
        ));
        assert_eq!(*log.lock().unwrap(), ["finished, ended false"]);
    }
}
