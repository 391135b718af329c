//! Runtime state outside the swapped config, carried over across reloads and keyed by stable
//! names: usage counters and health per (provider, key, model), what each provider key was sent
//! in the last minute, each group's selection state, and the upstream connection pools.

pub(crate) mod groups;
pub(crate) mod health;
pub(crate) mod hot;
pub(crate) mod latency;
pub(crate) mod limits;
pub(crate) mod outcomes;
pub(crate) mod usage;

use crate::upstream::ClientCache;

/// All of it, owned by the router; a config is compiled against it.
#[derive(Default)]
pub(crate) struct State {
    /// Counters and health of every pair ever configured.
    pub(crate) usage: usage::UsageLedger,
    /// What each provider key was sent in the last minute, for its `rpm` / `tpm`.
    pub(crate) limits: limits::KeyWindows,
    /// Selection state of every group ever configured.
    pub(crate) groups: groups::GroupStates,
    /// Upstream clients (connection pools) by TLS roots and connect timeout.
    pub(crate) clients: ClientCache,
    /// What each named client and team used, and their limiters.
    pub(crate) tenants: crate::tenants::Accounts,
    /// The link to the state other replicas share, if any.
    pub(crate) shared: std::sync::Arc<crate::shared::Link>,
    /// This replica's kept answers (groups with `cache:`).
    pub(crate) cache: crate::cache::LocalCache,
    /// The OAuth credentials' tokens, and where rotated refresh tokens are kept.
    pub(crate) oauth: std::sync::Arc<crate::oauth::Tokens>,
}
