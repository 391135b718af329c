//! Requests per minute, by governor's GCRA: `rpm` requests at once, then one more every
//! 60 s / rpm. Its clock is tokio's, so tests run it on the paused clock.

use governor::clock::Clock;
use governor::middleware::StateInformationMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use std::num::NonZeroU32;
use std::time::Duration;

/// Tokio's clock, as time since the limiter was made.
#[derive(Debug, Clone)]
pub(crate) struct TokioClock {
    origin: tokio::time::Instant,
}

impl Clock for TokioClock {
    type Instant = Duration;
    fn now(&self) -> Duration {
        tokio::time::Instant::now().saturating_duration_since(self.origin)
    }
}

type Gcra = RateLimiter<NotKeyed, InMemoryState, TokioClock, StateInformationMiddleware>;

/// One client's (or team's) requests-per-minute limiter.
pub(crate) struct Limiter {
    rpm: NonZeroU32,
    gcra: Gcra,
    clock: TokioClock,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter").field("rpm", &self.rpm).finish()
    }
}

/// A request let through: how many more could come at once now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Passed {
    pub(crate) remaining: u32,
}

impl Limiter {
    pub(crate) fn new(rpm: NonZeroU32) -> Self {
        let clock = TokioClock {
            origin: tokio::time::Instant::now(),
        };
        let gcra = RateLimiter::direct_with_clock(Quota::per_minute(rpm), clock.clone())
            .with_middleware::<StateInformationMiddleware>();
        Self { rpm, gcra, clock }
    }

    /// The limit it enforces.
    pub(crate) fn rpm(&self) -> NonZeroU32 {
        self.rpm
    }

    /// Lets one request through, or says how long until one may come.
    pub(crate) fn check(&self) -> Result<Passed, Duration> {
        match self.gcra.check() {
            Ok(state) => Ok(Passed {
                remaining: state.remaining_burst_capacity(),
            }),
            Err(not_until) => Err(not_until.wait_time_from(self.clock.now())),
        }
    }

    /// Time until the whole burst is available again: when the quota is full.
    pub(crate) fn reset_after(&self, remaining: u32) -> Duration {
        let per_request = Duration::from_secs(60) / self.rpm.get();
        per_request * self.rpm.get().saturating_sub(remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_whole_quota_at_once_then_one_every_interval() {
        let limiter = Limiter::new(NonZeroU32::new(3).unwrap());
        assert_eq!(limiter.check(), Ok(Passed { remaining: 2 }));
        assert_eq!(limiter.check(), Ok(Passed { remaining: 1 }));
        assert_eq!(limiter.check(), Ok(Passed { remaining: 0 }));
        // The fourth waits for the first cell back: 60 s / 3.
        assert_eq!(limiter.check(), Err(Duration::from_secs(20)));
        tokio::time::advance(Duration::from_secs(19)).await;
        assert_eq!(limiter.check(), Err(Duration::from_secs(1)));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(limiter.check(), Ok(Passed { remaining: 0 }));
        // A quiet minute fills the quota again.
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(limiter.check(), Ok(Passed { remaining: 2 }));
        assert_eq!(limiter.reset_after(2), Duration::from_secs(20));
    }
}
