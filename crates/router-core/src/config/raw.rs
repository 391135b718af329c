//! The configuration as written in the file: plain serde structs, unknown keys rejected.
//! [`crate::Snapshot`] is the compiled, validated runtime form.

use super::de::{duration, one_key, one_or_many, opt_duration, port, provider_keys};
pub use super::de::{EnvString, Weight};
pub use super::tenants::{
    BudgetConfig, ClientConfig, LimitsConfig, Outage, Period, PriceConfig, TeamConfig,
};
use crate::fields::UnknownFields;
use crate::providers::ProviderKind;
use crate::select::Strategy;
use crate::snapshot::LogFormat;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Port to listen on (all interfaces); `listen` wins when both are set. Default 8080.
    #[serde(default, deserialize_with = "port")]
    pub port: Option<u16>,
    /// Address to listen on, such as `"127.0.0.1:8080"`.
    #[serde(default)]
    pub listen: Option<EnvString>,
    /// The bearer key clients must send.
    #[serde(default, deserialize_with = "one_key")]
    pub api_key: Option<EnvString>,
    /// Several accepted client keys (in addition to `api_key`).
    #[serde(default, deserialize_with = "one_or_many")]
    pub api_keys: Vec<EnvString>,
    /// The key of the admin endpoints (`/admin/*`, `/metrics`, the dashboard's data). Without
    /// it, the client keys open them too.
    #[serde(default, deserialize_with = "one_key")]
    pub admin_key: Option<EnvString>,
    /// The persistent usage ledger (SQLite).
    #[serde(default)]
    pub ledger: LedgerConfig,
    /// Usage charged to a (key, model) pair each time it is picked.
    #[serde(default)]
    pub request_penalty: u64,
    /// Usage charged to a (key, model) pair each time its upstream call fails.
    #[serde(default)]
    pub error_penalty: u64,
    /// Server settings.
    #[serde(default)]
    pub server: ServerConfig,
    /// Where the state replicas share lives (read at start).
    #[serde(default)]
    pub state: super::StateConfig,
    /// Retries, cooldowns and the circuit breaker.
    #[serde(default)]
    pub resilience: ResilienceConfig,
    /// Traces sent to an OpenTelemetry collector (read at start).
    #[serde(default)]
    pub telemetry: super::TelemetryConfig,
    /// Groups: the names clients send as `model`.
    #[serde(default)]
    pub groups: Vec<GroupConfig>,
    /// Upstream providers.
    #[serde(default)]
    pub providers: Vec<ProviderConfig>,
    /// Named clients, each with its keys, allowed groups, budget and limits.
    #[serde(default)]
    pub clients: Vec<ClientConfig>,
    /// Teams: budgets and limits shared by their clients.
    #[serde(default)]
    pub teams: Vec<TeamConfig>,
    /// Prices per million tokens by upstream model (`gpt-4o`), or by provider and model
    /// (`openai/gpt-4o`), over the built-in table.
    #[serde(default)]
    pub prices: BTreeMap<String, PriceConfig>,
}

/// Server settings; every field has a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Largest accepted request body, in bytes (default 10 MiB).
    pub max_body_bytes: usize,
    /// Largest event (or line) of an upstream's stream, in bytes (default 4 MiB): an upstream
    /// that sends more without ending it fails the attempt.
    pub max_event_bytes: usize,
    /// Time allowed to open a connection to an upstream (default 10s).
    #[serde(deserialize_with = "duration")]
    pub connect_timeout: Duration,
    /// Time allowed from sending the request to the upstream's response headers, and for a
    /// stream its first event (default 300s: a non-streamed answer arrives only when complete).
    #[serde(deserialize_with = "duration")]
    pub first_byte_timeout: Duration,
    /// Longest gap allowed between two chunks of an upstream body (default 120s).
    #[serde(deserialize_with = "duration")]
    pub idle_timeout: Duration,
    /// Origins allowed by CORS; `"*"` allows any (default `["*"]`).
    pub cors_origins: Vec<EnvString>,
    /// Compress responses when the client accepts it (default true): complete bodies with
    /// brotli or gzip, streams with gzip only.
    pub compression: bool,
    /// Smallest non-streamed body worth compressing, in bytes (default 4096: below it, gzip
    /// costs more CPU than it saves in wire time on a 1 Gbit/s link; see docs/benchmarks.md).
    pub compression_min_bytes: usize,
    /// How long a shutdown waits for in-flight requests and streams (default 30s).
    #[serde(deserialize_with = "duration")]
    pub shutdown_timeout: Duration,
    /// Most client connections open at once, per listener (default: half of the file
    /// descriptors left after 64, as each may need an upstream connection too). At the limit
    /// the connection idle the longest is closed to make room; with none idle a new one is
    /// refused.
    pub max_connections: Option<usize>,
    /// Time a new client connection has to send its first request's headers (default 10s).
    #[serde(deserialize_with = "duration")]
    pub handshake_timeout: Duration,
    /// Time a client connection may stay open with no request in flight (default 60s).
    #[serde(deserialize_with = "duration")]
    pub keepalive_timeout: Duration,
    /// Time allowed to receive a whole request body (default 120s); past it, 408.
    #[serde(deserialize_with = "duration")]
    pub body_timeout: Duration,
    /// Longest gap allowed between two chunks of a request body (default 15s); past it, 408.
    #[serde(deserialize_with = "duration")]
    pub body_idle_timeout: Duration,
    /// A second address serving only the admin endpoints, `/metrics` and the dashboard (read
    /// at start). They stay on the main address too.
    pub admin_listen: Option<EnvString>,
    /// Log format when `--log-format` is not given: `text` (default) or `json` (read at start).
    pub log_format: LogFormat,
    /// Serve HTTPS (HTTP/2 by ALPN, and HTTP/1.1) on every listener instead of plain HTTP
    /// (read at start; the files themselves are read again whenever they change).
    pub tls: Option<TlsConfig>,
}

