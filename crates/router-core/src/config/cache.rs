//! A group's `cache:`: answers kept for a while and given again to the same request.

use super::de::duration;
use serde::Deserialize;
use std::time::Duration;

/// A group's response cache (opt in).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// How long an answer is kept, such as `1h`.
    #[serde(deserialize_with = "duration")]
    pub ttl: Duration,
    /// Where answers are kept (default `local`).
    #[serde(default)]
    pub backend: CacheBackend,
}

/// Where a group's cached answers are kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheBackend {
    /// In this replica's memory, within `state.cache_max_bytes`.
    #[default]
    Local,
    /// In Redis (`state.redis`), shared by every replica.
    Redis,
    /// Both: this replica's memory first, then Redis.
    Both,
}

impl CacheBackend {
    /// Whether answers are kept in this replica's memory.
    pub fn local(self) -> bool {
        matches!(self, Self::Local | Self::Both)
    }

    /// Whether answers are kept in Redis.
    pub fn redis(self) -> bool {
        matches!(self, Self::Redis | Self::Both)
    }
}
