//! A provider as compiled: its kind, where to send, what to add, how to connect.

use super::compile::Problems;
use super::keys::{self, KeyName};
use super::target::Target;
use crate::config::{ProviderConfig, ResponsesMode, ServerConfig};
use crate::dialects::Endpoint;
use crate::fields::UnknownFields;
use crate::oauth::OAuthCredential;
use crate::providers::ProviderKind;
use crate::state::limits::KeyLimit;
use crate::state::State;
use crate::upstream::{read_ca_file, HttpClient, ProxyRoute};
use crate::Secret;
use http::{HeaderMap, HeaderName, HeaderValue};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// How a provider is reached.
#[derive(Clone)]
pub(crate) enum Transport {
    /// Over HTTP(S), through a pooled client.
    Http(Box<HttpClient>),
    /// In process (a kind that answers locally).
    Local,
}

/// A provider as compiled.
pub struct Provider {
    name: Arc<str>,
    kind: ProviderKind,
    base_url: String,
    headers: HeaderMap,
    api_version: String,
    anthropic_version: String,
    default_max_tokens: u64,
    max_tokens_field: &'static str,
    unknown_fields: UnknownFields,
    responses_native: bool,
    pub(crate) keys: Vec<Secret>,
    /// The OAuth credential of each of `keys` that is one.
    pub(crate) credentials: Vec<Option<Arc<OAuthCredential>>>,
    /// How each of `keys` is named everywhere (logs, metrics, admin JSON, ledger).
    pub(crate) key_names: Vec<KeyName>,
    /// The password of its `proxy:`, masked as its keys are.
    proxy_password: Option<Secret>,
    /// Written `disabled: true`: it has no keys.
    pub(crate) disabled: bool,
    /// The variables of its keys that expanded to nothing (`${OPENAI_API_KEY}`), for the
    /// warning of a provider left without a usable key.
    pub(crate) empty_variables: Vec<String>,
    /// Each key's upstream limits, in the order of `keys`.
    pub(crate) limits: Vec<Option<KeyLimit>>,
    first_byte_timeout: Duration,
    idle_timeout: Duration,
    total_timeout: Option<Duration>,
    max_event_bytes: usize,
    pub(crate) transport: Transport,
    /// Its `Host` header and the URLs built once.
    pub(crate) target: Target,
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
    /// Its name, shared (a request's [`crate::Served`] names it without a copy).
    pub fn shared_name(&self) -> &Arc<str> {
        &self.name
    }
    /// API kind.
    pub fn kind(&self) -> ProviderKind {
        self.kind
    }
    /// Base URL without a trailing slash (empty for `mock`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }
    /// URL a chat request for `model` goes to.
    pub fn chat_url(&self, model: &str) -> String {
        self.url(Endpoint::Chat, model)
            .unwrap_or_else(|| "mock://chat/completions".to_string())
    }
    /// Whether this provider answers requests for `endpoint` (chat-only kinds answer
    /// `/v1/completions` through chat).
    pub fn offers(&self, endpoint: Endpoint) -> bool {
        self.kind.room().operation(self, endpoint).is_some()
    }
    /// URL a request for `endpoint` and `model` goes to; `None` when this provider does not
    /// offer that endpoint (embeddings on Anthropic and the mock).
    pub fn url(&self, endpoint: Endpoint, model: &str) -> Option<String> {
        let kind = self.kind.room();
        let op = kind.operation(self, endpoint)?;
        Some(kind.url(self, op, model, false))
    }
    /// `api-version` sent to an `azure` provider.
    pub fn api_version(&self) -> &str {
        &self.api_version
    }
    /// `anthropic-version` sent to an `anthropic` provider.
    pub fn anthropic_version(&self) -> &str {
        &self.anthropic_version
    }
    /// The completion limit sent when a request sets none: to an `anthropic` provider always,
    /// to any for a request capped by its client's reservation.
    pub fn default_max_tokens(&self) -> u64 {
        self.default_max_tokens
    }
    /// The field an OpenAI-format request carries its completion limit in when the router
    /// writes it (a translated request, a capped one).
    pub fn max_tokens_field(&self) -> &'static str {
        self.max_tokens_field
    }
    /// What a request translated for it does with a field that neither side knows.
    pub fn unknown_fields(&self) -> UnknownFields {
        self.unknown_fields
    }
    /// Whether `/v1/responses` passes through to it (its `responses`, or the kind's default).
    pub fn responses_native(&self) -> bool {
        self.responses_native
    }
    /// Extra headers sent upstream.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }
    /// Its secrets: the keys, the extra header values long enough to be one (an upstream
    /// auth header set by hand) and its proxy's password, for [`crate::Redactor`].
    pub(crate) fn secrets(&self) -> impl Iterator<Item = Secret> + '_ {
        let headers = self
            .headers
            .values()
            .filter_map(|v| v.to_str().ok())
            .map(Secret::new);
        let proxy = self.proxy_password.iter().cloned();
        let oauth = (self.credentials.iter().flatten()).flat_map(|c| c.settings().secrets());
        (self.keys.iter().cloned())
            .chain(headers)
            .chain(proxy)
            .chain(oauth)
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
    /// Largest event of its streams (`server.max_event_bytes`).
    pub fn max_event_bytes(&self) -> usize {
        self.max_event_bytes
    }
}

