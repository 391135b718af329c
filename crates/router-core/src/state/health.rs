//! Health of one (provider, key, model) pair: rate-limit cooldowns, keys disabled after
//! 401/403, per-model cooldowns after 404 or an unreachable host, and a circuit breaker.
//! Kept beside the usage counters, outside the swapped config, so it survives reloads.
//! Time is tokio's clock, so tests can pause and advance it.

use crate::config::BreakerConfig;
use std::time::Duration;
use tokio::time::Instant;

/// Longest cooldown honoured from an upstream's `Retry-After` (a day: daily quotas).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// A change of a pair's state worth a log line, said once when it happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// The breaker opened after `failures` failures in a row (or its failure rate), for
    /// `open_for`.
    BreakerOpened { failures: u32, open_for: Duration },
    /// A call succeeded through a half-open (or open) breaker, which closed.
    BreakerClosed,
    /// The upstream refused the key (401/403): it is out until the config is reloaded.
    KeyDisabled,
    /// The upstream answered 429: the pair cools down for `wait`.
    RateLimited { wait: Duration },
}

/// `now + d` that cannot overflow: a duration too large to represent means "a year from now".
pub(crate) fn later(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600))
}

/// The longest a cooldown or an open breaker may be configured to last.
pub(crate) const MAX_COOLDOWN: Duration = Duration::from_secs(366 * 24 * 3600);

/// Why an upstream call failed, as far as the pair's health is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// 429: the key is rate limited; cooldown for `retry_after` or the configured default.
    RateLimited {
        /// The upstream's Retry-After, if it sent one.
        retry_after: Option<Duration>,
    },
    /// 401 or 403: the key is disabled until the config is reloaded.
    Unauthorized,
    /// 404, connection refused, DNS failure: the model on that provider cools down briefly.
    ModelUnavailable,
    /// The key's OAuth token endpoint refused it: the key rests for `pause`.
    CredentialRefused {
        /// How long.
        pause: Duration,
    },
    /// 5xx, reset, timeout, a stream broken mid-way: counted by the circuit breaker.
    Upstream,
}

/// A cooldown replicas tell each other of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cooldown {
    /// After a 429: the pair is not picked.
    RateLimited = 0,
    /// An open breaker or a model down: the pair is picked only when nothing else is left.
    Resting = 1,
}

/// Circuit breaker state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Breaker {
    Closed,
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// What selection may do with a pair right now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Availability {
    /// Healthy (or a half-open breaker letting its one probe through).
    Usable,
    /// Cooling down after a 429 until then.
    RateLimited(Instant),
    /// Breaker open, probe in flight, or model cooldown: used only when nothing else is left,
    /// least recently failed first.
    Resting(Option<Instant>),
    /// 401/403 in this config generation.
    Disabled,
}

/// A pair's health.
#[derive(Debug)]
pub(crate) struct Health {
    rate_limited_until: Option<Instant>,
    /// Its OAuth credential was refused until then.
    credential_refused_until: Option<Instant>,
    model_down_until: Option<Instant>,
    disabled_in_generation: Option<u64>,
    breaker: Breaker,
    consecutive_failures: u32,
    /// Calls and failures within the breaker window.
    window: super::outcomes::Outcomes,
    last_failure: Option<Instant>,
    /// Bumped each time the breaker opens: an outcome of a call picked before that (a stale
    /// one) cannot close or reopen it.
    epoch: u64,
    /// Recent latency, kept for `lowest_latency` groups.
    pub(crate) latency: super::latency::Latency,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            rate_limited_until: None,
            credential_refused_until: None,
            model_down_until: None,
            disabled_in_generation: None,
            breaker: Breaker::Closed,
            consecutive_failures: 0,
            window: super::outcomes::Outcomes::default(),
            last_failure: None,
            epoch: 0,
            latency: super::latency::Latency::default(),
        }
    }
}

/// A readable summary of a pair's health, for `/admin/usage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HealthView {
    pub(crate) state: &'static str,
    /// The circuit breaker alone: `closed`, `half_open` or `open`.
    pub(crate) breaker: &'static str,
    pub(crate) until: Option<Instant>,
    pub(crate) consecutive_failures: u32,
}

