//! Prometheus metrics (`GET /metrics`, text format). Per-request figures are recorded as the
//! request ends; per-pair figures (tokens, failures by class, breaker and key state), reload
//! and ledger figures are read from the router's own counters when scraped (`scrape.rs`), so
//! the hot path pays nothing for them.
//! Every label value comes from the config or a fixed set, never from a request, and a key is
//! labelled by its id (`provider#index`), never by itself.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};
use router_core::Router;

mod figures;

pub use figures::Figures;
mod scrape;

/// Latency buckets, in seconds: from 100 µs (router overhead) to 5 minutes (long answers).
const BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// The request metrics the server records.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    ttft: HistogramVec,
    overhead: Histogram,
    in_flight: IntGauge,
    retries: IntCounter,
    failovers: IntCounter,
    connections: IntGauge,
    connections_closed: IntCounterVec,
    connections_shed: IntCounter,
    response_cache: IntCounterVec,
}

/// How one request ended, for the metrics.
pub struct Finished<'a> {
    /// The route's label (see [`crate::routes`]): `chat`, `messages`, `count_tokens`,
    /// `responses`, `completions`, `embeddings`, `models`, `unknown`, or `admin` (not counted).
    pub endpoint: &'static str,
    /// The group, if the request named a configured one.
    pub group: Option<&'a str>,
    /// The named client whose key it came with.
    pub client: Option<&'a str>,
    /// Provider and upstream model that answered.
    pub served: Option<(&'a str, &'a str)>,
    /// HTTP status sent.
    pub status: u16,
    /// Attempts made upstream.
    pub attempts: usize,
    /// Seconds to the end of the response.
    pub latency: f64,
    /// Seconds to the first body byte.
    pub ttft: Option<f64>,
    /// Seconds of the router's own work (the time to the response head, less the time waited
    /// on upstreams).
    pub overhead: Option<f64>,
    /// What the group's response cache did (`hit`, `miss`, `bypass`), if it has one.
    pub cache: Option<&'static str>,
}

fn histogram_vec(name: &str, help: &str, labels: &[&str]) -> prometheus::Result<HistogramVec> {
    HistogramVec::new(
        HistogramOpts::new(name, help).buckets(BUCKETS.to_vec()),
        labels,
    )
}

