//! Compiling a parsed config into a [`Snapshot`] against the router's runtime state: every
//! problem is collected with its key path and line, and the config is refused if there is any.

use super::provider::{self, Provider};
use super::{settings, Group, Pair, Snapshot};
use crate::config::{CacheConfig, Config, ConfigError, GroupConfig, Problem, Source};
use crate::state::usage::PairStats;
use crate::state::State;
use crate::{Redactor, Secret};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;

/// The problems found so far, each located by key path (and line, for a YAML source).
pub(crate) struct Problems<'a> {
    source: Option<&'a Source>,
    lines: Option<HashMap<String, usize>>,
    list: Vec<Problem>,
}

impl Problems<'_> {
    pub(crate) fn push(&mut self, path: String, message: impl Into<String>) {
        if self.lines.is_none() {
            self.lines = Some(self.source.map(Source::line_index).unwrap_or_default());
        }
        let line = self.lines.as_ref().and_then(|l| l.get(&path).copied());
        self.list.push(Problem {
            path,
            line,
            message: crate::config::mask_message(&message.into()),
        });
    }
}

/// Compiles a parsed config against the runtime state.
pub(crate) fn compile(
    config: &Config,
    source: Option<&Source>,
    generation: u64,
    state: &State,
) -> Result<Snapshot, ConfigError> {
    let mut problems = Problems {
        source,
        lines: None,
        list: Vec::new(),
    };
    let mut warnings = Vec::new();
    let listen = listen(config, &mut problems);
    let (mut client_keys, mut admin_keys) = client_keys(config, &mut problems, &mut warnings);
    let mut tenant_problems = Vec::new();
    let tenants =
        crate::tenants::compile(config, &state.tenants, &client_keys, &mut tenant_problems);
    for (path, message) in tenant_problems {
        problems.push(path, message);
    }
    let mut key_owners = vec![None; client_keys.len()];
    for (key, client) in &tenants.keys {
        client_keys.push(key.clone());
        key_owners.push(Some(client.clone()));
    }
    // Named clients never open the admin endpoints: without an admin_key or an unnamed key,
    // they are closed.
    let admin_closed = admin_keys.is_empty() && !tenants.keys.is_empty();
    if admin_closed {
        warnings.push("clients are named but there is no admin_key (nor api_key): the admin endpoints, /metrics and the dashboard's data are closed until admin_key is set".into());
        admin_keys.clear();
    }
    super::exposure::warn(config, &client_keys, admin_closed, &mut warnings);
    settings::check(config, &mut problems);
    let shared = super::shared::compile(&config.state, &mut problems);
    let telemetry = super::telemetry::compile(&config.telemetry, &mut problems);
    let server = settings::server(&config.server, source, &mut warnings);
    let providers = provider::compile_all(
        &config.providers,
        &config.server,
        state,
        &mut problems,
        &mut warnings,
    );
    let provider_names: HashSet<&str> = config.providers.iter().map(|p| p.name.as_str()).collect();
    let known = Known {
        providers: &providers,
        names: &provider_names,
        redis: config.state.redis.is_some(),
        prices: &tenants.prices,
    };
    let (groups, group_index, direct) =
        compile_groups(config, &known, state, &mut problems, &mut warnings);
    if !problems.list.is_empty() {
        return Err(ConfigError {
            file: source.and_then(|s| s.file.clone()),
            problems: problems.list,
        });
    }
    // Every secret this config holds, for the redaction of upstream words.
    let secrets: Vec<Secret> = providers
        .values()
        .flat_map(|p| p.secrets())
        .chain(client_keys.iter().cloned())
        .chain(admin_keys.iter().cloned())
        .collect();
    Ok(Snapshot {
        generation,
        redactor: Arc::new(Redactor::new(&secrets)),
        listen,
        client_keys,
        key_owners,
        admin_keys,
        admin_closed,
        clients: tenants.clients,
        teams: tenants.teams,
        prices: tenants.prices,
        ledger: settings::ledger(&config.ledger, source),
        shared,
        telemetry,
        cache_max_bytes: config.state.cache_max_bytes,
        request_penalty: config.request_penalty,
        error_penalty: config.error_penalty,
        server,
        resilience: Arc::new(config.resilience.clone()),
        groups,
        group_index,
        ambiguous: direct.ambiguous,
        warnings: warnings
            .iter()
            .map(|w| crate::config::mask_message(w))
            .collect(),
    })
}

