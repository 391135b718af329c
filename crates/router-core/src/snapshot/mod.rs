//! The compiled, validated runtime form of a config: one `Arc<Snapshot>` is swapped per reload
//! and loaded once per request. [`compile`] builds it; [`provider`] and [`settings`] hold the
//! compiled providers and server settings, [`shared`] where the replicas share state.

mod base_url;
mod compile;
mod direct;
mod exposure;
mod keys;
mod listener_tls;
mod provider;
mod settings;
mod shared;
mod target;
mod telemetry;

pub(crate) use compile::compile;
pub use listener_tls::TlsFiles;
pub use provider::Provider;
pub(crate) use provider::Transport;
pub use settings::{CorsOrigins, LedgerSettings, LogFormat, ServerSettings};
pub use shared::SharedSettings;
pub use telemetry::TelemetrySettings;

use crate::config::{CacheConfig, ResilienceConfig};
use crate::select::Strategy;
use crate::state::groups::GroupState;
use crate::state::limits::KeyLimit;
use crate::state::usage::{HotSlot, PairStats};
use crate::tenants::{Client, Prices, Team};
use crate::{Redactor, Secret};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

/// One (upstream model, key) pair of a group.
#[derive(Debug)]
#[repr(C)]
pub struct Pair {
    // What selection reads of every pair comes first, together: its counters (in the
    // router's consecutive slots, see `hot::Hot`), weight and model.
    pub(crate) hot: HotSlot,
    pub(crate) weight: f64,
    pub(crate) model_index: usize,
    /// Its key's upstream limits, if it has any (read by every pick of the pair).
    pub(crate) limit: Option<KeyLimit>,
    pub(crate) stats: Arc<PairStats>,
    /// What this group sent to the pair (apart from other groups that share it).
    pub(crate) in_group: Arc<crate::usage::InGroup>,
    pub(crate) provider: Arc<Provider>,
    pub(crate) model: Arc<str>,
    pub(crate) key: Secret,
    /// Its key's OAuth credential, when it is one.
    pub(crate) credential: Option<Arc<crate::oauth::OAuthCredential>>,
    pub(crate) key_id: Arc<str>,
    pub(crate) key_label: String,
    /// Every pair of the group with the same provider and model (itself included).
    pub(crate) siblings: Arc<[Arc<PairStats>]>,
}

impl Pair {
    /// The provider.
    pub fn provider(&self) -> &Provider {
        &self.provider
    }
    /// Upstream model name.
    pub fn model(&self) -> &str {
        &self.model
    }
    /// Index (0-based) of its model entry in the group's `models`.
    pub fn model_index(&self) -> usize {
        self.model_index
    }
    /// Weight of its model entry.
    pub fn weight(&self) -> f64 {
        self.weight
    }
    /// `provider#index` of its key.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }
    /// Fingerprint of its key (as in [`crate::UsageRecord::key_fingerprint`]).
    pub fn key_fingerprint(&self) -> String {
        self.key.fingerprint()
    }
    /// Masked key (`sk-…a1b2`; `mock` for the in-process provider).
    pub fn key_masked(&self) -> &str {
        &self.key_label
    }
    /// What its group sent to it and was charged, since start (a pair two groups share is
    /// counted apart in each; its [`crate::UsageRecord`] holds the totals).
    pub fn in_group(&self) -> &crate::usage::InGroup {
        &self.in_group
    }
    /// Current selection usage (tokens + penalties + reservations).
    pub fn usage(&self) -> u64 {
        self.stats.usage()
    }
}