impl ProviderConfig {
    /// Its API kind: the `type` written, else `openai`.
    pub fn kind(&self) -> ProviderKind {
        self.kind.unwrap_or_default()
    }
}

/// The certificate of the router's own listeners.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain, PEM, the server's certificate first; relative paths are from the
    /// config file's folder.
    pub cert_file: EnvString,
    /// Its private key, PEM (PKCS #8, PKCS #1 or SEC1); relative as `cert_file`.
    pub key_file: EnvString,
}

/// The persistent usage ledger: counters per (provider, key, model) saved to SQLite off the
/// hot path, loaded back at start.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LedgerConfig {
    /// Keep the ledger (default true).
    pub enabled: bool,
    /// The SQLite file; relative paths are from the config file's folder (default
    /// `llm-router-usage.sqlite3` next to the config file). A router without a config file
    /// keeps usage in memory only.
    pub path: Option<EnvString>,
    /// How often counters are written (default 1s; a `kill -9` loses at most this much).
    #[serde(deserialize_with = "duration")]
    pub flush_interval: Duration,
    /// Also keep one row per request, refused ones too (time, request id, group, model asked,
    /// provider, model, key id, tokens, status, latency, time to first token, attempts,
    /// stream, error), kept for `retention` (default true: the dashboard's request log reads
    /// it).
    pub request_log: bool,
    /// How long request rows are kept (default 7 days).
    #[serde(deserialize_with = "duration")]
    pub retention: Duration,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            path: None,
            flush_interval: Duration::from_secs(1),
            request_log: true,
            retention: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 10 * 1024 * 1024,
            max_event_bytes: 4 * 1024 * 1024,
            connect_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(300),
            idle_timeout: Duration::from_secs(120),
            cors_origins: vec![EnvString::from("*")],
            compression: true,
            compression_min_bytes: 4096,
            shutdown_timeout: Duration::from_secs(30),
            max_connections: None,
            handshake_timeout: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(120),
            body_idle_timeout: Duration::from_secs(15),
            admin_listen: None,
            log_format: LogFormat::Text,
            tls: None,
        }
    }
}

/// Retries, cooldowns and the circuit breaker; every field has a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResilienceConfig {
    /// Most upstream attempts (distinct pairs) per request (default 3).
    pub max_attempts: usize,
    /// Overall deadline of a request: every attempt, and for a non-streamed answer its whole
    /// body (default 600s). A stream, once its first event reached the client, is not cut.
    #[serde(deserialize_with = "duration")]
    pub request_timeout: Duration,
    /// Base of the jittered backoff before retrying on the same provider (default 100ms).
    #[serde(deserialize_with = "duration")]
    pub retry_backoff: Duration,
    /// Cooldown of a key after a 429 without Retry-After (default 30s).
    #[serde(deserialize_with = "duration")]
    pub rate_limit_cooldown: Duration,
    /// Cooldown of a model on a provider after a 404, refused connection or DNS failure
    /// (default 10s).
    #[serde(deserialize_with = "duration")]
    pub model_cooldown: Duration,
    /// The circuit breaker of each (provider, key, model).
    pub breaker: BreakerConfig,
}

