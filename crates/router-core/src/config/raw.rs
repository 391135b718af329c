//! The configuration as written in the file: plain serde structs, unknown keys rejected.
//! [`crate::Snapshot`] is the compiled, validated runtime form.

use super::env;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// A string from the config with `${VAR}` / `${VAR:-default}` already expanded.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct EnvString {
    value: String,
    template: Option<String>,
}

impl EnvString {
    /// The expanded value.
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// The text as written, when it contained a variable (for warnings such as "`${OPENAI_API_KEY}`
    /// expands to empty").
    pub fn template(&self) -> Option<&str> {
        self.template.as_deref()
    }
}

impl fmt::Debug for EnvString {
    // Values may be secrets: show only the template or the length.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.template {
            Some(t) => write!(f, "EnvString({t:?})"),
            None => write!(f, "EnvString(<{} chars>)", self.value.chars().count()),
        }
    }
}

impl From<&str> for EnvString {
    fn from(value: &str) -> Self {
        Self {
            value: value.to_string(),
            template: None,
        }
    }
}

impl From<String> for EnvString {
    fn from(value: String) -> Self {
        Self {
            value,
            template: None,
        }
    }
}

impl<'de> Deserialize<'de> for EnvString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        let value =
            env::expand(&raw, |name| std::env::var(name).ok()).map_err(de::Error::custom)?;
        let template = raw.contains("${").then_some(raw);
        Ok(Self { value, template })
    }
}

/// A model's weight: a finite number >= 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weight(pub f64);

impl Default for Weight {
    fn default() -> Self {
        Self(1.0)
    }
}

impl<'de> Deserialize<'de> for Weight {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Weight;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number >= 0")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Weight, E> {
                Ok(Weight(v as f64))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Weight, E> {
                self.visit_f64(v as f64)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Weight, E> {
                if v.is_finite() && v >= 0.0 {
                    Ok(Weight(v))
                } else {
                    Err(E::custom(format!("weight must be a number >= 0, got {v}")))
                }
            }
        }
        d.deserialize_any(V)
    }
}

fn port<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    let v = i64::deserialize(d)?;
    if (1..=65535).contains(&v) {
        Ok(Some(v as u16))
    } else {
        Err(de::Error::custom(format!(
            "port must be between 1 and 65535, got {v}"
        )))
    }
}

/// Durations: `"30s"`, `"500ms"`, `"2m"`, or a number of seconds.
fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = Duration;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a duration such as \"30s\" or \"500ms\", or a number of seconds")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
            Ok(Duration::from_secs(v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
            u64::try_from(v)
                .map(Duration::from_secs)
                .map_err(|_| E::custom("a duration cannot be negative"))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
            Duration::try_from_secs_f64(v).map_err(|e| E::custom(format!("bad duration {v}: {e}")))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
            humantime::parse_duration(v)
                .map_err(|e| E::custom(format!("bad duration \"{v}\": {e}")))
        }
    }
    d.deserialize_any(V)
}

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
    #[serde(default)]
    pub api_key: Option<EnvString>,
    /// Several accepted client keys (in addition to `api_key`).
    #[serde(default)]
    pub api_keys: Vec<EnvString>,
    /// Usage charged to a (key, model) pair each time it is picked.
    #[serde(default)]
    pub request_penalty: u64,
    /// Usage charged to a (key, model) pair each time its upstream call fails.
    #[serde(default)]
    pub error_penalty: u64,
    /// Server settings.
    #[serde(default)]
    pub server: ServerConfig,
    /// Groups: the names clients send as `model`.
    #[serde(default)]
    pub groups: Vec<GroupConfig>,
    /// Upstream providers.
    #[serde(default)]
    pub providers: Vec<ProviderConfig>,
}

/// Server settings; every field has a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Largest accepted request body, in bytes (default 10 MiB).
    pub max_body_bytes: usize,
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
    pub cors_origins: Vec<String>,
    /// Compress responses with brotli or gzip when the client accepts it (default true).
    pub compression: bool,
    /// Smallest non-streamed body worth compressing, in bytes (default 1024).
    pub compression_min_bytes: usize,
    /// How long a shutdown waits for in-flight requests and streams (default 30s).
    #[serde(deserialize_with = "duration")]
    pub shutdown_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 10 * 1024 * 1024,
            connect_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(300),
            idle_timeout: Duration::from_secs(120),
            cors_origins: vec!["*".to_string()],
            compression: true,
            compression_min_bytes: 1024,
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

/// A group: a name clients ask for, served by one or more upstream models.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    /// The name clients send as `model`.
    pub name: EnvString,
    /// The upstream models that can serve it.
    #[serde(default)]
    pub models: Vec<ModelConfig>,
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
}

/// Kind of upstream API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderType {
    /// Any OpenAI-compatible API (the default).
    #[default]
    Openai,
    /// An in-process provider answering deterministically, with no network and no key.
    Mock,
}

/// An upstream provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Name models refer to.
    pub name: EnvString,
    /// API kind (default `openai`).
    #[serde(default, rename = "type")]
    pub kind: ProviderType,
    /// Base URL, such as `https://api.openai.com/v1` (required except for `mock`).
    #[serde(default)]
    pub base_url: Option<EnvString>,
    /// One API key.
    #[serde(default)]
    pub api_key: Option<EnvString>,
    /// API keys; usage is balanced over them.
    #[serde(default)]
    pub api_keys: Vec<EnvString>,
    /// Extra headers sent with every upstream request.
    #[serde(default)]
    pub headers: BTreeMap<String, EnvString>,
    /// Extra root certificate(s), PEM, trusted for this provider's TLS.
    #[serde(default)]
    pub ca_file: Option<EnvString>,
}
