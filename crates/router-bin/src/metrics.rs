//! Prometheus metrics (`GET /metrics`, text format). Per-request figures are recorded as the
//! request ends; per-pair figures (tokens, failures by class, breaker state) and reload figures
//! are read from the router's own counters when scraped, so the hot path pays nothing for them.
//! Every label value comes from the config or a fixed set, never from a request, and a key is
//! labelled by its id (`provider#index`), never by itself.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use router_core::Router;

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
                "Requests answered, by endpoint, group, provider, model, status class and named client (- for none).",
            ),
            &["endpoint", "group", "provider", "model", "status_class", "client"],
        )?;
        let latency = histogram_vec(
            "llm_router_request_duration_seconds",
            "Time from the request to the end of its response (a stream's last event).",
            &["group"],
        )?;
        let ttft = histogram_vec(
            "llm_router_time_to_first_token_seconds",
            "Time from the request to the first byte of a successful (2xx) answer's body.",
            &["group"],
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
                 keepalive_timeout, evicted (idle the longest, to make room at \
                 server.max_connections), shutdown.",
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
                f.client.unwrap_or("-"),
            ])
            .inc();
        if !matches!(f.endpoint, "models" | crate::routes::UNKNOWN) {
            self.latency.with_label_values(&[group]).observe(f.latency);
            // Time to the first token of an answer: errors have no tokens.
            if let (Some(t), 200..=299) = (f.ttft, f.status) {
                self.ttft.with_label_values(&[group]).observe(t);
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

    /// Client requests and those answered with an error (any status but 2xx) per group (`-`
    /// for those that named none: refused keys, unknown models and paths), from the requests
    /// counter (for the dashboard's rates).
    pub fn group_requests(&self) -> Vec<(String, u64, u64)> {
        let mut out: Vec<(String, u64, u64)> = Vec::new();
        for m in self.requests_metrics() {
            let label = |name: &str| {
                m.get_label()
                    .iter()
                    .find(|l| l.name() == name)
                    .map(|l| l.value().to_string())
                    .unwrap_or_default()
            };
            let group = label("group");
            let n = m.get_counter().get_value() as u64;
            let error = label("status_class") != "2xx";
            let slot = match out.iter().position(|(g, _, _)| *g == group) {
                Some(i) => i,
                None => {
                    out.push((group, 0, 0));
                    out.len() - 1
                }
            };
            out[slot].1 += n;
            if error {
                out[slot].2 += n;
            }
        }
        out
    }

    fn requests_metrics(&self) -> Vec<prometheus::proto::Metric> {
        self.registry
            .gather()
            .into_iter()
            .filter(|f| f.name() == "llm_router_requests_total")
            .flat_map(|f| f.get_metric().to_vec())
            .collect()
    }

    /// The request histograms' quantile `q` per group, estimated from the buckets as
    /// Prometheus' `histogram_quantile` does (for the dashboard).
    pub fn quantiles(&self, q: f64) -> Vec<(String, f64, f64)> {
        let mut out = Vec::new();
        for family in self.registry.gather() {
            let name = family.name();
            if name != "llm_router_request_duration_seconds"
                && name != "llm_router_time_to_first_token_seconds"
            {
                continue;
            }
            for m in family.get_metric() {
                let group = m
                    .get_label()
                    .iter()
                    .find(|l| l.name() == "group")
                    .map(|l| l.value().to_string())
                    .unwrap_or_default();
                let h = m.get_histogram();
                let total = h.get_sample_count() as f64;
                if total == 0.0 {
                    continue;
                }
                let rank = q * total;
                let mut previous = (0.0, 0.0);
                let mut value = f64::NAN;
                for b in h.get_bucket() {
                    let count = b.cumulative_count() as f64;
                    if count >= rank {
                        let (lo, below) = previous;
                        let width = b.upper_bound() - lo;
                        let share = if count > below {
                            (rank - below) / (count - below)
                        } else {
                            1.0
                        };
                        value = lo + width * share;
                        break;
                    }
                    previous = (b.upper_bound(), count);
                }
                if value.is_nan() {
                    value = previous.0;
                }
                let slot = match out
                    .iter()
                    .position(|(g, _, _): &(String, f64, f64)| *g == group)
                {
                    Some(i) => i,
                    None => {
                        out.push((group, f64::NAN, f64::NAN));
                        out.len() - 1
                    }
                };
                if name == "llm_router_request_duration_seconds" {
                    out[slot].1 = value;
                } else {
                    out[slot].2 = value;
                }
            }
        }
        out
    }

    /// The text exposition: the request metrics, then the router's own counters.
    pub fn render(&self, router: &Router) -> Result<String, String> {
        let mut families = self.registry.gather();
        families.extend(router_families(router).map_err(|e| e.to_string())?);
        families.extend(crate::clients::families(&router.snapshot()).map_err(|e| e.to_string())?);
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&families, &mut out)
            .map_err(|e| e.to_string())?;
        String::from_utf8(out).map_err(|e| e.to_string())
    }
}

