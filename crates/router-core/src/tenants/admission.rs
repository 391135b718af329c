//! Admitting a named client's request: its group, then what it may cost reserved against the
//! client's and its team's limits and budgets, all or nothing. The [`Tab`] it gets charges the
//! real cost as each upstream call is settled and gives the reservations back when the
//! request is over, so a budget is never overshot by requests in flight.

use super::account::Cap;
use super::account::{Amount, Short, Span};
use super::prices::{Picodollars, Prices, PICODOLLARS_PER_USD};
use super::tab::{Hold, Tab};
use super::{lock, now_utc, Account, Budget, Client, Limits};
use crate::config::Outage;
use crate::dialects::{ChatRequest, Endpoint};
use crate::snapshot::Group;
use std::num::NonZeroU32;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// Why a request was not admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The client may not use the group (403).
    Group {
        /// The client's name.
        client: String,
        /// The group asked for.
        group: String,
    },
    /// A budget has no room for the request (429 `insufficient_quota`).
    Budget {
        /// Which budget, how much is left, and when it starts again.
        message: String,
        /// Time until the budget starts again (`None`: a total budget).
        reset: Option<Duration>,
    },
    /// A rate limit is reached (429 `rate_limit_exceeded`).
    Limit {
        /// Which limit.
        message: String,
        /// Time until a request may come.
        retry_after: Duration,
        /// OpenAI's `x-ratelimit-*` headers.
        headers: Vec<(&'static str, String)>,
    },
}

/// What a request may cost at most. A request that sets no completion limit is sent with its
/// provider's `default_max_tokens` when the tab holds a reservation
/// ([`Tab::caps_completion`]), so the largest of the group's is its bound.
fn worst_case(group: &Group, request: &ChatRequest<'_>, prices: &Prices) -> Amount {
    let prompt = request.prompt_bound();
    let completion = match request.endpoint() {
        Endpoint::Embeddings | Endpoint::CountTokens => 0,
        _ => request.max_tokens().unwrap_or_else(|| {
            let defaults = group
                .pairs()
                .iter()
                .map(|p| p.provider().default_max_tokens());
            defaults.max().unwrap_or(0)
        }),
    };
    let picodollars = group
        .pairs()
        .iter()
        .filter_map(|p| prices.get(p.provider().name(), p.model()))
        .map(|price| {
            let prompt_price = price.input.max(price.cache_read).max(price.cache_write);
            prompt
                .saturating_mul(prompt_price)
                .saturating_add(completion.saturating_mul(price.output))
        })
        .max()
        .unwrap_or(0);
    Amount {
        tokens: prompt.saturating_add(completion),
        picodollars,
    }
}

fn usd(p: Picodollars) -> String {
    format!("${:.6}", p as f64 / PICODOLLARS_PER_USD as f64)
        .trim_end_matches('0')
        .trim_end_matches('.')
        .to_string()
}

pub(super) fn seconds(d: Duration) -> String {
    format!("{}s", d.as_millis().div_ceil(1000))
}

/// How a request's budgets and limits are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// By this process alone (no shared state).
    Local,
    /// Over every replica, through Redis: this replica's own count is checked first (it is
    /// never over when the shared one is not); requests per minute are left to the caller
    /// (`crate::shared::limits`, which falls back to [`Tab::check_local_rpm`]).
    Shared,
    /// The shared state cannot be reached: each party by its `outage` choice, as one of
    /// `replicas` replicas.
    Outage {
        /// Replica runs alive at the last exchange.
        replicas: u32,
    },
}