/// `listen`, else `port` on every interface (8080 by default).
fn listen(config: &Config, problems: &mut Problems<'_>) -> SocketAddr {
    match (&config.listen, config.port) {
        (Some(l), _) => l.as_str().parse::<SocketAddr>().unwrap_or_else(|e| {
            problems.push(
                "listen".into(),
                format!(
                    "'{}' is not an address such as 127.0.0.1:8080: {e}",
                    l.as_str()
                ),
            );
            SocketAddr::from(([0, 0, 0, 0], 8080))
        }),
        (None, port) => SocketAddr::from(([0, 0, 0, 0], port.unwrap_or(8080))),
    }
}

/// The client keys and the admin keys (the `admin_key`, or without one the client keys).
fn client_keys(
    config: &Config,
    problems: &mut Problems<'_>,
    warnings: &mut Vec<String>,
) -> (Vec<Secret>, Vec<Secret>) {
    let written = config
        .api_key
        .iter()
        .map(|k| ("api_key".to_string(), k))
        .chain(
            config
                .api_keys
                .iter()
                .enumerate()
                .map(|(i, k)| (format!("api_keys[{i}]"), k)),
        );
    let mut client_keys = Vec::new();
    for (path, k) in written {
        if k.as_str().is_empty() {
            warnings.push(format!("{path}: client key is empty; skipped"));
        } else if key_text_ok(&path, k.as_str(), problems) {
            client_keys.push(Secret::new(k.as_str()));
        }
    }
    if client_keys.is_empty() && (config.api_key.is_some() || !config.api_keys.is_empty()) {
        problems.push(
            "api_key".into(),
            "client keys are configured but every one is empty (an unset variable?); refusing to \
             serve without authentication. Remove api_key/api_keys to run without it",
        );
    }
    let admin_keys = match &config.admin_key {
        Some(k) if k.as_str().is_empty() => {
            problems.push(
                "admin_key".into(),
                "is empty (an unset variable?); refusing to open the admin endpoints without a key. \
                 Remove admin_key to let the client keys open them",
            );
            Vec::new()
        }
        Some(k) if key_text_ok("admin_key", k.as_str(), problems) => vec![Secret::new(k.as_str())],
        Some(_) => Vec::new(),
        None => client_keys.clone(),
    };
    (client_keys, admin_keys)
}

/// Whether a key is one line of text: a control character (a newline copied with it, say)
/// could never be sent in a header, so it is a load error, told without the key.
pub(super) fn key_text_ok(path: &str, key: &str, problems: &mut Problems<'_>) -> bool {
    match key.chars().position(char::is_control) {
        None => true,
        Some(at) => {
            problems.push(
                path.to_string(),
                format!("the key has a control character at position {} (a line break?); a key is one line of text (the key is not shown)", at + 1),
            );
            false
        }
    }
}

/// Compiled groups: the list, the index by name, and the ambiguous bare names.
type Compiled = (
    Vec<Arc<Group>>,
    HashMap<String, usize>,
    super::direct::Direct,
);

/// The groups of `groups:`, then those of the providers' `models` (see [`super::direct`]).
fn compile_groups(
    config: &Config,
    known: &Known<'_>,
    state: &State,
    problems: &mut Problems<'_>,
    warnings: &mut Vec<String>,
) -> Compiled {
    let mut groups = Vec::new();
    let mut group_index = HashMap::new();
    let mut seen_groups: HashSet<&str> = HashSet::new();
    if config.groups.is_empty() && config.providers.iter().all(|p| p.models.is_empty()) {
        problems.push(
            "groups".into(),
            "no groups defined (nor any provider's models)",
        );
    }
    for (gi, g) in config.groups.iter().enumerate() {
        let name = g.name.as_str();
        if name.is_empty() {
            problems.push(format!("groups[{gi}].name"), "group name is empty");
            continue;
        }
        if !seen_groups.insert(name) {
            problems.push(
                format!("groups[{gi}].name"),
                format!("duplicate group name '{name}'"),
            );
            continue;
        }
        let at = format!("groups[{gi}]");
        if let Some(group) = group(&at, g, known, state, problems, warnings) {
            group_index.insert(name.to_string(), groups.len());
            groups.push(Arc::new(group));
        }
    }
    let direct = super::direct::add(
        config,
        known,
        state,
        &mut groups,
        &mut group_index,
        problems,
        warnings,
    );
    (groups, group_index, direct)
}

