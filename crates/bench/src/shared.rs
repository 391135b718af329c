//! What one setting of the router's config costs a request: the same config with and without
//! it, each in a fresh router on the pinned core, measured in turns (three each) so the
//! difference can be read against the run-to-run spread. Two such parts: sharing state through
//! Redis (its exchange is a task beside the server; no request waits for it), and the request
//! log (`ledger.request_log`, a row per request written in the ledger's flush).

use crate::load::*;
use crate::proxies::*;
use crate::system::*;
use crate::Args;
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A `redis-server` for the run, on the bench's cores, killed when dropped.
struct Redis(Child);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_redis(port: u16) -> Option<Redis> {
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    wait_port(port);
    Some(Redis(child))
}

/// Rounds of each config.
const ROUNDS: usize = 3;

pub(crate) async fn redis_cost(args: &Args, report: &mut String, dir: &Path, plain: &Path) {
    let _ = writeln!(report, "\n## With state shared through Redis\n");
    let port = free_port();
    let Some(_redis) = start_redis(port) else {
        let _ = writeln!(
            report,
            "redis-server could not be started (apt-get install redis-server); skipped.\n"
        );
        return;
    };
    let shared = dir.join("config-redis.yaml");
    let text = std::fs::read_to_string(plain).unwrap_or_default();
    let _ = std::fs::write(
        &shared,
        format!("{text}state:\n  redis: {{url: \"redis://127.0.0.1:{port}\"}}\n"),
    );
    let about = "The same config with and without `state.redis` (a local `redis-server`, default \
         `sync_interval` 200ms)";
    let variants = [("without Redis", plain), ("with Redis", shared.as_path())];
    in_turns(args, report, dir, about, &variants).await;
}

/// What the request log costs: the bench's config (`ledger: {enabled: true}`, the request log
/// on by default) and the same with `request_log: false`.
pub(crate) async fn request_log_cost(args: &Args, report: &mut String, dir: &Path, plain: &Path) {
    let _ = writeln!(report, "\n## With and without the request log\n");
    let text = std::fs::read_to_string(plain).unwrap_or_default();
    let on = "ledger: {enabled: true}";
    if !text.contains(on) {
        let _ = writeln!(report, "the bench's config has no `{on}`; skipped.\n");
        return;
    }
    let off = dir.join("config-no-request-log.yaml");
    let _ = std::fs::write(
        &off,
        text.replace(on, "ledger: {enabled: true, request_log: false}"),
    );
    let about = "The same config (the ledger on) with `ledger.request_log` at its default (on) \
         and off";
    let variants = [
        ("request log on", plain),
        ("request log off", off.as_path()),
    ];
    in_turns(args, report, dir, about, &variants).await;
}

/// Each of `variants` (a name and a config) in a fresh router, in turns, `ROUNDS` times: CPU
/// per 1 KB request at saturation and at the fixed rate, one table row each.
async fn in_turns(
    args: &Args,
    report: &mut String,
    dir: &Path,
    about: &str,
    variants: &[(&str, &Path)],
) {
    let _ = writeln!(
        report,
        "{about}, each in a fresh router, in turns. CPU per 1 KB request, from /proc, at \
         saturation ({} connections, {} s) and at {} req/s ({} s).\n",
        args.concurrency,
        args.seconds,
        args.rate,
        args.seconds.min(5)
    );
    let _ = writeln!(
        report,
        "| round | config | req/s at saturation | CPU per request | p99 at {} req/s | CPU per request at {} req/s | errors |\n|---|---|---|---|---|---|---|",
        args.rate, args.rate
    );
    let body = chat_body(1024, false);
    for round in 1..=ROUNDS {
        for &(name, config) in variants {
            let router = start_router(&args.router, dir, config, args.proxy_core);
            let _ = saturate(&router.url, &body, args.concurrency, 1).await;
            let cpu0 = cpu_time(router.pid);
            let sat = saturate(&router.url, &body, args.concurrency, args.seconds).await;
            let sat_cpu = cpu_us_per(router.pid, cpu0, sat.ok + sat.errors);
            crate::requests::settle().await;
            let cpu0 = cpu_time(router.pid);
            let mut fixed = fixed_rate(&router.url, &body, args.rate, args.seconds.min(5)).await;
            let fixed_cpu = cpu_us_per(router.pid, cpu0, fixed.ok + fixed.errors);
            let _ = writeln!(
                report,
                "| {round} | {name} | {:.0} | {sat_cpu:.1} µs | {} µs | {fixed_cpu:.1} µs | {} |",
                sat.rps(),
                us(fixed.percentile(0.99)),
                sat.errors + fixed.errors
            );
            eprintln!("done: round {round} {name}");
        }
    }
}
