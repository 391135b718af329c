//! A pair's recent calls and failures over its breaker's window, counted in slices of the
//! window: the memory and the work of a call stay the same however many calls the window
//! holds. (A list of every outcome took 24 bytes a call, about 29 MiB a pair at 20,000 calls a
//! second over the default 60 s, kept its largest size for good, and was counted call by call
//! at each failure.)

use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

/// How many slices the window is counted in: a call leaves the window at most one slice (a
/// 32nd of it) before it is `window` old.
pub(crate) const SLICES: u32 = 32;

/// Calls and failures of the last `window`, by slice.
#[derive(Debug, Default)]
pub(crate) struct Outcomes {
    /// Oldest first. Each starts at its first call, at least a slice after the one before, so
    /// the window holds at most `SLICES + 1` of them.
    slices: VecDeque<Slice>,
    calls: u64,
    failed: u64,
}

#[derive(Debug)]
struct Slice {
    start: Instant,
    calls: u64,
    failed: u64,
}

impl Outcomes {
    /// Counts a call that ended `now`, and forgets the slices that began more than `window`
    /// before.
    pub(crate) fn record(&mut self, now: Instant, failed: bool, window: Duration) {
        let failed = u64::from(failed);
        match self.slices.back_mut() {
            Some(last) if now.saturating_duration_since(last.start) < window / SLICES => {
                last.calls += 1;
                last.failed += failed;
            }
            _ => self.slices.push_back(Slice {
                start: now,
                calls: 1,
                failed,
            }),
        }
        self.calls += 1;
        self.failed += failed;
        while let Some(first) =
            (self.slices.front()).filter(|s| now.saturating_duration_since(s.start) > window)
        {
            self.calls -= first.calls;
            self.failed -= first.failed;
            self.slices.pop_front();
        }
    }

    /// Calls in the window.
    pub(crate) fn calls(&self) -> u64 {
        self.calls
    }

    /// Failed calls in the window.
    pub(crate) fn failed(&self) -> u64 {
        self.failed
    }

    /// Forgets every call (a closed breaker starts a fresh window).
    pub(crate) fn clear(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::{Outcomes, SLICES};
    use std::time::Duration;
    use tokio::time::Instant;

    const WINDOW: Duration = Duration::from_secs(60);

    /// A minute at 20,000 calls a second: exact counts, in at most 33 slices.
    #[test]
    fn a_busy_window_keeps_a_few_slices() {
        let start = Instant::now();
        let mut outcomes = Outcomes::default();
        for i in 0..1_200_000u64 {
            let now = start + Duration::from_micros(50 * i);
            outcomes.record(now, i.is_multiple_of(4), WINDOW);
            assert!(outcomes.slices.len() <= SLICES as usize + 1);
        }
        assert_eq!((outcomes.calls(), outcomes.failed()), (1_200_000, 300_000));
        assert!(
            outcomes.slices.capacity() <= 64,
            "{}",
            outcomes.slices.capacity()
        );
        // Past the window, only the newest call is left.
        outcomes.record(start + WINDOW * 3, true, WINDOW);
        assert_eq!((outcomes.calls(), outcomes.failed()), (1, 1));
        outcomes.clear();
        assert_eq!((outcomes.calls(), outcomes.failed()), (0, 0));
    }

    /// Every call less than `window` less a slice old is counted, and none more than `window`
    /// old, whatever the gaps between calls.
    #[test]
    fn calls_leave_the_window_at_most_a_slice_early() {
        let start = Instant::now();
        let slice = WINDOW / SLICES;
        let mut outcomes = Outcomes::default();
        let mut all: Vec<(Instant, bool)> = Vec::new();
        let mut now = start;
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Gaps from nothing to 8 s, mostly short.
            now += Duration::from_millis((x % 8_000) >> (x % 11));
            let failed = x.is_multiple_of(3);
            outcomes.record(now, failed, WINDOW);
            all.push((now, failed));
            let within = |age: Duration| {
                let kept = all.iter().filter(|(t, _)| now.duration_since(*t) <= age);
                let failed = kept.clone().filter(|(_, f)| *f).count() as u64;
                (kept.count() as u64, failed)
            };
            let (most, most_failed) = within(WINDOW);
            let (least, least_failed) = within(WINDOW - slice);
            assert!((least..=most).contains(&outcomes.calls()));
            assert!((least_failed..=most_failed).contains(&outcomes.failed()));
            all.retain(|(t, _)| now.duration_since(*t) <= WINDOW);
        }
    }
}