/// A group: the name clients send as `model`, and its (model, key) pairs in config order.
#[derive(Debug)]
pub struct Group {
    name: Arc<str>,
    strategy: Strategy,
    /// Models as configured (including skipped ones), for pinned `group$N` requests.
    model_count: usize,
    pub(crate) pairs: Vec<Pair>,
    /// The ranges of `pairs` that belong to one model entry (its keys), in order.
    pub(crate) model_runs: Vec<std::ops::Range<usize>>,
    /// Its select lock and round-robin cursors, which outlive reloads.
    pub(crate) state: Arc<GroupState>,
    /// Its response cache, if it has one.
    cache: Option<CacheConfig>,
    /// Each model entry's tags, in config order.
    pub(crate) model_tags: Vec<Vec<String>>,
    /// Each model entry's price, in config order (`None`: unpriced).
    pub(crate) model_prices: Vec<Option<crate::tenants::Price>>,
    /// How long a request may wait for a pair to be free of its limit or cooldown.
    queue_timeout: Option<std::time::Duration>,
}

impl Group {
    /// The group's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Its name, shared (a request's [`crate::Served`] names it without a copy).
    pub fn shared_name(&self) -> &Arc<str> {
        &self.name
    }
    /// How it picks pairs.
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }
    /// Number of model entries in the config (what `group$N` counts).
    pub fn model_count(&self) -> usize {
        self.model_count
    }
    /// Its pairs, models in config order and each model's keys in config order.
    pub fn pairs(&self) -> &[Pair] {
        &self.pairs
    }
    /// The pairs whose model does not carry every one of `tags`.
    pub(crate) fn untagged(&self, tags: &[String]) -> Vec<usize> {
        let carries = |mi: usize| {
            let own = self.model_tags.get(mi).map_or(&[][..], Vec::as_slice);
            tags.iter().all(|t| own.contains(t))
        };
        (self.pairs.iter().enumerate())
            .filter(|(_, p)| !carries(p.model_index))
            .map(|(i, _)| i)
            .collect()
    }
    /// Its response cache (`cache:`), if it has one.
    pub fn cache(&self) -> Option<&CacheConfig> {
        self.cache.as_ref()
    }
    /// How long a request may wait, when every pair is at its key's limit or cooling down
    /// after a 429, for the soonest to be free (`queue_timeout`; `None`: no waiting).
    pub fn queue_timeout(&self) -> Option<std::time::Duration> {
        self.queue_timeout
    }
}

/// A validated config, ready to serve.
#[derive(Debug)]
pub struct Snapshot {
    generation: u64,
    redactor: Arc<Redactor>,
    listen: SocketAddr,
    client_keys: Vec<Secret>,
    /// The named client of each of `client_keys` (`None` for `api_key` / `api_keys`).
    key_owners: Vec<Option<Arc<Client>>>,
    admin_keys: Vec<Secret>,
    admin_closed: bool,
    clients: Vec<Arc<Client>>,
    teams: Vec<Arc<Team>>,
    prices: Arc<Prices>,
    ledger: LedgerSettings,
    shared: Option<SharedSettings>,
    telemetry: Option<TelemetrySettings>,
    cache_max_bytes: u64,
    request_penalty: u64,
    error_penalty: u64,
    server: ServerSettings,
    resilience: Arc<ResilienceConfig>,
    groups: Vec<Arc<Group>>,
    group_index: HashMap<String, usize>,
    /// Bare model names several providers list (`models:`), with their `provider/model`.
    ambiguous: HashMap<String, Vec<String>>,
    warnings: Vec<String>,
}