/// A party's limits and budget as `mode` enforces them here: during an outage, a share of
/// each cap (`outage: share`) or none (`outage: open`).
fn in_mode(party: Party<'_>, mode: Mode) -> Party<'_> {
    let Mode::Outage { replicas } = mode else {
        return party;
    };
    let (who, account, limits, budget) = party;
    if limits.outage == Outage::Open {
        let open = Limits {
            rpm: None,
            tpm: None,
            ..limits
        };
        return (who, account, open, None);
    }
    let n = u64::from(replicas.max(1));
    let share = |cap: u64| (cap / n).max(1);
    let limits = Limits {
        rpm: (limits.rpm)
            .and_then(|r| NonZeroU32::new(u32::try_from(share(u64::from(r.get()))).unwrap_or(1))),
        tpm: limits.tpm.map(share),
        ..limits
    };
    let budget = budget.map(|b| Budget {
        cap: Cap {
            tokens: b.cap.tokens.map(share),
            picodollars: b.cap.picodollars.map(share),
        },
        ..b
    });
    (who, account, limits, budget)
}

/// Admits `request` of `client` to `group`, or says why not.
pub(crate) fn admit(
    client: &Arc<Client>,
    group: &Group,
    request: &ChatRequest<'_>,
    prices: &Arc<Prices>,
    mode: Mode,
) -> Result<Tab, Refusal> {
    if !client.may_use(group.name()) {
        return Err(Refusal::Group {
            client: client.name.clone(),
            group: group.name().to_string(),
        });
    }
    let now = now_utc();
    let ask = worst_case(group, request, prices);
    let mut tab = Tab {
        client: client.clone(),
        group: group.name().to_string(),
        prices: prices.clone(),
        holds: Vec::new(),
        in_flight: Vec::new(),
        rate_headers: Vec::new(),
        ask,
        shared: None,
    };
    let parties: Vec<Party<'_>> = (parties(client).into_iter())
        .map(|p| in_mode(p, mode))
        .collect();
    for (who, account, limits, _) in &parties {
        let before = account.in_flight.fetch_add(1, Relaxed);
        tab.in_flight.push(Arc::clone(account));
        if let Some(max) = limits.parallel.filter(|&max| before >= max) {
            account.refused.fetch_add(1, Relaxed);
            return Err(Refusal::Limit {
                message: format!("{who} has {max} requests in flight, its limit (limits.parallel); retry when one ends"),
                retry_after: Duration::from_secs(1),
                headers: Vec::new(),
            });
        }
    }
    reserve_tpm(&mut tab, &parties, ask, now)?;
    reserve_budgets(&mut tab, &parties, ask, now)?;
    if mode != Mode::Shared {
        check_rpm(&mut tab, &parties)?;
    }
    Ok(tab)
}

/// Reserves the request's tokens in each party's minute, under its `tpm`.
fn reserve_tpm(
    tab: &mut Tab,
    parties: &[Party],
    ask: Amount,
    now: OffsetDateTime,
) -> Result<(), Refusal> {
    for (who, account, limits, _) in parties {
        if let Some(tpm) = limits.tpm {
            let mut window = lock(&account.tpm);
            let tokens = Amount {
                tokens: ask.tokens,
                picodollars: 0,
            };
            let cap = super::Cap {
                tokens: Some(tpm),
                picodollars: None,
            };
            let taken = window.used(Span::Minute, now).tokens + window.reserved().tokens;
            if let Err(Short::Tokens(_, taken)) = window.reserve(Span::Minute, cap, tokens, now) {
                drop(window);
                return Err(over_tpm(who, account, tpm, taken, ask.tokens, now));
            }
            drop(window);
            if !tab.rate_headers.iter().any(|(k, _)| k.ends_with("-tokens")) {
                let reset = until(Span::Minute, now).unwrap_or(Duration::from_secs(60));
                let left = tpm.saturating_sub(taken.saturating_add(ask.tokens));
                tab.rate_headers.extend(token_headers(tpm, left, reset));
            }
            tab.holds.push(Hold {
                account: Arc::clone(account),
                tpm: true,
                amount: tokens,
            });
        }
    }
    Ok(())
}

/// Reserves the request's worst case in each party's budget.
fn reserve_budgets(
    tab: &mut Tab,
    parties: &[Party],
    ask: Amount,
    now: OffsetDateTime,
) -> Result<(), Refusal> {
    for (who, account, _, budget) in parties {
        let Some(budget) = budget else { continue };
        let reserved = lock(&account.budget).reserve(budget.span, budget.cap, ask, now);
        if let Err(short) = reserved {
            account.refused.fetch_add(1, Relaxed);
            return Err(over_budget(who, budget, short, ask, now));
        }
        tab.holds.push(Hold {
            account: Arc::clone(account),
            tpm: false,
            amount: ask,
        });
    }
    Ok(())
}

/// Lets the request through each party's RPM limiter (last: it cannot be undone).
pub(super) fn check_rpm(tab: &mut Tab, parties: &[Party]) -> Result<(), Refusal> {
    for (who, account, limits, _) in parties {
        let Some(rpm) = limits.rpm else { continue };
        let Some(limiter) = account.limiter_for(rpm) else {
            continue;
        };
        match limiter.check() {
            Ok(passed) => {
                let reset = limiter.reset_after(passed.remaining);
                tab.passed_rpm(rpm.get(), passed.remaining, reset);
            }
            Err(wait) => return Err(over_rpm(who, account, rpm.get(), wait)),
        }
    }
    Ok(())
}

/// The refusal of a request over `who`'s requests per minute.
pub(super) fn over_rpm(who: &Who<'_>, account: &Account, rpm: u32, wait: Duration) -> Refusal {
    account.refused.fetch_add(1, Relaxed);
    Refusal::Limit {
        message: format!(
            "{who} is over its requests per minute (limits.rpm {rpm}); retry after {}",
            seconds(wait)
        ),
        retry_after: wait,
        headers: vec![
            ("x-ratelimit-limit-requests", rpm.to_string()),
            ("x-ratelimit-remaining-requests", "0".into()),
            ("x-ratelimit-reset-requests", seconds(wait)),
        ],
    }
}

/// A client or a team, as messages name it: `client 'team-a'`.
pub(super) struct Who<'a>(pub(super) &'static str, pub(super) &'a str);

impl Who<'_> {
    /// The name its account is kept (and shared) under: `client/<name>`, `team/<name>`.
    pub(super) fn account(&self) -> String {
        format!("{}/{}", self.0, self.1)
    }
}

