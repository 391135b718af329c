//! Per (provider, key, upstream model) token accounting. Lives outside the swapped config, keyed
//! by provider name + key fingerprint + model, so counters survive reloads and key reordering.

pub(crate) use super::hot::HotSlot;
use super::hot::{add, sub, HotSlab};
use crate::health::{Cooldown, Health};
use serde::Serialize;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed, Ordering::Release};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

/// Tokens reported by an upstream for one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TokenUsage {
    /// Prompt (input) tokens.
    pub prompt_tokens: u64,
    /// Completion (output) tokens.
    pub completion_tokens: u64,
    /// Total tokens, as reported (or prompt + completion when the upstream left it out).
    pub total_tokens: u64,
    /// Prompt tokens read from the provider's prompt cache (of `prompt_tokens`, billed apart).
    #[serde(default)]
    pub cache_read_tokens: u64,
    /// Prompt tokens written to the provider's prompt cache (of `prompt_tokens`, billed apart).
    #[serde(default)]
    pub cache_write_tokens: u64,
}

/// Live counters of one (provider, key, model) pair. All atomics: recording never blocks.
#[derive(Debug, Default)]
pub struct PairStats {
    /// What selection reads (see [`Hot`]).
    pub(crate) hot: HotSlot,
    total_tokens: AtomicU64,
    /// Request and error penalties charged so far.
    penalty: AtomicU64,
    /// Estimates held by requests in flight.
    reserved: AtomicU64,
    /// Requests in flight (picked, not yet settled; a stream until it ends).
    in_flight: AtomicU64,
    prompt_tokens: AtomicU64,
    completion_tokens: AtomicU64,
    cache_read_tokens: AtomicU64,
    cache_write_tokens: AtomicU64,
    requests: AtomicU64,
    errors: AtomicU64,
    /// Failed upstream calls by class, in [`FailureCounts`] order.
    failures: [AtomicU64; 4],
    /// Cooldowns and circuit breaker.
    pub(crate) health: Mutex<Health>,
    /// Tokens restored from the ledger at start (already shared by an earlier run).
    restored: AtomicU64,
    /// What the last failed call said, and when (seconds since the Unix epoch).
    last_error: Mutex<Option<(u64, String)>>,
}

impl PairStats {
    fn with_slot(hot: HotSlot) -> Self {
        PairStats {
            hot,
            total_tokens: AtomicU64::default(),
            penalty: AtomicU64::default(),
            reserved: AtomicU64::default(),
            in_flight: AtomicU64::default(),
            prompt_tokens: AtomicU64::default(),
            completion_tokens: AtomicU64::default(),
            cache_read_tokens: AtomicU64::default(),
            cache_write_tokens: AtomicU64::default(),
            requests: AtomicU64::default(),
            errors: AtomicU64::default(),
            failures: Default::default(),
            health: Mutex::default(),
            restored: AtomicU64::default(),
            last_error: Mutex::default(),
        }
    }

    /// Keeps what a failed call said, for the operator's view.
    pub(crate) fn note_error(&self, outcome: &str) {
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((at, outcome.to_string()));
    }

    /// What this replica shares of the pair: its tokens and penalties (not what is in flight).
    pub(crate) fn score(&self) -> u64 {
        (self.total_tokens.load(Relaxed)).saturating_add(self.penalty.load(Relaxed))
    }

    /// The part of [`Self::score`] restored from the ledger at start.
    pub(crate) fn restored_score(&self) -> u64 {
        self.restored.load(Relaxed)
    }

    /// Replaces the other replicas' score in what selection reads: `old` out, `new` in.
    pub(crate) fn share_usage(&self, old: u64, new: u64) {
        add(&self.hot.get().usage, new.saturating_sub(old));
        sub(&self.hot.get().usage, old.saturating_sub(new));
    }

    /// The cooldowns running on the pair, with when they end.
    pub(crate) fn cooldowns(
        &self,
        now: tokio::time::Instant,
    ) -> Vec<(Cooldown, tokio::time::Instant)> {
        let health = self.health.lock().unwrap_or_else(|p| p.into_inner());
        health.cooldowns(now)
    }

    /// Cools the pair down until `until`, as another replica did.
    pub(crate) fn cool_down(&self, kind: Cooldown, until: tokio::time::Instant, generation: u64) {
        self.with_health(generation, |h| h.cool_down(kind, until));
    }

    /// The usage that selection scores: tokens + penalties + in-flight reservations.
    pub fn usage(&self) -> u64 {
        self.hot.get().usage()
    }

