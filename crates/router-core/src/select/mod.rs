//! Selection: which (model, key) pair of a group serves a request, by the group's strategy,
//! among the pairs that are healthy; exact under concurrency. [`Selection`] is the pair picked,
//! settled when its call ends.

use crate::health::Availability;
use crate::snapshot::{Group, Pair, Snapshot};
use crate::state::groups::Cursors;
use serde::Deserialize;
use std::sync::MutexGuard;
use std::time::Duration;
use tokio::time::Instant;

mod selection;

pub use selection::Selection;

fn lock<T>(m: &std::sync::Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

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
        }
    }
}

/// Why no pair could be picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// Every remaining pair is cooling down after a 429; the first is usable again after this.
    RateLimited {
        /// Time until the first pair's cooldown ends.
        retry_after: Duration,
    },
    /// No pair is left: all were tried by this request or are disabled after 401/403.
    NoPair,
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
struct UsageBest {
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
    fn offer(&mut self, pair: &Pair, i: usize, usage: u64) {
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

    fn index(&self) -> Option<usize> {
        (self.index != usize::MAX).then_some(self.index)
    }
}

impl Group {
    /// The pair the strategy picks among `usable` (non-empty, in config order); `pinned`
    /// selects the round-robin scope.
    fn choose(
        &self,
        usable: &[usize],
        pinned: Option<usize>,
        cursors: &mut Cursors,
        expected: Expected,
    ) -> Option<usize> {
        let pairs = &self.pairs;
        match self.strategy() {
            Strategy::LowestLatency => Some(self.two_choices(usable)),
            Strategy::LowestCost => usable.iter().copied().min_by_key(|&i| {
                let cost = self.model_prices[pairs[i].model_index].map_or(u64::MAX, |p| {
                    (p.input.saturating_mul(expected.prompt))
                        .saturating_add(p.output.saturating_mul(expected.completion))
                });
                (cost, pairs[i].hot.get().usage(), i)
            }),
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

    /// Whether some pair can be picked as a first choice: not disabled, and not cooling down
    /// (after a 429, a 404 or an unreachable host) nor behind an open breaker.
    pub fn has_usable_pair(&self, snapshot: &Snapshot) -> bool {
        let now = Instant::now();
        self.pairs.iter().any(|pair| {
            pair.hot.get().clean_epoch().is_some()
                || matches!(
                    lock(&pair.stats.health).availability(now, snapshot.generation()),
                    Availability::Usable
                )
        })
    }

    /// When every pair in scope (all, or model `pinned`) that is not disabled is cooling down
    /// after a 429: the time until the first one is usable again.
    pub fn rate_limited_for(&self, snapshot: &Snapshot, pinned: Option<usize>) -> Option<Duration> {
        let now = Instant::now();
        let mut soonest: Option<Instant> = None;
        for pair in &self.pairs {
            if pinned.is_some_and(|m| m != pair.model_index) {
                continue;
            }
            match lock(&pair.stats.health).availability(now, snapshot.generation()) {
                Availability::RateLimited(until) => {
                    soonest = Some(soonest.map_or(until, |s| s.min(until)))
                }
                Availability::Disabled => {}
                Availability::Usable | Availability::Resting(_) => return None,
            }
        }
        soonest.map(|s| s.saturating_duration_since(now))
    }

    /// The first pass of [`Group::pick`], without locks, over the pairs `keep` admits: the
    /// clean ones (no cooldown, breaker closed, not disabled; the common case) are offered to
    /// `best` under `usage`, or listed in `usable`; the others go to `unclean`, to be read
    /// under their lock.
    ///
    /// Under `usage`, the pairs of one model entry (one weight) rank by raw usage alone, the
    /// first at a tie, as their scores do: each entry's least-used pair is found with integer
    /// compares in a tight loop, and only that one is scored.
    #[inline]
    fn scan_clean(
        &self,
        keep: impl Fn(usize, &Pair) -> bool,
        best: &mut UsageBest,
        usable: &mut Vec<usize>,
        unclean: &mut Vec<usize>,
    ) {
        let by_usage = self.strategy() == Strategy::Usage;
        for run in &self.model_runs {
            let (mut least, mut least_index) = (u64::MAX, usize::MAX);
            for (i, pair) in self.pairs[run.clone()].iter().enumerate() {
                let i = run.start + i;
                if !keep(i, pair) {
                    continue;
                }
                let hot = pair.hot.get();
                if hot.clean_epoch().is_none() {
                    unclean.push(i);
                } else if !by_usage {
                    usable.push(i);
                } else {
                    let usage = hot.usage();
                    if least_index == usize::MAX || usage < least {
                        (least, least_index) = (usage, i);
                    }
                }
            }
            if least_index != usize::MAX {
                best.offer(&self.pairs[least_index], least_index, least);
            }
        }
    }

    /// Picks a pair by the group's strategy among the healthy pairs not in `exclude` (and of
    /// model `pinned` only, when given, 0-based) and reserves `estimate` tokens on it. When no
    /// pair is healthy, the least recently failed of those resting (open breaker, model
    /// cooldown) is tried rather than refusing; pairs cooling down after a 429 and disabled
    /// ones are never picked. Scoring and reserving happen under the group's lock, so
    /// simultaneous picks see each other.
    pub fn pick(
        &self,
        snapshot: &Snapshot,
        exclude: &[usize],
        pinned: Option<usize>,
        estimate: u64,
    ) -> Result<Selection, Unavailable> {
        let expected = Expected {
            prompt: estimate,
            completion: estimate,
        };
        self.pick_for(snapshot, exclude, pinned, estimate, expected)
    }

    /// [`Group::pick`] for a request `expected` to take these tokens (what `lowest_cost`
    /// prices).
    pub fn pick_for(
        &self,
        snapshot: &Snapshot,
        exclude: &[usize],
        pinned: Option<usize>,
        estimate: u64,
        expected: Expected,
    ) -> Result<Selection, Unavailable> {
        let generation = snapshot.generation();
        let mut cursors = self.state.lock();
        let now = Instant::now();
        // Under `usage` the winner is found in the same pass, with no list of usable pairs.
        let by_usage = self.strategy() == Strategy::Usage;
        let mut best = UsageBest::default();
        let mut usable = Vec::with_capacity(if by_usage { 0 } else { self.pairs.len() });
        // First pass without locks (what keeps a pick over a thousand keys cheap); the pairs
        // that are not clean are read under their lock afterwards.
        let mut unclean = Vec::new();
        if exclude.is_empty() && pinned.is_none() {
            // The common case, compiled without the filter.
            self.scan_clean(|_, _| true, &mut best, &mut usable, &mut unclean);
        } else {
            let keep = |i: usize, pair: &Pair| {
                !exclude.contains(&i) && pinned.is_none_or(|m| m == pair.model_index)
            };
            self.scan_clean(keep, &mut best, &mut usable, &mut unclean);
        }
        let mut resting: Option<(Option<Instant>, usize)> = None;
        let mut rate_limited: Option<Instant> = None;
        let clean_usable = usable.len();
        for &i in &unclean {
            let pair = &self.pairs[i];
            match lock(&pair.stats.health).availability(now, generation) {
                Availability::Usable if by_usage => best.offer(pair, i, pair.hot.get().usage()),
                Availability::Usable => usable.push(i),
                Availability::Resting(last_failure) => {
                    if resting.is_none_or(|(lf, _)| last_failure < lf) {
                        resting = Some((last_failure, i));
                    }
                }
                Availability::RateLimited(until) => {
                    rate_limited = Some(rate_limited.map_or(until, |r| r.min(until)));
                }
                Availability::Disabled => {}
            }
        }
        if clean_usable > 0 && usable.len() > clean_usable {
            // Strategies other than `usage` take the usable pairs in config order.
            usable.sort_unstable();
        }
        let chosen = if by_usage {
            best.index()
        } else if usable.is_empty() {
            None
        } else {
            self.choose(&usable, pinned, &mut cursors, expected)
        };
        let index = match chosen {
            Some(i) => i,
            None => match (resting, rate_limited) {
                (Some((_, i)), _) => i,
                (None, Some(until)) => {
                    return Err(Unavailable::RateLimited {
                        retry_after: until.saturating_duration_since(now),
                    })
                }
                (None, None) => return Err(Unavailable::NoPair),
            },
        };
        let pair = &self.pairs[index];
        let epoch = match pair.stats.clean_epoch() {
            Some(epoch) => epoch,
            None => pair.stats.with_health(generation, |h| h.on_pick(now)),
        };
        pair.stats.begin(estimate, snapshot.request_penalty());
        Ok(Selection {
            provider: pair.provider.clone(),
            model: pair.model.clone(),
            key: pair.key.clone(),
            key_id: pair.key_id.clone(),
            pair_index: index,
            stats: pair.stats.clone(),
            siblings: pair.siblings.clone(),
            reservation: estimate,
            request_penalty: snapshot.request_penalty(),
            error_penalty: snapshot.error_penalty(),
            generation,
            epoch,
            resilience: snapshot.resilience().clone(),
            settled: false,
            tab: None,
            measures_latency: self.strategy() == Strategy::LowestLatency,
        })
    }
}
