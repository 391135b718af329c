//! Tenants: named clients, each with its keys, the groups it may use, a budget and rate
//! limits, and the teams whose budgets and limits their clients share. A request of a named
//! client is admitted ([`admit`]) against both before it is forwarded, and the [`Tab`] it
//! gets is settled to the request's real cost when it ends.
//!
//! The configured clients are compiled into each [`crate::Snapshot`]; what they used (their
//! [`Account`]s) lives in the router's state, by name, and outlives reloads.

mod account;
mod admission;
mod compile;
mod limiter;
mod prices;
mod tab;

pub use account::{Amount, Cap, Span};
pub use admission::Refusal;
pub(crate) use admission::{admit, Mode};
pub(crate) use compile::compile;
pub use prices::{built_in_source, Picodollars, Price, Prices, PICODOLLARS_PER_USD};
pub use tab::{SharedAsk, Tab};

use account::Window;
use limiter::Limiter;
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use time::OffsetDateTime;

/// Rate limits of a client or a team.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Requests per minute.
    pub rpm: Option<NonZeroU32>,
    /// Tokens per calendar minute.
    pub tpm: Option<u64>,
    /// Requests in flight at once.
    pub parallel: Option<u32>,
    /// What the budget and limits do while the shared state cannot be reached.
    pub outage: crate::config::Outage,
}

/// A budget: its period and caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// When it starts again.
    pub span: Span,
    /// What it allows per period.
    pub cap: Cap,
}

/// What a client (or a team) used, by (group, provider, upstream model), since the router
/// started (or since the ledger it was restored from began).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Spend {
    /// Requests charged.
    pub requests: u64,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// Prompt tokens read from a cache.
    pub cache_read_tokens: u64,
    /// Prompt tokens written to a cache.
    pub cache_write_tokens: u64,
    /// Their cost.
    pub picodollars: Picodollars,
}

/// What a client's or a team's account holds that outlives the process: its budget window and
/// its spend, saved by the ledger and restored at start.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccountRecord {
    /// `client` or `team`.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Unix seconds of the start of the budget window `budget_used` belongs to.
    pub budget_start: i64,
    /// What that window used.
    pub budget_used: Amount,
    /// What it spent, by (group, provider, upstream model).
    pub spend: Vec<((String, String, String), Spend)>,
}

/// What one client or team has used, and its limiters: runtime state, kept across reloads
/// under its name.
#[derive(Debug, Default)]
pub struct Account {
    budget: Mutex<Window>,
    tpm: Mutex<Window>,
    rpm: Mutex<Option<Arc<Limiter>>>,
    /// The limiter of this replica's share of `rpm` during an outage of the shared state.
    rpm_share: Mutex<Option<Arc<Limiter>>>,
    in_flight: AtomicU32,
    refused: AtomicU64,
    spend: Mutex<HashMap<(String, String, String), Spend>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Account {
    /// The limiter for `rpm`: the configured one, or the one of a share of it (made anew when
    /// the share changes).
    pub(super) fn limiter_for(&self, rpm: NonZeroU32) -> Option<Arc<Limiter>> {
        let configured = lock(&self.rpm).clone()?;
        if configured.rpm() == rpm {
            return Some(configured);
        }
        let mut share = lock(&self.rpm_share);
        if share.as_ref().is_none_or(|l| l.rpm() != rpm) {
            *share = Some(Arc::new(Limiter::new(rpm)));
        }
        share.clone()
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Relaxed)
    }
    /// Requests refused by a limit or the budget.
    pub fn refused(&self) -> u64 {
        self.refused.load(Relaxed)
    }
    /// What the current budget period used, and what requests in flight reserve.
    pub fn budget_use(&self, budget: &Budget, now: OffsetDateTime) -> (Amount, Amount) {
        let w = lock(&self.budget);
        (w.used(budget.span, now), w.reserved())
    }
    /// Tokens this minute, used and reserved.
    pub fn tpm_use(&self, now: OffsetDateTime) -> (u64, u64) {
        let w = lock(&self.tpm);
        (w.used(Span::Minute, now).tokens, w.reserved().tokens)
    }
    /// Its budget window's start and what the window used, as saved (requests in flight are
    /// not saved: what they use is charged when they end).
    fn budget_saved(&self) -> (i64, Amount) {
        lock(&self.budget).saved()
    }

