//! The named clients' and teams' accounts in the ledger: each one's budget window and its
//! spend by group, provider and model, written at every flush and read back at start, so a
//! budget holds across restarts.

use super::as_i64;
use router_core::tenants::{AccountRecord, Amount, Spend};
use rusqlite::{params, Connection, Transaction};

/// Migration 3: the tables.
pub(super) const SCHEMA: &str = "CREATE TABLE tenant_windows (
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        start INTEGER NOT NULL,
        tokens INTEGER NOT NULL,
        picodollars INTEGER NOT NULL,
        PRIMARY KEY (kind, name)
    );
    CREATE TABLE tenant_spend (
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        grp TEXT NOT NULL,
        provider TEXT NOT NULL,
        model TEXT NOT NULL,
        requests INTEGER NOT NULL,
        prompt_tokens INTEGER NOT NULL,
        completion_tokens INTEGER NOT NULL,
        cache_read_tokens INTEGER NOT NULL,
        cache_write_tokens INTEGER NOT NULL,
        picodollars INTEGER NOT NULL,
        PRIMARY KEY (kind, name, grp, provider, model)
    );";

fn as_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Writes every account (totals, not increments: a write replaces the last).
pub(super) fn write(tx: &Transaction<'_>, records: &[AccountRecord]) -> rusqlite::Result<()> {
    let mut window = tx.prepare_cached(
        "INSERT INTO tenant_windows (kind, name, start, tokens, picodollars)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (kind, name) DO UPDATE SET start = excluded.start,
            tokens = excluded.tokens, picodollars = excluded.picodollars",
    )?;
    let mut spend = tx.prepare_cached(
        "INSERT INTO tenant_spend (kind, name, grp, provider, model, requests, prompt_tokens,
            completion_tokens, cache_read_tokens, cache_write_tokens, picodollars)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (kind, name, grp, provider, model) DO UPDATE SET
            requests = excluded.requests, prompt_tokens = excluded.prompt_tokens,
            completion_tokens = excluded.completion_tokens,
            cache_read_tokens = excluded.cache_read_tokens,
            cache_write_tokens = excluded.cache_write_tokens,
            picodollars = excluded.picodollars
         WHERE tenant_spend.requests != excluded.requests
            OR tenant_spend.picodollars != excluded.picodollars",
    )?;
    for r in records {
        window.execute(params![
            r.kind,
            r.name,
            r.budget_start,
            as_i64(r.budget_used.tokens),
            as_i64(r.budget_used.picodollars),
        ])?;
        for ((group, provider, model), s) in &r.spend {
            spend.execute(params![
                r.kind,
                r.name,
                group,
                provider,
                model,
                as_i64(s.requests),
                as_i64(s.prompt_tokens),
                as_i64(s.completion_tokens),
                as_i64(s.cache_read_tokens),
                as_i64(s.cache_write_tokens),
                as_i64(s.picodollars),
            ])?;
        }
    }
    Ok(())
}

/// Reads every account saved.
pub(super) fn load(conn: &Connection) -> rusqlite::Result<Vec<AccountRecord>> {
    let mut records: Vec<AccountRecord> = Vec::new();
    let mut windows = conn.prepare(
        "SELECT kind, name, start, tokens, picodollars FROM tenant_windows ORDER BY kind, name",
    )?;
    let rows = windows.query_map([], |r| {
        Ok(AccountRecord {
            kind: r.get(0)?,
            name: r.get(1)?,
            budget_start: r.get(2)?,
            budget_used: Amount {
                tokens: as_u64(r.get(3)?),
                picodollars: as_u64(r.get(4)?),
            },
            spend: Vec::new(),
        })
    })?;
    for row in rows {
        records.push(row?);
    }
    let mut spend = conn.prepare(
        "SELECT kind, name, grp, provider, model, requests, prompt_tokens, completion_tokens,
                cache_read_tokens, cache_write_tokens, picodollars
         FROM tenant_spend ORDER BY kind, name, grp, provider, model",
    )?;
    let rows = spend.query_map([], |r| {
        let key: (String, String, String) = (r.get(2)?, r.get(3)?, r.get(4)?);
        let s = Spend {
            requests: as_u64(r.get(5)?),
            prompt_tokens: as_u64(r.get(6)?),
            completion_tokens: as_u64(r.get(7)?),
            cache_read_tokens: as_u64(r.get(8)?),
            cache_write_tokens: as_u64(r.get(9)?),
            picodollars: as_u64(r.get(10)?),
        };
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, key, s))
    })?;
    for row in rows {
        let (kind, name, key, s) = row?;
        match records
            .iter_mut()
            .find(|a| a.kind == kind && a.name == name)
        {
            Some(record) => record.spend.push((key, s)),
            None => records.push(AccountRecord {
                kind,
                name,
                spend: vec![(key, s)],
                ..AccountRecord::default()
            }),
        }
    }
    Ok(records)
}
