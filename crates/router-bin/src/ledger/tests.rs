//! The ledger's tests: request rows and their retention, schema upgrades, counters.

use super::*;

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "llm-router-ledger-{name}-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("ledger.sqlite3")
}

fn row(at_ms: i64, id: &str) -> RequestRow {
    RequestRow {
        at_ms,
        request_id: id.into(),
        group: "g".into(),
        requested_model: Some("g".into()),
        provider: Some("p".into()),
        model: Some("m".into()),
        key: Some("p#0".into()),
        prompt_tokens: 3,
        completion_tokens: 4,
        cache_read_tokens: 1,
        cache_write_tokens: 0,
        status: 200,
        latency_ms: 1.5,
        ttft_ms: Some(0.25),
        attempts: 2,
        stream: true,
        error: None,
        client: Some("team-a".into()),
        endpoint: "chat",
        picodollars: 1_250_000,
        cache: Some("miss"),
    }
}

#[test]
fn request_rows_are_kept_for_the_retention_only() {
    let path = temp("requests");
    let (ledger, saved) = Ledger::open(&path, true, Duration::from_secs(3600)).unwrap();
    assert!(saved.is_empty());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    ledger.record(row(now - 2 * 3600 * 1000, "too-old"));
    ledger.record(row(now, "fresh"));
    ledger.flush(&[], &[]).unwrap();
    let conn = ledger.conn.lock().unwrap();
    let ids: Vec<String> = conn
        .prepare("SELECT request_id FROM requests")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(ids, ["fresh"]);
    // With its client, endpoint, cost and what the response cache did.
    let (client, endpoint, cost, cache): (Option<String>, String, i64, Option<String>) = conn
        .query_row(
            "SELECT client, endpoint, picodollars, cache FROM requests",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(
        (client.as_deref(), endpoint.as_str(), cost, cache.as_deref()),
        (Some("team-a"), "chat", 1_250_000, Some("miss"))
    );
    // What was asked, by which key, how fast and in how many attempts.
    type Asked = (String, String, f64, i64, bool, Option<String>);
    let asked: Asked = conn
        .query_row(
            "SELECT requested_model, key, ttft_ms, attempts, stream, error FROM requests",
            [],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            },
        )
        .unwrap();
    assert_eq!(asked, ("g".into(), "p#0".into(), 0.25, 2, true, None));
    drop(conn);
    // Without the request log, rows are not even queued.
    let (quiet, _) = Ledger::open(&temp("quiet"), false, Duration::from_secs(60)).unwrap();
    quiet.record(row(now, "ignored"));
    assert!(quiet.pending.lock().unwrap().is_empty());
}

