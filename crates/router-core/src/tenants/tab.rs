//! The [`Tab`] of an admitted request: the reservations it holds in its client's and team's
//! windows, charged with each upstream call's real cost as it is settled, and given back
//! when the request is over.

use super::account::{Amount, Short, Span};
use super::admission::{
    check_rpm, over_budget, over_rpm, over_tpm, parties, seconds, token_headers, until, Refusal,
};
use super::prices::{Picodollars, Prices};
use super::{lock, now_utc, Account, Budget, Client, Spend};
use crate::shared::budgets::Settlements;
use crate::usage::TokenUsage;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

/// A reservation held in one account's window.
#[derive(Debug)]
pub(super) struct Hold {
    pub(super) account: Arc<Account>,
    pub(super) tpm: bool,
    pub(super) amount: Amount,
}

/// An admitted request's account with its client and team. Shared by the request's upstream
/// calls (each charges what it cost); when the last one is dropped, the reservations are
/// given back and the request no longer counts as in flight.
#[derive(Debug)]
pub struct Tab {
    pub(super) client: Arc<Client>,
    pub(super) group: String,
    pub(super) prices: Arc<Prices>,
    pub(super) holds: Vec<Hold>,
    pub(super) in_flight: Vec<Arc<Account>>,
    /// OpenAI's `x-ratelimit-*` headers for the answer: the client's own limits first.
    pub(super) rate_headers: Vec<(&'static str, String)>,
    /// What the request may cost at most, as reserved.
    pub(super) ask: Amount,
    /// Its reservations in the windows the replicas share, if any.
    pub(super) shared: Option<SharedHolds>,
}

/// A party's part of a request's reservation in the windows the replicas share.
#[derive(Debug, Clone)]
pub struct SharedAsk {
    /// `client/<name>` or `team/<name>`.
    pub name: String,
    /// The budget window's start (Unix seconds), and the budget.
    pub budget: Option<(i64, Budget)>,
    /// The tokens-per-minute limit and the minute's start.
    pub tpm: Option<(u64, i64)>,
    /// What the request may cost at most.
    pub amount: Amount,
}

/// A request's reservations in the shared windows: given back through the settlements when
/// it ends, after what it used is counted there.
#[derive(Debug)]
pub(super) struct SharedHolds {
    settlements: Arc<Settlements>,
    /// The reservation's field stem, `r:<holder>:<request>:`; `None` when nothing was
    /// reserved (admitted while Redis was away: what it uses is counted there all the same).
    stem: Option<String>,
    /// Each party's name, its budget's span, and whether it has a TPM limit.
    parties: Vec<(String, Option<Span>, bool)>,
}

impl Tab {
    /// Whether the request holds a reservation of tokens or money (a budget, a TPM limit):
    /// then it must not complete past what was reserved, and is sent with a completion limit
    /// when it sets none (`ChatRequest::cap_completion`).
    pub(crate) fn caps_completion(&self) -> bool {
        !self.holds.is_empty()
    }

    /// A party's RPM limit let the request through: OpenAI's `x-ratelimit-*-requests`
    /// headers, for the first party that has one.
    pub(super) fn passed_rpm(&mut self, rpm: u32, remaining: u32, reset: Duration) {
        if !(self.rate_headers.iter()).any(|(k, _)| k.ends_with("-requests")) {
            self.rate_headers.extend([
                ("x-ratelimit-limit-requests", rpm.to_string()),
                ("x-ratelimit-remaining-requests", remaining.to_string()),
                ("x-ratelimit-reset-requests", seconds(reset)),
            ]);
        }
    }

    /// The client's and its team's requests-per-minute limits, by account name
    /// (`client/<name>`, `team/<name>`), for a check shared through Redis.
    pub(crate) fn rpm_limits(&self) -> Vec<(String, u32)> {
        parties(&self.client)
            .into_iter()
            .filter_map(|(who, _, limits, _)| Some((who.account(), limits.rpm?.get())))
            .collect()
    }

    /// The shared check let the request through: for each of [`Self::rpm_limits`], in that
    /// order, the requests left and the time until the whole quota is back.
    pub(crate) fn shared_rpm_passed(&mut self, left: &[(u32, Duration)]) {
        for ((_, rpm), (remaining, reset)) in self.rpm_limits().into_iter().zip(left) {
            self.passed_rpm(rpm, *remaining, *reset);
        }
    }

    /// The shared check refused the request over the `index`th of [`Self::rpm_limits`].
    pub(crate) fn shared_rpm_refused(&self, index: usize, wait: Duration) -> Refusal {
        let parties: Vec<_> = (parties(&self.client).into_iter())
            .filter(|(_, _, limits, _)| limits.rpm.is_some())
            .collect();
        match parties.get(index) {
            Some((who, account, limits, _)) => {
                over_rpm(who, account, limits.rpm.map_or(0, |r| r.get()), wait)
            }
            None => Refusal::Limit {
                message: "over a requests-per-minute limit".into(),
                retry_after: wait,
                headers: Vec::new(),
            },
        }
    }

    /// The requests-per-minute limits checked by this replica alone (Redis cannot be asked).
    pub(crate) fn check_local_rpm(&mut self) -> Result<(), Refusal> {
        let client = self.client.clone();
        check_rpm(self, &parties(&client))
    }

    /// What each party with a budget or a TPM limit reserves in the shared windows.
    pub(crate) fn shared_asks(&self) -> Vec<SharedAsk> {
        let now = now_utc();
        parties(&self.client)
            .into_iter()
            .filter(|(_, _, limits, budget)| budget.is_some() || limits.tpm.is_some())
            .map(|(who, _, limits, budget)| SharedAsk {
                name: who.account(),
                budget: budget.map(|b| (b.span.start(now), b)),
                tpm: limits.tpm.map(|tpm| (tpm, Span::Minute.start(now))),
                amount: self.ask,
            })
            .collect()
    }

