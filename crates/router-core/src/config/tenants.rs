//! The config of tenants as written: named clients, their teams, and prices per model.

use super::de::{one_key, one_or_many};
use super::EnvString;
use serde::Deserialize;

/// A named client: its keys, the groups it may use, its budget and limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// Shown in logs, metrics and usage; never the key.
    pub name: String,
    /// Its key: plain, `${VAR}`, or `sha256:<hex>` (what `llm-router key hash` prints).
    #[serde(default, deserialize_with = "one_key")]
    pub key: Option<EnvString>,
    /// More keys (for rotation), in addition to `key`.
    #[serde(default, deserialize_with = "one_or_many")]
    pub keys: Vec<EnvString>,
    /// The groups it may use (default: all).
    #[serde(default)]
    pub groups: Option<Vec<String>>,
    /// What it may spend per period.
    #[serde(default)]
    pub budget: Option<BudgetConfig>,
    /// Its rate limits.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// The day (UTC, `2027-01-01`) or the moment (RFC 3339) its keys stop working.
    #[serde(default)]
    pub expires: Option<String>,
    /// Its keys are refused (401) while this is true.
    #[serde(default)]
    pub disabled: bool,
    /// The team whose budget and limits it shares too.
    #[serde(default)]
    pub team: Option<String>,
    /// What its budget and limits do while the Redis of `state.redis` cannot be reached.
    #[serde(default)]
    pub outage: Outage,
}

/// A team: a budget and limits shared by its clients, on top of their own.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamConfig {
    /// Named by its clients' `team`.
    pub name: String,
    /// What its clients may spend together per period.
    #[serde(default)]
    pub budget: Option<BudgetConfig>,
    /// Limits on its clients together.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// What its budget and limits do while the Redis of `state.redis` cannot be reached.
    #[serde(default)]
    pub outage: Outage,
}

/// What a client's or a team's budget and limits do while the Redis that replicas share them
/// through cannot be reached (`state.redis`; without it they are this process's anyway).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outage {
    /// Each replica enforces its share: every cap (budget, `tpm`, `rpm`) divided by the
    /// replicas alive at the last exchange, on its own count.
    #[default]
    Share,
    /// Not enforced until Redis is back (what is used is still counted, and sent then).
    Open,
}

/// A budget: dollars, tokens (prompt plus completion), or both, per period.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    /// US dollars, priced from the price table.
    #[serde(default)]
    pub usd: Option<f64>,
    /// Tokens, prompt plus completion.
    #[serde(default)]
    pub tokens: Option<u64>,
    /// When it starts again (default `month`).
    #[serde(default)]
    pub period: Period,
}

/// When a budget starts again, at 00:00 UTC.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// Every day.
    Day,
    /// Every Monday.
    Week,
    /// The first of every month.
    #[default]
    Month,
    /// Never.
    Total,
}

/// Rate limits; each is off when absent.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Requests per minute: up to this many at once, then one more every 60 s / rpm.
    #[serde(default)]
    pub rpm: Option<u32>,
    /// Tokens per minute (prompt plus completion), per calendar minute: a request reserves
    /// its estimate when admitted and is settled to its real usage.
    #[serde(default)]
    pub tpm: Option<u64>,
    /// Requests in flight at once.
    #[serde(default)]
    pub parallel: Option<u32>,
}

/// Prices of one model in US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct PriceConfig {
    /// Prompt tokens (not read from or written to a cache).
    pub input: f64,
    /// Completion tokens (reasoning included).
    pub output: f64,
    /// Prompt tokens read from the provider's cache (default: `input`).
    #[serde(default)]
    pub cache_read: Option<f64>,
    /// Prompt tokens written to the provider's cache (default: `input`).
    #[serde(default)]
    pub cache_write: Option<f64>,
}
