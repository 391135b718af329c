//! Clients' and teams' budgets and tokens-per-minute limits shared by the replicas: a
//! request's worst case is reserved in Redis at admission (`budgets.lua`, one atomic call for
//! the client and its team), and what it used is counted and its reservation given back by
//! the sync task's next exchange (`settle.lua`). Money is counted there in nanodollars,
//! rounded up (reservations and use alike) and caps rounded down, so the shared count never
//! falls below the exact one. When Redis cannot answer in time, this replica's own windows
//! (which admission checked first) decide.

use super::Handle;
use crate::tenants::{Refusal, Tab};
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

static RESERVE: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(include_str!("budgets.lua")));
static SETTLE: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(include_str!("settle.lua")));

/// Picodollars as nanodollars, rounded up.
pub(crate) fn nano_up(picodollars: u64) -> u64 {
    picodollars.div_ceil(1000)
}

/// Reserves `tab`'s request in its parties' shared windows, or says which is full.
pub(crate) async fn reserve(handle: &Handle, tab: &mut Tab, request: u64) -> Result<(), Refusal> {
    let asks = tab.shared_asks();
    if asks.is_empty() {
        return Ok(());
    }
    let now = super::unix_ms();
    let mut invocation = RESERVE.prepare_invoke();
    invocation
        .arg(&handle.prefix)
        .arg(&handle.run)
        .arg(request)
        .arg(now)
        .arg(asks.len());
    for ask in &asks {
        let (start, cap_t, cap_n) = match ask.budget {
            Some((start, budget)) => (
                start,
                budget.cap.tokens.map_or(-1, signed),
                budget.cap.picodollars.map_or(-1, |p| signed(p / 1000)),
            ),
            None => (-1, -1, -1),
        };
        let (tpm, minute) = ask.tpm.map_or((-1, -1), |(tpm, m)| (signed(tpm), m));
        invocation
            .arg(&ask.name)
            .arg(start)
            .arg(cap_t)
            .arg(cap_n)
            .arg(tpm)
            .arg(minute)
            .arg(ask.amount.tokens)
            .arg(nano_up(ask.amount.picodollars));
    }
    let stem = format!("r:{}:{request}:", handle.run);
    let mut connection = handle.connection.clone();
    let call = invocation.invoke_async::<Vec<i64>>(&mut connection);
    let answer = match tokio::time::timeout(handle.timeout, call).await {
        Ok(Ok(answer)) => answer,
        outcome => {
            let why = match outcome {
                Ok(Err(e)) => e.to_string(),
                _ => "no answer in time".into(),
            };
            tracing::debug!("shared budgets: Redis gave {why}; this replica's own windows decide");
            // The call may have run: its reservations go with the request's.
            tab.hold_shared(handle.settlements.clone(), &asks, Some(stem));
            return Ok(());
        }
    };
    match answer.as_slice() {
        [0, left @ ..] => {
            tab.hold_shared(handle.settlements.clone(), &asks, Some(stem));
            tab.shared_tokens_left(&asks, left);
            Ok(())
        }
        [party, what, cap, taken, ..] => {
            let index = usize::try_from(party - 1).unwrap_or(0);
            let unsigned = |v: i64| u64::try_from(v).unwrap_or(0);
            Err(tab.shared_refusal(&asks, index, *what, unsigned(*cap), unsigned(*taken)))
        }
        _ => Ok(()),
    }
}

fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// What one party's requests used in one budget window and one minute, not yet counted in
/// Redis.
#[derive(Debug, Default, Clone, Copy)]
struct Used {
    tokens: u64,
    nano: u64,
    minute_tokens: u64,
}

/// Use waiting to be counted, by (party, budget window start, minute start).
type UsedBy = HashMap<(String, i64, i64), Used>;

/// What this replica's requests used and the reservations they gave back, waiting for the next
/// exchange; kept (and added to) while Redis is away, so nothing counted is lost.
#[derive(Debug, Default)]
pub(crate) struct Settlements {
    used: Mutex<UsedBy>,
    /// (party, reservation field stem `r:<holder>:<request>:`).
    released: Mutex<Vec<(String, String)>>,
}

impl Settlements {
    /// `party` used `tokens` and `picodollars` in the budget window starting at `budget` and
    /// the minute starting at `minute` (`-1`: none of that kind).
    pub(crate) fn used(
        &self,
        party: &str,
        budget: i64,
        minute: i64,
        tokens: u64,
        picodollars: u64,
    ) {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        let entry = used.entry((party.to_string(), budget, minute)).or_default();
        if budget >= 0 {
            entry.tokens = entry.tokens.saturating_add(tokens);
            entry.nano = entry.nano.saturating_add(nano_up(picodollars));
        }
        if minute >= 0 {
            entry.minute_tokens = entry.minute_tokens.saturating_add(tokens);
        }
    }

    /// The reservation `stem` (`r:<holder>:<request>:`) in `party`'s windows goes.
    pub(crate) fn release(&self, party: &str, stem: &str) {
        let mut released = self.released.lock().unwrap_or_else(|p| p.into_inner());
        released.push((party.to_string(), stem.to_string()));
    }

    fn take(&self) -> (UsedBy, Vec<(String, String)>) {
        let used = std::mem::take(&mut *self.used.lock().unwrap_or_else(|p| p.into_inner()));
        let released =
            std::mem::take(&mut *self.released.lock().unwrap_or_else(|p| p.into_inner()));
        (used, released)
    }

    /// Puts back what a failed exchange could not send.
    fn restore(&self, used: UsedBy, released: Vec<(String, String)>) {
        let mut mine = self.used.lock().unwrap_or_else(|p| p.into_inner());
        for (key, u) in used {
            let entry = mine.entry(key).or_default();
            entry.tokens = entry.tokens.saturating_add(u.tokens);
            entry.nano = entry.nano.saturating_add(u.nano);
            entry.minute_tokens = entry.minute_tokens.saturating_add(u.minute_tokens);
        }
        drop(mine);
        let mut back = self.released.lock().unwrap_or_else(|p| p.into_inner());
        back.extend(released);
    }

    /// Sends what is waiting; on failure keeps it for the next time. Releases of an earlier
    /// holder go too: a reservation whose call timed out before an outage may have run, and
    /// is given back now rather than when its holder stops being alive. (One that runs
    /// later still, from a connection Redis had not read yet, goes with its holder.) They
    /// are few: a request admitted during an outage reserves nothing in Redis.
    pub(crate) async fn flush(
        &self,
        connection: &mut redis::aio::ConnectionManager,
        prefix: &str,
    ) -> redis::RedisResult<()> {
        let (used, released) = self.take();
        if used.is_empty() && released.is_empty() {
            return Ok(());
        }
        let mut invocation = SETTLE.prepare_invoke();
        invocation.arg(prefix).arg(used.len());
        for ((party, budget, minute), u) in &used {
            invocation
                .arg(party)
                .arg(budget)
                .arg(u.tokens)
                .arg(u.nano)
                .arg(minute)
                .arg(u.minute_tokens);
        }
        for (party, stem) in &released {
            invocation.arg(party).arg(stem);
        }
        match invocation.invoke_async::<i64>(connection).await {
            Ok(_) => Ok(()),
            Err(e) => {
                self.restore(used, released);
                Err(e)
            }
        }
    }
}
