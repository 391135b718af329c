//! The compiled, validated runtime form of a config: one `Arc<Snapshot>` is swapped per reload
//! and loaded once per request.

use crate::config::{
    Config, ConfigError, Problem, ProviderType, ResilienceConfig, ServerConfig, Source, Strategy,
};
use crate::upstream::{read_ca_file, ClientCache, HttpClient};
use crate::usage::{HotSlot, PairStats, UsageLedger};
use crate::Secret;
use http::{HeaderMap, HeaderName, HeaderValue};
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How a provider is reached.
#[derive(Clone)]
pub(crate) enum Transport {
    Http(Box<HttpClient>),
    Mock,
}

/// A provider as compiled: where to send, what to add, how to connect.
pub struct Provider {
    name: String,
    kind: ProviderType,
    base_url: String,
    headers: HeaderMap,
    api_version: String,
    anthropic_version: String,
    default_max_tokens: u64,
    max_tokens_field: crate::config::MaxTokensField,
    keys: Vec<Secret>,
    first_byte_timeout: Duration,
    idle_timeout: Duration,
    total_timeout: Option<Duration>,
    pub(crate) transport: Transport,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("base_url", &self.base_url)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl Provider {
    /// Name from the config.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// API kind.
    pub fn kind(&self) -> ProviderType {
        self.kind
    }
    /// Base URL without a trailing slash (empty for `mock`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }
    /// URL a chat request for `model` goes to.
    pub fn chat_url(&self, model: &str) -> String {
        self.url(crate::Endpoint::Chat, model)
            .unwrap_or_else(|| "mock://chat/completions".to_string())
    }

    /// URL a request for `endpoint` and `model` goes to; `None` when this provider does not
    /// offer that endpoint (embeddings on Anthropic and the mock). Chat-only providers take
    /// `/v1/completions` at their chat URL.
    pub fn url(&self, endpoint: crate::Endpoint, model: &str) -> Option<String> {
        match (self.kind, endpoint) {
            (ProviderType::Openai, e) => Some(format!("{}/{}", self.base_url, e.path())),
            (ProviderType::Azure, e) => Some(format!(
                "{}/openai/deployments/{}/{}?api-version={}",
                self.base_url,
                percent_encode_path(model),
                e.path(),
                self.api_version
            )),
            // Chat-only providers answer the prompt API through chat (see `providers::completions`).
            (ProviderType::Anthropic, crate::Endpoint::Chat | crate::Endpoint::Completions) => {
                Some(format!("{}/messages", self.base_url))
            }
            (ProviderType::Gemini, crate::Endpoint::Chat | crate::Endpoint::Completions) => {
                Some(format!(
                    "{}/models/{}:generateContent",
                    self.base_url,
                    percent_encode_path(model)
                ))
            }
            (ProviderType::Gemini, crate::Endpoint::Embeddings) => Some(format!(
                "{}/models/{}:batchEmbedContents",
                self.base_url,
                percent_encode_path(model)
            )),
            (ProviderType::Mock, crate::Endpoint::Chat | crate::Endpoint::Completions) => {
                Some("mock://chat/completions".to_string())
            }
            _ => None,
        }
    }
    /// `anthropic-version` sent to an `anthropic` provider.
    pub fn anthropic_version(&self) -> &str {
        &self.anthropic_version
    }
    /// `max_tokens` sent to an `anthropic` provider when the request has none.
    pub fn default_max_tokens(&self) -> u64 {
        self.default_max_tokens
    }
    /// The field a translated OpenAI-format request carries its completion limit in.
    pub fn max_tokens_field(&self) -> &'static str {
        self.max_tokens_field.name()
    }
    /// Extra headers sent upstream.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }
    /// Usable keys, in config order.
    pub fn keys(&self) -> &[Secret] {
        &self.keys
    }
    /// Time allowed to the response headers (and a stream's first event).
    pub fn first_byte_timeout(&self) -> Duration {
        self.first_byte_timeout
    }
    /// Longest gap allowed between two body chunks.
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }
    /// Longest time for a whole non-streamed answer, when set for this provider.
    pub fn total_timeout(&self) -> Option<Duration> {
        self.total_timeout
    }
}