    /// What was spent, by (group, provider, upstream model).
    pub fn spend(&self) -> Vec<((String, String, String), Spend)> {
        let mut out: Vec<_> = lock(&self.spend)
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// A named client, as compiled from the config.
#[derive(Debug)]
pub struct Client {
    name: String,
    groups: Option<Vec<String>>,
    budget: Option<Budget>,
    limits: Limits,
    expires: Option<OffsetDateTime>,
    disabled: bool,
    team: Option<Arc<Team>>,
    account: Arc<Account>,
}

/// A team, as compiled from the config.
#[derive(Debug)]
pub struct Team {
    name: String,
    budget: Option<Budget>,
    limits: Limits,
    account: Arc<Account>,
}

impl Client {
    /// Its name (never its key).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The groups it may use (`None`: all).
    pub fn groups(&self) -> Option<&[String]> {
        self.groups.as_deref()
    }
    /// Whether it may use `group`.
    pub fn may_use(&self, group: &str) -> bool {
        self.groups
            .as_ref()
            .is_none_or(|g| g.iter().any(|n| n == group))
    }
    /// Its budget.
    pub fn budget(&self) -> Option<&Budget> {
        self.budget.as_ref()
    }
    /// Its limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
    /// When its keys stop working.
    pub fn expires(&self) -> Option<OffsetDateTime> {
        self.expires
    }
    /// Whether its keys are refused.
    pub fn disabled(&self) -> bool {
        self.disabled
    }
    /// Its team.
    pub fn team(&self) -> Option<&Arc<Team>> {
        self.team.as_ref()
    }
    /// What it used.
    pub fn account(&self) -> &Arc<Account> {
        &self.account
    }
    /// Why its keys are refused now, if they are: disabled, or expired.
    pub fn refused_because(&self, now: OffsetDateTime) -> Option<String> {
        if self.disabled {
            return Some("this API key is disabled".into());
        }
        match self.expires {
            Some(at) if now >= at => Some(format!(
                "this API key expired at {}",
                at.format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default()
            )),
            _ => None,
        }
    }
}

impl Team {
    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Its budget.
    pub fn budget(&self) -> Option<&Budget> {
        self.budget.as_ref()
    }
    /// Its limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
    /// What its clients used together.
    pub fn account(&self) -> &Arc<Account> {
        &self.account
    }
}

/// The accounts of every client and team ever configured, by name: router state.
#[derive(Debug, Default)]
pub(crate) struct Accounts {
    by_name: Mutex<HashMap<String, Arc<Account>>>,
}

impl Accounts {
    /// The account of `kind` (`client` or `team`) `name`, made on first use.
    pub(crate) fn get(&self, kind: &str, name: &str) -> Arc<Account> {
        lock(&self.by_name)
            .entry(format!("{kind}/{name}"))
            .or_default()
            .clone()
    }

    /// Every account, to be saved.
    pub(crate) fn records(&self) -> Vec<AccountRecord> {
        let all: Vec<(String, Arc<Account>)> = lock(&self.by_name)
            .iter()
            .map(|(k, a)| (k.clone(), a.clone()))
            .collect();
        let mut out: Vec<AccountRecord> = all
            .into_iter()
            .filter_map(|(key, account)| {
                let (kind, name) = key.split_once('/')?;
                let (budget_start, budget_used) = account.budget_saved();
                Some(AccountRecord {
                    kind: kind.to_string(),
                    name: name.to_string(),
                    budget_start,
                    budget_used,
                    spend: account.spend(),
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.kind, &a.name).cmp(&(&b.kind, &b.name)));
        out
    }

    /// Puts saved records back (at start, before any request): budget windows and spend.
    pub(crate) fn restore(&self, records: &[AccountRecord]) {
        for r in records {
            let account = self.get(&r.kind, &r.name);
            lock(&account.budget).restore(r.budget_start, r.budget_used);
            *lock(&account.spend) = r.spend.iter().cloned().collect();
        }
    }
}

/// The present moment in UTC.
pub(crate) fn now_utc() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}
