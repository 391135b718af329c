//! How each strategy picks among a group's usable pairs, once [`super::Group::pick`] has found
//! them; and `usage`'s running winner, which its scan offers every pair to.

use super::lock;
use crate::snapshot::{Group, Pair};
use crate::state::groups::Cursors;
use crate::state::limits::Room;
use serde::Deserialize;
use tokio::time::Instant;

/// How a group picks among its (model, key) pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// The lowest `usage × weight` (the default).
    #[default]
    Usage,
    /// Every usable pair in turn.
    RoundRobin,
    /// The first model while any of its keys is usable, then the next.
    Fallback,
    /// A model with probability proportional to its weight, then its least-used key.
    WeightedRandom,
    /// The fewest requests in flight (streams until they end); then the least used, then
    /// config order.
    LeastBusy,
    /// The cheapest for the request by the price table (see [`Expected`]); then the least
    /// used, then config order. Unpriced models come after every priced one.
    LowestCost,
    /// The lower recent latency (a peak EWMA times the requests in flight plus one) of two
    /// usable pairs drawn at random; then the least used. A pair never measured costs 0.
    LowestLatency,
    /// The most headroom against its key's upstream limits over the last minute: the larger
    /// share left of the tighter of its `rpm` and `tpm` (a key without limits counts as wholly
    /// free); then the least used, then config order.
    LowestTpmRpm,
}

/// The tokens a request is expected to take, for `lowest_cost`: its prompt by estimate and
/// its completion limit (as many as the prompt when it sets none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    /// Prompt tokens.
    pub prompt: u64,
    /// Completion tokens.
    pub completion: u64,
}

impl Strategy {
    /// Its name in the config.
    pub fn name(self) -> &'static str {
        match self {
            Self::Usage => "usage",
            Self::RoundRobin => "round_robin",
            Self::Fallback => "fallback",
            Self::WeightedRandom => "weighted_random",
            Self::LeastBusy => "least_busy",
            Self::LowestCost => "lowest_cost",
            Self::LowestLatency => "lowest_latency",
            Self::LowestTpmRpm => "lowest_tpm_rpm",
        }
    }
}

/// The least-used pair of `candidates` (raw usage, then config order).
fn least_used(pairs: &[Pair], candidates: impl Iterator<Item = usize>) -> Option<usize> {
    candidates.min_by_key(|&i| (pairs[i].stats.usage(), i))
}

/// The running winner of the `usage` strategy: the smallest (weighted, score, raw usage)
/// wins (`false` before `true`), the first in config order at a full tie, whatever the order
/// of the offers. Weight-0 pairs, "always preferred", rank ahead of every weighted pair even at
/// a tie. Plain fields rather than an `Option` of a tuple, so the scan over a large group keeps
/// them in registers.
pub(super) struct UsageBest {
    index: usize,
    weighted: bool,
    score: f64,
    usage: u64,
}

impl Default for UsageBest {
    fn default() -> Self {
        UsageBest {
            index: usize::MAX,
            weighted: true,
            score: f64::INFINITY,
            usage: u64::MAX,
        }
    }
}

impl UsageBest {
    /// Offers pair `i`, whose usage read `usage`.
    pub(super) fn offer(&mut self, pair: &Pair, i: usize, usage: u64) {
        let weighted = pair.weight > 0.0;
        // Through i64: one instruction, where u64 to f64 takes several; usage past i64::MAX
        // only ever comes from saturation.
        let score = usage.min(i64::MAX as u64) as i64 as f64 * pair.weight;
        let better = self.index == usize::MAX
            || (!weighted && self.weighted)
            || (weighted == self.weighted
                && (score < self.score
                    || (score == self.score
                        && (usage < self.usage || (usage == self.usage && i < self.index)))));
        if better {
            *self = UsageBest {
                index: i,
                weighted,
                score,
                usage,
            };
        }
    }

    pub(super) fn index(&self) -> Option<usize> {
        (self.index != usize::MAX).then_some(self.index)
    }
}

