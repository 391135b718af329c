//! A pair's recent latency, for `lowest_latency`: a peak EWMA. A slower sample counts at once,
//! a faster one pulls the average down by a share; without new samples the average halves
//! every [`HALF_LIFE`], so a pair that was slow is tried again after a while and is never
//! starved for good. A failed call counts as at least [`FAILURE`].

use std::time::Duration;
use tokio::time::Instant;

/// How far a faster sample pulls the average toward itself.
const ALPHA: f64 = 0.3;

/// How long an average takes to halve when the pair gets no calls.
pub(crate) const HALF_LIFE: Duration = Duration::from_secs(10);

/// What a failed call counts as, at least.
pub(crate) const FAILURE: Duration = Duration::from_secs(1);

/// The average, in microseconds, and when its last sample came.
#[derive(Debug, Default)]
pub(crate) struct Latency {
    micros: f64,
    at: Option<Instant>,
}

impl Latency {
    /// A call that took `took` ended at `now`.
    pub(crate) fn observe(&mut self, now: Instant, took: Duration) {
        let sample = took.as_secs_f64() * 1e6;
        let current = self.cost(now);
        self.micros = match self.at {
            Some(_) if sample <= current => current + ALPHA * (sample - current),
            _ => sample,
        };
        self.at = Some(now);
    }

    /// The average at `now` in microseconds: 0 before any sample (a pair never measured is
    /// tried first), halved for every [`HALF_LIFE`] since the last one.
    pub(crate) fn cost(&self, now: Instant) -> f64 {
        let Some(at) = self.at else { return 0.0 };
        let idle = now.saturating_duration_since(at).as_secs_f64();
        self.micros * 0.5f64.powf(idle / HALF_LIFE.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slower_counts_at_once_faster_by_a_share_and_silence_halves_it() {
        let t0 = Instant::now();
        let mut l = Latency::default();
        assert_eq!(l.cost(t0), 0.0);
        l.observe(t0, Duration::from_millis(100));
        assert_eq!(l.cost(t0), 100_000.0);
        l.observe(t0, Duration::from_millis(300));
        assert_eq!(l.cost(t0), 300_000.0);
        l.observe(t0, Duration::from_millis(100));
        assert!((l.cost(t0) - 240_000.0).abs() < 1.0, "{}", l.cost(t0));
        let later = t0 + HALF_LIFE * 2;
        assert!((l.cost(later) - 60_000.0).abs() < 1.0, "{}", l.cost(later));
    }
}
