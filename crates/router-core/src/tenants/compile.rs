//! Compiling `clients:`, `teams:` and `prices:` of a config, against the accounts that
//! outlive reloads. Every problem is returned with its key path.

use super::account::{Cap, Span};
use super::limiter::Limiter;
use super::prices::{Prices, PICODOLLARS_PER_USD};
use super::{lock, Accounts, Budget, Client, Limits, Team};
use crate::config::{BudgetConfig, ClientConfig, Config, LimitsConfig};
use crate::Secret;
use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::Arc;
use time::OffsetDateTime;

/// The tenants of one config.
#[derive(Debug, Default)]
pub(crate) struct Compiled {
    /// Named clients in config order.
    pub(crate) clients: Vec<Arc<Client>>,
    /// Teams in config order.
    pub(crate) teams: Vec<Arc<Team>>,
    /// Every key of a named client, with its client.
    pub(crate) keys: Vec<(Secret, Arc<Client>)>,
    /// The price table.
    pub(crate) prices: Arc<Prices>,
}

type Problems = Vec<(String, String)>;

/// Compiles the tenants of `config`. `taken` holds the keys already in use (`api_key`,
/// `api_keys`), which no named client may reuse.
pub(crate) fn compile(
    config: &Config,
    accounts: &Accounts,
    taken: &[Secret],
    problems: &mut Problems,
) -> Compiled {
    let prices = Arc::new(Prices::new(&config.prices, problems));
    let mut teams: HashMap<&str, Arc<Team>> = HashMap::new();
    for (i, t) in config.teams.iter().enumerate() {
        let path = format!("teams[{i}]");
        if t.name.is_empty() {
            problems.push((format!("{path}.name"), "team name is empty".into()));
            continue;
        }
        let budget = budget(&path, t.budget.as_ref(), problems);
        let limits = Limits {
            outage: t.outage,
            ..limits(&path, &t.limits, problems)
        };
        let account = accounts.get("team", &t.name);
        keep_limiter(&account, limits.rpm);
        let team = Arc::new(Team {
            name: t.name.clone(),
            budget,
            limits,
            account,
        });
        if teams.insert(t.name.as_str(), team.clone()).is_some() {
            problems.push((
                format!("{path}.name"),
                format!("duplicate team name '{}'", t.name),
            ));
        }
    }
    let groups: HashSet<&str> = config.groups.iter().map(|g| g.name.as_str()).collect();
    let mut seen_keys: HashSet<String> = taken.iter().map(|k| k.expose().to_string()).collect();
    let mut names = HashSet::new();
    let mut out = Compiled {
        prices,
        teams: (config.teams.iter())
            .filter_map(|t| teams.get(t.name.as_str()).cloned())
            .fold(Vec::new(), |mut seen: Vec<Arc<Team>>, t| {
                if !seen.iter().any(|s| Arc::ptr_eq(s, &t)) {
                    seen.push(t);
                }
                seen
            }),
        ..Compiled::default()
    };
    for (i, c) in config.clients.iter().enumerate() {
        let path = format!("clients[{i}]");
        if c.name.is_empty() {
            problems.push((format!("{path}.name"), "client name is empty".into()));
            continue;
        }
        if !names.insert(c.name.as_str()) {
            problems.push((
                format!("{path}.name"),
                format!("duplicate client name '{}'", c.name),
            ));
            continue;
        }
        let client = client(&path, c, &teams, &groups, accounts, problems);
        for (key_path, key) in keys(&path, c, problems) {
            if !seen_keys.insert(key.expose().to_string()) {
                problems.push((
                    key_path,
                    "this key is already another client's (or an api_key); each key names one client (the key is not shown)".into(),
                ));
                continue;
            }
            out.keys.push((key, client.clone()));
        }
        out.clients.push(client);
    }
    out
}

