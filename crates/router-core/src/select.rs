//! Selection: the lowest `usage × weight` wins, exact under concurrency.

use crate::snapshot::{Group, Pair, Provider};
use crate::usage::{PairStats, TokenUsage};
use crate::Secret;
use std::sync::Arc;

/// A picked (provider, model, key) with its reservation held. Settle it with
/// [`Selection::succeed`], [`Selection::fail`] or [`Selection::release`]; dropping it unsettled
/// releases the reservation without charging anything (a cancelled request).
#[derive(Debug)]
pub struct Selection {
    provider: Arc<Provider>,
    model: Arc<str>,
    key: Secret,
    key_id: String,
    pair_index: usize,
    stats: Arc<PairStats>,
    reservation: u64,
    error_penalty: u64,
    settled: bool,
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
    /// The provider key to send upstream.
    pub fn key(&self) -> &Secret {
        &self.key
    }
    /// `provider#index` of the key, safe to show.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }
    /// Index of the pair within its group.
    pub fn pair_index(&self) -> usize {
        self.pair_index
    }

    /// The answer ended well: replace the reservation by the real usage.
    pub fn succeed(mut self, usage: TokenUsage) {
        self.stats.release(self.reservation);
        self.stats.record_tokens(usage);
        self.settled = true;
    }

    /// The upstream call failed: release the reservation, count an error, charge the error penalty.
    pub fn fail(mut self) {
        self.stats.release(self.reservation);
        self.stats.record_error(self.error_penalty);
        self.settled = true;
    }

    /// The call ended without usage and without the pair being at fault (a request the upstream
    /// rejected as malformed, or a cancelled one): release the reservation only.
    pub fn release(mut self) {
        self.stats.release(self.reservation);
        self.settled = true;
    }
}

impl Drop for Selection {
    fn drop(&mut self) {
        if !self.settled {
            self.stats.release(self.reservation);
        }
    }
}

impl Group {
    /// Picks the pair with the lowest `usage × weight` (ties: lower raw usage, then config order;
    /// weight-0 pairs, "always preferred", rank ahead of every weighted pair even at a tie),
    /// skipping the pair indexes in `exclude`, and reserves `estimate` tokens on it. Scoring and
    /// reserving happen under the group's lock, so simultaneous picks see each other.
    pub fn pick(
        &self,
        exclude: &[usize],
        estimate: u64,
        request_penalty: u64,
        error_penalty: u64,
    ) -> Option<Selection> {
        let _guard = self.select_lock.lock().unwrap_or_else(|p| p.into_inner());
        // (weighted, score, raw usage, index): the smallest wins.
        let mut best: Option<(bool, f64, u64, usize)> = None;
        for (i, pair) in self.pairs.iter().enumerate() {
            if exclude.contains(&i) {
                continue;
            }
            let usage = pair.stats.usage();
            let weighted = pair.weight > 0.0;
            let score = usage as f64 * pair.weight;
            let better = match best {
                None => true,
                Some((w, s, u, _)) => {
                    (!weighted && w) || (weighted == w && (score < s || (score == s && usage < u)))
                }
            };
            if better {
                best = Some((weighted, score, usage, i));
            }
        }
        let (_, _, _, index) = best?;
        let pair: &Pair = &self.pairs[index];
        pair.stats.begin(estimate, request_penalty);
        Some(Selection {
            provider: pair.provider.clone(),
            model: pair.model.clone(),
            key: pair.key.clone(),
            key_id: pair.key_id.clone(),
            pair_index: index,
            stats: pair.stats.clone(),
            reservation: estimate,
            error_penalty,
            settled: false,
        })
    }
}