impl std::fmt::Display for Who<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} '{}'", self.0, self.1)
    }
}

/// Who, the account, the limits and the budget of a client or a team.
pub(super) type Party<'a> = (Who<'a>, &'a Arc<Account>, Limits, Option<Budget>);

/// The client, then its team.
pub(super) fn parties(client: &Client) -> Vec<Party<'_>> {
    let mut out = vec![(
        Who("client", &client.name),
        &client.account,
        client.limits,
        client.budget,
    )];
    if let Some(team) = &client.team {
        out.push((
            Who("team", &team.name),
            &team.account,
            team.limits,
            team.budget,
        ));
    }
    out
}

pub(super) fn until(span: Span, now: OffsetDateTime) -> Option<Duration> {
    let next = span.next(now)?;
    Some(Duration::from_secs(
        u64::try_from(next - now.unix_timestamp())
            .unwrap_or(0)
            .max(1),
    ))
}

/// The refusal of a request that may take `ask` tokens when `taken` of `who`'s `tpm` are used
/// or reserved this minute.
pub(super) fn over_tpm(
    who: &Who<'_>,
    account: &Account,
    tpm: u64,
    taken: u64,
    ask: u64,
    now: OffsetDateTime,
) -> Refusal {
    account.refused.fetch_add(1, Relaxed);
    let reset = until(Span::Minute, now).unwrap_or(Duration::from_secs(60));
    Refusal::Limit {
        message: format!(
            "{who} is over its tokens per minute (limits.tpm {tpm}): {taken} used or reserved this minute, this request may take {ask}; retry after {}",
            seconds(reset)
        ),
        retry_after: reset,
        headers: token_headers(tpm, tpm.saturating_sub(taken), reset),
    }
}

pub(super) fn token_headers(
    limit: u64,
    remaining: u64,
    reset: Duration,
) -> Vec<(&'static str, String)> {
    vec![
        ("x-ratelimit-limit-tokens", limit.to_string()),
        ("x-ratelimit-remaining-tokens", remaining.to_string()),
        ("x-ratelimit-reset-tokens", seconds(reset)),
    ]
}

pub(super) fn over_budget(
    who: &Who<'_>,
    budget: &Budget,
    short: Short,
    ask: Amount,
    now: OffsetDateTime,
) -> Refusal {
    let reset = until(budget.span, now);
    let period = match budget.span {
        Span::Period(p) => format!("{p:?}").to_lowercase(),
        Span::Minute => "minute".into(),
    };
    let left = match short {
        Short::Tokens(cap, taken) => format!(
            "{} of {cap} tokens left this {period} (requests in flight included), and this request may use {}",
            cap.saturating_sub(taken),
            ask.tokens
        ),
        Short::Money(cap, taken) => format!(
            "{} of {} left this {period} (requests in flight included), and this request may cost {}",
            usd(cap.saturating_sub(taken)),
            usd(cap),
            usd(ask.picodollars)
        ),
    };
    let when = match (reset, budget.span.next(now)) {
        (Some(_), Some(at)) => OffsetDateTime::from_unix_timestamp(at)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .map_or_else(String::new, |t| format!("; it starts again at {t}")),
        _ => "; it is a total budget and does not start again".into(),
    };
    Refusal::Budget {
        message: format!("{who} is over its budget: {left}{when}"),
        reset,
    }
}

impl From<Refusal> for crate::RouterError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Group { client, group } => Self::Forbidden {
                client,
                group: crate::error::clip(&group),
            },
            Refusal::Budget { message, .. } => Self::QuotaExceeded(message),
            Refusal::Limit {
                message,
                retry_after,
                headers,
            } => Self::ClientRateLimited {
                message,
                retry_after,
                headers,
            },
        }
    }
}
