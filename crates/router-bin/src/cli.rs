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
    print!("{}", snapshot.routing_table());
    println!("config OK");
    ExitCode::SUCCESS
}

const KEY_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A new client key from the OS's CSPRNG (rejection sampling keeps the 62 symbols uniform).
fn generate_key() -> Result<String, String> {
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
/// or JSON.
pub fn usage(router: &Router, json: bool, ledger: Option<PathBuf>) -> ExitCode {
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
    let rows = match crate::ledger::read(&path) {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if json {
        match serde_json::to_string(&rows) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
        return ExitCode::SUCCESS;
    }
    print!("{}", usage_table(&rows));
    ExitCode::SUCCESS
}

/// The rows as an aligned table: names left, numbers right.
fn usage_table(rows: &[router_core::UsageRecord]) -> String {
    let header = [
        "provider",
        "key",
        "model",
        "requests",
        "errors",
        "prompt",
        "completion",
        "total",
    ];
    let table: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            [
                r.provider.clone(),
                r.key_id.clone(),
                r.model.clone(),
                r.requests.to_string(),
                r.errors.to_string(),
                r.prompt_tokens.to_string(),
                r.completion_tokens.to_string(),
                r.total_tokens.to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &table {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let cells: Vec<String> = cells
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (c, w))| {
                if i < 3 {
                    format!("{c:<w$}")
                } else {
                    format!("{c:>w$}")
                }
            })
            .collect();
        cells.join("  ") + "\n"
    };
    let mut out = line(header.to_vec());
    for row in &table {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    if table.is_empty() {
        out.push_str("(no usage recorded yet)\n");
    }
    out
}
