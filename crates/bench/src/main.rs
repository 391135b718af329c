//! `loadbench`: the same load, side by side, straight to the mock upstream, through nginx (a
//! reference reverse proxy: 1 worker, upstream keepalive, buffering off), through a bare hyper
//! proxy (`bareproxy`: the router's HTTP stack with no router logic) and through llm-router. The
//! proxy under test runs alone on one pinned core; the mock upstream and the load generator share
//! the other. Reported: requests/s and latency at saturation and at a fixed rate, the proxy's CPU
//! time per request (from /proc), its RSS idle and with 1,000 open streams, its CPU per stream
//! (with and without 10 ms between events), what gzip and brotli cost the router, the time to a
//! stream's first byte, 10,000 concurrent streams, and throughput while the router reloads its
//! config every second; then, each through a fresh router, bursts of large request bodies (is the
//! memory given back?) and the soak (mixed traffic, upstream faults, a reload every 10 s: nothing
//! lost, tokens counted against the mock's, RSS by minute); and what the request log and sharing
//! state through Redis cost a request (fresh routers with and without each, in turns). Writes Markdown to
//! stdout or `--out`.
//!
//! `cargo build --release -p router-bin -p bench && target/release/loadbench --out docs/benchmarks.md`

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod costs;
mod load;
mod parts;
mod proxies;
mod requests;
mod shared;
mod sink;
mod soak;
mod streams;
mod system;

use clap::Parser;
use costs::*;
use mock_upstream::MockUpstream;
use parts::*;
use proxies::*;
use requests::requests;
use std::fmt::Write as _;
use std::path::PathBuf;
use system::*;