impl Group {
    /// The pair the strategy picks among `usable` (non-empty, in config order); `pinned`
    /// selects the round-robin scope.
    pub(super) fn choose(
        &self,
        usable: &[usize],
        pinned: Option<usize>,
        cursors: &mut Cursors,
        expected: Expected,
    ) -> Option<usize> {
        let pairs = &self.pairs;
        match self.strategy() {
            Strategy::LowestLatency => Some(self.two_choices(usable)),
            Strategy::LowestCost => {
                // Each model entry's cost once, not each pair's.
                let costs: Vec<u64> = (self.model_prices.iter())
                    .map(|price| {
                        price.map_or(u64::MAX, |p| {
                            (p.input.saturating_mul(expected.prompt))
                                .saturating_add(p.output.saturating_mul(expected.completion))
                        })
                    })
                    .collect();
                usable.iter().copied().min_by_key(|&i| {
                    let cost = costs.get(pairs[i].model_index).copied();
                    (cost.unwrap_or(u64::MAX), pairs[i].hot.get().usage(), i)
                })
            }
            Strategy::Usage => {
                let mut best = UsageBest::default();
                for &i in usable {
                    best.offer(&pairs[i], i, pairs[i].hot.get().usage());
                }
                best.index()
            }
            Strategy::RoundRobin => {
                // The next usable pair after the one this scope (the whole group, or one
                // pinned model) served last: even over any mix of pinned requests and retries.
                let last = cursors.last_served(pinned.map_or(0, |m| m + 1));
                let next = usable
                    .iter()
                    .copied()
                    .find(|&i| *last == usize::MAX || i > *last)
                    .unwrap_or(usable[0]);
                *last = next;
                Some(next)
            }
            Strategy::Fallback => {
                let first_model = pairs[usable[0]].model_index;
                least_used(
                    pairs,
                    usable
                        .iter()
                        .copied()
                        .filter(|&i| pairs[i].model_index == first_model),
                )
            }
            Strategy::LowestTpmRpm => {
                let now = Instant::now();
                // The most left first (shares are finite: no NaN), then the least used, then
                // config order.
                let mut best: Option<(f64, u64, usize)> = None;
                for &i in usable {
                    let share = match pairs[i].limit.as_ref().map(|l| l.room(now, 0)) {
                        Some(Room::Free(share)) => share,
                        Some(Room::Full(_)) => 0.0,
                        None => 1.0,
                    };
                    let usage = pairs[i].hot.get().usage();
                    let better =
                        best.is_none_or(|(s, u, _)| share > s || (share == s && usage < u));
                    if better {
                        best = Some((share, usage, i));
                    }
                }
                best.map(|(_, _, i)| i)
            }
            Strategy::LeastBusy => usable.iter().copied().min_by_key(|&i| {
                let stats = &pairs[i].stats;
                (stats.in_flight(), pairs[i].hot.get().usage(), i)
            }),
            Strategy::WeightedRandom => {
                let mut models: Vec<(usize, f64)> = Vec::new();
                for &i in usable {
                    if models.last().map(|m| m.0) != Some(pairs[i].model_index) {
                        models.push((pairs[i].model_index, pairs[i].weight));
                    }
                }
                let total: f64 = models.iter().map(|m| m.1).sum();
                let model = if total > 0.0 {
                    let mut r = fastrand::f64() * total;
                    let mut chosen = models[models.len() - 1].0;
                    for &(m, w) in &models {
                        if r < w {
                            chosen = m;
                            break;
                        }
                        r -= w;
                    }
                    chosen
                } else {
                    models[fastrand::usize(..models.len())].0
                };
                least_used(
                    pairs,
                    usable
                        .iter()
                        .copied()
                        .filter(|&i| pairs[i].model_index == model),
                )
            }
        }
    }

    /// `lowest_latency`: of two usable pairs drawn at random (power of two choices), the one
    /// with the lower latency times its requests in flight plus one; then the least used.
    fn two_choices(&self, usable: &[usize]) -> usize {
        let (a, b) = match usable.len() {
            1 => return usable[0],
            n => {
                let a = fastrand::usize(..n);
                let b = (a + 1 + fastrand::usize(..n - 1)) % n;
                (usable[a], usable[b])
            }
        };
        let now = Instant::now();
        let cost = |i: usize| {
            let pair = &self.pairs[i];
            let latency = lock(&pair.stats.health).latency.cost(now);
            let load = latency * (pair.stats.in_flight() as f64 + 1.0);
            (load, pair.hot.get().usage(), i)
        };
        let (ca, cb) = (cost(a), cost(b));
        if cb.partial_cmp(&ca) == Some(std::cmp::Ordering::Less) {
            b
        } else {
            a
        }
    }
}