    /// Requests in flight on the pair (a stream until it ends).
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Relaxed)
    }

    pub(crate) fn begin(&self, reservation: u64, request_penalty: u64) {
        self.requests.fetch_add(1, Relaxed);
        self.in_flight.fetch_add(1, Relaxed);
        add(&self.reserved, reservation);
        add(&self.penalty, request_penalty);
        add(
            &self.hot.get().usage,
            reservation.saturating_add(request_penalty),
        );
    }

    /// Undoes [`PairStats::begin`]'s request count and penalty, for a request never sent.
    pub(crate) fn withdraw(&self, request_penalty: u64) {
        sub(&self.requests, 1);
        sub(&self.penalty, request_penalty);
        sub(&self.hot.get().usage, request_penalty);
    }

    pub(crate) fn release(&self, reservation: u64) {
        sub(&self.in_flight, 1);
        sub(&self.reserved, reservation);
        sub(&self.hot.get().usage, reservation);
    }

    /// Changes the health under its lock, and keeps the lock-free mirrors true to it.
    pub(crate) fn with_health<R>(&self, generation: u64, f: impl FnOnce(&mut Health) -> R) -> R {
        let mut health = self.health.lock().unwrap_or_else(|p| p.into_inner());
        let result = f(&mut health);
        let clean = health.is_clean(tokio::time::Instant::now(), generation);
        self.hot
            .get()
            .mirror
            .store(health.epoch() << 1 | u64::from(!clean), Release);
        result
    }

    /// The breaker epoch of a pair whose health is clean, read without its lock; `None` when
    /// the health must be read under the lock.
    pub(crate) fn clean_epoch(&self) -> Option<u64> {
        self.hot.get().clean_epoch()
    }

    pub(crate) fn record_tokens(&self, usage: TokenUsage) {
        add(&self.prompt_tokens, usage.prompt_tokens);
        add(&self.completion_tokens, usage.completion_tokens);
        add(&self.cache_read_tokens, usage.cache_read_tokens);
        add(&self.cache_write_tokens, usage.cache_write_tokens);
        add(&self.total_tokens, usage.total_tokens);
        add(&self.hot.get().usage, usage.total_tokens);
    }

    pub(crate) fn record_error(&self, failure: crate::Failure, error_penalty: u64) {
        self.errors.fetch_add(1, Relaxed);
        let class = match failure {
            crate::Failure::RateLimited { .. } => 0,
            crate::Failure::Unauthorized | crate::Failure::CredentialRefused { .. } => 1,
            crate::Failure::ModelUnavailable => 2,
            crate::Failure::Upstream => 3,
        };
        self.failures[class].fetch_add(1, Relaxed);
        add(&self.penalty, error_penalty);
        add(&self.hot.get().usage, error_penalty);
    }
}

/// Failed upstream calls of a pair, by what the failure meant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FailureCounts {
    /// 429s.
    pub rate_limited: u64,
    /// 401s and 403s, and refusals of an OAuth credential by its token endpoint.
    pub unauthorized: u64,
    /// 404s, refused connections, failed DNS lookups.
    pub model_unavailable: u64,
    /// 5xx, resets, timeouts, broken streams.
    pub upstream: u64,
}

/// What one group sent to a pair and was charged for (a pair two groups share is counted apart
/// in each), since start.
#[derive(Debug, Default)]
pub struct InGroup {
    pub(crate) calls: AtomicU64,
    pub(crate) tokens: AtomicU64,
}

impl InGroup {
    /// Calls this group sent to the pair.
    pub fn calls(&self) -> u64 {
        self.calls.load(Relaxed)
    }
    /// Tokens charged for them.
    pub fn tokens(&self) -> u64 {
        self.tokens.load(Relaxed)
    }
}

/// Identity of a pair in the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PairKey {
    provider: String,
    key_fingerprint: String,
    model: String,
}

impl PairKey {
    fn new(provider: &str, key_fingerprint: &str, model: &str) -> Self {
        Self {
            provider: provider.to_string(),
            key_fingerprint: key_fingerprint.to_string(),
            model: model.to_string(),
        }
    }
}

#[derive(Debug)]
struct Entry {
    key_masked: String,
    stats: Arc<PairStats>,
}