impl Metrics {
    /// Registers every request metric.
    pub fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "llm_router_requests_total",
                "Client requests answered, by endpoint, group, provider, model, status class, \
                 status code and named client (- for none). Health checks, scrapes, admin calls \
                 and the dashboard are not counted.",
            ),
            &[
                "endpoint",
                "group",
                "provider",
                "model",
                "status_class",
                "code",
                "client",
            ],
        )?;
        let latency = histogram_vec(
            "llm_router_request_duration_seconds",
            "Time from the request to the end of its response (a stream's last event), by \
             group and the provider and upstream model that answered (- for none).",
            &["group", "provider", "model"],
        )?;
        let ttft = histogram_vec(
            "llm_router_time_to_first_token_seconds",
            "Time from the request to the first byte of a successful (2xx) answer's body, by \
             group, provider and upstream model.",
            &["group", "provider", "model"],
        )?;
        let overhead = Histogram::with_opts(
            HistogramOpts::new(
                "llm_router_overhead_seconds",
                "Time the router spent on a forwarded request itself: to the response head, \
                 less the time waited on upstreams.",
            )
            .buckets(BUCKETS.to_vec()),
        )?;
        let in_flight = IntGauge::new(
            "llm_router_requests_in_flight",
            "Requests being served, streams included.",
        )?;
        let retries = IntCounter::new(
            "llm_router_retries_total",
            "Upstream attempts beyond the first.",
        )?;
        let failovers = IntCounter::new(
            "llm_router_failovers_total",
            "Requests answered by another pair after a failed attempt.",
        )?;
        let connections = IntGauge::new(
            "llm_router_connections_open",
            "Client connections open, on every listener.",
        )?;
        let connections_closed = IntCounterVec::new(
            Opts::new(
                "llm_router_connections_closed_total",
                "Client connections the router closed, by reason: handshake_timeout, \
                 tls_handshake_failed, keepalive_timeout, evicted (idle the longest, to make \
                 room at server.max_connections), shutdown.",
            ),
            &["reason"],
        )?;
        let connections_shed = IntCounter::new(
            "llm_router_connections_shed_total",
            "New client connections refused at server.max_connections, none being idle.",
        )?;
        let response_cache = IntCounterVec::new(
            Opts::new(
                "llm_router_response_cache_requests_total",
                "Requests of groups with a response cache, by group and result: hit (answered \
                 from the cache, charged nothing), miss, bypass (the client's Cache-Control).",
            ),
            &["group", "result"],
        )?;
        // The process' CPU time, memory, open files and threads (`process_*`).
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        for reason in crate::conns::Closed::ALL {
            connections_closed.with_label_values(&[reason.label()]);
        }
        registry.register(Box::new(connections.clone()))?;
        registry.register(Box::new(connections_closed.clone()))?;
        registry.register(Box::new(connections_shed.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(ttft.clone()))?;
        registry.register(Box::new(overhead.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        registry.register(Box::new(retries.clone()))?;
        registry.register(Box::new(failovers.clone()))?;
        registry.register(Box::new(response_cache.clone()))?;
        Ok(Self {
            registry,
            requests,
            latency,
            ttft,
            overhead,
            in_flight,
            retries,
            failovers,
            connections,
            connections_closed,
            connections_shed,
            response_cache,
        })
    }

    /// A client connection opened.
    pub(crate) fn connection_opened(&self) {
        self.connections.inc();
    }

    /// A client connection ended; `reason` when the router closed it.
    pub(crate) fn connection_closed(&self, reason: Option<&str>) {
        self.connections.dec();
        if let Some(reason) = reason {
            self.connections_closed.with_label_values(&[reason]).inc();
        }
    }

    /// A new client connection was refused.
    pub(crate) fn connection_shed(&self) {
        self.connections_shed.inc();
    }

    /// A request began.
    pub fn started(&self) {
        self.in_flight.inc();
    }

    /// A request ended (its last byte sent, or its client gone).
    pub fn finished(&self, f: &Finished<'_>) {
        self.in_flight.dec();
        // Scrapes, health checks and the dashboard's polls are not traffic.
        if f.endpoint == crate::routes::ADMIN {
            return;
        }
        let group = f.group.unwrap_or("-");
        let (provider, model) = f.served.unwrap_or(("-", "-"));
        let class = match f.status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.requests
            .with_label_values(&[
                f.endpoint,
                group,
                provider,
                model,
                class,
                code(f.status),
                f.client.unwrap_or("-"),
            ])
            .inc();
        if !matches!(f.endpoint, "models" | crate::routes::UNKNOWN) {
            let labels = [group, provider, model];
            self.latency.with_label_values(&labels).observe(f.latency);
            // Time to the first token of an answer: errors have no tokens.
            if let (Some(t), 200..=299) = (f.ttft, f.status) {
                self.ttft.with_label_values(&labels).observe(t);
            }
        }
        if let Some(o) = f.overhead {
            self.overhead.observe(o);
        }
        if let Some(result) = f.cache {
            self.response_cache
                .with_label_values(&[group, result])
                .inc();
        }
        let extra = f.attempts.saturating_sub(1) as u64;
        self.retries.inc_by(extra);
        if extra > 0 && f.served.is_some() {
            self.failovers.inc();
        }
    }

    /// The text exposition: the request metrics, then the router's own counters and state
    /// (`ledger`: the ledger's, as the dashboard shows it).
    pub fn render(&self, router: &Router, ledger: &crate::LedgerState) -> Result<String, String> {
        let mut families = self.registry.gather();
        families.extend(scrape::families(router, ledger).map_err(|e| e.to_string())?);
        families.extend(crate::clients::families(&router.snapshot()).map_err(|e| e.to_string())?);
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&families, &mut out)
            .map_err(|e| e.to_string())?;
        String::from_utf8(out).map_err(|e| e.to_string())
    }
}

/// A status code as a label value, without formatting it for each request.
fn code(status: u16) -> &'static str {
    static CODES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let codes = CODES.get_or_init(|| (0..600).map(|c| c.to_string()).collect());
    codes
        .get(usize::from(status))
        .map_or("other", String::as_str)
}
