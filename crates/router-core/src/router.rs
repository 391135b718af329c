//! The [`Router`]: the live config (one `ArcSwap<Snapshot>`), the runtime state that outlives
//! reloads (usage counters, health, selection state, upstream connection pools), and the
//! operations embedders call.

use crate::config::{Config, ConfigError, Source};
use crate::dialects::ClientRequest;
use crate::forward::{self, ChatResponse};
use crate::select::Selection;
use crate::snapshot::{compile, Snapshot};
use crate::state::State;
use crate::usage::UsageRecord;
use crate::RouterError;
use arc_swap::ArcSwap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Result of a successful reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadOutcome {
    /// The new config generation.
    pub generation: u64,
    /// Warnings found while compiling it (skipped keys or models).
    pub warnings: Vec<String>,
}

/// A router: pick, forward, account, reload. Cheap to share behind an `Arc`.
pub struct Router {
    current: ArcSwap<Snapshot>,
    path: Option<PathBuf>,
    state: State,
    /// Serializes reloads so generations are assigned in order.
    reload_lock: Mutex<()>,
    next_request_id: AtomicU64,
    /// Hash of the config file text last read (whether or not it could be used), so the
    /// watcher reloads only on a real change.
    file_hash: AtomicU64,
    reloads: Mutex<ReloadStats>,
}

/// How reloads went since start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadStats {
    /// Reloads that swapped a new config in.
    pub succeeded: u64,
    /// Reloads refused (the previous config kept serving).
    pub failed: u64,
    /// The last attempt: when (Unix seconds), and the error if it failed.
    pub last: Option<(u64, Result<u64, String>)>,
}

fn text_hash(text: &str) -> u64 {
    let mut h = DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("path", &self.path)
            .field("generation", &self.current.load().generation())
            .finish_non_exhaustive()
    }
}

