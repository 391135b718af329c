//! Serving a router for as long as the process runs: the listeners, the usage ledger (restored
//! at start, written every flush interval and a last time at the end), reloads on a file change
//! or SIGHUP, the admin listener, and a graceful shutdown.

use crate::app::{App, LedgerState};
use crate::ledger::Ledger;
use crate::server::serve_as;
use crate::tls::ListenerTls;
use router_core::Router;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Serves `router` on `listen` (else the config's address) until `shutdown` completes: what
/// the binary runs, with SIGTERM or SIGINT as the shutdown.
pub async fn run(
    router: Arc<Router>,
    listen: Option<SocketAddr>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), String> {
    Server::bind(router, listen).await?.run(shutdown).await
}

/// Completes on SIGTERM or SIGINT. Call it early: the handlers are installed at once, so a
/// signal arriving during start-up is not fatal.
pub fn shutdown_signal() -> Result<impl Future<Output = ()>, String> {
    let installed =
        signal(SignalKind::terminate()).and_then(|t| Ok((t, signal(SignalKind::interrupt())?)));
    let (mut term, mut int) =
        installed.map_err(|e| format!("cannot install signal handlers: {e}"))?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

/// A router bound to its addresses, with its ledger open: ready to [`Server::run`].
pub struct Server {
    router: Arc<Router>,
    listener: TcpListener,
    admin: Option<TcpListener>,
    hangup: Signal,
    ledger: Option<Arc<Ledger>>,
    app: Arc<App>,
    tls: Option<Arc<ListenerTls>>,
}

impl Server {
    /// Binds `listen` (else the config's `listen`/`port`) and the config's admin address,
    /// opens the ledger the config names and restores its counters into `router`.
    pub async fn bind(router: Arc<Router>, listen: Option<SocketAddr>) -> Result<Self, String> {
        // SIGHUP first: one arriving during start-up is a reload, not the end of the process.
        let hangup = signal(SignalKind::hangup())
            .map_err(|e| format!("cannot install signal handlers: {e}"))?;
        let snapshot = router.snapshot();
        let tls = match &snapshot.server().tls {
            Some(files) => Some(ListenerTls::new(files).map_err(|e| format!("server.tls: {e}"))?),
            None => None,
        };
        let addr = listen.unwrap_or_else(|| snapshot.listen());
        let listener = listener_on(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let admin = match snapshot.server().admin_listen {
            Some(admin) => Some(
                listener_on(admin)
                    .map_err(|e| format!("cannot listen on {admin} (server.admin_listen): {e}"))?,
            ),
            None => None,
        };
        let (ledger, ledger_state) = open_ledger(&router);
        let app = App::with_ledger(router.clone(), ledger.clone(), ledger_state);
        Ok(Self {
            router,
            listener,
            admin,
            hangup,
            ledger,
            app,
            tls,
        })
    }

    /// The address it serves on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The admin listener's address, if the config has one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The shared server state.
    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// Serves until `shutdown` completes, reloading when the config file changes or on SIGHUP,
    /// writing the ledger every flush interval; then lets in-flight requests finish (up to
    /// `server.shutdown_timeout`) and writes the ledger a last time.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), String> {
        let Server {
            router,
            listener,
            admin,
            hangup,
            ledger,
            app,
            tls,
        } = self;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        tracing::info!(
            "llm-router {} listening on {scheme}://{local}",
            env!("CARGO_PKG_VERSION")
        );
        if router.snapshot().client_keys().is_empty() && !local.ip().is_loopback() {
            tracing::warn!(
                "listening on {local}, beyond this machine, with no client key: anyone who can reach it may call the providers on their keys; set api_key, or listen on 127.0.0.1"
            );
        }
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = reloaders(&router, tls.clone(), hangup, &stop_rx);
        if let Some(tls) = &tls {
            match tls.watch(stopped(stop_rx.clone())) {
                Ok(task) => tasks.push(task),
                Err(e) => tracing::warn!("{e}; a renewed certificate is served after a restart"),
            }
        }
        if let Some(l) = admin {
            tasks.push(admin_task(
                l,
                app.clone(),
                tls.clone(),
                stopped(stop_rx.clone()),
            )?);
        }
        tasks.push(tokio::spawn(sample_history(
            app.clone(),
            stopped(stop_rx.clone()),
        )));
        // The ledger keeps being written while requests drain after the shutdown: it stops
        // only once serving has ended.
        let (flush_stop_tx, flush_stop_rx) = watch::channel(false);
        let flusher = ledger.as_ref().map(|_| {
            let every = router.snapshot().ledger().flush_interval;
            tokio::spawn(flush_ledger(
                app.clone(),
                every,
                stopped(flush_stop_rx.clone()),
            ))
        });
        // So does the exchange with the other replicas (state.redis), after the ledger's
        // counters were restored: its last one sends what the drain counted.
        let sharer = router.snapshot().shared().map(|s| {
            tracing::info!(
                "sharing state through {} every {:?}",
                s.shown_url(),
                s.sync_interval
            );
            tokio::spawn(router_core::shared::run(
                router.clone(),
                stopped(flush_stop_rx),
            ))
        });
        let shutdown = async move {
            shutdown.await;
            tracing::info!("shutdown signal received");
            let _ = stop_tx.send(true);
        };
        let served = serve_as(listener, app.clone(), false, tls, shutdown).await;
        for t in tasks {
            let _ = t.await;
        }
        let _ = flush_stop_tx.send(true);
        if let Some(f) = flusher {
            let _ = f.await;
        }
        if let Some(s) = sharer {
            let _ = s.await;
        }
        // Everything served is counted: the last write.
        if ledger.is_some() {
            let flushed = app.clone();
            let _ = tokio::task::spawn_blocking(move || flushed.flush_ledger()).await;
            tracing::info!("usage ledger written");
        }
        // The last spans, while the runtime that exports them still runs.
        let traced = app.clone();
        let _ = tokio::task::spawn_blocking(move || traced.flush_traces()).await;
        served.map_err(|e| e.to_string())
    }
}

/// Completes once `stop` turns true.
/// How many connections the kernel may hold complete and not yet accepted (it caps this at
/// `net.core.somaxconn`). The standard library's 128 drops the handshakes of a burst while the
/// accept loop is busy or waiting for room, and each dropped client waits a second to retry.
const BACKLOG: u32 = 4096;

/// A listener on `addr` with [`BACKLOG`].
fn listener_on(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// The config file's watcher (when there is a file) and the SIGHUP handler (which reads the
/// TLS certificate again too), until `stop`.
fn reloaders(
    router: &Arc<Router>,
    tls: Option<Arc<ListenerTls>>,
    hangup: Signal,
    stop: &watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    if let Some(path) = router.config_path() {
        match router_core::watch_config(router.clone(), stopped(stop.clone())) {
            Ok(task) => {
                tracing::info!("watching {} for changes", path.display());
                tasks.push(task);
            }
            Err(e) => tracing::warn!("cannot watch the config file (reload with SIGHUP): {e}"),
        }
    }
    tasks.push(tokio::spawn(reload_on_hangup(
        router.clone(),
        tls,
        hangup,
        stopped(stop.clone()),
    )));
    tasks
}

/// The admin listener's task.
fn admin_task(
    listener: TcpListener,
    app: Arc<App>,
    tls: Option<Arc<ListenerTls>>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<JoinHandle<()>, String> {
    let admin = listener.local_addr().map_err(|e| e.to_string())?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!("admin endpoints also on {scheme}://{admin}");
    Ok(tokio::spawn(async move {
        if let Err(e) = serve_as(listener, app, true, tls, stop).await {
            tracing::error!("admin listener failed: {e}");
        }
    }))
}

/// Opens the ledger the config names and restores its counters into `router`. A ledger that
/// cannot be used is reported, and the router serves with usage in memory.
fn open_ledger(router: &Router) -> (Option<Arc<Ledger>>, LedgerState) {
    let snapshot = router.snapshot();
    let settings = snapshot.ledger();
    let Some(path) = &settings.path else {
        let reason = if settings.enabled {
            "no config file to keep it next to".to_string()
        } else {
            "ledger.enabled is false".to_string()
        };
        tracing::info!("usage ledger off ({reason}): usage is kept in memory");
        return (None, LedgerState::Off { reason });
    };
    let shown = path.display().to_string();
    match Ledger::open(path, settings.request_log, settings.retention) {
        Ok((ledger, saved)) => {
            router.restore_usage(&saved);
            let accounts = match ledger.tenants() {
                Ok(accounts) => accounts,
                Err(error) => {
                    // Budgets would start from zero: said loudly, as the counters are kept.
                    tracing::error!("{error}; the clients' spend starts from zero");
                    Vec::new()
                }
            };
            router.restore_tenants(&accounts);
            let ledger = Arc::new(ledger);
            router.keep_tokens_in(Arc::new(crate::ledger::LedgerVault(ledger.clone())));
            tracing::info!(
                pairs = saved.len(),
                accounts = accounts.len(),
                "usage ledger {shown}: counters restored"
            );
            (Some(ledger), LedgerState::Ok { path: shown })
        }
        Err(error) => {
            tracing::error!(
                "{error}; serving with usage kept in memory only (fix or move the file and restart)"
            );
            (None, LedgerState::Failing { path: shown, error })
        }
    }
}

/// Writes the ledger every `every` until `stop`, off the async threads.
async fn flush_ledger(app: Arc<App>, every: Duration, stop: impl Future<Output = ()>) {
    each(every, stop, || {
        let app = app.clone();
        async move {
            let _ = tokio::task::spawn_blocking(move || app.flush_ledger()).await;
        }
    })
    .await;
}

/// Samples the counters for the dashboard's charts every [`crate::history::STEP`] until
/// `stop`.
async fn sample_history(app: Arc<App>, stop: impl Future<Output = ()>) {
    each(crate::history::STEP, stop, || {
        app.sample_history();
        std::future::ready(())
    })
    .await;
}

/// Runs `tick` at once, then every `period` (a late tick delays the next), until `stop`.
async fn each<F: Future<Output = ()>>(
    period: Duration,
    stop: impl Future<Output = ()>,
    mut tick: impl FnMut() -> F,
) {
    tokio::pin!(stop);
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = interval.tick() => tick().await,
        }
    }
}

async fn reload_on_hangup(
    router: Arc<Router>,
    tls: Option<Arc<ListenerTls>>,
    mut hangup: Signal,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = hangup.recv() => {
                match router.reload() {
                    Ok(o) => tracing::info!(generation = o.generation, "SIGHUP: config reloaded"),
                    Err(e) => tracing::error!("SIGHUP: config cannot be used; still serving the previous one:\n{e}"),
                }
                if let Some(tls) = &tls {
                    tls.reload();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream;

    /// A burst of connections larger than the standard library's backlog completes at once
    /// while nothing accepts them: none waits for a handshake retry.
    #[tokio::test]
    async fn a_burst_of_connections_waits_in_the_backlog() {
        let listener = listener_on("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let burst = std::thread::spawn(move || {
            (0..400)
                .map(|_| TcpStream::connect_timeout(&addr, Duration::from_millis(500)))
                .collect::<Result<Vec<_>, _>>()
        })
        .join()
        .unwrap();
        assert_eq!(burst.map(|b| b.len()).map_err(|e| e.kind()), Ok(400));
        drop(listener);
    }
}