/// The providers of a config by name; one with a problem is reported and left out.
pub(super) fn compile_all(
    providers: &[ProviderConfig],
    server: &ServerConfig,
    state: &State,
    problems: &mut Problems<'_>,
    warnings: &mut Vec<String>,
) -> HashMap<String, Arc<Provider>> {
    let mut compiled = HashMap::new();
    let mut seen: HashSet<&str> = HashSet::new();
    for (pi, p) in providers.iter().enumerate() {
        let name = p.name.as_str();
        if name.is_empty() {
            problems.push(format!("providers[{pi}].name"), "provider name is empty");
            continue;
        }
        if !seen.insert(name) {
            problems.push(
                format!("providers[{pi}].name"),
                format!("duplicate provider name '{name}'"),
            );
            continue;
        }
        if let Some(provider) = compile(pi, p, server, state, problems, warnings) {
            compiled.insert(name.to_string(), Arc::new(provider));
        }
    }
    compiled
}

/// One provider (`providers[pi]`), or `None` after reporting its problems.
fn compile(
    pi: usize,
    p: &ProviderConfig,
    server: &ServerConfig,
    state: &State,
    problems: &mut Problems<'_>,
    warnings: &mut Vec<String>,
) -> Option<Provider> {
    let name = p.name.as_str().to_string();
    let kind = p.kind();
    let local = kind.room().is_local();
    let base_url = if local {
        String::new()
    } else {
        super::base_url::compile(pi, p, problems)?
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
    let headers = headers(pi, p, problems, warnings);
    let responses_native = match (kind.room().speaks_responses(&base_url), p.responses) {
        (None, None) => false,
        (None, Some(_)) => {
            problems.push(
                format!("providers[{pi}].responses"),
                format!(
                    "a '{kind}' provider does not speak the Responses API; only 'openai' and 'azure' providers take this option"
                ),
            );
            false
        }
        (Some(default), mode) => mode.map_or(default, |m| m == ResponsesMode::Native),
    };
    let limits_ok = keys::limits_ok(&format!("providers[{pi}].limits"), &p.limits, problems);
    let written = if local && !p.disabled {
        let key = Secret::new("mock");
        vec![keys::Written {
            place: 0,
            key,
            limits: p.limits,
            oauth: None,
        }]
    } else {
        keys::keys(pi, p, problems, warnings)
    };
    if !limits_ok {
        return None;
    }
    let limits = (written.iter())
        .map(|w| keys::key_limit(&name, &w.key, &w.limits, state))
        .collect();
    let key_names = keys::key_names(&name, p, local, &written);
    let (transport, proxy_password) = transport(pi, p, local, server, state, problems)?;
    let (keys, credentials) = (written.into_iter().zip(&key_names))
        .map(|(w, key_name)| {
            let credential = match (w.oauth, &transport) {
                (Some(settings), Transport::Http(client)) => Some(Arc::new(OAuthCredential::new(
                    settings,
                    key_name.id.clone(),
                    (**client).clone(),
                    state,
                ))),
                _ => None,
            };
            (w.key, credential)
        })
        .unzip();
    Some(Provider {
        name: name.into(),
        kind,
        target: Target::new(&base_url),
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
        max_tokens_field: p.max_tokens_field.name(),
        unknown_fields: p.unknown_fields,
        responses_native,
        keys,
        credentials,
        key_names,
        proxy_password,
        disabled: p.disabled,
        empty_variables: keys::empty_variables(p),
        limits,
        first_byte_timeout: p.timeouts.first_byte.unwrap_or(server.first_byte_timeout),
        idle_timeout: p.timeouts.idle.unwrap_or(server.idle_timeout),
        total_timeout: p.timeouts.total,
        max_event_bytes: server.max_event_bytes,
        transport,
    })
}

/// How the provider written at `providers[pi]` is reached: in process, or by a pooled client
/// (its `ca_file`, connect timeout and `proxy`); and its proxy's password.
fn transport(
    pi: usize,
    p: &ProviderConfig,
    local: bool,
    server: &ServerConfig,
    state: &State,
    problems: &mut Problems<'_>,
) -> Option<(Transport, Option<Secret>)> {
    if local {
        return Some((Transport::Local, None));
    }
    let extra = match &p.ca_file {
        Some(f) => match read_ca_file(f.as_str()) {
            Ok(r) => Some(r),
            Err(e) => {
                problems.push(format!("providers[{pi}].ca_file"), e);
                return None;
            }
        },
        None => None,
    };
    let route = match ProxyRoute::from_config(p.proxy.as_ref().map(|u| u.as_str())) {
        Ok(route) => route,
        Err(e) => {
            // Never the URL itself: it may hold a password.
            problems.push(format!("providers[{pi}].proxy"), format!("the proxy {e}"));
            return None;
        }
    };
    let password = match &route {
        ProxyRoute::Via(proxy) => proxy.password.clone(),
        _ => None,
    };
    let connect = p.timeouts.connect.unwrap_or(server.connect_timeout);
    match state.clients.get(extra.as_ref(), connect, &route) {
        Ok(c) => Some((Transport::Http(Box::new(c)), password)),
        Err(e) => {
            problems.push(format!("providers[{pi}]"), e);
            None
        }
    }
}

/// The extra headers sent upstream; the ones the router sets itself are refused.
fn headers(
    pi: usize,
    p: &ProviderConfig,
    problems: &mut Problems<'_>,
    warnings: &mut Vec<String>,
) -> HeaderMap {
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
    headers
}
