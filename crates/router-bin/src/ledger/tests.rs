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
