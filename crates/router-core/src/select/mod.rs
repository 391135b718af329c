//! Selection: which (model, key) pair of a group serves a request, by the group's strategy,
//! among the pairs that are healthy; exact under concurrency. [`Selection`] is the pair picked,
//! settled when its call ends.

use crate::health::Availability;
use crate::snapshot::{Group, Pair, Snapshot};
use crate::state::groups::Cursors;
use crate::state::limits::Room;
use std::sync::MutexGuard;
use std::time::Duration;
use tokio::time::Instant;

mod selection;
mod strategies;

pub use selection::Selection;
use strategies::UsageBest;
pub use strategies::{Expected, Strategy};

fn lock<T>(m: &std::sync::Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a pick is asked for.
struct Ask<'a> {
    /// Pairs not to pick.
    exclude: &'a [usize],
    /// The model entry asked for (`group$N`), if any.
    pinned: Option<usize>,
    /// The tokens reserved on the pair (and counted against its key's `tpm`).
    estimate: u64,
    /// What `lowest_cost` prices.
    expected: Expected,
}

/// Why no pair could be picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// Every remaining pair is cooling down after a 429 or at its key's `rpm` / `tpm`; the first
    /// is usable again after this.
    RateLimited {
        /// Time until the first pair's cooldown ends.
        retry_after: Duration,
    },
    /// No pair is left: all were tried by this request or are disabled after 401/403.
    NoPair,
}

impl Pair {
    /// Whether it can take a request of `estimate` tokens: its health says, unless its key is
    /// at its limit, which counts as cooling down until the key is free.
    fn availability(&self, now: Instant, generation: u64, estimate: u64) -> Availability {
        if let Some(Room::Full(until)) = self.limit.as_ref().map(|l| l.room(now, estimate)) {
            return Availability::RateLimited(until);
        }
        if self.hot.get().clean_epoch().is_some() {
            return Availability::Usable;
        }
        lock(&self.stats.health).availability(now, generation)
    }

    /// Whether it can be picked as a first choice: not disabled, cooling down or behind an
    /// open breaker (its key's limits aside).
    fn usable_first(&self, now: Instant, generation: u64) -> bool {
        self.hot.get().clean_epoch().is_some()
            || matches!(
                lock(&self.stats.health).availability(now, generation),
                Availability::Usable
            )
    }
}

impl Group {
    /// Whether some pair can be picked as a first choice: not disabled, and not cooling down
    /// (after a 429, a 404 or an unreachable host) nor behind an open breaker.
    pub fn has_usable_pair(&self, snapshot: &Snapshot) -> bool {
        let now = Instant::now();
        (self.pairs.iter()).any(|pair| pair.usable_first(now, snapshot.generation()))
    }

    /// How many of its pairs can be picked as a first choice now (see
    /// [`Group::has_usable_pair`]).
    pub fn usable_pairs(&self, snapshot: &Snapshot) -> usize {
        let now = Instant::now();
        (self.pairs.iter())
            .filter(|pair| pair.usable_first(now, snapshot.generation()))
            .count()
    }

    /// When every pair in scope (all, or model `pinned`) that is not disabled is cooling down
    /// after a 429 or at its key's limit for a request of `estimate` tokens: the time until
    /// the first one is usable again.
    pub fn rate_limited_for(
        &self,
        snapshot: &Snapshot,
        pinned: Option<usize>,
        estimate: u64,
    ) -> Option<Duration> {
        let now = Instant::now();
        let mut soonest: Option<Instant> = None;
        for pair in &self.pairs {
            if pinned.is_some_and(|m| m != pair.model_index) {
                continue;
            }
            match pair.availability(now, snapshot.generation(), estimate) {
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
    /// clean ones (no cooldown, breaker closed, not disabled, no key limit; the common case) are
    /// offered to `best` under `usage`, or listed in `usable`; the others go to `unclean`, to
    /// be read under their lock.
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
                if hot.clean_epoch().is_none() || pair.limit.is_some() {
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
        let ask = Ask {
            exclude,
            pinned,
            estimate,
            expected,
        };
        let mut filled: Vec<usize> = Vec::new();
        let (index, sent) = loop {
            let index = self.find(&ask, &filled, generation, now, &mut cursors)?;
            match &self.pairs[index].limit {
                None => break (index, None),
                Some(limit) => match limit.take(now, estimate) {
                    Ok(sent) => break (index, Some(sent)),
                    // Its key filled up between the look and the take (a pick in another
                    // group that uses the same key): another pair, or the wait.
                    Err(_) => filled.push(index),
                },
            }
        };
        let pair = &self.pairs[index];
        let epoch = match pair.stats.clean_epoch() {
            Some(epoch) => epoch,
            None => pair.stats.with_health(generation, |h| h.on_pick(now)),
        };
        pair.stats.begin(estimate, snapshot.request_penalty());
        pair.in_group
            .calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Selection {
            provider: pair.provider.clone(),
            model: pair.model.clone(),
            key: pair.key.clone(),
            credential: pair.credential.clone(),
            key_id: pair.key_id.clone(),
            pair_index: index,
            stats: pair.stats.clone(),
            in_group: pair.in_group.clone(),
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
            sent,
        })
    }

    /// The pair the strategy picks for `ask`, leaving out the pairs of `filled` too, under the
    /// group's select lock; or why there is none.
    fn find(
        &self,
        ask: &Ask<'_>,
        filled: &[usize],
        generation: u64,
        now: Instant,
        cursors: &mut Cursors,
    ) -> Result<usize, Unavailable> {
        let (exclude, pinned) = (ask.exclude, ask.pinned);
        // Under `usage` the winner is found in the same pass, with no list of usable pairs.
        let by_usage = self.strategy() == Strategy::Usage;
        let mut best = UsageBest::default();
        let mut usable = Vec::with_capacity(if by_usage { 0 } else { self.pairs.len() });
        // First pass without locks (what keeps a pick over a thousand keys cheap); the pairs
        // that are not clean are read under their lock afterwards.
        let mut unclean = Vec::new();
        if exclude.is_empty() && pinned.is_none() && filled.is_empty() {
            // The common case, compiled without the filter.
            self.scan_clean(|_, _| true, &mut best, &mut usable, &mut unclean);
        } else {
            let keep = |i: usize, pair: &Pair| {
                !exclude.contains(&i)
                    && !filled.contains(&i)
                    && pinned.is_none_or(|m| m == pair.model_index)
            };
            self.scan_clean(keep, &mut best, &mut usable, &mut unclean);
        }
        let mut resting: Option<(Option<Instant>, usize)> = None;
        let mut rate_limited: Option<Instant> = None;
        let clean_usable = usable.len();
        for &i in &unclean {
            let pair = &self.pairs[i];
            match pair.availability(now, generation, ask.estimate) {
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
            self.choose(&usable, pinned, cursors, ask.expected)
        };
        match (chosen, resting, rate_limited) {
            (Some(i), _, _) | (None, Some((_, i)), _) => Ok(i),
            (None, None, Some(until)) => Err(Unavailable::RateLimited {
                retry_after: until.saturating_duration_since(now),
            }),
            (None, None, None) => Err(Unavailable::NoPair),
        }
    }
}