/// The providers a group's models may name.
pub(super) struct Known<'a> {
    /// Compiled without problems.
    pub(super) providers: &'a HashMap<String, Arc<Provider>>,
    /// Every name in `providers` (one with a problem was reported there).
    pub(super) names: &'a HashSet<&'a str>,
    /// Whether `state.redis` is configured (a cache may keep answers there).
    pub(super) redis: bool,
    /// The price table (for `lowest_cost`).
    pub(super) prices: &'a crate::tenants::Prices,
}

/// The group written at `at` (`groups[3]`), or `None` after reporting why it cannot serve.
pub(super) fn group(
    at: &str,
    g: &GroupConfig,
    known: &Known<'_>,
    state: &State,
    problems: &mut Problems<'_>,
    warnings: &mut Vec<String>,
) -> Option<Group> {
    let name = g.name.as_str();
    if g.models.is_empty() {
        problems.push(
            format!("{at}.models"),
            format!("group '{name}' has no models"),
        );
        return None;
    }
    let mut pairs = Vec::new();
    let mut model_problem = false;
    for (mi, m) in g.models.iter().enumerate() {
        let path = format!("{at}.models[{mi}]");
        if m.name.as_str().is_empty() {
            problems.push(format!("{path}.name"), "model name is empty");
            model_problem = true;
            continue;
        }
        for (ti, tag) in m.tags.iter().enumerate() {
            if tag.is_empty() || tag.contains(',') || tag.contains(char::is_whitespace) {
                let why = format!("tag '{tag}' must be a word: not empty, no comma, no space");
                problems.push(format!("{path}.tags[{ti}]"), why);
                model_problem = true;
            }
        }
        let Some(provider) = known.providers.get(m.provider.as_str()) else {
            if !known.names.contains(m.provider.as_str()) {
                problems.push(
                    format!("{path}.provider"),
                    format!(
                        "provider '{}' is not defined in providers",
                        m.provider.as_str()
                    ),
                );
            }
            // A provider with its own error was reported there.
            model_problem = true;
            continue;
        };
        if provider.keys.is_empty() {
            let why = match (provider.disabled, &provider.empty_variables[..]) {
                (true, _) => "is disabled".to_string(),
                (false, []) => "has no usable key".to_string(),
                (false, empty) => format!("has no usable key ({} empty)", empty.join(", ")),
            };
            warnings.push(format!(
                "{path}: provider '{}' {why}; model '{}' skipped",
                provider.name(),
                m.name.as_str()
            ));
            continue;
        }
        let model: Arc<str> = Arc::from(m.name.as_str());
        add_pairs(&mut pairs, name, provider, &model, mi, m.weight.0, state);
    }
    if pairs.is_empty() {
        if !model_problem {
            problems.push(
                format!("{at}.models"),
                format!(
                    "group '{name}' has no usable model: every provider it names is disabled or has no usable key"
                ),
            );
        }
        return None;
    }
    share_siblings(&mut pairs);
    if g.strategy == crate::select::Strategy::LowestTpmRpm
        && pairs.iter().any(|p| p.limit.is_none())
    {
        warnings.push(format!(
            "{at}: lowest_tpm_rpm ranks keys by what is left of their rpm / tpm, and some of \
             its keys have none (they count as always free); set the providers' limits"
        ));
    }
    let cache = cache(at, g.cache.as_ref(), known.redis, problems)?;
    Some(Group {
        name: name.into(),
        strategy: g.strategy,
        model_count: g.models.len(),
        model_runs: model_runs(&pairs),
        pairs,
        state: state.groups.of(name),
        cache,
        model_tags: g.models.iter().map(|m| m.tags.clone()).collect(),
        model_prices: model_prices(at, g, known.prices, warnings),
        queue_timeout: g.queue_timeout.filter(|t| !t.is_zero()),
    })
}

