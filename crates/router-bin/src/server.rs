//! The accept loop and graceful shutdown. Each connection is registered with the listener's
//! [`Connections`], which closes those that make no progress and makes room at
//! `server.max_connections` (see `conns.rs`).

use crate::conns::{BusyBody, Closed, Conn, Connections, Limits, GRACE};
use crate::tls::ListenerTls;
use crate::{handle, App};
use http_body_util::BodyExt;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How often an h2 connection with streams open pings its client, and how long it waits for
/// the answer before closing (a client gone without a word).
const H2_KEEPALIVE: Duration = Duration::from_secs(20);

/// What a connection refused at `server.max_connections` is told before it is closed.
const SHED_BODY: &str = "{\"error\":{\"message\":\"the router is at server.max_connections; try again\",\"type\":\"server_error\",\"code\":\"too_many_connections\"}}\n";

/// Serves `app` on `listener` (HTTP/1.1 and h2c) until `shutdown` completes, then stops
/// accepting and lets in-flight requests and streams finish, up to the configured
/// `server.shutdown_timeout`.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    serve_as(listener, app, false, None, shutdown).await
}

/// Like [`serve`], for the admin listener: health, metrics, the admin endpoints and the
/// dashboard only.
pub async fn serve_admin(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    serve_as(listener, app, true, None, shutdown).await
}

/// Serves `listener`: every endpoint, or the admin ones only; over TLS when `tls` is given.
pub(crate) async fn serve_as(
    listener: TcpListener,
    app: Arc<App>,
    admin_only: bool,
    tls: Option<Arc<ListenerTls>>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30));
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_KEEPALIVE)
        .keep_alive_timeout(H2_KEEPALIVE);
    // Before the first connection, as the limit bounds how many there may be.
    crate::conns::fd_limit();
    let conns = Connections::new();
    let mut tasks = JoinSet::new();
    let mut warned: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        // Connections told to close still hold their descriptors until their tasks end: past
        // `max` and a few more, the next accept waits for one to end (its task's end wakes
        // this loop), so a flood of new connections cannot run the process out of them.
        let room = conns.len() < Limits::of(app.router.snapshot().server()).max + CLOSING;
        tokio::select! {
            // Reap finished connection tasks as we go.
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept(), if room => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of file descriptors and the like: the connection idle the longest
                        // makes room, and the loop backs off a moment, then keeps serving.
                        let evicted = conns.evict_one();
                        if warned.is_none_or(|at| at.elapsed() > Duration::from_secs(5)) {
                            tracing::warn!(evicted, "accept failed: {e}");
                            warned = Some(Instant::now());
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let limits = Limits::of(app.router.snapshot().server());
                if conns.len() >= limits.max && !conns.evict_one() {
                    shed(&app, stream, tls.is_some());
                    continue;
                }
                let _ = stream.set_nodelay(true);
                let conn = conns.open();
                app.metrics.connection_opened();
                let served = Served { app: app.clone(), conns: conns.clone(), conn, limits, admin_only };
                match &tls {
                    None => {
                        tasks.spawn(served.drive(&builder, TokioIo::new(stream)));
                    }
                    Some(tls) => {
                        let (tls, builder) = (tls.clone(), builder.clone());
                        tasks.spawn(async move {
                            // The handshake is part of the time a new connection has to send
                            // its first request.
                            match tokio::time::timeout(limits.handshake, tls.accept(stream)).await {
                                Ok(Ok(stream)) => served.drive(&builder, TokioIo::new(stream)).await,
                                Ok(Err(e)) => served.end_before_a_request(&format!("TLS handshake failed: {e}"), Closed::TlsFailed),
                                Err(_) => served.end_before_a_request("no TLS handshake within server.handshake_timeout", Closed::Handshake),
                            }
                        });
                    }
                }
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    let deadline = app.router.snapshot().server().shutdown_timeout;
    tracing::info!("shutting down: waiting up to {deadline:?} for in-flight requests");
    conns.close_all();
    if tokio::time::timeout(deadline, drain(&mut tasks))
        .await
        .is_ok()
    {
        tracing::info!("all connections closed");
        return Ok(());
    }
    // Streams still open end with an error event their clients can read, then the rest goes.
    tracing::warn!(
        open = tasks.len(),
        "shutdown deadline reached; ending open streams and closing the remaining connections"
    );
    app.cut_streams();
    let _ = tokio::time::timeout(GRACE, drain(&mut tasks)).await;
    tasks.abort_all();
    drain(&mut tasks).await;
    Ok(())
}

async fn drain(tasks: &mut JoinSet<()>) {
    while tasks.join_next().await.is_some() {}
}

/// One accepted connection, registered with its listener's [`Connections`].
struct Served {
    app: Arc<App>,
    conns: Arc<Connections>,
    conn: Arc<Conn>,
    limits: Limits,
    admin_only: bool,
}

impl Served {
    /// Serves HTTP/1.1 or HTTP/2 on `io` until the connection ends or is closed.
    fn drive<I>(
        self,
        builder: &auto::Builder<TokioExecutor>,
        io: I,
    ) -> impl Future<Output = ()> + Send + 'static
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let Served {
            app,
            conns,
            conn,
            limits,
            admin_only,
        } = self;
        let service = {
            let (app, conn) = (app.clone(), conn.clone());
            service_fn(move |request| {
                let busy = conn.begin();
                let app = app.clone();
                async move {
                    let response = handle(&app, request, admin_only).await;
                    Ok::<_, Infallible>(
                        response.map(|body| BusyBody::new(body, busy).boxed_unsync()),
                    )
                }
            })
        };
        // Boxed: on the heap it is held once and sized to itself, where a future that owns it
        // would hold it twice (as a captured value, then as the pinned one it polls).
        let connection = Box::pin(builder.serve_connection(io, service).into_owned());
        async move {
            let (result, closed) = conn.drive(connection, limits).await;
            if let Err(e) = result {
                tracing::debug!("connection ended with an error: {e}");
            }
            conns.release(&conn);
            app.metrics.connection_closed(closed.map(|c| c.label()));
        }
    }

    /// Ends a connection that never got to HTTP (its TLS handshake failed or took too long).
    fn end_before_a_request(self, why: &str, reason: Closed) {
        tracing::debug!("connection closed: {why}");
        self.conns.release(&self.conn);
        self.app.metrics.connection_closed(Some(reason.label()));
    }
}

/// Connections beyond `server.max_connections` that may be open while the evicted ones close.
const CLOSING: usize = 32;

/// Refuses a connection at `server.max_connections`: a 503 if the socket takes it at once
/// (plain HTTP only: a TLS client could not read it), then closed.
fn shed(app: &App, stream: TcpStream, tls: bool) {
    app.metrics.connection_shed();
    if tls {
        tracing::debug!("connection refused: server.max_connections reached and none is idle");
        return;
    }
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{SHED_BODY}",
        SHED_BODY.len()
    );
    let _ = stream.try_write(response.as_bytes());
    tracing::debug!("connection refused: server.max_connections reached and none is idle");
}
