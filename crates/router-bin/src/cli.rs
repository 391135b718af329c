//! The commands of `llm-router` besides serving: `check`, `usage` and `key`, and how the
//! config to use is found. What they print is their output.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use crate::EMBEDDED_CONFIG;
use router_core::{Format, Router, Source};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Loads the router: the given file, else ./config.yaml, else the embedded example. The flag
/// says whether the embedded example is used.
pub fn load(config: Option<&Path>) -> Result<(Router, bool), String> {
    let path = match config {
        Some(p) => Some(p.to_path_buf()),
        None => {
            let default = PathBuf::from("config.yaml");
            default.exists().then_some(default)
        }
    };
    match path {
        Some(p) => Router::from_file(&p)
            .map(|r| (r, false))
            .map_err(|e| e.to_string()),
        None => Router::from_source(&Source::from_text(EMBEDDED_CONFIG, Format::Yaml))
            .map(|r| (r, true))
            .map_err(|e| e.to_string()),
    }
}

/// `check`: the warnings and the resolved routing table.
pub fn check(router: &Router) -> ExitCode {
    let snapshot = router.snapshot();
    for w in snapshot.warnings() {
        println!("warning: {w}");
    }
    // What the server reads at start, read here too: a certificate it could not serve.
    if let Some(files) = &snapshot.server().tls {
        if let Err(e) = files.load() {
            eprintln!("error: server.tls: {e}");
            return ExitCode::FAILURE;
        }
        println!("TLS certificate {} OK", files.cert_file.display());
    }
    print!("{}", snapshot.routing_table());
    let unpriced = snapshot.unpriced();
    if !unpriced.is_empty() {
        println!(
            "unpriced (counted at $0; add them under prices:): {}",
            unpriced.join(", ")
        );
    }
    match router.config_path() {
        Some(path) => println!("config OK: {}", path.display()),
        None => println!("config OK: the built-in example config (no file)"),
    }
    ExitCode::SUCCESS
}

const KEY_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A new client key from the OS's CSPRNG (rejection sampling keeps the 62 symbols uniform).
pub(crate) fn generate_key() -> Result<String, String> {
    let mut key = String::from("sk-llmr-");
    while key.len() < 48 {
        let mut bytes = [0u8; 64];
        getrandom::fill(&mut bytes).map_err(|e| format!("no randomness from the OS: {e}"))?;
        for b in bytes {
            // 248 = 4 × 62: bytes above it would favour the first symbols.
            if b < 248 && key.len() < 48 {
                key.push(char::from(KEY_ALPHABET[usize::from(b % 62)]));
            }
        }
    }
    Ok(key)
}