impl Default for ResilienceConfig {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            request_timeout: Duration::from_secs(600),
            retry_backoff: Duration::from_millis(100),
            rate_limit_cooldown: Duration::from_secs(30),
            model_cooldown: Duration::from_secs(10),
            breaker: BreakerConfig::default(),
        }
    }
}

/// When a pair's breaker opens, and for how long.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerConfig {
    /// Opens after this many failures in a row (default 5).
    pub consecutive_failures: u32,
    /// Or when at least this share of the calls in `window` failed (default 0.5)...
    pub failure_rate: f64,
    /// ...counting only once the window holds this many calls (default 10).
    pub min_requests: u32,
    /// The window over which the failure rate is measured (default 60s), counted in 32 slices.
    #[serde(deserialize_with = "duration")]
    pub window: Duration,
    /// How long it stays open before letting one probe through (default 30s).
    #[serde(deserialize_with = "duration")]
    pub open_for: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            failure_rate: 0.5,
            min_requests: 10,
            window: Duration::from_secs(60),
            open_for: Duration::from_secs(30),
        }
    }
}

/// Per-provider overrides of the server's upstream timeouts.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderTimeouts {
    /// Connect timeout.
    #[serde(default, deserialize_with = "opt_duration")]
    pub connect: Option<Duration>,
    /// Time to the response headers (and a stream's first event).
    #[serde(default, deserialize_with = "opt_duration")]
    pub first_byte: Option<Duration>,
    /// Longest gap between two body chunks.
    #[serde(default, deserialize_with = "opt_duration")]
    pub idle: Option<Duration>,
    /// Longest time for a whole non-streamed answer from this provider.
    #[serde(default, deserialize_with = "opt_duration")]
    pub total: Option<Duration>,
}

/// A group: a name clients ask for, served by one or more upstream models.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    /// The name clients send as `model`.
    pub name: EnvString,
    /// How pairs are picked (default `usage`).
    #[serde(default)]
    pub strategy: Strategy,
    /// The upstream models that can serve it.
    #[serde(default)]
    pub models: Vec<ModelConfig>,
    /// Answers kept and given again to the same request (default: none).
    #[serde(default)]
    pub cache: Option<super::CacheConfig>,
    /// How long a request may wait, when every pair is at its key's `rpm` / `tpm` limit or
    /// cooling down after a 429, for the soonest to be free again (default: no waiting; the
    /// request gets 429 with `Retry-After`).
    #[serde(default, deserialize_with = "opt_duration")]
    pub queue_timeout: Option<Duration>,
}

