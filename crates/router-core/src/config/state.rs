//! `state:`: where the state replicas share lives. Without it, state is the process's own
//! (and the SQLite ledger's).

use super::de::duration;
use super::EnvString;
use serde::Deserialize;
use std::time::Duration;

/// Where shared state lives (read at start).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// Redis (or Valkey), shared by every replica that names the same server and prefix.
    #[serde(default)]
    pub redis: Option<RedisConfig>,
    /// Size bound of the in-memory response cache, in bytes (default 256 MiB): the least
    /// used answers are evicted past it.
    #[serde(default = "default_cache_max_bytes")]
    pub cache_max_bytes: u64,
}

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            redis: None,
            cache_max_bytes: default_cache_max_bytes(),
        }
    }
}

fn default_cache_max_bytes() -> u64 {
    256 * 1024 * 1024
}

/// A Redis server for shared state.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS.
    pub url: EnvString,
    /// Prefix of every key the router writes (default `llm-router:`): replicas that share it
    /// share state.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// How often a replica sends what it counted and reads what the others did (default
    /// 200ms): how stale the shared view of usage and cooldowns may be.
    #[serde(default = "default_sync_interval", deserialize_with = "duration")]
    pub sync_interval: Duration,
    /// Longest wait for an answer from Redis before it counts as down (default 1s).
    #[serde(default = "default_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
    /// Root certificate(s), PEM, that a `rediss://` server's certificate must chain to,
    /// instead of the system's (a private CA).
    #[serde(default)]
    pub ca_file: Option<EnvString>,
}

fn default_prefix() -> String {
    "llm-router:".into()
}

fn default_sync_interval() -> Duration {
    Duration::from_millis(200)
}

fn default_timeout() -> Duration {
    Duration::from_secs(1)
}