    /// The request holds `asks` in the shared windows, in the fields named by `stem` (none:
    /// it holds nothing there, and what it uses is counted there once Redis answers).
    pub(crate) fn hold_shared(
        &mut self,
        settlements: Arc<Settlements>,
        asks: &[SharedAsk],
        stem: Option<String>,
    ) {
        let parties = (asks.iter())
            .map(|ask| {
                let span = ask.budget.map(|(_, b)| b.span);
                (ask.name.clone(), span, ask.tpm.is_some())
            })
            .collect();
        self.shared = Some(SharedHolds {
            settlements,
            stem,
            parties,
        });
    }

    /// The shared windows' tokens left this minute (`-1`: no TPM limit), in `asks`' order:
    /// the answer's `x-ratelimit-*-tokens` headers say them rather than this replica's own.
    pub(crate) fn shared_tokens_left(&mut self, asks: &[SharedAsk], left: &[i64]) {
        let first = asks.iter().zip(left).find_map(|(ask, &left)| {
            let (tpm, _) = ask.tpm?;
            Some((tpm, u64::try_from(left).ok()?))
        });
        if let Some((tpm, left)) = first {
            let reset = until(Span::Minute, now_utc()).unwrap_or(Duration::from_secs(60));
            self.rate_headers.retain(|(k, _)| !k.ends_with("-tokens"));
            self.rate_headers.extend(token_headers(tpm, left, reset));
        }
    }

    /// The refusal the shared windows gave: `asks[index]` is short of budget tokens (`what`
    /// 1), budget money (2, in nanodollars) or tokens this minute (3).
    pub(crate) fn shared_refusal(
        &self,
        asks: &[SharedAsk],
        index: usize,
        what: i64,
        cap: u64,
        taken: u64,
    ) -> Refusal {
        let now = now_utc();
        let name = asks.get(index).map_or("", |a| a.name.as_str());
        let all = parties(&self.client);
        let party = all.iter().find(|(who, _, _, _)| who.account() == name);
        match (party, what) {
            (Some((who, account, _, Some(budget))), 1 | 2) => {
                account.refused.fetch_add(1, Relaxed);
                let short = if what == 1 {
                    Short::Tokens(cap, taken)
                } else {
                    Short::Money(cap.saturating_mul(1000), taken.saturating_mul(1000))
                };
                over_budget(who, budget, short, self.ask, now)
            }
            (Some((who, account, limits, _)), _) => {
                let tpm = limits.tpm.unwrap_or(cap);
                over_tpm(who, account, tpm, taken, self.ask.tokens, now)
            }
            (None, _) => Refusal::Limit {
                message: "over a shared budget or limit".into(),
                retry_after: Duration::from_secs(1),
                headers: Vec::new(),
            },
        }
    }

    /// The client it is for.
    pub fn client(&self) -> &Arc<Client> {
        &self.client
    }

    /// OpenAI's `x-ratelimit-*` headers for the answer (the client's limits, or its team's).
    pub fn rate_headers(&self) -> &[(&'static str, String)] {
        &self.rate_headers
    }

    /// Charges one upstream call's `usage` on `provider`'s `model`, priced from the table,
    /// to the client and its team. Returns its cost.
    pub(crate) fn charge(&self, provider: &str, model: &str, usage: &TokenUsage) -> Picodollars {
        let picodollars = self
            .prices
            .get(provider, model)
            .map_or(0, |p| p.cost(usage));
        let tokens = usage.prompt_tokens.saturating_add(usage.completion_tokens);
        let used = Amount {
            tokens,
            picodollars,
        };
        let now = now_utc();
        if let Some(shared) = &self.shared {
            for (name, span, tpm) in &shared.parties {
                let budget = span.map_or(-1, |s| s.start(now));
                let minute = if *tpm { Span::Minute.start(now) } else { -1 };
                (shared.settlements).used(name, budget, minute, tokens, picodollars);
            }
        }
        for (_, account, limits, budget) in parties(&self.client) {
            if let Some(budget) = budget {
                lock(&account.budget).charge(budget.span, used, now);
            }
            if limits.tpm.is_some() {
                let t = Amount {
                    tokens,
                    picodollars: 0,
                };
                lock(&account.tpm).charge(Span::Minute, t, now);
            }
            let key = (self.group.clone(), provider.to_string(), model.to_string());
            let mut spend = lock(&account.spend);
            let s: &mut Spend = spend.entry(key).or_default();
            s.requests += 1;
            s.prompt_tokens += usage.prompt_tokens;
            s.completion_tokens += usage.completion_tokens;
            s.cache_read_tokens += usage.cache_read_tokens;
            s.cache_write_tokens += usage.cache_write_tokens;
            s.picodollars = s.picodollars.saturating_add(picodollars);
        }
        picodollars
    }
}

impl Drop for Tab {
    fn drop(&mut self) {
        // What was used is charged already; the reservations go now.
        for hold in &self.holds {
            let window = if hold.tpm {
                &hold.account.tpm
            } else {
                &hold.account.budget
            };
            lock(window).release(hold.amount);
        }
        for account in &self.in_flight {
            account.in_flight.fetch_sub(1, Relaxed);
        }
        if let Some(shared) = &self.shared {
            if let Some(stem) = &shared.stem {
                for (name, _, _) in &shared.parties {
                    shared.settlements.release(name, stem);
                }
            }
        }
    }
}