/// The price of each model of the group at `at`; under `lowest_cost` an unpriced one is named in a
/// warning (it is picked only when no priced one can serve).
fn model_prices(
    at: &str,
    g: &GroupConfig,
    prices: &crate::tenants::Prices,
    warnings: &mut Vec<String>,
) -> Vec<Option<crate::tenants::Price>> {
    let mut out = Vec::with_capacity(g.models.len());
    for (mi, m) in g.models.iter().enumerate() {
        let price = prices.get(m.provider.as_str(), m.name.as_str());
        if price.is_none() && g.strategy == crate::select::Strategy::LowestCost {
            warnings.push(format!(
                "{at}.models[{mi}]: '{}/{}' has no price; lowest_cost picks it only when \
                 no priced model can serve (add it under prices:)",
                m.provider.as_str(),
                m.name.as_str()
            ));
        }
        out.push(price);
    }
    out
}

/// The cache of the group at `at` (`Some(None)` without one), or `None` after reporting why it
/// cannot be used.
fn cache(
    at: &str,
    cache: Option<&CacheConfig>,
    redis: bool,
    problems: &mut Problems<'_>,
) -> Option<Option<CacheConfig>> {
    let Some(cache) = cache else {
        return Some(None);
    };
    if cache.ttl.is_zero() {
        problems.push(
            format!("{at}.cache.ttl"),
            "must be more than 0 (leave `cache` out for no cache)",
        );
        return None;
    }
    if cache.backend.redis() && !redis {
        problems.push(
            format!("{at}.cache.backend"),
            "keeps answers in Redis, but there is no `state.redis`",
        );
        return None;
    }
    Some(Some(cache.clone()))
}

/// One pair per key of `provider` for model entry `mi` of group `group`.
fn add_pairs(
    pairs: &mut Vec<Pair>,
    group: &str,
    provider: &Arc<Provider>,
    model: &Arc<str>,
    mi: usize,
    weight: f64,
    state: &State,
) {
    for (ki, (key, name)) in provider.keys.iter().zip(&provider.key_names).enumerate() {
        let fingerprint = key.fingerprint();
        let stats = (state.usage).stats_for(provider.name(), &fingerprint, &name.masked, model);
        let in_group = (state.usage).in_group(group, provider.name(), &fingerprint, model);
        pairs.push(Pair {
            hot: stats.hot.clone(),
            model_index: mi,
            provider: provider.clone(),
            model: model.clone(),
            weight,
            key: key.clone(),
            credential: provider.credentials.get(ki).cloned().flatten(),
            limit: provider.limits.get(ki).cloned().flatten(),
            key_id: Arc::from(name.id.as_str()),
            key_label: name.masked.clone(),
            stats,
            in_group,
            siblings: Arc::from(Vec::new()),
        });
    }
}

/// Siblings: same provider and model (all keys of one model entry, or of two entries naming
/// the same upstream model). One shared list per (provider, model): a model with a thousand
/// keys costs a thousand entries, not a million.
fn share_siblings(pairs: &mut [Pair]) {
    let mut sets: HashMap<(*const Provider, Arc<str>), Vec<Arc<PairStats>>> = HashMap::new();
    for p in pairs.iter() {
        sets.entry((Arc::as_ptr(&p.provider), p.model.clone()))
            .or_default()
            .push(p.stats.clone());
    }
    let sets: HashMap<_, Arc<[Arc<PairStats>]>> =
        sets.into_iter().map(|(k, v)| (k, Arc::from(v))).collect();
    for pair in pairs {
        if let Some(set) = sets.get(&(Arc::as_ptr(&pair.provider), pair.model.clone())) {
            pair.siblings = set.clone();
        }
    }
}

/// Runs of consecutive pairs of one model entry.
fn model_runs(pairs: &[Pair]) -> Vec<std::ops::Range<usize>> {
    let mut runs: Vec<std::ops::Range<usize>> = Vec::new();
    for (i, pair) in pairs.iter().enumerate() {
        match runs.last_mut() {
            Some(run) if pairs[run.start].model_index == pair.model_index => run.end = i + 1,
            _ => runs.push(i..i + 1),
        }
    }
    runs
}
