//! State the replicas of a router share through Redis (`state.redis`): each pair's usage, so
//! every replica's selection balances over what all of them sent, and upstream keys'
//! cooldowns and breaker trips, so a 429 one replica saw rests the key for all.
//!
//! Nothing here is on a request's path. A task ([`run`]) sends what this replica counted and
//! reads what the others did every `sync_interval`, in one script call (`sync.rs`). When Redis
//! cannot be reached the replica goes on with its own state (one warning), keeps counting,
//! and sends what it counted when Redis is back; a Redis that lost its data (restarted empty)
//! is noticed by its epoch key and refilled by every replica, so the shared counters come back
//! to the exact sum of what the replicas counted.

pub(crate) mod budgets;
pub(crate) mod cache;
pub(crate) mod limits;
mod sync;
pub(crate) mod tokens;

use crate::Router;
use arc_swap::ArcSwapOption;
use std::future::Future;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

/// Now, in Unix milliseconds (the scripts' clock: the replicas' own, kept by NTP).
pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Where a replica's state is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedState {
    /// Its own: no `state.redis` configured.
    Local = 0,
    /// Shared through Redis.
    Shared = 1,
    /// Redis is configured but cannot be reached: the replica's own until it is back.
    Degraded = 2,
}

impl SharedState {
    /// The state a [`Link`] keeps as `code` (its discriminant).
    fn from_code(code: u8) -> Self {
        match code {
            1 => Self::Shared,
            2 => Self::Degraded,
            _ => Self::Local,
        }
    }

    /// `local`, `shared` or `degraded`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Shared => "shared",
            Self::Degraded => "degraded",
        }
    }
}

/// The link to Redis as the rest of the router sees it: its state, and while Redis answers,
/// the connection requests may use.
#[derive(Debug, Default)]
pub(crate) struct Link {
    state: AtomicU8,
    handle: ArcSwapOption<Handle>,
    /// What requests used and gave back, for the next exchange.
    pub(crate) settlements: Arc<budgets::Settlements>,
    /// Replica runs alive at the last exchange.
    replicas: std::sync::atomic::AtomicU32,
}

/// What a request needs to ask Redis something.
#[derive(Clone)]
pub(crate) struct Handle {
    connection: redis::aio::ConnectionManager,
    prefix: String,
    timeout: Duration,
    /// This replica run's id.
    run: String,
    settlements: Arc<budgets::Settlements>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl Link {
    /// Replica runs alive at the last exchange (1 before any).
    pub(crate) fn replicas(&self) -> u32 {
        self.replicas.load(Relaxed).max(1)
    }

    fn set_replicas(&self, n: u32) {
        self.replicas.store(n, Relaxed);
    }

    /// The connection to ask Redis with, while it answers.
    pub(crate) fn handle(&self) -> Option<Arc<Handle>> {
        self.handle.load_full()
    }

    fn set_handle(&self, handle: Option<Handle>) {
        self.handle.store(handle.map(Arc::new));
    }

    pub(crate) fn state(&self) -> SharedState {
        SharedState::from_code(self.state.load(Relaxed))
    }

    /// Sets the state; returns the one before.
    fn set(&self, state: SharedState) -> SharedState {
        SharedState::from_code(self.state.swap(state as u8, Relaxed))
    }
}

/// Keeps this replica's state in step with the others' through `state.redis` until `stop`
/// resolves, then sends what is left to send; returns at once when no Redis is configured.
/// Start it after usage was restored from the ledger, beside the server.
pub async fn run(router: Arc<Router>, stop: impl Future<Output = ()>) {
    let Some(settings) = router.snapshot().shared().cloned() else {
        return;
    };
    match sync::Syncer::new(router.clone(), settings) {
        Ok(syncer) => syncer.run(stop).await,
        // Checked when the config was compiled; a URL the client refuses now is a bug.
        Err(e) => tracing::error!("state.redis: {e}; state stays local"),
    }
}
