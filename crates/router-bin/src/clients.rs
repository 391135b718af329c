//! `GET /admin/clients`: each named client and team with its budget (used, reserved, left,
//! when it starts again), its limits with their current use, and what it spent by group,
//! provider and model.

use router_core::tenants::{
    Account, Amount, Budget, Client, Limits, Span, Team, PICODOLLARS_PER_USD,
};
use router_core::Snapshot;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Picodollars as dollars.
fn usd(picodollars: u64) -> f64 {
    picodollars as f64 / PICODOLLARS_PER_USD as f64
}

fn amount(a: Amount) -> Value {
    json!({"tokens": a.tokens, "usd": usd(a.picodollars)})
}

fn moment(unix: i64) -> Option<String> {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
}

fn budget(b: Option<&Budget>, account: &Account, now: OffsetDateTime) -> Value {
    let Some(b) = b else {
        return Value::Null;
    };
    let (used, reserved) = account.budget_use(b, now);
    let taken = |cap: Option<u64>, used: u64, reserved: u64| {
        cap.map(|c| c.saturating_sub(used.saturating_add(reserved)))
    };
    let period = match b.span {
        Span::Period(p) => serde_json::to_value(p).unwrap_or(Value::Null),
        Span::Minute => json!("minute"),
    };
    json!({
        "period": period,
        "tokens": b.cap.tokens,
        "usd": b.cap.picodollars.map(usd),
        "used": amount(used),
        "reserved": amount(reserved),
        "remaining": {
            "tokens": taken(b.cap.tokens, used.tokens, reserved.tokens),
            "usd": taken(b.cap.picodollars, used.picodollars, reserved.picodollars).map(usd),
        },
        "resets_at": b.span.next(now).and_then(moment),
    })
}

fn limits(l: &Limits, account: &Account, now: OffsetDateTime) -> Value {
    let (tpm_used, tpm_reserved) = account.tpm_use(now);
    json!({
        "rpm": l.rpm.map(|n| n.get()),
        "tpm": l.tpm,
        "parallel": l.parallel,
        "in_flight": account.in_flight(),
        "tokens_this_minute": {"used": tpm_used, "reserved": tpm_reserved},
        "refused": account.refused(),
    })
}

fn spend(account: &Account) -> (Value, u64) {
    let mut total = 0u64;
    let rows: Vec<Value> = account
        .spend()
        .into_iter()
        .map(|((group, provider, model), s)| {
            total = total.saturating_add(s.picodollars);
            json!({
                "group": group, "provider": provider, "model": model,
                "requests": s.requests,
                "prompt_tokens": s.prompt_tokens, "completion_tokens": s.completion_tokens,
                "cache_read_tokens": s.cache_read_tokens, "cache_write_tokens": s.cache_write_tokens,
                "usd": usd(s.picodollars),
            })
        })
        .collect();
    (Value::Array(rows), total)
}

fn client(c: &Client, now: OffsetDateTime) -> Value {
    let (rows, total) = spend(c.account());
    json!({
        "name": c.name(),
        "team": c.team().map(|t| t.name()),
        "groups": c.groups(),
        "disabled": c.disabled(),
        "expires": c.expires().and_then(|t| t.format(&Rfc3339).ok()),
        "budget": budget(c.budget(), c.account(), now),
        "limits": limits(c.limits(), c.account(), now),
        "spend_usd": usd(total),
        "spend": rows,
    })
}

fn team(t: &Team, now: OffsetDateTime) -> Value {
    let (rows, total) = spend(t.account());
    json!({
        "name": t.name(),
        "budget": budget(t.budget(), t.account(), now),
        "limits": limits(t.limits(), t.account(), now),
        "spend_usd": usd(total),
        "spend": rows,
    })
}

/// The named clients and the teams, as `GET /admin/clients` shows them.
pub(crate) fn report(snapshot: &Snapshot) -> Value {
    let now = OffsetDateTime::now_utc();
    json!({
        "clients": snapshot.clients().iter().map(|c| client(c, now)).collect::<Vec<_>>(),
        "teams": snapshot.teams().iter().map(|t| team(t, now)).collect::<Vec<_>>(),
    })
}

/// The clients' families, read at scrape time: spend, budget left, refusals, requests in
/// flight, by client name (and the same by team).
pub(crate) fn families(
    snapshot: &Snapshot,
) -> prometheus::Result<Vec<prometheus::proto::MetricFamily>> {
    use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec, Opts, Registry};
    let registry = Registry::new();
    let spend = GaugeVec::new(
        Opts::new(
            "llm_router_client_spend_usd",
            "What a named client (or team) spent, in US dollars, since its ledger began.",
        ),
        &["kind", "name"],
    )?;
    let left = GaugeVec::new(
        Opts::new("llm_router_client_budget_remaining_usd", "What a named client's (or team's) dollar budget has left this period, requests in flight included."),
        &["kind", "name"],
    )?;
    let refused = IntCounterVec::new(
        Opts::new(
            "llm_router_client_refusals_total",
            "Requests of a named client (or team) refused by a limit or the budget.",
        ),
        &["kind", "name"],
    )?;
    let in_flight = IntGaugeVec::new(
        Opts::new(
            "llm_router_client_in_flight",
            "Requests of a named client (or team) in flight.",
        ),
        &["kind", "name"],
    )?;
    let now = OffsetDateTime::now_utc();
    let clients =
        (snapshot.clients().iter()).map(|c| ("client", c.name(), c.account(), c.budget()));
    let teams = (snapshot.teams().iter()).map(|t| ("team", t.name(), t.account(), t.budget()));
    let parties: Vec<(&str, &str, &std::sync::Arc<Account>, Option<&Budget>)> =
        clients.chain(teams).collect();
    for (kind, name, account, budget) in parties {
        let labels = [kind, name];
        let total: u64 = account.spend().iter().map(|(_, s)| s.picodollars).sum();
        spend.with_label_values(&labels).set(usd(total));
        if let Some(b) = budget.filter(|b| b.cap.picodollars.is_some()) {
            let (used, reserved) = account.budget_use(b, now);
            let cap = b.cap.picodollars.unwrap_or(0);
            let rest = cap.saturating_sub(used.picodollars.saturating_add(reserved.picodollars));
            left.with_label_values(&labels).set(usd(rest));
        }
        refused.with_label_values(&labels).inc_by(account.refused());
        in_flight
            .with_label_values(&labels)
            .set(i64::from(account.in_flight()));
    }
    registry.register(Box::new(spend))?;
    registry.register(Box::new(left))?;
    registry.register(Box::new(refused))?;
    registry.register(Box::new(in_flight))?;
    Ok(registry.gather())
}