/// Families read from the router at scrape time.
fn router_families(router: &Router) -> prometheus::Result<Vec<prometheus::proto::MetricFamily>> {
    let registry = Registry::new();
    let pair = ["provider", "key", "model"];
    let tokens = IntCounterVec::new(
        Opts::new(
            "llm_router_tokens_total",
            "Tokens counted, by provider, key id, model and kind (prompt, completion).",
        ),
        &["provider", "key", "model", "kind"],
    )?;
    let cache_tokens = IntCounterVec::new(
        Opts::new(
            "llm_router_cache_tokens_total",
            "Prompt tokens read from (kind read) or written to (kind write) a provider's prompt cache, by provider, key id and model; part of the prompt tokens, billed apart.",
        ),
        &["provider", "key", "model", "kind"],
    )?;
    let pair_requests = IntCounterVec::new(
        Opts::new(
            "llm_router_upstream_requests_total",
            "Upstream calls, by provider, key id (provider#index) and model.",
        ),
        &pair,
    )?;
    let failures = IntCounterVec::new(
        Opts::new(
            "llm_router_upstream_failures_total",
            "Failed upstream calls, by provider, key id, model and class.",
        ),
        &["provider", "key", "model", "class"],
    )?;
    let breaker = IntGaugeVec::new(
        Opts::new(
            "llm_router_breaker_state",
            "Circuit breaker of a pair: 0 closed, 1 half-open, 2 open.",
        ),
        &pair,
    )?;
    let reloads = IntCounterVec::new(
        Opts::new(
            "llm_router_config_reloads_total",
            "Config reloads, by result.",
        ),
        &["result"],
    )?;
    let generation = IntGauge::new(
        "llm_router_config_generation",
        "Generation of the config in force.",
    )?;
    let build = IntGaugeVec::new(
        Opts::new("llm_router_build_info", "Build information."),
        &["version"],
    )?;
    // The pairs the config in force serves: a key's or model's history after it left the
    // config stays in the ledger and /admin/usage, not as series without end.
    for r in router.usage() {
        let Some(key) = r.key_id.as_deref() else {
            continue;
        };
        let labels = [r.provider.as_str(), key, r.model.as_str()];
        let with = |kind: &'static str| [r.provider.as_str(), key, r.model.as_str(), kind];
        tokens
            .with_label_values(&with("prompt"))
            .inc_by(r.prompt_tokens);
        tokens
            .with_label_values(&with("completion"))
            .inc_by(r.completion_tokens);
        cache_tokens
            .with_label_values(&with("read"))
            .inc_by(r.cache_read_tokens);
        cache_tokens
            .with_label_values(&with("write"))
            .inc_by(r.cache_write_tokens);
        pair_requests.with_label_values(&labels).inc_by(r.requests);
        let Some(live) = &r.live else { continue };
        let f = live.failures;
        for (class, n) in [
            ("rate_limited", f.rate_limited),
            ("unauthorized", f.unauthorized),
            ("model_unavailable", f.model_unavailable),
            ("upstream", f.upstream),
        ] {
            failures.with_label_values(&with(class)).inc_by(n);
        }
        let state = match live.breaker.as_str() {
            "open" => 2,
            "half_open" => 1,
            _ => 0,
        };
        breaker.with_label_values(&labels).set(state);
    }
    let stats = router.reload_stats();
    reloads
        .with_label_values(&["success"])
        .inc_by(stats.succeeded);
    reloads.with_label_values(&["failure"]).inc_by(stats.failed);
    generation.set(i64::try_from(router.snapshot().generation()).unwrap_or(i64::MAX));
    build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
    state_gauges(router, &registry)?;
    registry.register(Box::new(tokens))?;
    registry.register(Box::new(cache_tokens))?;
    registry.register(Box::new(pair_requests))?;
    registry.register(Box::new(failures))?;
    registry.register(Box::new(breaker))?;
    registry.register(Box::new(reloads))?;
    registry.register(Box::new(generation))?;
    registry.register(Box::new(build))?;
    Ok(registry.gather())
}

/// The gauges of what only some configs have: Redis (`state.redis`), a response cache.
fn state_gauges(router: &Router, registry: &Registry) -> prometheus::Result<()> {
    if router.snapshot().shared().is_some() {
        let up = IntGauge::new(
            "llm_router_redis_up",
            "Whether the Redis of state.redis answers (1) or not (0: state is this replica's own until it does).",
        )?;
        let shared = router.shared_state() == router_core::shared::SharedState::Shared;
        up.set(i64::from(shared));
        registry.register(Box::new(up))?;
    }
    if router
        .snapshot()
        .groups()
        .iter()
        .any(|g| g.cache().is_some())
    {
        let entries = IntGauge::new(
            "llm_router_response_cache_entries",
            "Answers this replica keeps in memory for groups with a response cache.",
        )?;
        entries.set(i64::try_from(router.cached_answers()).unwrap_or(i64::MAX));
        registry.register(Box::new(entries))?;
    }
    Ok(())
}