impl Health {
    /// Whether nothing holds the pair back now or later without a new event: not disabled in
    /// `generation`, no cooldown running, the breaker closed. (Time only ends cooldowns, and
    /// generations only grow, so a clean health stays clean until it is changed.)
    pub(crate) fn is_clean(&self, now: Instant, generation: u64) -> bool {
        // Disabled until a reload: an outcome settled on an older snapshot (`generation`
        // below the one the key was disabled in) does not make it clean.
        self.disabled_in_generation.is_none_or(|g| g < generation)
            && self.rate_limited_until.is_none_or(|u| u <= now)
            && self.credential_refused_until.is_none_or(|u| u <= now)
            && self.model_down_until.is_none_or(|u| u <= now)
            && self.breaker == Breaker::Closed
    }

    /// The breaker epoch (see [`Health::on_pick`]).
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    pub(crate) fn availability(&self, now: Instant, generation: u64) -> Availability {
        if self.disabled_in_generation == Some(generation) {
            return Availability::Disabled;
        }
        if let Some(until) = self.rate_limited_until.filter(|u| *u > now) {
            return Availability::RateLimited(until);
        }
        // A refused credential rests as a model that is down: picked only when nothing else is
        // left, and then it fails at once with the refusal's reason (not a 429: waiting does
        // not mend a revoked login).
        let resting = self.model_down_until.is_some_and(|u| u > now)
            || self.credential_refused_until.is_some_and(|u| u > now)
            || match self.breaker {
                Breaker::Closed => false,
                Breaker::Open { until } => until > now,
                Breaker::HalfOpen { probing } => probing,
            };
        if resting {
            Availability::Resting(self.last_failure)
        } else {
            Availability::Usable
        }
    }

    /// The cooldowns running at `now`, with when they end.
    pub(crate) fn cooldowns(&self, now: Instant) -> Vec<(Cooldown, Instant)> {
        let open = match self.breaker {
            Breaker::Open { until } => Some(until),
            _ => None,
        };
        let rest = open.max(self.model_down_until);
        [
            (Cooldown::RateLimited, self.rate_limited_until),
            (Cooldown::Resting, rest),
        ]
        .into_iter()
        .filter_map(|(kind, until)| Some((kind, until.filter(|u| *u > now)?)))
        .collect()
    }

    /// Cools the pair down until `until` (as another replica did): a rest is the pair's model
    /// down, picked only when nothing else is left, until then or until a call succeeds.
    pub(crate) fn cool_down(&mut self, kind: Cooldown, until: Instant) {
        let field = match kind {
            Cooldown::RateLimited => &mut self.rate_limited_until,
            Cooldown::Resting => &mut self.model_down_until,
        };
        *field = (*field).max(Some(until));
    }

    /// The pair was picked: an open breaker whose time is up lets this one request probe.
    /// Returns the epoch the call belongs to.
    pub(crate) fn on_pick(&mut self, now: Instant) -> u64 {
        match self.breaker {
            Breaker::Open { until } if until <= now => {
                self.breaker = Breaker::HalfOpen { probing: true }
            }
            Breaker::HalfOpen { probing: false } => {
                self.breaker = Breaker::HalfOpen { probing: true }
            }
            _ => {}
        }
        self.epoch
    }

    /// A call of `epoch` succeeded. A success from before the breaker opened is only counted
    /// in the window; one from the probe (or a last-resort call) closes the breaker.
    pub(crate) fn on_success(
        &mut self,
        now: Instant,
        cfg: &BreakerConfig,
        epoch: u64,
    ) -> Option<Change> {
        self.window.record(now, false, cfg.window);
        if epoch != self.epoch && !matches!(self.breaker, Breaker::Closed) {
            return None;
        }
        self.consecutive_failures = 0;
        self.model_down_until = None;
        if matches!(self.breaker, Breaker::Closed) {
            return None;
        }
        self.breaker = Breaker::Closed;
        self.window.clear();
        Some(Change::BreakerClosed)
    }