/// One upstream model of a group.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Selection weight (default 1): a pair's score is its usage times this; 0 means always preferred.
    #[serde(default)]
    pub weight: Weight,
    /// Name of a provider in `providers`.
    pub provider: EnvString,
    /// Model name sent upstream.
    pub name: EnvString,
    /// Tags a request may ask for (`x-llm-router-tags`, `metadata.tags`): only models carrying
    /// all of them serve it.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// An upstream provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Name models refer to.
    pub name: EnvString,
    /// Kept in the file but not used (`disabled: true`): its models are skipped, as for a
    /// provider without a usable key.
    #[serde(default)]
    pub disabled: bool,
    /// API kind (default `openai`): `openai` (any OpenAI-compatible API), `azure` (a model
    /// entry's `name` is the deployment), `anthropic`, `gemini`, or `mock` (in process, no key).
    /// See [`ProviderConfig::kind`].
    #[serde(default, rename = "type")]
    pub kind: Option<ProviderKind>,
    /// Base URL, such as `https://api.openai.com/v1`: where the API's paths start. Without one,
    /// a provider whose `type` is written `openai`, `anthropic` or `gemini` calls the official
    /// API; `azure` needs its resource's, and a provider without a `type` needs one too (it may
    /// be any OpenAI-compatible server). `mock` takes none.
    #[serde(default)]
    pub base_url: Option<EnvString>,
    /// One API key: a string, or `{key, rpm, tpm, disabled}` (or `{oauth, ...}`) as in
    /// `api_keys`.
    #[serde(default)]
    pub api_key: Option<ProviderKey>,
    /// API keys; usage is balanced over them. Each is a string, or `{key, rpm, tpm, disabled}`
    /// with limits of its own (overriding `limits`), or `{oauth: {...}, rpm, tpm, disabled}`:
    /// an OAuth 2.0 credential (see [`super::OAuthConfig`]).
    #[serde(default, deserialize_with = "provider_keys")]
    pub api_keys: Vec<ProviderKey>,
    /// The upstream limits of each of its keys (see [`KeyLimitsConfig`]).
    #[serde(default)]
    pub limits: KeyLimitsConfig,
    /// Extra headers sent with every upstream request.
    #[serde(default)]
    pub headers: BTreeMap<String, EnvString>,
    /// The HTTP proxy its calls go through: `http://[user:password@]host:port`, or `none` for
    /// none; absent, the environment's `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` and
    /// `NO_PROXY` decide (as curl reads them).
    #[serde(default)]
    pub proxy: Option<EnvString>,
    /// Extra root certificate(s), PEM, trusted for this provider's TLS.
    #[serde(default)]
    pub ca_file: Option<EnvString>,
    /// Models callable directly, without a group: as `provider/model`, and as the bare
    /// `model` when no group and no other provider uses that name.
    #[serde(default)]
    pub models: Vec<EnvString>,
    /// Timeouts overriding the server's for this provider.
    #[serde(default)]
    pub timeouts: ProviderTimeouts,
    /// `azure`: the `api-version` query parameter (default `2024-10-21`).
    #[serde(default)]
    pub api_version: Option<EnvString>,
    /// `anthropic`: the `anthropic-version` header (default `2023-06-01`).
    #[serde(default)]
    pub anthropic_version: Option<EnvString>,
    /// The completion limit sent when a request sets none (default 4096): by `anthropic`
    /// always (Anthropic requires one), by every type for a client whose budget or TPM limit
    /// reserved for the request, so the reservation bounds what it can cost.
    #[serde(default)]
    pub default_max_tokens: Option<u64>,
    /// `openai`, `azure`, `mock`: the field a translated request's completion limit goes in
    /// (default `max_tokens`; o-series and gpt-5 models want `max_completion_tokens`).
    #[serde(default)]
    pub max_tokens_field: MaxTokensField,
    /// What a request translated for this provider does with a field that neither its format
    /// nor the router knows: `drop` it and name it in `x-llm-router-dropped` (the default), or
    /// `refuse` it with a 400.
    #[serde(default)]
    pub unknown_fields: UnknownFields,
    /// `openai`, `azure`: how `/v1/responses` reaches this provider. `native` passes the
    /// Responses API through; `chat` translates it to chat completions. Default: `native` for
    /// `azure` and for OpenAI's own base URL (`api.openai.com`), `chat` for any other
    /// OpenAI-compatible server, since many only have chat completions.
    #[serde(default)]
    pub responses: Option<ResponsesMode>,
}

/// One of a provider's `api_keys`: written as the key alone, or as `{key, rpm, tpm, disabled}`,
/// or with `oauth:` in place of `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderKey {
    /// The key (empty for an OAuth credential).
    pub key: EnvString,
    /// An OAuth 2.0 credential in place of the key.
    pub oauth: Option<super::OAuthConfig>,
    /// Its requests per minute (overrides the provider's `limits.rpm`).
    pub rpm: Option<u64>,
    /// Its tokens per minute (overrides the provider's `limits.tpm`).
    pub tpm: Option<u64>,
    /// Kept in the file but not used (`disabled: true`).
    pub disabled: bool,
}

/// What the upstream allows each key of a provider, so the router never makes it answer 429:
/// over any 60 seconds, at most `rpm` requests and `tpm` tokens (a request counts its estimate
/// until it is settled to its real usage). A key at its limit is not picked. Each is off when
/// absent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyLimitsConfig {
    /// Requests per minute, per key.
    #[serde(default)]
    pub rpm: Option<u64>,
    /// Tokens per minute (prompt plus completion), per key.
    #[serde(default)]
    pub tpm: Option<u64>,
}

/// How a provider answers the Responses API (`/v1/responses`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponsesMode {
    /// It speaks the Responses API: requests pass through.
    Native,
    /// It only has chat completions: requests are translated.
    Chat,
}

/// Where an OpenAI-format request carries its completion limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaxTokensField {
    /// `max_tokens`, which every OpenAI-compatible API knows.
    #[default]
    MaxTokens,
    /// `max_completion_tokens`, which OpenAI's reasoning models require.
    MaxCompletionTokens,
}

impl MaxTokensField {
    /// The field name.
    pub fn name(self) -> &'static str {
        match self {
            Self::MaxTokens => "max_tokens",
            Self::MaxCompletionTokens => "max_completion_tokens",
        }
    }
}
