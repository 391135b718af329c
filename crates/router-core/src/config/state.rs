//! `state:`: where the state replicas share lives. Without it, state is the process's own
//! (and the SQLite ledger's).

use super::de::duration;
use super::EnvString;
use serde::Deserialize;
use std::time::Duration;

/// Where shared state lives (read at start).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// Redis (or Valkey), shared by every replica that names the same server and prefix.
    #[serde(default)]
    pub redis: Option<RedisConfig>,
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
