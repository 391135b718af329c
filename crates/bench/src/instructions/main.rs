//! `instructions`: instructions executed by llm-router per request and per stream chunk, counted
//! by callgrind, and compared with the baseline in `crates/bench/instructions.txt`. Unlike
//! wall-clock figures, these counts barely move from run to run, so CI runs this and fails on a
//! clear regression (`scripts/test`).
//!
//! The release router runs under `valgrind --tool=callgrind`; the mock upstream and the client
//! run here, natively, so only the router's work is counted. Each scenario sends the same
//! request over one keep-alive connection: a warm-up, then callgrind's counters are zeroed, then
//! `--requests` requests, then the counters are dumped and divided. A per-chunk figure is the
//! difference between two streams of the same bytes in few and in many events. Selection is
//! counted in this process (`Router::pick` and its settlement), run under callgrind twice with
//! different counts, and so are the request log's rows, queued and written by a ledger flush.
//!
//! `cargo build --release -p router-bin -p bench && target/release/instructions`
//! (`--write` records the counts as the new baseline.)

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod callgrind;
mod in_process;
mod scenarios;

use clap::Parser;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(about = "Instructions per request and per stream chunk, counted by callgrind")]
pub(crate) struct Args {
    /// The llm-router binary (a release build).
    #[arg(long, default_value = "target/release/llm-router")]
    router: PathBuf,
    /// The baseline to compare with.
    #[arg(long, default_value = "crates/bench/instructions.txt")]
    baseline: PathBuf,
    /// Record these counts as the new baseline instead of comparing.
    #[arg(long)]
    write: bool,
    /// Fail when a count exceeds its baseline by more than this fraction.
    #[arg(long, default_value_t = 0.10)]
    tolerance: f64,
    /// Counted requests per scenario (after a warm-up).
    #[arg(long, default_value_t = 200)]
    requests: u64,
    /// Keep callgrind's dumps here (one per counted run, in the order of the table), for
    /// `callgrind_annotate`.
    #[arg(long)]
    pub(crate) keep: Option<PathBuf>,
    /// Internal: run this many selections in this process and exit (counted from outside).
    #[arg(long, hide = true)]
    pick: Option<u64>,
    /// Internal: write this many request rows to a new ledger and exit (counted from outside).
    #[arg(long, hide = true)]
    rows: Option<u64>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(n) = args.pick {
        in_process::pick_loop(n);
        return ExitCode::SUCCESS;
    }
    if let Some(n) = args.rows {
        in_process::rows_loop(n);
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let counts = match runtime.block_on(scenarios::count_all(&args)) {
        Ok(counts) => counts,
        Err(e) => {
            eprintln!("instructions: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.write {
        return match std::fs::write(&args.baseline, baseline_text(&counts)) {
            Ok(()) => {
                println!("wrote {}", args.baseline.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{}: {e}", args.baseline.display());
                ExitCode::FAILURE
            }
        };
    }
    let baseline = std::fs::read_to_string(&args.baseline)
        .map(|t| parse_baseline(&t))
        .unwrap_or_else(|e| {
            eprintln!("{}: {e} (record one with --write)", args.baseline.display());
            BTreeMap::new()
        });
    if compare(&counts, &baseline, args.tolerance) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// One measured figure.
pub(crate) struct Count {
    pub(crate) name: &'static str,
    pub(crate) what: &'static str,
    pub(crate) instructions: u64,
}

fn baseline_text(counts: &[Count]) -> String {
    let mut text = String::from(
        "# Instructions executed by the release llm-router, counted by callgrind\n\
         # (target/release/instructions; --write records a new baseline). name count\n",
    );
    for c in counts {
        text.push_str(&format!("{} {}\n", c.name, c.instructions));
    }
    text
}

fn parse_baseline(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, n) = l.split_once(' ')?;
            Some((name.to_string(), n.trim().parse().ok()?))
        })
        .collect()
}

/// Prints the table; false when any count is a regression beyond `tolerance`.
fn compare(counts: &[Count], baseline: &BTreeMap<String, u64>, tolerance: f64) -> bool {
    println!("| figure | instructions | baseline | change |\n|---|---|---|---|");
    let mut ok = true;
    for c in counts {
        let (base, change) = match baseline.get(c.name) {
            Some(&b) if b > 0 => (
                b.to_string(),
                (c.instructions as f64 / b as f64 - 1.0) * 100.0,
            ),
            _ => ("none".into(), 0.0),
        };
        let verdict = if change > tolerance * 100.0 {
            ok = false;
            " REGRESSION"
        } else if change < -tolerance * 100.0 {
            " (better: record it with --write)"
        } else {
            ""
        };
        println!(
            "| {} ({}) | {} | {base} | {change:+.1}%{verdict} |",
            c.name, c.what, c.instructions
        );
    }
    if !ok {
        eprintln!(
            "instruction counts grew by more than {:.0}% (see REGRESSION above); if the growth \
             is meant, record a new baseline with `target/release/instructions --write`",
            tolerance * 100.0
        );
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(name: &'static str, instructions: u64) -> Count {
        Count {
            name,
            what: "test",
            instructions,
        }
    }

    #[test]
    fn a_count_over_its_baseline_by_more_than_the_tolerance_fails() {
        let baseline = parse_baseline(&baseline_text(&[count("a", 1000), count("b", 2000)]));
        assert_eq!(baseline.get("a"), Some(&1000));
        assert_eq!(baseline.get("b"), Some(&2000));
        // Within the tolerance either way, or better: passes.
        assert!(compare(
            &[count("a", 1099), count("b", 1500)],
            &baseline,
            0.10
        ));
        // One figure 11% up: fails.
        assert!(!compare(
            &[count("a", 1000), count("b", 2220)],
            &baseline,
            0.10
        ));
        // A figure with no baseline yet passes (and says so).
        assert!(compare(&[count("c", 5)], &baseline, 0.10));
    }
}
