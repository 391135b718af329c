//! Client connections: every open connection of a listener is known, so each one makes
//! progress or is closed.
//!
//! - A new connection must send its first request's headers within `server.handshake_timeout`
//!   (a silent socket, a half-sent h2 preface, an h2c connection idle after its SETTINGS).
//! - A connection with no request in flight is closed after `server.keepalive_timeout`.
//! - At `server.max_connections`, the connection idle the longest makes room for a new one;
//!   when none is idle, the new one is refused with a 503 and counted as shed.
//!
//! A connection is busy from a request's head to the end of its response body (a stream
//! included); closing is graceful (an h2 GOAWAY, an HTTP/1 close between requests), and a
//! closed connection with nothing in flight that does not end by itself is dropped after
//! [`GRACE`].

use crate::ResBody;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper_util::server::graceful::GracefulConnection;
use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// How long a closed connection with nothing in flight may take to end by itself.
pub(crate) const GRACE: Duration = Duration::from_secs(1);

/// File descriptors kept back from client connections for the ledger, logs, the listeners
/// and the like.
const RESERVED_FDS: u64 = 64;

/// Raises this process's soft limit of open files to its hard limit, as servers do (once),
/// and returns the soft limit in force.
pub(crate) fn fd_limit() -> u64 {
    static LIMIT: OnceLock<u64> = OnceLock::new();
    *LIMIT.get_or_init(|| {
        rlimit::increase_nofile_limit(u64::MAX)
            .or_else(|_| rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(soft, _)| soft))
            .unwrap_or(1024)
    })
}

/// The default `server.max_connections`: half of the file descriptors left after
/// [`RESERVED_FDS`], since each client connection may hold an upstream connection too.
pub(crate) fn default_max_connections() -> usize {
    let max = fd_limit().saturating_sub(RESERVED_FDS) / 2;
    usize::try_from(max.max(8)).unwrap_or(usize::MAX)
}

/// What the connection limits are, read from the running config at each accept.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max: usize,
    pub(crate) handshake: Duration,
    pub(crate) keepalive: Duration,
}

impl Limits {
    pub(crate) fn of(server: &router_core::ServerSettings) -> Self {
        Self {
            max: server
                .max_connections
                .unwrap_or_else(default_max_connections),
            handshake: server.handshake_timeout,
            keepalive: server.keepalive_timeout,
        }
    }
}

/// Why a connection was closed by the server (a label of the metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Closed {
    /// No first request within the handshake timeout.
    Handshake,
    /// The TLS handshake failed (a client that does not trust the certificate, or does not
    /// speak TLS).
    TlsFailed,
    /// Idle past the keep-alive timeout.
    Keepalive,
    /// Idle the longest when a new connection needed room.
    Evicted,
    /// The server is shutting down.
    Shutdown,
}

impl Closed {
    /// Every reason, for the metric's labels.
    pub(crate) const ALL: [Closed; 5] = [
        Closed::Handshake,
        Closed::TlsFailed,
        Closed::Keepalive,
        Closed::Evicted,
        Closed::Shutdown,
    ];

    pub(crate) fn label(self) -> &'static str {
        match self {
            Closed::Handshake => "handshake_timeout",
            Closed::TlsFailed => "tls_handshake_failed",
            Closed::Keepalive => "keepalive_timeout",
            Closed::Evicted => "evicted",
            Closed::Shutdown => "shutdown",
        }
    }
}

/// The open connections of one listener.
pub(crate) struct Connections {
    open: Mutex<HashMap<u64, Arc<Conn>>>,
    next: AtomicU64,
    epoch: Instant,
}

/// One open connection.
pub(crate) struct Conn {
    id: u64,
    epoch: Instant,
    /// Requests in flight (from the head to the end of the response body).
    busy: AtomicUsize,
    /// Whether it ever had a request.
    served: AtomicBool,
    /// Milliseconds from `epoch` to when it last became idle (or opened).
    idle_since: AtomicU64,
    /// Set once when it is told to close, with why.
    closing: Mutex<Option<Closed>>,
    close: Notify,
}