#[derive(Parser)]
#[command(about = "Load benchmark: direct, through nginx, through llm-router")]
pub(crate) struct Args {
    /// Seconds per saturation run.
    #[arg(long, default_value_t = 10)]
    pub(crate) seconds: u64,
    /// Concurrent connections at saturation.
    #[arg(long, default_value_t = 64)]
    pub(crate) concurrency: usize,
    /// Rounds of the request runs: each target is measured this many times, in turns with the
    /// others, and the median is reported with the range (this VM's figures move 20–40% from
    /// one run to the next).
    #[arg(long, default_value_t = 3)]
    pub(crate) rounds: usize,
    /// Requests per second for the fixed-rate run (a moderate rate, where a proxy's wake-ups
    /// and timers show more than at saturation).
    #[arg(long, default_value_t = 500)]
    pub(crate) rate: u64,
    /// The llm-router binary.
    #[arg(long, default_value = "target/release/llm-router")]
    pub(crate) router: PathBuf,
    /// The bare hyper proxy (the router's HTTP stack without the router; skipped if missing).
    #[arg(long, default_value = "target/release/bareproxy")]
    pub(crate) bare: PathBuf,
    /// The core the proxy under test is pinned to (the bench takes the others).
    #[arg(long, default_value_t = 1)]
    pub(crate) proxy_core: usize,
    /// Skip nginx (when it cannot be installed).
    #[arg(long)]
    pub(crate) no_nginx: bool,
    /// Concurrent streams for the big stream run.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) many_streams: usize,
    /// Only the non-streamed 1 KB runs (for comparing builds quickly).
    #[arg(long)]
    pub(crate) quick: bool,
    /// Trace every request: the router sends its spans to an OTLP sink the bench runs
    /// (`telemetry: {otlp_endpoint, sample_ratio: 1}`).
    #[arg(long)]
    pub(crate) traced: bool,
    /// Only these parts, comma-separated: requests, streams, compression, ttfb, memory, many,
    /// reload, requestlog, redis, bodies, soak.
    #[arg(long, value_delimiter = ',')]
    pub(crate) only: Vec<String>,
    /// Seconds of the soak (steady rate, upstream faults, reloads; 0 skips it).
    #[arg(long, default_value_t = 600)]
    pub(crate) soak_seconds: u64,
    /// Requests per second during that run (half of them streamed).
    #[arg(long, default_value_t = 500)]
    pub(crate) soak_rate: u64,
    /// Send this `Accept-Encoding` with every request (`gzip, deflate`, as the openai SDK does;
    /// `br`), so the router compresses what it would for such clients.
    #[arg(long)]
    pub(crate) accept_encoding: Option<String>,
    /// Write the Markdown report here (else to stdout).
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args = Args::parse();
    load::accept_encoding(args.accept_encoding.as_deref());
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let bench_cores: Vec<usize> = (0..cores).filter(|c| *c != args.proxy_core).collect();
    pin_self(&bench_cores);
    let fds = raise_fd_limit();
    let dir = std::env::temp_dir().join(format!("loadbench-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let mock = MockUpstream::start()
        .await
        .unwrap_or_else(|e| panic!("mock upstream: {e}"));
    mock.keep_last_request_only();
    let direct = format!("{}/chat/completions", mock.base_url());
    let sink = sink::start_if(args.traced).await;
    let config = router_config(&dir, &mock, sink.as_ref().map(|(url, _)| url.as_str()));

    let mut report = String::new();
    let _ = writeln!(report, "# Benchmarks\n");
    let _ =
        writeln!(
        report,
        "Generated by `scripts/bench` (which runs `target/release/loadbench` and the criterion \
         benchmarks) on {} (Linux; the proxy under test pinned to core {}, the mock upstream and \
         the load generator on the other core{}; open-file limit {fds}){}.\n",
        machine(),
        args.proxy_core,
        if cores > 2 { "s" } else { "" },
        args.accept_encoding
            .as_ref()
            .map_or(String::new(), |c| format!("; every request sends `Accept-Encoding: {c}`")),
    );

    let mut proxies: Vec<Proxy> = Vec::new();
    if !args.no_nginx {
        match start_nginx(&dir, &mock, args.proxy_core) {
            Some(p) => proxies.push(p),
            None => eprintln!("nginx could not be started (apt-get install nginx); skipped"),
        }
    }
    match start_bare(&args.bare, &mock, args.proxy_core) {
        Some(p) => proxies.push(p),
        None => eprintln!(
            "{} could not be started (cargo build --release -p bench); skipped",
            args.bare.display()
        ),
    }
    let router = start_router(&args.router, &dir, &config, args.proxy_core);
    let router_pid = router.pid;
    let idle_rss = rss_kib(router_pid);
    proxies.push(router);

    let want = |part: &str| args.only.is_empty() || args.only.iter().any(|p| p == part);
    let router_url = proxies
        .iter()
        .find(|p| p.pid == router_pid)
        .map(|p| p.url.clone())
        .unwrap_or_default();

    if want("requests") || args.quick {
        requests(&args, &mut report, &direct, &proxies).await;
    }
    if let Some((_, taken)) = &sink {
        let _ = writeln!(report, "{}", taken.said());
    }
    if args.quick {
        drop(proxies);
        let _ = std::fs::remove_dir_all(&dir);
        emit(&args, &report);
        return;
    }
    if want("ttfb") {
        ttfb(&mut report, &direct, &proxies).await;
    }
    if want("memory") {
        memory(&mut report, &mock, &proxies, router_pid, idle_rss).await;
    }
    // After memory: the compressors keep per-thread state, which would count as the streams'.
    if want("streams") {
        stream_cpu(&args, &mut report, &mock, &proxies).await;
    }
    if want("compression") {
        compression_cost(&args, &mut report, &router_url, router_pid).await;
    }
    if want("many") {
        many_streams(
            &mut report,
            &mock,
            &router_url,
            router_pid,
            args.many_streams,
        )
        .await;
    }
    if want("reload") {
        reload(&args, &mut report, &router_url, &config).await;
    }
    drop(proxies);
    fresh_router_parts(&args, &mut report, &dir, &config, want).await;

    let _ = std::fs::remove_dir_all(&dir);
    emit(&args, &report);
}

/// The report, to `--out` when given, else to stdout.
fn emit(args: &Args, report: &str) {
    match &args.out {
        Some(path) => {
            if let Err(e) = std::fs::write(path, report) {
                eprintln!("cannot write {}: {e}", path.display());
            }
        }
        None => print!("{report}"),
    }
}

/// The parts that start routers of their own: settings measured in turns, then bursts of large
/// bodies and the soak (fresh routers: their memory from start, not what the runs above left).
async fn fresh_router_parts(
    args: &Args,
    report: &mut String,
    dir: &std::path::Path,
    config: &std::path::Path,
    want: impl Fn(&str) -> bool,
) {
    if want("requestlog") {
        shared::request_log_cost(args, report, dir, config).await;
    }
    if want("redis") {
        shared::redis_cost(args, report, dir, config).await;
    }
    if want("bodies") {
        soak::bodies(args, report, dir).await;
    }
    if want("soak") && args.soak_seconds > 0 {
        soak::soak(args, report, dir).await;
    }
}
