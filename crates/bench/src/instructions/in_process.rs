//! What is counted in a process of its own, run to its end under callgrind twice with
//! different counts: selection, and the request log's rows. The difference between the two
//! runs, divided, is the figure; what each run does once (starting, opening) cancels.

use crate::callgrind::run_to_end;
use router_bin::ledger::{Ledger, RequestRow};
use router_core::{Format, Router, Source, TokenUsage};
use std::path::Path;
use std::time::Duration;

/// Selections counted: the difference between these two runs.
const PICKS: (u64, u64) = (200, 2200);
/// Request rows written: the difference between these two runs.
const ROWS: (u64, u64) = (100, 1100);

/// Instructions per pick and settlement.
pub(crate) fn selection(dir: &Path) -> Result<u64, String> {
    per_unit(dir, "--pick", PICKS)
}

/// Instructions per request row: queued, then written by a flush.
pub(crate) fn ledger_row(dir: &Path) -> Result<u64, String> {
    per_unit(dir, "--rows", ROWS)
}

/// Runs this program with `flag` and each of `counts`; instructions per unit of the difference.
fn per_unit(dir: &Path, flag: &str, counts: (u64, u64)) -> Result<u64, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let run = |n: u64| run_to_end(&me, &[flag.to_string(), n.to_string()], dir);
    let (few, many) = (run(counts.0)?, run(counts.1)?);
    Ok(many.saturating_sub(few) / (counts.1 - counts.0))
}

/// `n` picks and settlements in a group of 16 pairs (4 providers, 2 keys and 2 models each).
pub(crate) fn pick_loop(n: u64) {
    let mut yaml = String::from("groups:\n  - name: g\n    models:\n");
    for p in 0..4 {
        for m in 0..2 {
            yaml.push_str(&format!("      - {{provider: p{p}, name: m{m}}}\n"));
        }
    }
    yaml.push_str("providers:\n");
    for p in 0..4 {
        yaml.push_str(&format!(
            "  - {{name: p{p}, base_url: \"http://127.0.0.1:9/v1\", api_keys: [k{p}a, k{p}b]}}\n"
        ));
    }
    let router = match Router::from_source(&Source::from_text(yaml, Format::Yaml)) {
        Ok(r) => r,
        Err(e) => panic!("selection config: {e}"),
    };
    let usage = TokenUsage {
        prompt_tokens: 90,
        completion_tokens: 10,
        total_tokens: 100,
        ..TokenUsage::default()
    };
    for _ in 0..n {
        match router.pick("g", 100) {
            Ok(selection) => selection.succeed(usage),
            Err(e) => panic!("pick: {e}"),
        }
    }
}

/// `n` request rows, as a served chat completion leaves, queued in a new ledger and written
/// by one flush.
pub(crate) fn rows_loop(n: u64) {
    let dir = std::env::temp_dir().join(format!("instructions-rows-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        panic!("{}: {e}", dir.display());
    }
    let path = dir.join("ledger.sqlite3");
    let ledger = match Ledger::open(&path, true, Duration::from_secs(3600)) {
        Ok((ledger, _)) => ledger,
        Err(e) => panic!("ledger: {e}"),
    };
    let now_ms = match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => panic!("clock: {e}"),
    };
    let row = RequestRow {
        at_ms: now_ms,
        request_id: "0a1b2c3d4e5f60718293a4b5c6d7e8f9".into(),
        group: "g".into(),
        requested_model: Some("g".into()),
        provider: Some("up".into()),
        model: Some("bench-model".into()),
        key: Some("up#0".into()),
        prompt_tokens: 238,
        completion_tokens: 160,
        cache_read_tokens: 0,
        cache_write_tokens: 0,
        status: 200,
        latency_ms: 1.234,
        ttft_ms: Some(1.1),
        attempts: 1,
        stream: false,
        error: None,
        client: None,
        endpoint: "chat",
        picodollars: 0,
        cache: None,
    };
    for i in 0..n {
        ledger.record(RequestRow {
            at_ms: now_ms + i as i64,
            ..row.clone()
        });
    }
    if let Err(e) = ledger.flush(&[], &[]) {
        panic!("flush: {e}");
    }
    drop(ledger);
    let _ = std::fs::remove_dir_all(&dir);
}
