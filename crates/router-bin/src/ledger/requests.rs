//! The request log read back: the latest request rows, filtered by group, status and client,
//! for `GET /admin/requests` and the dashboard's request log.

use super::Ledger;
use rusqlite::types::Value as Sql;
use serde_json::{json, Value};

/// Most rows one call returns.
pub const MAX_ROWS: usize = 1000;

/// Which rows: each filter is optional.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RequestFilter {
    /// The group (`-` for requests that named none).
    pub group: Option<String>,
    /// A status (`404`), a class (`4xx`), or `error` (any but 2xx).
    pub status: Option<String>,
    /// The named client.
    pub client: Option<String>,
    /// How many rows, the latest first (at most [`MAX_ROWS`]).
    pub limit: usize,
}

impl RequestFilter {
    /// The filter a query string asks for (`group=g&status=4xx&client=c&limit=50`); a status
    /// that is none of its forms is an error that says what it may be.
    pub fn from_query(query: Option<&str>) -> Result<Self, String> {
        let mut filter = Self {
            limit: 100,
            ..Self::default()
        };
        for (name, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let value = value.trim().to_string();
            if value.is_empty() {
                continue;
            }
            match name.as_ref() {
                "group" => filter.group = Some(value),
                "client" => filter.client = Some(value),
                "status" => {
                    status_clause(&value)?;
                    filter.status = Some(value);
                }
                "limit" => {
                    filter.limit = value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_ROWS).contains(n))
                        .ok_or(format!("limit must be a number from 1 to {MAX_ROWS}"))?;
                }
                other => {
                    return Err(format!(
                        "unknown filter '{other}': the filters are group, status, client and limit"
                    ))
                }
            }
        }
        Ok(filter)
    }
}

/// The SQL condition on `status` for a status filter, and its bounds.
fn status_clause(status: &str) -> Result<(i64, i64), String> {
    let bad = || {
        format!(
            "status '{status}' is none of: a code (404), a class (4xx) or 'error' (any but 2xx)"
        )
    };
    if status == "error" {
        return Ok((-1, -1));
    }
    if let Some(class) = status.strip_suffix("xx") {
        let c: i64 = class
            .parse()
            .ok()
            .filter(|c| (1..=5).contains(c))
            .ok_or_else(bad)?;
        return Ok((c * 100, c * 100 + 99));
    }
    let code: i64 = status
        .parse()
        .ok()
        .filter(|c| (100..=599).contains(c))
        .ok_or_else(bad)?;
    Ok((code, code))
}

impl Ledger {
    /// The latest request rows that `filter` lets through, newest first. Blocking: call it off
    /// the async threads.
    pub fn requests(&self, filter: &RequestFilter) -> Result<Vec<Value>, String> {
        let mut sql = String::from(
            "SELECT at_ms, request_id, grp, requested_model, provider, model, key, status,
                    latency_ms, ttft_ms, attempts, stream, prompt_tokens, completion_tokens,
                    client, endpoint, picodollars, cache, error
             FROM requests WHERE 1 = 1",
        );
        let mut args: Vec<Sql> = Vec::new();
        if let Some(group) = &filter.group {
            sql.push_str(" AND grp = ?");
            args.push(Sql::Text(group.clone()));
        }
        if let Some(client) = &filter.client {
            sql.push_str(" AND client = ?");
            args.push(Sql::Text(client.clone()));
        }
        if let Some(status) = &filter.status {
            match status_clause(status)? {
                (-1, _) => sql.push_str(" AND (status < 200 OR status > 299)"),
                (lo, hi) => {
                    sql.push_str(" AND status BETWEEN ? AND ?");
                    args.extend([Sql::Integer(lo), Sql::Integer(hi)]);
                }
            }
        }
        sql.push_str(" ORDER BY at_ms DESC, id DESC LIMIT ?");
        args.push(Sql::Integer(filter.limit.min(MAX_ROWS) as i64));
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let failed = |e: rusqlite::Error| super::db_error(&self.path, e);
        let mut stmt = conn.prepare(&sql).map_err(failed)?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args), |r| {
                let picodollars: i64 = r.get(16)?;
                Ok(json!({
                    "at_ms": r.get::<_, i64>(0)?,
                    "request_id": r.get::<_, String>(1)?,
                    "group": r.get::<_, String>(2)?,
                    "requested_model": r.get::<_, Option<String>>(3)?,
                    "provider": r.get::<_, Option<String>>(4)?,
                    "model": r.get::<_, Option<String>>(5)?,
                    "key": r.get::<_, Option<String>>(6)?,
                    "status": r.get::<_, i64>(7)?,
                    "latency_ms": r.get::<_, f64>(8)?,
                    "ttft_ms": r.get::<_, Option<f64>>(9)?,
                    "attempts": r.get::<_, i64>(10)?,
                    "stream": r.get::<_, bool>(11)?,
                    "prompt_tokens": r.get::<_, i64>(12)?,
                    "completion_tokens": r.get::<_, i64>(13)?,
                    "client": r.get::<_, Option<String>>(14)?,
                    "endpoint": r.get::<_, String>(15)?,
                    "cost_usd": picodollars as f64 / 1e12,
                    "cache": r.get::<_, Option<String>>(17)?,
                    "error": r.get::<_, Option<String>>(18)?,
                }))
            })
            .map_err(failed)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_string_is_a_filter_or_says_what_is_wrong() {
        let f = RequestFilter::from_query(Some("group=g&status=4xx&client=c%201&limit=5")).unwrap();
        assert_eq!(
            f,
            RequestFilter {
                group: Some("g".into()),
                status: Some("4xx".into()),
                client: Some("c 1".into()),
                limit: 5
            }
        );
        assert_eq!(RequestFilter::from_query(None).unwrap().limit, 100);
        assert_eq!(
            RequestFilter::from_query(Some("status=")).unwrap().status,
            None
        );
        for (query, said) in [
            ("status=6xx", "status '6xx' is none of"),
            ("status=teapot", "status 'teapot' is none of"),
            ("limit=0", "limit must be a number from 1 to 1000"),
            ("colour=red", "unknown filter 'colour'"),
        ] {
            let e = RequestFilter::from_query(Some(query)).unwrap_err();
            assert!(e.contains(said), "{query}: {e}");
        }
    }
}