/// The counters of one (provider, key, model): a row of [`crate::Router::usage`], with the
/// pair's live state, and what a persistent ledger saves and restores, without it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UsageRecord {
    /// Provider name.
    pub provider: String,
    /// The key's id, `provider#index` (shown as `key`), while the config in force names the
    /// pair; `None` for the history of a key or model it no longer names.
    #[serde(rename = "key")]
    pub key_id: Option<String>,
    /// The key masked (`sk-…a1b2`), distinct among its provider's keys; never the key.
    pub key_masked: String,
    /// Stable fingerprint of the key (first 16 hex digits of its SHA-256): what the ledger
    /// and the replicas' shared state keep its counters under. Not shown.
    #[serde(skip)]
    pub key_fingerprint: String,
    /// Upstream model name.
    pub model: String,
    /// Prompt tokens counted.
    pub prompt_tokens: u64,
    /// Completion tokens counted.
    pub completion_tokens: u64,
    /// Total tokens counted.
    pub total_tokens: u64,
    /// Prompt tokens read from the provider's cache (part of `prompt_tokens`).
    pub cache_read_tokens: u64,
    /// Prompt tokens written to the provider's cache (part of `prompt_tokens`).
    pub cache_write_tokens: u64,
    /// Requests sent to this pair (including failed ones).
    pub requests: u64,
    /// Failed upstream calls.
    pub errors: u64,
    /// The pair's state in a running router (none in a saved row).
    #[serde(flatten)]
    pub live: Option<PairState>,
}

/// A pair's state in a running router.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PairState {
    /// Penalties charged (request and error penalties).
    pub penalty: u64,
    /// Tokens currently reserved by requests in flight.
    pub reserved: u64,
    /// Health: `closed` (healthy), `open` or `half_open` (circuit breaker), `rate_limited`
    /// (429 cooldown), `credential_refused` (its OAuth token endpoint refused the key, which
    /// rests a minute), `model_cooldown` (404 or unreachable), `disabled` (401/403 until
    /// reload).
    pub state: String,
    /// The circuit breaker alone (`closed`, `half_open`, `open`), whatever cooldown or
    /// disabling `state` shows ahead of it.
    pub breaker: String,
    /// When the current cooldown or open breaker ends (RFC 3339), if it does.
    pub until: Option<String>,
    /// Upstream failures in a row.
    pub consecutive_failures: u32,
    /// Failed upstream calls by class.
    pub failures: FailureCounts,
    /// What the last failed upstream call said (as the client was told), if one failed.
    pub last_error: Option<String>,
    /// When it failed (seconds since the Unix epoch).
    pub last_error_at: Option<u64>,
}

/// All pairs' counters, across reloads.
#[derive(Debug, Default)]
pub(crate) struct UsageLedger {
    entries: RwLock<HashMap<PairKey, Entry>>,
    /// Each group's share of its pairs, by group name and pair.
    in_groups: Mutex<HashMap<(String, PairKey), Arc<InGroup>>>,
    /// Where new pairs' [`Hot`] counters go (taken under the `entries` write lock).
    slab: Mutex<HotSlab>,
}

impl UsageLedger {
    fn next_slot(&self) -> HotSlot {
        self.slab.lock().unwrap_or_else(|p| p.into_inner()).next()
    }

    /// The counters of a pair, created on first use. Called when a config is compiled, never
    /// per request.
    pub(crate) fn stats_for(
        &self,
        provider: &str,
        key_fingerprint: &str,
        key_masked: &str,
        model: &str,
    ) -> Arc<PairStats> {
        let key = PairKey::new(provider, key_fingerprint, model);
        let mut map = self.entries.write().unwrap_or_else(|p| p.into_inner());
        let entry = map.entry(key).or_insert_with(|| Entry {
            key_masked: key_masked.to_string(),
            stats: Arc::new(PairStats::with_slot(self.next_slot())),
        });
        entry.key_masked = key_masked.to_string();
        entry.stats.clone()
    }

    /// What group `group` sent to a pair, created on first use (when a config is compiled).
    pub(crate) fn in_group(
        &self,
        group: &str,
        provider: &str,
        key_fingerprint: &str,
        model: &str,
    ) -> Arc<InGroup> {
        let key = PairKey::new(provider, key_fingerprint, model);
        let mut map = self.in_groups.lock().unwrap_or_else(|p| p.into_inner());
        map.entry((group.to_string(), key)).or_default().clone()
    }

