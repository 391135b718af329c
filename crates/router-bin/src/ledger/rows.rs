//! Writing the queued request rows: [`BATCH`] rows to an `INSERT` statement, the rest one by
//! one, their parameters bound directly. Each statement SQLite runs has a cost of its own
//! (starting it, halting it, opening its cursors): a row queued and written cost 14,226
//! instructions one to a statement, through `params!`, and 12,917 so (`instructions`,
//! `ledger_row`, measured side by side).

use super::{as_i64, RequestRow};
use rusqlite::{Connection, Statement, Transaction};

/// Rows written by one statement: its 21 × 32 parameters are well under SQLite's limit
/// (32,766).
const BATCH: usize = 32;

/// The columns of a request row, in the order [`bind`] binds them.
pub(super) const COLUMNS: &str = "at_ms, request_id, grp, provider, model, key, prompt_tokens,
    completion_tokens, status, latency_ms, cache_read_tokens, cache_write_tokens, client,
    endpoint, picodollars, cache, requested_model, ttft_ms, attempts, stream, error";

/// How many columns [`COLUMNS`] names.
pub(super) const WIDTH: usize = 21;

/// An `INSERT` of `rows` rows.
fn insert_sql(rows: usize) -> String {
    let one = format!("({})", vec!["?"; WIDTH].join(","));
    format!(
        "INSERT INTO requests ({COLUMNS}) VALUES {}",
        vec![one; rows].join(",")
    )
}

/// Prepares the statements [`write`] uses into `conn`'s cache, so the first flush to write
/// [`BATCH`] rows does not pay for parsing that statement (about a million instructions).
pub(super) fn prepare(conn: &Connection) -> rusqlite::Result<()> {
    for rows in [BATCH, 1] {
        conn.prepare_cached(&insert_sql(rows))?;
    }
    Ok(())
}

/// Writes `rows` in `tx`.
pub(super) fn write(tx: &Transaction<'_>, rows: &[RequestRow]) -> rusqlite::Result<()> {
    let mut batches = rows.chunks_exact(BATCH);
    if batches.len() > 0 {
        let mut insert = tx.prepare_cached(&insert_sql(BATCH))?;
        for batch in batches.by_ref() {
            for (i, row) in batch.iter().enumerate() {
                bind(&mut insert, i * WIDTH, row)?;
            }
            insert.raw_execute()?;
        }
    }
    let rest = batches.remainder();
    if !rest.is_empty() {
        let mut insert = tx.prepare_cached(&insert_sql(1))?;
        for row in rest {
            bind(&mut insert, 0, row)?;
            insert.raw_execute()?;
        }
    }
    Ok(())
}

/// Binds `row` to the parameters after the first `skip`.
fn bind(insert: &mut Statement<'_>, skip: usize, row: &RequestRow) -> rusqlite::Result<()> {
    let mut at = skip;
    let mut next = || {
        at += 1;
        at
    };
    insert.raw_bind_parameter(next(), row.at_ms)?;
    insert.raw_bind_parameter(next(), &row.request_id)?;
    insert.raw_bind_parameter(next(), &row.group)?;
    insert.raw_bind_parameter(next(), &row.provider)?;
    insert.raw_bind_parameter(next(), &row.model)?;
    insert.raw_bind_parameter(next(), &row.key)?;
    insert.raw_bind_parameter(next(), as_i64(row.prompt_tokens))?;
    insert.raw_bind_parameter(next(), as_i64(row.completion_tokens))?;
    insert.raw_bind_parameter(next(), row.status)?;
    insert.raw_bind_parameter(next(), row.latency_ms)?;
    insert.raw_bind_parameter(next(), as_i64(row.cache_read_tokens))?;
    insert.raw_bind_parameter(next(), as_i64(row.cache_write_tokens))?;
    insert.raw_bind_parameter(next(), &row.client)?;
    insert.raw_bind_parameter(next(), row.endpoint)?;
    insert.raw_bind_parameter(next(), as_i64(row.picodollars))?;
    insert.raw_bind_parameter(next(), row.cache)?;
    insert.raw_bind_parameter(next(), &row.requested_model)?;
    insert.raw_bind_parameter(next(), row.ttft_ms)?;
    insert.raw_bind_parameter(next(), as_i64(row.attempts as u64))?;
    insert.raw_bind_parameter(next(), row.stream)?;
    insert.raw_bind_parameter(next(), &row.error)?;
    debug_assert_eq!(at - skip, WIDTH);
    Ok(())
}