/// One (upstream model, key) pair of a group.
#[derive(Debug)]
#[repr(C)]
pub struct Pair {
    // What selection reads of every pair comes first, together: its counters (in the
    // router's consecutive slots, see `usage::Hot`), weight and model.
    pub(crate) hot: HotSlot,
    pub(crate) weight: f64,
    pub(crate) model_index: usize,
    pub(crate) stats: Arc<PairStats>,
    pub(crate) provider: Arc<Provider>,
    pub(crate) model: Arc<str>,
    pub(crate) key: Secret,
    pub(crate) key_id: String,
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
    /// Current selection usage (tokens + penalties + reservations).
    pub fn usage(&self) -> u64 {
        self.stats.usage()
    }
}

/// A group: the name clients send as `model`, and its (model, key) pairs in config order.
#[derive(Debug)]
pub struct Group {
    name: String,
    strategy: Strategy,
    /// Models as configured (including skipped ones), for pinned `group$N` requests.
    model_count: usize,
    pub(crate) pairs: Vec<Pair>,
    /// The ranges of `pairs` that belong to one model entry (its keys), in order.
    pub(crate) model_runs: Vec<std::ops::Range<usize>>,
    pub(crate) select_lock: Mutex<()>,
    /// Round robin: the pair last served, per scope (0: the whole group; m + 1: pinned model m).
    pub(crate) last_served: Vec<AtomicUsize>,
}

impl Group {
    /// The group's name.
    pub fn name(&self) -> &str {
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
}

/// A validated config, ready to serve.
#[derive(Debug)]
pub struct Snapshot {
    generation: u64,
    listen: SocketAddr,
    client_keys: Vec<Secret>,
    admin_keys: Vec<Secret>,
    ledger: crate::config::LedgerConfig,
    request_penalty: u64,
    error_penalty: u64,
    server: ServerConfig,
    resilience: Arc<ResilienceConfig>,
    groups: Vec<Arc<Group>>,
    group_index: HashMap<String, usize>,
    warnings: Vec<String>,
}

impl Snapshot {
    /// Reload generation: 1 for the first config, +1 per successful reload.
    pub fn generation(&self) -> u64 {
        self.generation
    }
    /// Address to listen on.
    pub fn listen(&self) -> SocketAddr {
        self.listen
    }
    /// Accepted client keys; empty means no authentication.
    pub fn client_keys(&self) -> &[Secret] {
        &self.client_keys
    }
    /// Keys that open the admin endpoints: the `admin_key`, or without one the client keys.
    pub fn admin_keys(&self) -> &[Secret] {
        &self.admin_keys
    }
    /// Ledger settings.
    pub fn ledger(&self) -> &crate::config::LedgerConfig {
        &self.ledger
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
    pub fn server(&self) -> &ServerConfig {
        &self.server
    }
    /// Retries, cooldowns and breaker settings.
    pub fn resilience(&self) -> &Arc<ResilienceConfig> {
        &self.resilience
    }
    /// Groups in config order.
    pub fn groups(&self) -> &[Arc<Group>] {
        &self.groups
    }
    /// A group by name.
    pub fn group(&self, name: &str) -> Option<&Arc<Group>> {
        self.group_index.get(name).map(|&i| &self.groups[i])
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
                    p.model, p.weight, p.provider.name, p.key_id, p.key_label
                );
            }
        }
        out
    }
}

struct Problems<'a> {
    source: Option<&'a Source>,
    lines: Option<HashMap<String, usize>>,
    list: Vec<Problem>,
}

impl Problems<'_> {
    fn push(&mut self, path: String, message: impl Into<String>) {
        if self.lines.is_none() {
            self.lines = Some(self.source.map(Source::line_index).unwrap_or_default());
        }
        let line = self.lines.as_ref().and_then(|l| l.get(&path).copied());
        self.list.push(Problem {
            path,
            line,
            message: message.into(),
        });
    }
}

/// What a URL path segment keeps as it is: RFC 3986's unreserved characters.
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Escapes what may not stand in a URL path segment (a deployment name).
fn percent_encode_path(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, PATH_SEGMENT).to_string()
}