    /// Adds saved counters to the pairs they belong to (creating pairs the config does not
    /// name yet, so their history stays visible).
    pub(crate) fn restore(&self, saved: &[UsageRecord]) {
        let mut map = self.entries.write().unwrap_or_else(|p| p.into_inner());
        for s in saved {
            let key = PairKey {
                provider: s.provider.clone(),
                key_fingerprint: s.key_fingerprint.clone(),
                model: s.model.clone(),
            };
            // A pair the config names keeps the config's label for its key.
            let entry = map.entry(key).or_insert_with(|| Entry {
                key_masked: s.key_masked.clone(),
                stats: Arc::new(PairStats::with_slot(self.next_slot())),
            });
            let stats = &entry.stats;
            add(&stats.restored, s.total_tokens);
            stats.record_tokens(TokenUsage {
                prompt_tokens: s.prompt_tokens,
                completion_tokens: s.completion_tokens,
                total_tokens: s.total_tokens,
                cache_read_tokens: s.cache_read_tokens,
                cache_write_tokens: s.cache_write_tokens,
            });
            stats.requests.fetch_add(s.requests, Relaxed);
            stats.errors.fetch_add(s.errors, Relaxed);
        }
    }

    /// Every pair's counters, by the id replicas share them under:
    /// `provider/key fingerprint/model`.
    pub(crate) fn pairs(&self) -> Vec<(String, Arc<PairStats>)> {
        let map = self.entries.read().unwrap_or_else(|p| p.into_inner());
        map.iter()
            .map(|(k, e)| {
                let id = format!("{}/{}/{}", k.provider, k.key_fingerprint, k.model);
                (id, e.stats.clone())
            })
            .collect()
    }

    /// Every pair's counters and state; `ids` names the pairs the config in force serves
    /// (their stats, by address, to their key ids).
    pub(crate) fn records(
        &self,
        generation: u64,
        ids: &HashMap<*const PairStats, &str>,
    ) -> Vec<UsageRecord> {
        let now = tokio::time::Instant::now();
        let wall = SystemTime::now();
        let map = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<UsageRecord> = map
            .iter()
            .map(|(k, e)| {
                let view = e
                    .stats
                    .health
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .view(now, generation);
                let last_error = (e.stats.last_error.lock())
                    .unwrap_or_else(|p| p.into_inner())
                    .clone();
                let until = view.until.and_then(|u| {
                    let at = wall.checked_add(u.saturating_duration_since(now))?;
                    // Formatting fails past year 9999: no date rather than a panic.
                    let mut text = String::new();
                    write!(text, "{}", humantime::format_rfc3339_millis(at)).ok()?;
                    Some(text)
                });
                UsageRecord {
                    provider: k.provider.clone(),
                    key_id: ids.get(&Arc::as_ptr(&e.stats)).map(|id| id.to_string()),
                    key_masked: e.key_masked.clone(),
                    key_fingerprint: k.key_fingerprint.clone(),
                    model: k.model.clone(),
                    prompt_tokens: e.stats.prompt_tokens.load(Relaxed),
                    completion_tokens: e.stats.completion_tokens.load(Relaxed),
                    total_tokens: e.stats.total_tokens.load(Relaxed),
                    cache_read_tokens: e.stats.cache_read_tokens.load(Relaxed),
                    cache_write_tokens: e.stats.cache_write_tokens.load(Relaxed),
                    requests: e.stats.requests.load(Relaxed),
                    errors: e.stats.errors.load(Relaxed),
                    live: Some(PairState {
                        penalty: e.stats.penalty.load(Relaxed),
                        reserved: e.stats.reserved.load(Relaxed),
                        state: view.state.to_string(),
                        breaker: view.breaker.to_string(),
                        until,
                        consecutive_failures: view.consecutive_failures,
                        failures: FailureCounts {
                            rate_limited: e.stats.failures[0].load(Relaxed),
                            unauthorized: e.stats.failures[1].load(Relaxed),
                            model_unavailable: e.stats.failures[2].load(Relaxed),
                            upstream: e.stats.failures[3].load(Relaxed),
                        },
                        last_error: last_error.as_ref().map(|(_, m)| m.clone()),
                        last_error_at: last_error.as_ref().map(|(at, _)| *at),
                    }),
                }
            })
            .collect();
        out.sort_by(|a, b| {
            (
                &a.provider,
                &a.model,
                a.key_id.is_none(),
                &a.key_id,
                &a.key_masked,
            )
                .cmp(&(
                    &b.provider,
                    &b.model,
                    b.key_id.is_none(),
                    &b.key_id,
                    &b.key_masked,
                ))
        });
        out
    }
}
