//! What a client or a team has used in the current period, and what requests in flight have
//! reserved: a request is admitted only if what it may cost fits beside both, so a budget is
//! never overshot however many requests arrive at once.

use super::prices::Picodollars;
use crate::config::Period;
use time::{Duration, OffsetDateTime, Time};

/// Tokens and money, together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Amount {
    /// Tokens, prompt plus completion.
    pub tokens: u64,
    /// Money, in picodollars.
    pub picodollars: Picodollars,
}

impl Amount {
    fn add(&mut self, other: Amount) {
        self.tokens = self.tokens.saturating_add(other.tokens);
        self.picodollars = self.picodollars.saturating_add(other.picodollars);
    }
    fn sub(&mut self, other: Amount) {
        self.tokens = self.tokens.saturating_sub(other.tokens);
        self.picodollars = self.picodollars.saturating_sub(other.picodollars);
    }
}

/// The limits of a window: tokens, money, or both (`None`: not limited).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cap {
    /// Most tokens per period.
    pub tokens: Option<u64>,
    /// Most money per period.
    pub picodollars: Option<Picodollars>,
}

/// A window's length: a budget's period, or a minute for a TPM limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// A calendar minute (UTC).
    Minute,
    /// A budget period.
    Period(Period),
}

impl Span {
    /// The start of the window holding `now` (Unix seconds; 0 for a total budget).
    pub fn start(self, now: OffsetDateTime) -> i64 {
        let midnight = now.replace_time(Time::MIDNIGHT);
        let start = match self {
            Span::Minute => return now.unix_timestamp() - now.unix_timestamp().rem_euclid(60),
            Span::Period(Period::Total) => return 0,
            Span::Period(Period::Day) => midnight,
            Span::Period(Period::Week) => {
                midnight - Duration::days(i64::from(now.weekday().number_days_from_monday()))
            }
            Span::Period(Period::Month) => midnight.replace_day(1).unwrap_or(midnight),
        };
        start.unix_timestamp()
    }

    /// The start of the next window (`None` for a total budget, which never starts again).
    pub fn next(self, now: OffsetDateTime) -> Option<i64> {
        let start = self.start(now);
        let start_at = OffsetDateTime::from_unix_timestamp(start).ok()?;
        let next = match self {
            Span::Minute => start_at + Duration::minutes(1),
            Span::Period(Period::Total) => return None,
            Span::Period(Period::Day) => start_at + Duration::days(1),
            Span::Period(Period::Week) => start_at + Duration::weeks(1),
            Span::Period(Period::Month) => {
                let (year, month) = match start_at.month() {
                    time::Month::December => (start_at.year() + 1, time::Month::January),
                    m => (start_at.year(), m.next()),
                };
                start_at
                    .replace_year(year)
                    .ok()?
                    .replace_month(month)
                    .ok()?
            }
        };
        Some(next.unix_timestamp())
    }
}

/// One window of use: what was used since it started, and what is reserved now.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Window {
    /// Unix seconds of the current window's start.
    start: i64,
    /// The span the window was last used with (`None`: restored, or never used).
    span: Option<Span>,
    used: Amount,
    reserved: Amount,
}

/// Why a reservation did not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Short {
    /// Tokens: (cap, used and reserved).
    Tokens(u64, u64),
    /// Money: (cap, used and reserved).
    Money(Picodollars, Picodollars),
}

impl Window {
    /// Whether what the window used still counts under `span` at `now`: in the same window;
    /// or, the span changed (a reload changed the period), in a window that has not ended by
    /// its own span or that began within the new one. Over-counting the spend of an old,
    /// longer window until the new one starts again errs on the side of the budget.
    fn counts(&self, span: Span, now: OffsetDateTime) -> bool {
        let start = span.start(now);
        start == self.start
            || self.start >= start
            || self
                .span
                .is_some_and(|old| old != span && old.start(now) == self.start)
    }

    /// Starts a new window if `now` is past this one (see [`Self::counts`]): what was used is
    /// forgotten; what is reserved stays (those requests are still in flight).
    fn roll(&mut self, span: Span, now: OffsetDateTime) {
        if !self.counts(span, now) {
            self.used = Amount::default();
        }
        self.start = span.start(now);
        self.span = Some(span);
    }

    /// Reserves `ask` if it fits under `cap` beside what is used and reserved.
    pub(crate) fn reserve(
        &mut self,
        span: Span,
        cap: Cap,
        ask: Amount,
        now: OffsetDateTime,
    ) -> Result<(), Short> {
        self.roll(span, now);
        let mut taken = self.used;
        taken.add(self.reserved);
        if let Some(cap) = cap.tokens {
            if taken.tokens.saturating_add(ask.tokens) > cap {
                return Err(Short::Tokens(cap, taken.tokens));
            }
        }
        if let Some(cap) = cap.picodollars {
            if taken.picodollars.saturating_add(ask.picodollars) > cap {
                return Err(Short::Money(cap, taken.picodollars));
            }
        }
        self.reserved.add(ask);
        Ok(())
    }

    /// Counts `used` in the current window.
    pub(crate) fn charge(&mut self, span: Span, used: Amount, now: OffsetDateTime) {
        self.roll(span, now);
        self.used.add(used);
    }

    /// Gives back a reservation.
    pub(crate) fn release(&mut self, reserved: Amount) {
        self.reserved.sub(reserved);
    }