fn client(
    path: &str,
    c: &ClientConfig,
    teams: &HashMap<&str, Arc<Team>>,
    groups: &HashSet<&str>,
    accounts: &Accounts,
    problems: &mut Problems,
) -> Arc<Client> {
    for (gi, g) in c.groups.iter().flatten().enumerate() {
        if !groups.contains(g.as_str()) {
            problems.push((
                format!("{path}.groups[{gi}]"),
                format!("no group named '{g}'"),
            ));
        }
    }
    // A problem is reported and the rest still checked: the config is refused anyway.
    let team = c.team.as_ref().and_then(|name| {
        let team = teams.get(name.as_str()).cloned();
        if team.is_none() {
            problems.push((
                format!("{path}.team"),
                format!("no team named '{name}' in teams"),
            ));
        }
        team
    });
    let expires = c.expires.as_ref().and_then(|text| {
        let at = expiry(text);
        if at.is_none() {
            problems.push((
                format!("{path}.expires"),
                format!("'{text}' is not a day (2027-01-01) or a moment (2027-01-01T12:00:00Z)"),
            ));
        }
        at
    });
    let budget = budget(path, c.budget.as_ref(), problems);
    let limits = Limits {
        outage: c.outage,
        ..limits(path, &c.limits, problems)
    };
    let account = accounts.get("client", &c.name);
    keep_limiter(&account, limits.rpm);
    Arc::new(Client {
        name: c.name.clone(),
        groups: c.groups.clone(),
        budget,
        limits,
        expires,
        disabled: c.disabled,
        team,
        account,
    })
}

/// The client's keys (`key` and `keys`), each with its path; an empty one is a problem.
fn keys(path: &str, c: &ClientConfig, problems: &mut Problems) -> Vec<(String, Secret)> {
    let written = (c.key.iter().map(|k| (format!("{path}.key"), k)))
        .chain((c.keys.iter().enumerate()).map(|(i, k)| (format!("{path}.keys[{i}]"), k)));
    let mut out = Vec::new();
    for (key_path, k) in written {
        let text = k.as_str();
        if text.is_empty() {
            problems.push((key_path, "the key is empty (an unset variable?)".into()));
        } else if text.chars().any(char::is_control) {
            problems.push((key_path, "the key has a control character (a line break?); a key is one line of text (the key is not shown)".into()));
        } else if text
            .strip_prefix("sha256:")
            .is_some_and(|hex| hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            problems.push((
                key_path,
                "a hashed key is 'sha256:' and 64 hex digits (what `llm-router key hash` prints)"
                    .into(),
            ));
        } else {
            out.push((key_path, Secret::new(text)));
        }
    }
    if c.key.is_none() && c.keys.is_empty() {
        problems.push((
            format!("{path}.key"),
            format!("client '{}' has no key", c.name),
        ));
    }
    out
}

/// `2027-01-01` (that day's start, UTC) or an RFC 3339 moment.
fn expiry(text: &str) -> Option<OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(at);
    }
    let day = time::Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    );
    day.ok().map(|d| d.midnight().assume_utc())
}

fn budget(path: &str, b: Option<&BudgetConfig>, problems: &mut Problems) -> Option<Budget> {
    let b = b?;
    let picodollars = match b.usd {
        Some(usd) if !usd.is_finite() || usd < 0.0 => {
            problems.push((
                format!("{path}.budget.usd"),
                "a budget is a number of dollars, 0 or more".into(),
            ));
            return None;
        }
        Some(usd) => Some((usd * PICODOLLARS_PER_USD as f64).round() as u64),
        None => None,
    };
    if picodollars.is_none() && b.tokens.is_none() {
        problems.push((
            format!("{path}.budget"),
            "a budget needs usd, tokens or both".into(),
        ));
        return None;
    }
    Some(Budget {
        span: Span::Period(b.period),
        cap: Cap {
            tokens: b.tokens,
            picodollars,
        },
    })
}

fn limits(path: &str, l: &LimitsConfig, problems: &mut Problems) -> Limits {
    let mut zero = |name: &str| {
        problems.push((
            format!("{path}.limits.{name}"),
            format!("{name} must be at least 1 (remove it for no limit)"),
        ));
    };
    if l.rpm == Some(0) {
        zero("rpm");
    }
    if l.tpm == Some(0) {
        zero("tpm");
    }
    if l.parallel == Some(0) {
        zero("parallel");
    }
    Limits {
        rpm: l.rpm.and_then(NonZeroU32::new),
        tpm: l.tpm.filter(|&n| n > 0),
        parallel: l.parallel.filter(|&n| n > 0),
        outage: crate::config::Outage::default(),
    }
}

/// The account's RPM limiter for `rpm`: kept across a reload that does not change it.
fn keep_limiter(account: &super::Account, rpm: Option<NonZeroU32>) {
    let mut slot = lock(&account.rpm);
    match rpm {
        None => *slot = None,
        Some(rpm) if slot.as_ref().is_some_and(|l| l.rpm() == rpm) => {}
        Some(rpm) => *slot = Some(Arc::new(Limiter::new(rpm))),
    }
}