    /// The call of `epoch` ended with no verdict on the pair (the request's own 4xx, a
    /// cancel, a 429): a probe in flight is given back so another request can probe.
    pub(crate) fn on_neutral(&mut self, epoch: u64) {
        if epoch == self.epoch && self.breaker == (Breaker::HalfOpen { probing: true }) {
            self.breaker = Breaker::HalfOpen { probing: false };
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_failure(
        &mut self,
        failure: Failure,
        epoch: u64,
        now: Instant,
        generation: u64,
        cfg: &BreakerConfig,
        rate_limit_cooldown: Duration,
        model_cooldown: Duration,
    ) -> Option<Change> {
        self.last_failure = Some(now);
        match failure {
            Failure::RateLimited { retry_after } => {
                let wait = retry_after.map_or(rate_limit_cooldown, |r| r.min(MAX_RETRY_AFTER));
                let was_limited = self.rate_limited_until.is_some_and(|until| until > now);
                self.rate_limited_until = Some(later(now, wait));
                self.on_neutral(epoch);
                if !was_limited {
                    return Some(Change::RateLimited { wait });
                }
            }
            Failure::Unauthorized => {
                // A late 401 from an older snapshot does not undo a newer one.
                let was = self.disabled_in_generation;
                self.disabled_in_generation = Some(was.map_or(generation, |g| g.max(generation)));
                self.on_neutral(epoch);
                if was.is_none_or(|g| g < generation) {
                    return Some(Change::KeyDisabled);
                }
            }
            Failure::CredentialRefused { pause } => {
                self.credential_refused_until = Some(later(now, pause));
                self.on_neutral(epoch);
            }
            Failure::ModelUnavailable => {
                self.model_down_until = Some(later(now, model_cooldown));
                self.on_neutral(epoch);
            }
            Failure::Upstream => {
                self.consecutive_failures += 1;
                self.window.record(now, true, cfg.window);
                let (failed, total) = (self.window.failed(), self.window.calls());
                let rate_tripped = total >= u64::from(cfg.min_requests)
                    && failed as f64 >= cfg.failure_rate * total as f64;
                let tripped = match self.breaker {
                    Breaker::Closed => {
                        self.consecutive_failures >= cfg.consecutive_failures || rate_tripped
                    }
                    // The probe (or a last-resort call) failed: open again. A stale failure
                    // from before the breaker opened changes nothing.
                    Breaker::HalfOpen { .. } | Breaker::Open { .. } => epoch == self.epoch,
                };
                if tripped {
                    let closed = matches!(self.breaker, Breaker::Closed);
                    self.epoch += 1;
                    self.breaker = Breaker::Open {
                        until: later(now, cfg.open_for),
                    };
                    // A failed probe opens it again: said when it first opened.
                    if closed {
                        return Some(Change::BreakerOpened {
                            failures: self.consecutive_failures,
                            open_for: cfg.open_for,
                        });
                    }
                }
            }
        }
        None
    }

    /// Marks the model unavailable without a failure of its own (a sibling key of the same
    /// model on the same provider failed with 404 or an unreachable host).
    pub(crate) fn model_down(&mut self, now: Instant, model_cooldown: Duration) {
        self.model_down_until = Some(later(now, model_cooldown));
    }

    pub(crate) fn view(&self, now: Instant, generation: u64) -> HealthView {
        let (state, until) = if self.disabled_in_generation == Some(generation) {
            ("disabled", None)
        } else if let Some(u) = self.rate_limited_until.filter(|u| *u > now) {
            ("rate_limited", Some(u))
        } else if let Some(u) = self.credential_refused_until.filter(|u| *u > now) {
            ("credential_refused", Some(u))
        } else {
            match self.breaker {
                Breaker::Open { until } if until > now => ("open", Some(until)),
                Breaker::Open { .. } | Breaker::HalfOpen { .. } => ("half_open", None),
                Breaker::Closed => match self.model_down_until.filter(|u| *u > now) {
                    Some(u) => ("model_cooldown", Some(u)),
                    None => ("closed", None),
                },
            }
        };
        let breaker = match self.breaker {
            Breaker::Open { until } if until > now => "open",
            Breaker::Open { .. } | Breaker::HalfOpen { .. } => "half_open",
            Breaker::Closed => "closed",
        };
        HealthView {
            state,
            breaker,
            until,
            consecutive_failures: self.consecutive_failures,
        }
    }
}
