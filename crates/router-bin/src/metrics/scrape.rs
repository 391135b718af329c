//! The families read at scrape time from the router's own counters and state: per pair
//! (tokens, calls, failures, breaker, key state), per group (usable pairs), reloads, the
//! ledger, Redis, the response cache, and the process.

use prometheus::{IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use router_core::Router;

/// A pair's state as the key state gauge names it, from [`router_core::PairState::state`].
const KEY_STATES: [(&str, &[&str]); 5] = [
    ("ok", &["closed"]),
    ("cooling", &["model_cooldown"]),
    ("rate_limited", &["rate_limited"]),
    ("disabled", &["disabled"]),
    ("open", &["open", "half_open"]),
];

/// Families read from the router at scrape time; `ledger` is the ledger's state.
pub(super) fn families(
    router: &Router,
    ledger: &crate::LedgerState,
) -> prometheus::Result<Vec<prometheus::proto::MetricFamily>> {
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
    let key_state = IntGaugeVec::new(
        Opts::new(
            "llm_router_key_state",
            "State of a pair (provider, key id, model): 1 for the state it is in, 0 for the \
             others: ok, cooling (after a 404 or an unreachable host), rate_limited (after a \
             429), disabled (after a 401/403, until a reload), open (breaker open or half-open).",
        ),
        &["provider", "key", "model", "state"],
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
        for (name, states) in KEY_STATES {
            let now = i64::from(states.contains(&live.state.as_str()));
            key_state.with_label_values(&with(name)).set(now);
        }
    }
    config_families(router, &registry)?;
    state_gauges(router, &registry)?;
    group_gauges(router, &registry)?;
    ledger_gauge(ledger, &registry)?;
    registry.register(Box::new(tokens))?;
    registry.register(Box::new(cache_tokens))?;
    registry.register(Box::new(pair_requests))?;
    registry.register(Box::new(failures))?;
    registry.register(Box::new(breaker))?;
    registry.register(Box::new(key_state))?;
    Ok(registry.gather())
}

/// Reloads by result, the generation in force, and the build.
fn config_families(router: &Router, registry: &Registry) -> prometheus::Result<()> {
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
    let stats = router.reload_stats();
    reloads
        .with_label_values(&["success"])
        .inc_by(stats.succeeded);
    reloads.with_label_values(&["failure"]).inc_by(stats.failed);
    generation.set(i64::try_from(router.snapshot().generation()).unwrap_or(i64::MAX));
    build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
    registry.register(Box::new(reloads))?;
    registry.register(Box::new(generation))?;
    registry.register(Box::new(build))
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

/// How many pairs of each group can be picked as a first choice now: 0 is a group whose every
/// key is down.
fn group_gauges(router: &Router, registry: &Registry) -> prometheus::Result<()> {
    let usable = IntGaugeVec::new(
        Opts::new(
            "llm_router_group_usable_pairs",
            "Pairs of a group that can be picked as a first choice now (not disabled, cooling \
             down or behind an open breaker); 0: every key of the group is down.",
        ),
        &["group"],
    )?;
    let pairs = IntGaugeVec::new(
        Opts::new("llm_router_group_pairs", "Pairs (model, key) of a group."),
        &["group"],
    )?;
    let snapshot = router.snapshot();
    for group in snapshot.groups() {
        let n = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        (usable.with_label_values(&[group.name()])).set(n(group.usable_pairs(&snapshot)));
        (pairs.with_label_values(&[group.name()])).set(n(group.pairs().len()));
    }
    registry.register(Box::new(usable))?;
    registry.register(Box::new(pairs))
}

/// Whether the ledger is written (1) or failing (0); absent when it is off.
fn ledger_gauge(ledger: &crate::LedgerState, registry: &Registry) -> prometheus::Result<()> {
    let up = match ledger {
        crate::LedgerState::Off { .. } => return Ok(()),
        crate::LedgerState::Ok { .. } => 1,
        crate::LedgerState::Failing { .. } => 0,
    };
    let gauge = IntGauge::new(
        "llm_router_ledger_up",
        "Whether the usage ledger's last write worked (1) or failed (0: usage is kept in \
         memory until a write works).",
    )?;
    gauge.set(up);
    registry.register(Box::new(gauge))
}