#[test]
fn every_queued_row_is_written_with_each_column_in_its_place() {
    // Two statements of many rows and a few rows alone, each row unlike the others.
    let (ledger, _) = Ledger::open(&temp("batches"), true, Duration::from_secs(3600)).unwrap();
    let now = now_ms();
    let rows: Vec<RequestRow> = (0..67u64)
        .map(|i| {
            let n = i as i64;
            let mut r = row(now - n, &format!("r{i}"));
            r.group = format!("g{i}").into();
            r.requested_model = (i % 3 != 0).then(|| format!("asked{i}").into());
            r.provider = Some(format!("p{i}").into());
            r.model = Some(format!("m{i}").into());
            r.key = Some(format!("p{i}#{i}").into());
            (r.prompt_tokens, r.completion_tokens) = (i, 1000 + i);
            (r.cache_read_tokens, r.cache_write_tokens) = (2000 + i, 3000 + i);
            r.status = 200 + i as u16;
            r.latency_ms = i as f64 + 0.5;
            r.ttft_ms = (i % 2 == 0).then_some(i as f64 / 4.0);
            r.attempts = 1 + i as usize % 4;
            r.stream = i % 2 == 1;
            r.error = (i % 5 == 0).then(|| format!("e{i}"));
            r.client = (i % 4 != 0).then(|| format!("c{i}"));
            r.endpoint = ["chat", "messages"][i as usize % 2];
            r.picodollars = 7 * i;
            r.cache = [None, Some("hit"), Some("miss")][i as usize % 3];
            r
        })
        .collect();
    for r in &rows {
        ledger.record(r.clone());
    }
    ledger.flush(&[], &[]).unwrap();
    let conn = ledger.conn.lock().unwrap();
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {} FROM requests ORDER BY id",
            rows::COLUMNS
        ))
        .unwrap();
    let read: Vec<String> = stmt
        .query_map([], |r| {
            let v: Vec<rusqlite::types::Value> = (0..rows::WIDTH)
                .map(|i| r.get(i))
                .collect::<Result<_, _>>()?;
            Ok(format!("{v:?}"))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    use rusqlite::types::Value::{Integer as I, Null, Real as R, Text as T};
    fn text<S: AsRef<str>>(s: &Option<S>) -> rusqlite::types::Value {
        s.as_ref()
            .map_or(rusqlite::types::Value::Null, |s| T(s.as_ref().into()))
    }
    let expected: Vec<String> = rows
        .iter()
        .map(|r| {
            let v = vec![
                I(r.at_ms),
                T(r.request_id.clone()),
                T(r.group.to_string()),
                text(&r.provider),
                text(&r.model),
                text(&r.key),
                I(r.prompt_tokens as i64),
                I(r.completion_tokens as i64),
                I(r.status.into()),
                R(r.latency_ms),
                I(r.cache_read_tokens as i64),
                I(r.cache_write_tokens as i64),
                text(&r.client),
                T(r.endpoint.into()),
                I(r.picodollars as i64),
                r.cache.map_or(Null, |c| T(c.into())),
                text(&r.requested_model),
                r.ttft_ms.map_or(Null, R),
                I(r.attempts as i64),
                I(r.stream.into()),
                text(&r.error),
            ];
            format!("{v:?}")
        })
        .collect();
    assert_eq!(read, expected);
}

#[test]
fn a_ledger_of_the_first_schema_is_upgraded_with_its_counters() {
    let path = temp("upgrade");
    let mut conn = Connection::open(&path).unwrap();
    Migrations::from_slice(&MIGRATIONS[..1])
        .to_latest(&mut conn)
        .unwrap();
    conn.execute(
        "INSERT INTO usage VALUES ('p', '0123456789abcdef', 'm', 'sk-…abcd', 10, 5, 15, 2, 1, 0)",
        [],
    )
    .unwrap();
    drop(conn);
    let (_, saved) = Ledger::open(&path, false, Duration::from_secs(60)).unwrap();
    assert_eq!(
        (
            saved[0].total_tokens,
            saved[0].requests,
            saved[0].cache_read_tokens
        ),
        (15, 2, 0)
    );
    // The masked key written then is the masked key now; its id was never saved.
    assert_eq!(
        (saved[0].key_masked.as_str(), saved[0].key_id.as_deref()),
        ("sk-…abcd", None)
    );
}

#[test]
fn counters_round_trip_and_a_newer_schema_is_refused() {
    let path = temp("counters");
    let (ledger, _) = Ledger::open(&path, false, Duration::from_secs(60)).unwrap();
    let saved_row = UsageRecord {
        provider: "p".into(),
        key_id: Some("p#0".into()),
        key_masked: "sk-…abcd".into(),
        key_fingerprint: "0123456789abcdef".into(),
        model: "m".into(),
        prompt_tokens: 10,
        completion_tokens: 5,
        total_tokens: 15,
        cache_read_tokens: 4,
        cache_write_tokens: 2,
        requests: 2,
        errors: 1,
        live: None,
    };
    let record = UsageRecord {
        live: Some(router_core::PairState {
            state: "closed".into(),
            breaker: "closed".into(),
            ..Default::default()
        }),
        ..saved_row.clone()
    };
    ledger.flush(std::slice::from_ref(&record), &[]).unwrap();
    // A key the config no longer names keeps the id it was last saved with.
    let unnamed = UsageRecord {
        key_id: None,
        requests: 3,
        ..record.clone()
    };
    ledger.flush(std::slice::from_ref(&unnamed), &[]).unwrap();
    drop(ledger);
    let saved = read(&path).unwrap();
    assert_eq!(
        saved,
        [UsageRecord {
            requests: 3,
            ..saved_row
        }]
    );
    let conn = Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = Ledger::open(&path, false, Duration::from_secs(60))
        .err()
        .unwrap();
    assert!(err.contains("schema version 99 is newer"), "{err}");
}
