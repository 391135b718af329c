//! What the server shares between requests: the router, the metrics, the ledger, and the
//! recent errors the dashboard shows.

use crate::ledger::{Ledger, RequestRow};
use crate::metrics::Metrics;
use crate::recent::{RecentError, RecentErrors};
use router_core::Router;
use std::sync::{Arc, Mutex};

/// The ledger's state, as the dashboard and `/health` show it.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LedgerState {
    /// Not kept (switched off, or no config file): usage lives in memory.
    Off {
        /// Why.
        reason: String,
    },
    /// Written to `path`.
    Ok {
        /// The file.
        path: String,
    },
    /// Could not be opened or written: usage lives in memory until it can.
    Failing {
        /// The file.
        path: String,
        /// The last error.
        error: String,
    },
}

/// Shared server state.
pub struct App {
    /// The router.
    pub router: Arc<Router>,
    /// Request metrics.
    pub metrics: Metrics,
    ledger: Option<Arc<Ledger>>,
    ledger_state: Mutex<LedgerState>,
    recent: RecentErrors,
    history: crate::history::History,
    /// Set once the shutdown deadline has passed: streams still open end then.
    cut: tokio::sync::watch::Sender<bool>,
    /// When it was made: the server's start.
    started: std::time::Instant,
    /// The traces' exporter, when `telemetry` is on.
    pub(crate) telemetry: Option<crate::telemetry::Telemetry>,
}

impl App {
    /// State for `router`, without a ledger.
    pub fn new(router: Arc<Router>) -> Arc<Self> {
        Self::with_ledger(
            router,
            None,
            LedgerState::Off {
                reason: "not configured".into(),
            },
        )
    }

    /// State for `router`, writing request rows to `ledger` (if any).
    pub fn with_ledger(
        router: Arc<Router>,
        ledger: Option<Arc<Ledger>>,
        state: LedgerState,
    ) -> Arc<Self> {
        // Registering fixed, distinct metric names cannot fail; a failure would be a bug here.
        #[allow(clippy::expect_used)]
        let metrics = Metrics::new().expect("metric names are valid and distinct");
        let router_snapshot = router.snapshot();
        let app = Arc::new(Self {
            router,
            metrics,
            ledger,
            ledger_state: Mutex::new(state),
            recent: RecentErrors::default(),
            history: crate::history::History::default(),
            cut: tokio::sync::watch::Sender::new(false),
            started: std::time::Instant::now(),
            telemetry: start_telemetry(&router_snapshot),
        });
        // The charts count from here.
        app.sample_history();
        app
    }

    /// Sends the spans waiting for export to the collector, and waits until it took them
    /// (blocking: call it off the async threads). Nothing without `telemetry`.
    pub fn flush_traces(&self) {
        if let Some(telemetry) = &self.telemetry {
            telemetry.flush();
        }
    }

    /// How long the server has been up.
    pub fn uptime(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    /// Ends every stream still open: each client gets an error event in its dialect saying
    /// the router is shutting down, and what was streamed is charged. For the shutdown
    /// deadline.
    pub fn cut_streams(&self) {
        self.cut.send_replace(true);
    }

    /// What ends the stream of request `request_id` at the shutdown deadline.
    pub(crate) fn stream_cut(
        &self,
        request_id: String,
    ) -> impl std::future::Future<Output = String> + Send + 'static {
        let mut cut = self.cut.subscribe();
        async move {
            let _ = cut.wait_for(|cut| *cut).await;
            tracing::warn!(%request_id, "stream cut: server.shutdown_timeout reached");
            "the router is shutting down (server.shutdown_timeout reached); send the request again"
                .to_string()
        }
    }

    /// Whether request rows are kept (a ledger with its request log on).
    pub(crate) fn keeps_requests(&self) -> bool {
        self.ledger.as_ref().is_some_and(|l| l.keeps_requests())
    }

    /// The ledger, when it keeps a request log; else why not.
    pub(crate) fn request_log(&self) -> Result<Arc<Ledger>, String> {
        match &self.ledger {
            Some(l) if l.keeps_requests() => Ok(l.clone()),
            Some(_) => Err("the request log is off (ledger.request_log: false)".into()),
            None => Err(match self.ledger_state() {
                LedgerState::Off { reason } => format!("the ledger is off: {reason}"),
                _ => "the ledger is off".into(),
            }),
        }
    }

    /// Queues a request row for the ledger's request log.
    pub(crate) fn record_request(&self, row: RequestRow) {
        if let Some(ledger) = &self.ledger {
            ledger.record(row);
        }
    }

    /// Notes a failed request for the dashboard.
    pub(crate) fn record_error(&self, request_id: &str, status: u16, path: &str, message: String) {
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.recent.record(at, request_id, status, path, message);
    }

    /// Keeps a sample of the counters for the dashboard's charts.
    pub(crate) fn sample_history(&self) {
        let figures = self.metrics.figures();
        self.history.record(crate::history::sample(self, &figures));
    }

    /// The dashboard's charts: the last hour up to now (`figures`: the request metrics now).
    pub(crate) fn history_json(&self, figures: &crate::metrics::Figures) -> serde_json::Value {
        self.history.json(crate::history::sample(self, figures))
    }

    /// The recent errors, grouped, the latest first.
    pub fn recent_errors(&self) -> Vec<RecentError> {
        self.recent.list()
    }

    /// The ledger's state.
    pub fn ledger_state(&self) -> LedgerState {
        self.ledger_state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Writes the ledger now (blocking: call it off the async threads); records the outcome.
    pub fn flush_ledger(&self) {
        let Some(ledger) = &self.ledger else {
            return;
        };
        let result = ledger.flush(&self.router.usage(), &self.router.tenant_records());
        let mut state = self.ledger_state.lock().unwrap_or_else(|p| p.into_inner());
        let path = ledger.path().display().to_string();
        match result {
            Ok(()) => {
                if matches!(*state, LedgerState::Failing { .. }) {
                    tracing::info!("usage ledger {path}: writing again");
                }
                *state = LedgerState::Ok { path };
            }
            Err(error) => {
                if !matches!(*state, LedgerState::Failing { .. }) {
                    tracing::error!("{error}; usage is kept in memory and written when it can be");
                }
                *state = LedgerState::Failing { path, error };
            }
        }
    }
}

/// The traces' exporter of `telemetry`, if it is on (started on the current runtime; without
/// one, or if it cannot start, traces are off and the reason logged).
fn start_telemetry(snapshot: &router_core::Snapshot) -> Option<crate::telemetry::Telemetry> {
    let settings = snapshot.telemetry()?;
    if tokio::runtime::Handle::try_current().is_err() {
        tracing::error!("telemetry: no async runtime to export from; traces are off");
        return None;
    }
    match crate::telemetry::Telemetry::start(settings) {
        Ok(telemetry) => {
            tracing::info!(
                "telemetry: traces to {} as {} (sampling {})",
                settings.traces_url,
                settings.service_name,
                settings.sample_ratio
            );
            Some(telemetry)
        }
        Err(e) => {
            tracing::error!("{e}; traces are off");
            None
        }
    }
}
