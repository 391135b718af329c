//! A picked pair and its settlement: the reservation replaced by the real usage, and the
//! pair's health told how the call went.

use crate::config::ResilienceConfig;
use crate::health::{Change, Failure};
use crate::snapshot::Provider;
use crate::state::limits::Sent;
use crate::tenants::Tab;
use crate::usage::{PairStats, TokenUsage};
use crate::Secret;
use std::sync::Arc;
use tokio::time::Instant;

/// A picked (provider, model, key) with its reservation held. Settle it with
/// [`Selection::succeed`], [`Selection::fail`], [`Selection::release`] or
/// [`Selection::withdraw`]; dropping it unsettled
/// releases the reservation without charging anything (a cancelled request).
#[derive(Debug)]
pub struct Selection {
    pub(super) provider: Arc<Provider>,
    pub(super) model: Arc<str>,
    pub(super) key: Secret,
    /// The key's OAuth credential, when it is one.
    pub(super) credential: Option<Arc<crate::oauth::OAuthCredential>>,
    /// Its key's id, shared with the pair (a pick copies no string).
    pub(super) key_id: Arc<str>,
    pub(super) pair_index: usize,
    pub(super) stats: Arc<PairStats>,
    pub(super) in_group: Arc<crate::usage::InGroup>,
    pub(super) siblings: Arc<[Arc<PairStats>]>,
    pub(super) reservation: u64,
    pub(super) request_penalty: u64,
    pub(super) error_penalty: u64,
    pub(super) generation: u64,
    pub(super) epoch: u64,
    pub(super) resilience: Arc<ResilienceConfig>,
    pub(super) settled: bool,
    /// The named client's tab, charged with the usage this call settles.
    pub(super) tab: Option<Arc<Tab>>,
    /// The group picks by latency: the call's is recorded.
    pub(super) measures_latency: bool,
    /// The request as counted against its key's `rpm` / `tpm`, if the key has limits: settled
    /// to the usage the upstream reports; without one (a failed, refused or cancelled call),
    /// the estimate stays counted, as the upstream may have counted it too.
    pub(super) sent: Option<Sent>,
}

impl Selection {
    /// The provider picked.
    pub fn provider(&self) -> &Arc<Provider> {
        &self.provider
    }
    /// The upstream model name.
    pub fn model(&self) -> &str {
        &self.model
    }
    /// The provider key to send upstream. For a key that is an OAuth credential this only
    /// stands for it (its counters are kept under it): send [`Selection::access_token`].
    pub fn key(&self) -> &Secret {
        &self.key
    }
    /// For a key that is an OAuth credential, the access token to send as `Authorization:
    /// Bearer` (obtained or renewed as the router does for its own calls), or why there is
    /// none; `None` for a static key.
    pub async fn access_token(&self) -> Option<Result<Secret, String>> {
        let credential = self.credential.as_ref()?;
        Some(credential.token().await.map_err(|fault| fault.message))
    }
    /// The key's OAuth credential, when it is one (its token is sent in place of the key).
    pub(crate) fn credential(&self) -> Option<&Arc<crate::oauth::OAuthCredential>> {
        self.credential.as_ref()
    }
    /// `provider#index` of the key, safe to show.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }
    /// The upstream model name and the key's id, shared with the pair.
    pub(crate) fn shared_names(&self) -> (&Arc<str>, &Arc<str>) {
        (&self.model, &self.key_id)
    }
    /// Index of the pair within its group.
    pub fn pair_index(&self) -> usize {
        self.pair_index
    }

    /// Charges this call's usage to `tab` as well, when it is settled.
    pub(crate) fn bill_to(&mut self, tab: Arc<Tab>) {
        self.tab = Some(tab);
    }

    /// Charges `usage` to the named client's tab, if any.
    fn bill(&self, usage: &TokenUsage) {
        if let Some(tab) = &self.tab {
            tab.charge(self.provider.name(), &self.model, usage);
        }
    }

    /// The call took `took` to answer (a stream: to its first event; a failed call counts as
    /// at least a second), for a `lowest_latency` group.
    pub(crate) fn observe_latency(&self, took: std::time::Duration, failed: bool) {
        if self.measures_latency {
            let took = if failed {
                took.max(crate::state::latency::FAILURE)
            } else {
                took
            };
            let mut health = self.stats.health.lock().unwrap_or_else(|p| p.into_inner());
            health.latency.observe(Instant::now(), took);
        }
    }