impl Snapshot {
    /// Reload generation: 1 for the first config, +1 per successful reload.
    pub fn generation(&self) -> u64 {
        self.generation
    }
    /// Masks this config's secrets in upstream words (see [`Redactor`]).
    pub fn redactor(&self) -> &Arc<Redactor> {
        &self.redactor
    }
    /// Address to listen on.
    pub fn listen(&self) -> SocketAddr {
        self.listen
    }
    /// Accepted client keys (`api_key`, `api_keys`, then every named client's); empty means
    /// no authentication.
    pub fn client_keys(&self) -> &[Secret] {
        &self.client_keys
    }
    /// The named client whose key is `client_keys()[index]` (`None` for an unnamed key).
    pub fn key_owner(&self, index: usize) -> Option<&Arc<Client>> {
        self.key_owners.get(index).and_then(Option::as_ref)
    }
    /// Keys that open the admin endpoints: the `admin_key`, or without one the unnamed client
    /// keys (never a named client's).
    pub fn admin_keys(&self) -> &[Secret] {
        &self.admin_keys
    }
    /// Whether the admin endpoints are closed to everyone: clients are named, and there is
    /// neither an `admin_key` nor an unnamed client key.
    pub fn admin_closed(&self) -> bool {
        self.admin_closed
    }
    /// The named clients, in config order.
    pub fn clients(&self) -> &[Arc<Client>] {
        &self.clients
    }
    /// The teams, in config order.
    pub fn teams(&self) -> &[Arc<Team>] {
        &self.teams
    }
    /// A named client by name.
    pub fn client(&self, name: &str) -> Option<&Arc<Client>> {
        self.clients.iter().find(|c| c.name() == name)
    }
    /// The price table: the config's `prices:` over the built-in one.
    pub fn prices(&self) -> &Arc<Prices> {
        &self.prices
    }
    /// Every `provider/model` of the groups that has no price (it costs 0), each once.
    pub fn unpriced(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for pair in self.groups.iter().flat_map(|g| g.pairs.iter()) {
            let name = format!("{}/{}", pair.provider.name(), pair.model);
            if self.prices.get(pair.provider.name(), &pair.model).is_none() && !out.contains(&name)
            {
                out.push(name);
            }
        }
        out
    }
    /// Ledger settings.
    pub fn ledger(&self) -> &LedgerSettings {
        &self.ledger
    }
    /// Where the replicas share state (`state.redis`), if anywhere.
    pub fn shared(&self) -> Option<&SharedSettings> {
        self.shared.as_ref()
    }
    /// Where the router's traces go (`telemetry`), if anywhere.
    pub fn telemetry(&self) -> Option<&TelemetrySettings> {
        self.telemetry.as_ref()
    }
    /// Size bound of the in-memory response cache (`state.cache_max_bytes`).
    pub fn cache_max_bytes(&self) -> u64 {
        self.cache_max_bytes
    }
    /// Usage charged per pick.
    pub fn request_penalty(&self) -> u64 {
        self.request_penalty
    }
    /// Usage charged per failed upstream call.
    pub fn error_penalty(&self) -> u64 {
        self.error_penalty
    }
    /// Server settings.
    pub fn server(&self) -> &ServerSettings {
        &self.server
    }
    /// Retries, cooldowns and breaker settings.
    pub fn resilience(&self) -> &Arc<ResilienceConfig> {
        &self.resilience
    }
    /// Groups in config order, then one per model of a provider's `models` (`provider/model`).
    pub fn groups(&self) -> &[Arc<Group>] {
        &self.groups
    }
    /// A group by name (a provider's model as `provider/model`, or as its bare name when
    /// that is no one else's).
    pub fn group(&self, name: &str) -> Option<&Arc<Group>> {
        self.group_index.get(name).map(|&i| &self.groups[i])
    }
    /// The `provider/model` names a bare model name could mean, when several providers list it.
    pub fn ambiguous(&self, name: &str) -> Option<&[String]> {
        self.ambiguous.get(name).map(Vec::as_slice)
    }
    /// Warnings found while compiling (skipped keys and models).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The resolved routing table as text: groups → models → providers → masked keys.
    pub fn routing_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "listen: {}", self.listen);
        let _ = writeln!(
            out,
            "client keys: {}",
            if self.client_keys.is_empty() {
                "none (authentication disabled)".to_string()
            } else {
                self.client_keys
                    .iter()
                    .map(Secret::masked)
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        );
        for g in &self.groups {
            let _ = writeln!(out, "group {}", g.name);
            for p in &g.pairs {
                let _ = writeln!(
                    out,
                    "  {:<28} weight {:<6} provider {:<12} key {} ({})",
                    p.model,
                    p.weight,
                    p.provider.name(),
                    p.key_id,
                    p.key_label
                );
            }
        }
        out
    }
}