impl Connections {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            open: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
            epoch: Instant::now(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Conn>>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many are open.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Registers a new connection; it leaves the registry when its [`Conn`] is released with
    /// [`Connections::release`].
    pub(crate) fn open(&self) -> Arc<Conn> {
        let conn = Arc::new(Conn {
            id: self.next.fetch_add(1, Ordering::Relaxed),
            epoch: self.epoch,
            busy: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            idle_since: AtomicU64::new(millis_since(self.epoch)),
            closing: Mutex::new(None),
            close: Notify::new(),
        });
        self.lock().insert(conn.id, conn.clone());
        conn
    }

    /// Forgets a connection that ended.
    pub(crate) fn release(&self, conn: &Conn) {
        self.lock().remove(&conn.id);
    }

    /// Tells the connection idle the longest (nothing in flight, not already closing) to
    /// close; false when there is none.
    pub(crate) fn evict_one(&self) -> bool {
        let open = self.lock();
        let victim = open
            .values()
            .filter(|c| c.busy.load(Ordering::Acquire) == 0 && !c.is_closing())
            .min_by_key(|c| c.idle_since.load(Ordering::Relaxed));
        match victim {
            Some(c) => {
                c.close_for(Closed::Evicted);
                true
            }
            None => false,
        }
    }

    /// Tells every connection to close (shutdown).
    pub(crate) fn close_all(&self) {
        for c in self.lock().values() {
            c.close_for(Closed::Shutdown);
        }
    }
}

fn millis_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl Conn {
    fn is_closing(&self) -> bool {
        self.closing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    fn close_for(&self, why: Closed) {
        let mut closing = self.closing.lock().unwrap_or_else(|p| p.into_inner());
        if closing.is_none() {
            *closing = Some(why);
            self.close.notify_one();
        }
    }

    /// Why it was told to close, if it was.
    fn closed_why(&self) -> Option<Closed> {
        *self.closing.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A request began: the connection is busy until the returned guard is dropped.
    pub(crate) fn begin(self: &Arc<Self>) -> Busy {
        self.served.store(true, Ordering::Relaxed);
        self.busy.fetch_add(1, Ordering::AcqRel);
        Busy(self.clone())
    }

    fn idle(&self) -> bool {
        self.busy.load(Ordering::Acquire) == 0
    }

    /// When it will have been idle too long, if it stays idle.
    fn deadline(&self, limits: &Limits) -> Instant {
        if !self.idle() {
            return Instant::now() + limits.keepalive;
        }
        let limit = if self.served.load(Ordering::Relaxed) {
            limits.keepalive
        } else {
            limits.handshake
        };
        self.epoch + Duration::from_millis(self.idle_since.load(Ordering::Relaxed)) + limit
    }

    /// Drives `connection` to its end, closing it gracefully when told to or when it stays
    /// idle too long. Returns the connection's result and why the server closed it, if it did.
    pub(crate) async fn drive<C: GracefulConnection>(
        &self,
        mut connection: Pin<Box<C>>,
        limits: Limits,
    ) -> (Result<(), C::Error>, Option<Closed>) {
        let why = loop {
            let deadline = self.deadline(&limits);
            tokio::select! {
                result = connection.as_mut() => return (result, self.closed_why()),
                () = self.close.notified() => break self.closed_why(),
                () = tokio::time::sleep_until(deadline) => {
                    if self.idle() && Instant::now() >= self.deadline(&limits) {
                        let why = if self.served.load(Ordering::Relaxed) {
                            Closed::Keepalive
                        } else {
                            Closed::Handshake
                        };
                        self.close_for(why);
                        break Some(why);
                    }
                }
            }
        };
        if !self.served.load(Ordering::Relaxed) {
            // It never sent a request: there is nothing to finish, and its descriptor is
            // wanted now (a half-sent h2 preface would hold it through the grace period).
            return (Ok(()), why);
        }
        connection.as_mut().graceful_shutdown();
        loop {
            tokio::select! {
                result = connection.as_mut() => return (result, why),
                () = tokio::time::sleep(GRACE) => if self.idle() {
                    return (Ok(()), why);
                },
            }
        }
    }
}

/// A request in flight on a connection.
pub(crate) struct Busy(Arc<Conn>);

impl Drop for Busy {
    fn drop(&mut self) {
        let conn = &self.0;
        if conn.busy.fetch_sub(1, Ordering::AcqRel) == 1 {
            conn.idle_since
                .store(millis_since(conn.epoch), Ordering::Relaxed);
        }
    }
}

/// A response body that keeps its connection busy until it ends or is dropped.
pub(crate) struct BusyBody {
    inner: ResBody,
    _busy: Busy,
}

impl BusyBody {
    pub(crate) fn new(inner: ResBody, busy: Busy) -> Self {
        Self { inner, _busy: busy }
    }
}

impl Body for BusyBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max: 2,
            handshake: Duration::from_secs(10),
            keepalive: Duration::from_secs(60),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_connection_idle_the_longest_is_evicted_and_a_busy_one_never() {
        let conns = Connections::new();
        let a = conns.open();
        tokio::time::advance(Duration::from_secs(1)).await;
        let b = conns.open();
        tokio::time::advance(Duration::from_secs(1)).await;
        let c = conns.open();
        // `a` is busy, then `b` is idle the longest.
        let busy = a.begin();
        assert!(conns.evict_one());
        assert_eq!(b.closed_why(), Some(Closed::Evicted));
        assert_eq!(a.closed_why(), None);
        // `a` became idle after `c` opened: `c` goes next, then `a`, then none is left.
        tokio::time::advance(Duration::from_secs(1)).await;
        drop(busy);
        assert!(conns.evict_one());
        assert_eq!(c.closed_why(), Some(Closed::Evicted));
        assert!(conns.evict_one());
        assert_eq!(a.closed_why(), Some(Closed::Evicted));
        assert!(!conns.evict_one());
    }

    #[tokio::test(start_paused = true)]
    async fn deadlines_follow_the_first_request_and_the_last_one() {
        let conns = Connections::new();
        let conn = conns.open();
        let opened = Instant::now();
        assert_eq!(conn.deadline(&limits()), opened + limits().handshake);
        tokio::time::advance(Duration::from_secs(5)).await;
        let busy = conn.begin();
        tokio::time::advance(Duration::from_secs(100)).await;
        // Busy: never idle too long, however long the request takes.
        assert!(conn.deadline(&limits()) > Instant::now());
        drop(busy);
        assert_eq!(
            conn.deadline(&limits()),
            opened + Duration::from_secs(105) + limits().keepalive
        );
    }
}