/// `key generate`: a new random client key.
pub fn key_generate() -> ExitCode {
    match generate_key() {
        Ok(key) => {
            println!("{key}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `key hash`: `sha256:<hex>` of `key`, or of the line on standard input.
pub fn key_hash(key: Option<String>) -> ExitCode {
    let key = match key {
        Some(k) => k,
        None => {
            let mut line = String::new();
            if let Err(e) = std::io::stdin().read_line(&mut line) {
                eprintln!("error: cannot read the key from standard input: {e}");
                return ExitCode::FAILURE;
            }
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    if key.is_empty() {
        eprintln!("error: no key given (pass it as an argument or on standard input)");
        return ExitCode::from(2);
    }
    use sha2::Digest;
    println!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(key.as_bytes()))
    );
    ExitCode::SUCCESS
}

/// `usage`: the counters in the ledger `ledger` (else the one the config names), as a table
/// or JSON; with `clients`, what each named client and team spent instead.
pub fn usage(router: &Router, json: bool, clients: bool, ledger: Option<PathBuf>) -> ExitCode {
    let snapshot = router.snapshot();
    let Some(path) = ledger.or_else(|| snapshot.ledger().path.clone()) else {
        eprintln!(
            "error: this config keeps no ledger (ledger.enabled is false, or there is no config \
             file); pass --ledger FILE to read one"
        );
        return ExitCode::from(2);
    };
    if !path.exists() {
        eprintln!(
            "error: no ledger at {} yet (a router writes it once it has served)",
            path.display()
        );
        return ExitCode::FAILURE;
    }
    let read = if clients {
        crate::ledger::read_tenants(&path).map(|r| (clients_json(&r), clients_table(&r)))
    } else {
        crate::ledger::read(&path).map(|r| {
            (
                serde_json::to_value(&r).unwrap_or_default(),
                usage_table(&r),
            )
        })
    };
    match read {
        Ok((value, _)) if json => println!("{value}"),
        Ok((_, table)) => print!("{table}"),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

/// Picodollars as dollars.
fn usd(picodollars: u64) -> f64 {
    picodollars as f64 / router_core::tenants::PICODOLLARS_PER_USD as f64
}

/// Each account's spend rows as JSON.
fn clients_json(records: &[router_core::tenants::AccountRecord]) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = records
        .iter()
        .flat_map(|r| {
            r.spend.iter().map(|((group, provider, model), s)| {
                serde_json::json!({
                    "kind": r.kind, "name": r.name, "group": group, "provider": provider,
                    "model": model, "requests": s.requests, "prompt_tokens": s.prompt_tokens,
                    "completion_tokens": s.completion_tokens,
                    "cache_read_tokens": s.cache_read_tokens,
                    "cache_write_tokens": s.cache_write_tokens, "usd": usd(s.picodollars),
                })
            })
        })
        .collect();
    serde_json::Value::Array(rows)
}

/// Each account's spend rows as a table.
fn clients_table(records: &[router_core::tenants::AccountRecord]) -> String {
    let header = [
        "kind",
        "name",
        "group",
        "provider",
        "model",
        "requests",
        "prompt",
        "completion",
        "cache_read",
        "cache_write",
        "usd",
    ];
    let rows: Vec<Vec<String>> = records
        .iter()
        .flat_map(|r| {
            r.spend.iter().map(|((group, provider, model), s)| {
                vec![
                    r.kind.clone(),
                    r.name.clone(),
                    group.clone(),
                    provider.clone(),
                    model.clone(),
                    s.requests.to_string(),
                    s.prompt_tokens.to_string(),
                    s.completion_tokens.to_string(),
                    s.cache_read_tokens.to_string(),
                    s.cache_write_tokens.to_string(),
                    format!("{:.6}", usd(s.picodollars)),
                ]
            })
        })
        .collect();
    aligned(&header, &rows, 5, "(no client spend recorded yet)")
}

/// The counters as a table.
fn usage_table(rows: &[router_core::UsageRecord]) -> String {
    let header = [
        "provider",
        "key",
        "masked",
        "model",
        "requests",
        "errors",
        "prompt",
        "completion",
        "total",
    ];
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.provider.clone(),
                r.key_id.clone().unwrap_or_else(|| "-".into()),
                r.key_masked.clone(),
                r.model.clone(),
                r.requests.to_string(),
                r.errors.to_string(),
                r.prompt_tokens.to_string(),
                r.completion_tokens.to_string(),
                r.total_tokens.to_string(),
            ]
        })
        .collect();
    aligned(&header, &table, 4, "(no usage recorded yet)")
}

/// Rows as an aligned table: the first `names` columns left, the numbers right; `empty` says
/// there are none.
fn aligned(header: &[&str], table: &[Vec<String>], names: usize, empty: &str) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in table {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let cells: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, &w))| {
                if i < names {
                    format!("{c:<w$}")
                } else {
                    format!("{c:>w$}")
                }
            })
            .collect();
        cells.join("  ") + "\n"
    };
    let mut out = line(header.to_vec());
    for row in table {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    if table.is_empty() {
        out.push_str(empty);
        out.push('\n');
    }
    out
}