    /// What the current window has used (nothing if `now` is past it).
    pub(crate) fn used(&self, span: Span, now: OffsetDateTime) -> Amount {
        if self.counts(span, now) {
            self.used
        } else {
            Amount::default()
        }
    }

    /// What requests in flight have reserved.
    pub(crate) fn reserved(&self) -> Amount {
        self.reserved
    }

    /// The window's start and what it used, to be saved.
    pub(crate) fn saved(&self) -> (i64, Amount) {
        (self.start, self.used)
    }

    /// The window saved before a restart; what is reserved now stays.
    pub(crate) fn restore(&mut self, start: i64, used: Amount) {
        self.start = start;
        self.used = used;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn amount(tokens: u64, picodollars: u64) -> Amount {
        Amount {
            tokens,
            picodollars,
        }
    }

    #[test]
    fn periods_start_at_their_utc_boundaries() {
        let now = datetime!(2026-12-31 23:59:30 UTC);
        let at = |s: i64| OffsetDateTime::from_unix_timestamp(s).unwrap();
        assert_eq!(
            at(Span::Period(Period::Day).start(now)),
            datetime!(2026-12-31 0:00 UTC)
        );
        // 2026-12-31 is a Thursday: the week began on Monday the 28th.
        assert_eq!(
            at(Span::Period(Period::Week).start(now)),
            datetime!(2026-12-28 0:00 UTC)
        );
        assert_eq!(
            at(Span::Period(Period::Month).start(now)),
            datetime!(2026-12-01 0:00 UTC)
        );
        assert_eq!(at(Span::Minute.start(now)), datetime!(2026-12-31 23:59 UTC));
        assert_eq!(Span::Period(Period::Total).start(now), 0);
        let next = |s: Span| s.next(now).map(at);
        assert_eq!(
            next(Span::Period(Period::Month)),
            Some(datetime!(2027-01-01 0:00 UTC))
        );
        assert_eq!(
            next(Span::Period(Period::Week)),
            Some(datetime!(2027-01-04 0:00 UTC))
        );
        assert_eq!(
            next(Span::Period(Period::Day)),
            Some(datetime!(2027-01-01 0:00 UTC))
        );
        assert_eq!(next(Span::Minute), Some(datetime!(2027-01-01 0:00 UTC)));
        assert_eq!(next(Span::Period(Period::Total)), None);
    }

    #[test]
    fn reservations_fit_beside_use_and_roll_over_with_the_period() {
        let span = Span::Period(Period::Day);
        let cap = Cap {
            tokens: Some(100),
            picodollars: Some(1_000),
        };
        let day1 = datetime!(2026-12-01 12:00 UTC);
        let mut w = Window::default();
        assert_eq!(w.reserve(span, cap, amount(60, 100), day1), Ok(()));
        assert_eq!(
            w.reserve(span, cap, amount(50, 100), day1),
            Err(Short::Tokens(100, 60))
        );
        assert_eq!(
            w.reserve(span, cap, amount(10, 950), day1),
            Err(Short::Money(1_000, 100))
        );
        // Settled below the reservation: the rest is free again.
        w.charge(span, amount(30, 40), day1);
        w.release(amount(60, 100));
        assert_eq!(w.used(span, day1), amount(30, 40));
        assert_eq!(w.reserve(span, cap, amount(70, 960), day1), Ok(()));
        // The next day starts empty; the reservation in flight is still held.
        let day2 = datetime!(2026-12-02 0:00 UTC);
        assert_eq!(w.used(span, day2), Amount::default());
        assert_eq!(
            w.reserve(span, cap, amount(40, 0), day2),
            Err(Short::Tokens(100, 70))
        );
        w.release(amount(70, 960));
        assert_eq!(w.reserve(span, cap, amount(100, 1_000), day2), Ok(()));
    }

    #[test]
    fn a_period_changed_by_a_reload_keeps_counting_what_the_window_used() {
        let (day, month) = (Span::Period(Period::Day), Span::Period(Period::Month));
        let cap = Cap {
            tokens: Some(100),
            picodollars: None,
        };
        let mid = datetime!(2026-12-15 12:00 UTC);
        // A month's window that used 80 becomes a day's: the 80 still count today.
        let mut w = Window::default();
        w.charge(month, amount(80, 0), mid);
        assert_eq!(w.used(day, mid), amount(80, 0));
        assert_eq!(
            w.reserve(day, cap, amount(30, 0), mid),
            Err(Short::Tokens(100, 80))
        );
        // ... until the day starts again.
        let next = datetime!(2026-12-16 0:00 UTC);
        assert_eq!(w.used(day, next), Amount::default());
        assert_eq!(w.reserve(day, cap, amount(30, 0), next), Ok(()));
        // A day's use becomes the month's, which it is part of.
        let mut w = Window::default();
        w.charge(day, amount(70, 0), mid);
        assert_eq!(w.used(month, mid), amount(70, 0));
        assert_eq!(
            w.reserve(month, cap, amount(40, 0), mid),
            Err(Short::Tokens(100, 70))
        );
        // An old window that ended before the new one began is forgotten.
        let mut w = Window::default();
        w.charge(day, amount(70, 0), datetime!(2026-11-30 12:00 UTC));
        assert_eq!(w.used(month, mid), Amount::default());
    }
}