    /// The answer ended well: replace the reservation by the real usage; the pair is healthy.
    pub fn succeed(mut self, usage: TokenUsage) {
        self.bill(&usage);
        if let Some(sent) = self.sent.take() {
            sent.settle(usage.total_tokens);
        }
        // Tokens first, then the reservation: a concurrent pick never sees too little usage.
        self.stats.record_tokens(usage);
        (self.in_group.tokens).fetch_add(usage.total_tokens, std::sync::atomic::Ordering::Relaxed);
        self.stats.release(self.reservation);
        let (breaker, epoch) = (&self.resilience.breaker, self.epoch);
        let change = self.stats.with_health(self.generation, |h| {
            h.on_success(Instant::now(), breaker, epoch)
        });
        self.said(change);
        self.settled = true;
    }

    /// The upstream proved healthy before the call ended (a stream's first event arrived): the
    /// breaker closes now rather than when a long stream ends. Usage is still settled later.
    pub fn confirm_healthy(&self) {
        let (breaker, epoch) = (&self.resilience.breaker, self.epoch);
        let change = self.stats.with_health(self.generation, |h| {
            h.on_success(Instant::now(), breaker, epoch)
        });
        self.said(change);
    }

    /// Logs a change of the pair's state, once, as it happens.
    fn said(&self, change: Option<Change>) {
        let (provider, model, key) = (self.provider.name(), &*self.model, &self.key_id);
        match change {
            None => {}
            Some(Change::BreakerOpened { failures, open_for }) => tracing::warn!(
                provider = %provider, model = %model, key = %key, consecutive_failures = failures,
                "circuit breaker opened: the pair is not picked for {}, then one call probes it",
                humantime::format_duration(open_for)
            ),
            Some(Change::BreakerClosed) => {
                tracing::info!(provider = %provider, model = %model, key = %key, "circuit breaker closed: the pair serves again")
            }
            Some(Change::RateLimited { wait }) => tracing::info!(
                provider = %provider, model = %model, key = %key,
                "rate limited by the upstream (429): the pair rests for {}",
                humantime::format_duration(wait)
            ),
            Some(Change::KeyDisabled) => tracing::warn!(
                provider = %provider, model = %model, key = %key,
                "upstream key disabled until the config is reloaded: the upstream refused it (401/403)"
            ),
        }
    }

    /// Keeps what a failed call said as the pair's last error (shown to the operator).
    pub fn note_error(&self, outcome: &str) {
        self.stats.note_error(outcome);
    }

    /// The upstream call failed: release the reservation, count an error, charge the error
    /// penalty, and update the pair's health (cooldown, disabling or breaker) by `failure`.
    pub fn fail(self, failure: Failure) {
        self.fail_after(failure, None);
    }

    /// Like [`Selection::fail`], for a call that failed after the upstream had already
    /// reported usage (a stream broken after its usage chunk): those tokens are charged too.
    pub fn fail_after(mut self, failure: Failure, usage: Option<TokenUsage>) {
        if let Some(usage) = usage {
            self.bill(&usage);
            self.stats.record_tokens(usage);
            (self.in_group.tokens)
                .fetch_add(usage.total_tokens, std::sync::atomic::Ordering::Relaxed);
            if let Some(sent) = self.sent.take() {
                sent.settle(usage.total_tokens);
            }
        }
        // The penalty before the reservation goes: a concurrent pick never sees too little.
        self.stats.record_error(failure, self.error_penalty);
        self.stats.release(self.reservation);
        let now = Instant::now();
        let r = &self.resilience;
        let (epoch, generation) = (self.epoch, self.generation);
        let change = self.stats.with_health(generation, |h| {
            h.on_failure(
                failure,
                epoch,
                now,
                generation,
                &r.breaker,
                r.rate_limit_cooldown,
                r.model_cooldown,
            )
        });
        self.said(change);
        if failure == Failure::ModelUnavailable {
            for sibling in self.siblings.iter() {
                if !Arc::ptr_eq(sibling, &self.stats) {
                    sibling.with_health(generation, |h| h.model_down(now, r.model_cooldown));
                }
            }
        }
        self.settled = true;
    }

    /// The call ended without usage and without the pair being at fault (a request the upstream
    /// rejected as malformed, or a cancelled one): release the reservation only.
    pub fn release(mut self) {
        self.stats.release(self.reservation);
        let epoch = self.epoch;
        self.stats
            .with_health(self.generation, |h| h.on_neutral(epoch));
        self.settled = true;
    }

    /// Nothing was sent (the request cannot be said to this provider): as if the pair had not
    /// been picked, its request count and penalty undone too.
    pub fn withdraw(mut self) {
        if let Some(sent) = self.sent.take() {
            sent.forget();
        }
        self.stats.withdraw(self.request_penalty);
        crate::state::hot::sub(&self.in_group.calls, 1);
        self.release();
    }
}

impl Drop for Selection {
    fn drop(&mut self) {
        if !self.settled {
            self.stats.release(self.reservation);
            let epoch = self.epoch;
            self.stats
                .with_health(self.generation, |h| h.on_neutral(epoch));
        }
    }
}