fn check_url(url: &str) -> Result<String, String> {
    let trimmed = url.trim_end_matches('/');
    let uri: http::Uri = trimmed
        .parse()
        .map_err(|e| format!("'{url}' is not a valid URL: {e}"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => return Err(format!("'{url}' must start with http:// or https://")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("'{url}' has no host"));
    }
    Ok(trimmed.to_string())
}

/// Compiles a parsed config against the runtime state (usage ledger, client cache).
pub(crate) fn compile(
    config: &Config,
    source: Option<&Source>,
    generation: u64,
    ledger: &UsageLedger,
    clients: &ClientCache,
) -> Result<Snapshot, ConfigError> {
    let mut problems = Problems {
        source,
        lines: None,
        list: Vec::new(),
    };
    let mut warnings = Vec::new();

    let listen = match (&config.listen, config.port) {
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
    };

    let mut client_keys = Vec::new();
    for (path, k) in config
        .api_key
        .iter()
        .map(|k| ("api_key".to_string(), k))
        .chain(
            config
                .api_keys
                .iter()
                .enumerate()
                .map(|(i, k)| (format!("api_keys[{i}]"), k)),
        )
    {
        if k.as_str().is_empty() {
            warnings.push(format!("{path}: client key is empty; skipped"));
        } else {
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
        Some(k) => vec![Secret::new(k.as_str())],
        None => client_keys.clone(),
    };
    let flush = config.ledger.flush_interval;
    if flush.is_zero() || flush > Duration::from_secs(1) {
        problems.push(
            "ledger.flush_interval".into(),
            "must be more than 0 and at most 1s (a crash may lose at most this much usage)",
        );
    }
    if let Some(a) = &config.server.admin_listen {
        if let Err(e) = a.as_str().parse::<SocketAddr>() {
            problems.push(
                "server.admin_listen".into(),
                format!(
                    "'{}' is not an address such as 127.0.0.1:9090: {e}",
                    a.as_str()
                ),
            );
        }
    }
    let server = config.server.clone();
    if server.max_body_bytes == 0 {
        problems.push("server.max_body_bytes".into(), "must be greater than 0");
    }
    let resilience = &config.resilience;
    if resilience.max_attempts == 0 {
        problems.push("resilience.max_attempts".into(), "must be at least 1");
    }
    if !(resilience.breaker.failure_rate > 0.0 && resilience.breaker.failure_rate <= 1.0) {
        problems.push(
            "resilience.breaker.failure_rate".into(),
            "must be a share in (0, 1]",
        );
    }
    let positive = [
        ("server.connect_timeout", server.connect_timeout),
        ("server.first_byte_timeout", server.first_byte_timeout),
        ("server.idle_timeout", server.idle_timeout),
        ("resilience.request_timeout", resilience.request_timeout),
    ];
    for (path, d) in positive {
        if d.is_zero() {
            problems.push(path.into(), "must be greater than 0");
        }
    }
    let bounded = [
        (
            "resilience.rate_limit_cooldown",
            resilience.rate_limit_cooldown,
            crate::health::MAX_COOLDOWN,
        ),
        (
            "resilience.model_cooldown",
            resilience.model_cooldown,
            crate::health::MAX_COOLDOWN,
        ),
        (
            "resilience.breaker.open_for",
            resilience.breaker.open_for,
            crate::health::MAX_COOLDOWN,
        ),
        (
            "resilience.breaker.window",
            resilience.breaker.window,
            crate::health::MAX_COOLDOWN,
        ),
        (
            "resilience.retry_backoff",
            resilience.retry_backoff,
            Duration::from_secs(60),
        ),
    ];
    for (path, d, max) in bounded {
        if d > max {
            problems.push(
                path.into(),
                format!("must be at most {}", humantime::format_duration(max)),
            );
        }
    }
    if resilience.breaker.consecutive_failures == 0 {
        problems.push(
            "resilience.breaker.consecutive_failures".into(),
            "must be at least 1",
        );
    }

    let mut providers: HashMap<String, Arc<Provider>> = HashMap::new();
    let mut seen_providers: HashSet<&str> = HashSet::new();
    for (pi, p) in config.providers.iter().enumerate() {
        let name = p.name.as_str().to_string();
        if name.is_empty() {
            problems.push(format!("providers[{pi}].name"), "provider name is empty");
            continue;
        }
        if !seen_providers.insert(p.name.as_str()) {
            problems.push(
                format!("providers[{pi}].name"),
                format!("duplicate provider name '{name}'"),
            );
            continue;
        }
        let base_url = match (p.kind, &p.base_url) {
            (ProviderType::Mock, _) => String::new(),
            (_, None) => {
                problems.push(
                    format!("providers[{pi}]"),
                    format!("provider '{name}' needs a base_url"),
                );
                continue;
            }
            (_, Some(url)) => match check_url(url.as_str()) {
                Ok(u) => u,
                Err(e) => {
                    problems.push(format!("providers[{pi}].base_url"), e);
                    continue;
                }
            },
        };
        let t = &p.timeouts;
        for (what, d) in [
            ("connect", t.connect),
            ("first_byte", t.first_byte),
            ("idle", t.idle),
            ("total", t.total),
        ] {
            if d.is_some_and(|d| d.is_zero()) {
                problems.push(
                    format!("providers[{pi}].timeouts.{what}"),
                    "must be greater than 0",
                );
            }
        }
        let mut headers = HeaderMap::new();
        for (hname, hvalue) in &p.headers {
            let path = format!("providers[{pi}].headers.{hname}");
            match (
                HeaderName::from_bytes(hname.as_bytes()),
                HeaderValue::from_str(hvalue.as_str()),
            ) {
                (Ok(_), Ok(v)) if v.is_empty() => {
                    warnings.push(format!("{path}: value is empty; header not sent"));
                }
                (Ok(n), Ok(v)) => {
                    if matches!(
                        n.as_str(),
                        "host" | "content-length" | "transfer-encoding" | "connection"
                    ) {
                        problems.push(path, format!("header '{n}' is set by the router"));
                    } else {
                        headers.insert(n, v);
                    }
                }
                (Err(_), _) => problems.push(path, format!("'{hname}' is not a valid header name")),
                (_, Err(_)) => problems.push(path, "header value has invalid characters"),
            }
        }
        let mut keys = Vec::new();
        if p.kind == ProviderType::Mock {
            keys.push(Secret::new("mock"));
        } else {
            for (path, k) in p
                .api_key
                .iter()
                .map(|k| (format!("providers[{pi}].api_key"), k))
                .chain(
                    p.api_keys
                        .iter()
                        .enumerate()
                        .map(|(i, k)| (format!("providers[{pi}].api_keys[{i}]"), k)),
                )
            {
                if k.as_str().is_empty() {
                    let what = k.template().unwrap_or("the key");
                    warnings.push(format!("{path}: {what} is empty; key skipped"));
                } else {
                    keys.push(Secret::new(k.as_str()));
                }
            }
        }
        let transport = match p.kind {
            ProviderType::Mock => Transport::Mock,
            ProviderType::Openai
            | ProviderType::Azure
            | ProviderType::Anthropic
            | ProviderType::Gemini => {
                let extra = match &p.ca_file {
                    Some(f) => match read_ca_file(f.as_str()) {
                        Ok(r) => Some(r),
                        Err(e) => {
                            problems.push(format!("providers[{pi}].ca_file"), e);
                            continue;
                        }
                    },
                    None => None,
                };
                let connect = p.timeouts.connect.unwrap_or(server.connect_timeout);
                match clients.get(extra.as_ref(), connect) {
                    Ok(c) => Transport::Http(Box::new(c)),
                    Err(e) => {
                        problems.push(format!("providers[{pi}]"), e);
                        continue;
                    }
                }
            }
        };
        providers.insert(
            name.clone(),
            Arc::new(Provider {
                name,
                kind: p.kind,
                base_url,
                headers,
                api_version: p
                    .api_version
                    .as_ref()
                    .map_or("2024-10-21", |v| v.as_str())
                    .to_string(),
                anthropic_version: p
                    .anthropic_version
                    .as_ref()
                    .map_or("2023-06-01", |v| v.as_str())
                    .to_string(),
                default_max_tokens: p.default_max_tokens.unwrap_or(4096),
                max_tokens_field: p.max_tokens_field,
                keys,
                first_byte_timeout: p.timeouts.first_byte.unwrap_or(server.first_byte_timeout),
                idle_timeout: p.timeouts.idle.unwrap_or(server.idle_timeout),
                total_timeout: p.timeouts.total,
                transport,
            }),
        );
    }
    let provider_names: HashSet<&str> = config.providers.iter().map(|p| p.name.as_str()).collect();

    let mut groups = Vec::new();
    let mut group_index = HashMap::new();
    let mut seen_groups: HashSet<&str> = HashSet::new();
    if config.groups.is_empty() {
        problems.push("groups".into(), "no groups defined");
    }
    for (gi, g) in config.groups.iter().enumerate() {
        let name = g.name.as_str().to_string();
        if name.is_empty() {
            problems.push(format!("groups[{gi}].name"), "group name is empty");
            continue;
        }
        if !seen_groups.insert(g.name.as_str()) {
            problems.push(
                format!("groups[{gi}].name"),
                format!("duplicate group name '{name}'"),
            );
            continue;
        }
        if g.models.is_empty() {
            problems.push(
                format!("groups[{gi}].models"),
                format!("group '{name}' has no models"),
            );
            continue;
        }
        let mut pairs = Vec::new();
        let mut model_problem = false;
        for (mi, m) in g.models.iter().enumerate() {
            let path = format!("groups[{gi}].models[{mi}]");
            if m.name.as_str().is_empty() {
                problems.push(format!("{path}.name"), "model name is empty");
                model_problem = true;
                continue;
            }
            let Some(provider) = providers.get(m.provider.as_str()) else {
                if !provider_names.contains(m.provider.as_str()) {
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
                warnings.push(format!(
                    "{path}: provider '{}' has no usable key; model '{}' skipped",
                    provider.name,
                    m.name.as_str()
                ));
                continue;
            }
            let model: Arc<str> = Arc::from(m.name.as_str());
            for (ki, key) in provider.keys.iter().enumerate() {
                let key_label = match provider.kind {
                    ProviderType::Mock => "mock".to_string(),
                    _ => key.masked(),
                };
                let stats =
                    ledger.stats_for(&provider.name, &key.fingerprint(), &key_label, &model);
                pairs.push(Pair {
                    hot: stats.hot.clone(),
                    model_index: mi,
                    provider: provider.clone(),
                    model: model.clone(),
                    weight: m.weight.0,
                    key: key.clone(),
                    key_id: format!("{}#{ki}", provider.name),
                    key_label,
                    stats,
                    siblings: Arc::from(Vec::new()),
                });
            }
        }
        if pairs.is_empty() {
            if !model_problem {
                problems.push(
                    format!("groups[{gi}].models"),
                    format!("group '{name}' has no usable model: every provider it names has no usable key"),
                );
            }
            continue;
        }
        // Siblings: same provider and model (all keys of one model entry, or of two entries
        // naming the same upstream model).
        // One shared list per (provider, model): a model with a thousand keys costs a
        // thousand entries, not a million.
        let mut sibling_sets: HashMap<(*const Provider, Arc<str>), Vec<Arc<PairStats>>> =
            HashMap::new();
        for p in &pairs {
            sibling_sets
                .entry((Arc::as_ptr(&p.provider), p.model.clone()))
                .or_default()
                .push(p.stats.clone());
        }
        let sibling_sets: HashMap<_, Arc<[Arc<PairStats>]>> = sibling_sets
            .into_iter()
            .map(|(k, v)| (k, Arc::from(v)))
            .collect();
        for pair in &mut pairs {
            if let Some(set) = sibling_sets.get(&(Arc::as_ptr(&pair.provider), pair.model.clone()))
            {
                pair.siblings = set.clone();
            }
        }
        // Runs of consecutive pairs of one model entry.
        let mut model_runs: Vec<std::ops::Range<usize>> = Vec::new();
        for (i, pair) in pairs.iter().enumerate() {
            match model_runs.last_mut() {
                Some(run) if pairs[run.start].model_index == pair.model_index => run.end = i + 1,
                _ => model_runs.push(i..i + 1),
            }
        }
        group_index.insert(name.clone(), groups.len());
        groups.push(Arc::new(Group {
            name,
            strategy: g.strategy,
            model_count: g.models.len(),
            pairs,
            model_runs,
            select_lock: Mutex::new(()),
            last_served: (0..=g.models.len())
                .map(|_| AtomicUsize::new(usize::MAX))
                .collect(),
        }));
    }

    if !problems.list.is_empty() {
        return Err(ConfigError {
            file: source.and_then(|s| s.file.clone()),
            problems: problems.list,
        });
    }
    Ok(Snapshot {
        generation,
        listen,
        client_keys,
        admin_keys,
        ledger: config.ledger.clone(),
        request_penalty: config.request_penalty,
        error_penalty: config.error_penalty,
        server,
        resilience: Arc::new(config.resilience.clone()),
        groups,
        group_index,
        warnings,
    })
}