impl Router {
    /// Loads a YAML or JSON file (by extension). [`Router::reload`] re-reads it.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let source = Source::read(path)?;
        let router = Self::build(Some(path.to_path_buf()), &source.parse()?, Some(&source))?;
        router
            .file_hash
            .store(text_hash(&source.text), Ordering::Relaxed);
        Ok(router)
    }

    /// Builds from config text held in memory (such as an embedded default).
    pub fn from_source(source: &Source) -> Result<Self, ConfigError> {
        Self::build(source.file.clone(), &source.parse()?, Some(source))
    }

    /// Builds from a config made in code.
    pub fn new(config: &Config) -> Result<Self, ConfigError> {
        Self::build(None, config, None)
    }

    fn build(
        path: Option<PathBuf>,
        config: &Config,
        source: Option<&Source>,
    ) -> Result<Self, ConfigError> {
        let state = State::default();
        let snapshot = compile(config, source, 1, &state)?;
        for w in snapshot.warnings() {
            tracing::warn!("{w}");
        }
        Ok(Self {
            current: ArcSwap::from_pointee(snapshot),
            path,
            state,
            reload_lock: Mutex::new(()),
            next_request_id: AtomicU64::new(1),
            file_hash: AtomicU64::new(0),
            reloads: Mutex::new(ReloadStats::default()),
        })
    }

    /// The config in force. Load it once per request and use that for the whole request.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// The file the config came from, if any.
    pub fn config_path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Re-reads the config file and swaps it in. On error the running config keeps serving.
    pub fn reload(&self) -> Result<ReloadOutcome, ConfigError> {
        // Errors never show a secret of the config in force (nor one that looks like a key).
        let result = self
            .reload_file()
            .map_err(|e| e.redacted(self.snapshot().redactor()));
        let mut stats = self.reloads.lock().unwrap_or_else(|p| p.into_inner());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        match &result {
            Ok(outcome) => {
                stats.succeeded += 1;
                stats.last = Some((now, Ok(outcome.generation)));
            }
            Err(e) => {
                stats.failed += 1;
                stats.last = Some((now, Err(e.to_string())));
            }
        }
        result
    }

    /// How reloads of the config file went since start.
    pub fn reload_stats(&self) -> ReloadStats {
        self.reloads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Adds counters saved by a persistent ledger (after a restart) to the live ones, so
    /// selection continues from where it was.
    pub fn restore_usage(&self, saved: &[UsageRecord]) {
        self.state.usage.restore(saved);
    }

    /// What every named client and team used (budget windows and spend), to be saved.
    pub fn tenant_records(&self) -> Vec<crate::tenants::AccountRecord> {
        self.state.tenants.records()
    }

    /// Puts saved client and team records back (at start, before serving).
    pub fn restore_tenants(&self, saved: &[crate::tenants::AccountRecord]) {
        self.state.tenants.restore(saved);
    }

    fn reload_file(&self) -> Result<ReloadOutcome, ConfigError> {
        let Some(path) = &self.path else {
            return Err(ConfigError::single(
                None,
                "this router was not loaded from a file; nothing to reload",
            ));
        };
        // Read, hash and swap under one lock, so concurrent reloads apply in file order.
        let guard = self.reload_lock.lock().unwrap_or_else(|p| p.into_inner());
        let source = Source::read(path)?;
        self.file_hash
            .store(text_hash(&source.text), Ordering::Relaxed);
        let config = source.parse()?;
        self.swap_locked(&guard, &config, Some(&source))
    }

    /// Whether the config file's text differs from what was last read from it. `false` when
    /// it cannot be read (mid-replace: the next file event brings the new one).
    pub(crate) fn config_file_changed(&self) -> bool {
        let Some(path) = &self.path else {
            return false;
        };
        match std::fs::read_to_string(path) {
            Ok(text) => text_hash(&text) != self.file_hash.load(Ordering::Relaxed),
            Err(_) => false,
        }
    }

    /// Swaps in a config made in code. On error the running config keeps serving.
    pub fn apply(&self, config: &Config) -> Result<ReloadOutcome, ConfigError> {
        self.swap_in(config, None)
    }

    fn swap_in(
        &self,
        config: &Config,
        source: Option<&Source>,
    ) -> Result<ReloadOutcome, ConfigError> {
        let guard = self.reload_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.swap_locked(&guard, config, source)
    }

    /// Compiles and swaps; the caller holds `reload_lock` (proof: the guard).
    fn swap_locked(
        &self,
        _held: &std::sync::MutexGuard<'_, ()>,
        config: &Config,
        source: Option<&Source>,
    ) -> Result<ReloadOutcome, ConfigError> {
        let generation = self.current.load().generation() + 1;
        let snapshot = compile(config, source, generation, &self.state)?;
        let warnings = snapshot.warnings().to_vec();
        for w in &warnings {
            tracing::warn!("{w}");
        }
        self.current.store(Arc::new(snapshot));
        Ok(ReloadOutcome {
            generation,
            warnings,
        })
    }

    /// Picks a pair of `group` and reserves `estimate` tokens on it, for embedders that send the
    /// request themselves. Settle the [`Selection`] when the call ends.
    pub fn pick(&self, group: &str, estimate: u64) -> Result<Selection, RouterError> {
        let snapshot = self.snapshot();
        let g = snapshot
            .group(group)
            .ok_or_else(|| RouterError::unknown_group(group))?;
        g.pick(&snapshot, &[], None, estimate).map_err(|e| match e {
            crate::Unavailable::RateLimited { retry_after } => RouterError::RateLimited {
                group: group.to_string(),
                retry_after,
                attempts: Vec::new(),
            },
            crate::Unavailable::NoPair => RouterError::UpstreamFailed {
                group: group.to_string(),
                attempts: Vec::new(),
                timeout: false,
            },
        })
    }

    /// Forwards a client's request on `snapshot` (load it once per request with
    /// [`Router::snapshot`], so one request sees one config): picks a pair of the group the
    /// request names, sends it (as it came to an upstream of the client's own format, else
    /// translated), fails over, and answers in the client's format, complete or streamed.
    /// Tokens are charged when the answer is complete or its stream ends.
    pub async fn forward(
        &self,
        snapshot: &Snapshot,
        request: ClientRequest<'_>,
    ) -> Result<ChatResponse, RouterError> {
        let id = self.next_request_id.fetch_add(1, Ordering::Relaxed);
        forward::forward(snapshot, request, id, &self.state).await
    }

    /// Where this replica's state is: its own, shared through Redis, or its own for now
    /// because Redis cannot be reached.
    pub fn shared_state(&self) -> crate::shared::SharedState {
        self.state.shared.state()
    }

    /// Replica runs sharing state through Redis, as counted at the last exchange (1 before
    /// any, and without `state.redis`).
    pub fn replicas(&self) -> u32 {
        self.state.shared.replicas()
    }

    /// Answers this replica keeps in memory for groups with a response cache (expired ones
    /// not swept yet included).
    pub fn cached_answers(&self) -> u64 {
        self.state.cache.entries()
    }

    pub(crate) fn shared_link(&self) -> &crate::shared::Link {
        &self.state.shared
    }

    /// Every pair's counters with the id replicas share them under.
    pub(crate) fn pair_stats(&self) -> Vec<(String, Arc<crate::usage::PairStats>)> {
        self.state.usage.pairs()
    }

    /// Keeps the refresh tokens OAuth credentials rotate in `vault` from now on, and reads
    /// them back from it (after a restart). Give it before the first request.
    pub fn keep_tokens_in(&self, vault: Arc<dyn crate::TokenVault>) {
        self.state.oauth.keep_in(vault);
    }

    /// Usage counters of every (provider, key, model) seen since start, across reloads.
    pub fn usage(&self) -> Vec<UsageRecord> {
        let snapshot = self.current.load();
        let ids = (snapshot.groups().iter())
            .flat_map(|g| g.pairs())
            .map(|p| (Arc::as_ptr(&p.stats), p.key_id()))
            .collect();
        self.state.usage.records(snapshot.generation(), &ids)
    }
}
