//! `loadbench`: the same load, side by side, straight to the mock upstream, through nginx (a
//! reference reverse proxy: 1 worker, upstream keepalive, buffering off) and through
//! llm-router. The proxy under test runs alone on one pinned core; the mock upstream and the
//! load generator share the other. Reported: requests/s and latency at saturation and at a fixed
//! rate, the proxy's CPU time per request (from /proc), its RSS idle and with 1,000 open
//! streams, the time to a stream's first byte, 10,000 concurrent streams, and throughput while
//! the router reloads its config every second. Writes Markdown to stdout or `--out`.
//!
//! `cargo build --release -p router-bin -p bench && target/release/loadbench --out docs/benchmarks.md`

#![allow(clippy::print_stdout, clippy::print_stderr)]

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use mock_upstream::MockUpstream;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "Load benchmark: direct, through nginx, through llm-router")]
struct Args {
    /// Seconds per saturation run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Concurrent connections at saturation.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Requests per second for the fixed-rate run.
    #[arg(long, default_value_t = 2000)]
    rate: u64,
    /// The llm-router binary.
    #[arg(long, default_value = "target/release/llm-router")]
    router: PathBuf,
    /// The core the proxy under test is pinned to (the bench takes the others).
    #[arg(long, default_value_t = 1)]
    proxy_core: usize,
    /// Skip nginx (when it cannot be installed).
    #[arg(long)]
    no_nginx: bool,
    /// Concurrent streams for the big stream run.
    #[arg(long, default_value_t = 10_000)]
    many_streams: usize,
    /// Only the non-streamed 1 KB runs (for comparing builds quickly).
    #[arg(long)]
    quick: bool,
    /// Write the Markdown report here (else to stdout).
    #[arg(long)]
    out: Option<PathBuf>,
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn client(max_idle: usize) -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(max_idle)
        .build(connector)
}

fn run_tool(program: &str, args: &[String]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Pins this process (every thread) to `cores`, with util-linux's `taskset`.
fn pin_self(cores: &[usize]) {
    let list: Vec<String> = cores.iter().map(usize::to_string).collect();
    let pid = std::process::id().to_string();
    if run_tool(
        "taskset",
        &["-a".into(), "-p".into(), "-c".into(), list.join(","), pid],
    )
    .is_none()
    {
        eprintln!("taskset failed: the bench is not pinned");
    }
}

/// Raises this process's open-file limit to its hard maximum, with util-linux's `prlimit`
/// (10,000 streams need some 40,000 sockets); children inherit it.
fn raise_fd_limit() -> u64 {
    let pid = std::process::id().to_string();
    let hard = run_tool(
        "prlimit",
        &[
            "--pid".into(),
            pid.clone(),
            "--nofile".into(),
            "--output".into(),
            "HARD".into(),
            "--noheadings".into(),
        ],
    )
    .and_then(|h| h.parse::<u64>().ok())
    .unwrap_or(1024);
    // As root the hard limit itself may be raised: 10,000 streams need more than the usual.
    for limit in [hard.max(262_144), hard] {
        let set = run_tool(
            "prlimit",
            &[
                "--pid".into(),
                pid.clone(),
                format!("--nofile={limit}:{limit}"),
            ],
        );
        if set.is_some() {
            return limit;
        }
    }
    hard
}

/// CPU time (user + system) of `pid`, from /proc.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at ") ".
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0);
    let hz = run_tool("getconf", &["CLK_TCK".into()])
        .and_then(|h| h.parse::<u64>().ok())
        .unwrap_or(100)
        .max(1);
    Duration::from_micros(ticks * 1_000_000 / hz)
}

/// Resident memory of `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn chat_body(size: usize, stream: bool) -> Bytes {
    let head = format!(
        r#"{{"model":"g","stream":{stream},"temperature":0.2,"messages":[{{"role":"user","content":""#
    );
    let tail = r#"hi"}],"max_tokens":64}"#;
    let fill = size.saturating_sub(head.len() + tail.len());
    let mut body = head.into_bytes();
    body.extend(std::iter::repeat_n(b'a', fill));
    body.extend_from_slice(tail.as_bytes());
    Bytes::from(body)
}

fn request(url: &str, body: &Bytes) -> http::Request<Full<Bytes>> {
    http::Request::post(url)
        .header("content-type", "application/json")
        .header("authorization", "Bearer bench-key")
        .body(Full::new(body.clone()))
        .unwrap_or_default()
}

/// What one load run saw.
struct Run {
    ok: u64,
    errors: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Run {
    fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }
    fn percentile(&mut self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        self.latencies.sort_unstable();
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[i]
    }
}

async fn one(client: &HttpClient, url: &str, body: &Bytes) -> bool {
    match client.request(request(url, body)).await {
        Ok(resp) => {
            let ok = resp.status().is_success();
            ok && resp.into_body().collect().await.is_ok()
        }
        Err(_) => false,
    }
}

/// `concurrency` clients in closed loops for `seconds`.
async fn saturate(url: &str, body: &Bytes, concurrency: usize, seconds: u64) -> Run {
    let client = client(concurrency);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (client, url, body) = (client.clone(), url.to_string(), body.clone());
        tasks.spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            while Instant::now() < deadline {
                let t = Instant::now();
                if one(&client, &url, &body).await {
                    lat.push(t.elapsed());
                } else {
                    errors += 1;
                }
            }
            (lat, errors)
        });
    }
    let mut run = Run {
        ok: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    while let Some(Ok((lat, errors))) = tasks.join_next().await {
        run.ok += lat.len() as u64;
        run.errors += errors;
        run.latencies.extend(lat);
    }
    run.elapsed = started.elapsed();
    run
}

/// An open loop at `rate` requests per second for `seconds`.
async fn fixed_rate(url: &str, body: &Bytes, rate: u64, seconds: u64) -> Run {
    let client = client(256);
    let started = Instant::now();
    let total = rate * seconds;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        let due = started + Duration::from_secs_f64(i as f64 / rate as f64);
        tokio::time::sleep_until(due.into()).await;
        let (client, url, body) = (client.clone(), url.to_string(), body.clone());
        tasks.spawn(async move {
            let t = Instant::now();
            one(&client, &url, &body).await.then(|| t.elapsed())
        });
    }
    let mut run = Run {
        ok: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    while let Some(Ok(r)) = tasks.join_next().await {
        match r {
            Some(l) => {
                run.ok += 1;
                run.latencies.push(l);
            }
            None => run.errors += 1,
        }
    }
    run.elapsed = started.elapsed();
    run
}

/// Time to the first body byte of `n` streams, one after another, each left after that byte
/// (so it works while the mock holds streams open).
async fn first_bytes(url: &str, n: usize) -> Vec<Duration> {
    let client = client(4);
    let body = chat_body(1024, true);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let Ok(resp) = client.request(request(url, &body)).await else {
            continue;
        };
        if let Some(Ok(_)) = resp.into_body().frame().await {
            out.push(t.elapsed());
        }
    }
    out.sort_unstable();
    out
}

/// Time to the first body byte of `n` streams, one after another.
async fn stream_ttfb(url: &str, n: usize) -> Vec<Duration> {
    let client = client(4);
    let body = chat_body(1024, true);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let Ok(resp) = client.request(request(url, &body)).await else {
            continue;
        };
        let mut b = resp.into_body();
        if let Some(Ok(_)) = b.frame().await {
            out.push(t.elapsed());
        }
        while let Some(Ok(_)) = b.frame().await {}
    }
    out.sort_unstable();
    out
}

fn median(v: &[Duration]) -> Duration {
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// Opens `n` streams that the mock holds before their last chunk, waits until each has sent
/// its first byte, runs `measure`, then lets them finish; returns how many completed, and what
/// `measure` found.
async fn hold_streams<T, Fut: std::future::Future<Output = T>>(
    mock: &MockUpstream,
    url: &str,
    n: usize,
    measure: impl FnOnce() -> Fut,
) -> (usize, T) {
    mock.hold_last_chunk(true);
    let client = client(n);
    let body = chat_body(256, true);
    let started = Arc::new(tokio::sync::Semaphore::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (client, url, body, started) = (
            client.clone(),
            url.to_string(),
            body.clone(),
            started.clone(),
        );
        tasks.spawn(async move {
            let Ok(resp) = client.request(request(&url, &body)).await else {
                started.add_permits(1);
                return false;
            };
            let ok = resp.status().is_success();
            let mut b = resp.into_body();
            let first = b.frame().await;
            started.add_permits(1);
            let mut text = Vec::new();
            if let Some(Ok(f)) = first {
                text.extend_from_slice(f.data_ref().map_or(&[][..], |d| d.as_ref()));
            }
            while let Some(Ok(f)) = b.frame().await {
                text.extend_from_slice(f.data_ref().map_or(&[][..], |d| d.as_ref()));
            }
            ok && text.ends_with(b"data: [DONE]\n\n")
        });
    }
    let all = u32::try_from(n).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(Duration::from_secs(120), started.acquire_many(all)).await;
    let measured = measure().await;
    mock.hold_last_chunk(false);
    // Release until every held stream has ended (a stream may start holding just after).
    let mut done = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while !tasks.is_empty() && Instant::now() < deadline {
        mock.release();
        if let Ok(Some(Ok(ok))) =
            tokio::time::timeout(Duration::from_millis(50), tasks.join_next()).await
        {
            done += usize::from(ok);
        }
    }
    (done, measured)
}

/// A proxy process under test.
struct Proxy {
    name: &'static str,
    url: String,
    child: Child,
    /// The process doing the work (nginx's worker, the router itself).
    pid: u32,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_or(0, |a| a.port())
}

fn wait_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn router_config(dir: &Path, mock: &MockUpstream) -> PathBuf {
    let path = dir.join("config.yaml");
    let yaml = format!(
        "api_key: bench-key\nledger: {{enabled: true}}\ngroups:\n  - name: g\n    models: [{{provider: mock, name: bench-model}}]\nproviders:\n  - {{name: mock, base_url: \"{}\", api_key: sk-bench}}\n",
        mock.base_url()
    );
    let _ = std::fs::write(&path, yaml);
    path
}

fn start_router(bin: &Path, dir: &Path, config: &Path, core: usize) -> Proxy {
    let port = free_port();
    // The child runs in `dir`: the binary's path must not be relative.
    let bin = std::fs::canonicalize(bin).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (cargo build --release -p router-bin)",
            bin.display()
        )
    });
    let child = Command::new("taskset")
        .args(["-c", &core.to_string()])
        .arg(&bin)
        .args(["--config"])
        .arg(config)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .current_dir(dir)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    wait_port(port);
    let pid = child.id();
    Proxy {
        name: "llm-router",
        url: format!("http://127.0.0.1:{port}/v1/chat/completions"),
        child,
        pid,
    }
}

fn start_nginx(dir: &Path, mock: &MockUpstream, core: usize) -> Option<Proxy> {
    let port = free_port();
    let conf = dir.join("nginx.conf");
    let text = format!(
        "daemon off;\nworker_processes 1;\nerror_log {dir}/nginx-error.log warn;\npid {dir}/nginx.pid;\nevents {{ worker_connections 65536; }}\nhttp {{\n  access_log /dev/null;\n  client_body_temp_path {dir};\n  proxy_temp_path {dir};\n  upstream mock {{ server {upstream}; keepalive 512; }}\n  server {{\n    listen 127.0.0.1:{port};\n    client_max_body_size 10m;\n    location / {{\n      proxy_pass http://mock;\n      proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n      proxy_buffering off;\n      proxy_request_buffering off;\n    }}\n  }}\n}}\n",
        dir = dir.display(),
        upstream = mock.addr(),
    );
    std::fs::write(&conf, text).ok()?;
    let child = Command::new("taskset")
        .args(["-c", &core.to_string()])
        .arg("nginx")
        .args(["-c"])
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    wait_port(port);
    // The worker is the master's child.
    let master = child.id();
    let children = std::fs::read_to_string(format!("/proc/{master}/task/{master}/children"))
        .unwrap_or_default();
    let pid = children
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(master);
    Some(Proxy {
        name: "nginx",
        url: format!("http://127.0.0.1:{port}/v1/chat/completions"),
        child,
        pid,
    })
}

fn us(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1e6)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .map(|m| m.trim().to_string())
        .unwrap_or_default();
    format!("{cpu}, {cores} cores, {mem} RAM")
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args = Args::parse();
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
    let config = router_config(&dir, &mock);

    let mut report = String::new();
    let _ = writeln!(report, "# Benchmarks\n");
    let _ = writeln!(
        report,
        "Generated by `scripts/bench` (which runs `target/release/loadbench` and the criterion \
         benchmarks) on {} (Linux; the proxy under test pinned to core {}, the mock upstream and \
         the load generator on the other core{}; open-file limit {fds}).\n",
        machine(),
        args.proxy_core,
        if cores > 2 { "s" } else { "" },
    );

    let mut proxies: Vec<Proxy> = Vec::new();
    if !args.no_nginx {
        match start_nginx(&dir, &mock, args.proxy_core) {
            Some(p) => proxies.push(p),
            None => eprintln!("nginx could not be started (apt-get install nginx); skipped"),
        }
    }
    let router = start_router(&args.router, &dir, &config, args.proxy_core);
    let router_pid = router.pid;
    let idle_rss = rss_kib(router_pid);
    proxies.push(router);

    // Saturation and fixed rate, for each target and body size.
    let _ = writeln!(report, "## Non-streamed requests\n");
    let _ = writeln!(
        report,
        "| target | body | req/s at saturation | p50 | p99 | errors | proxy CPU per request | p50 at {} req/s | p99 at {} req/s |",
        args.rate, args.rate
    );
    let _ = writeln!(report, "|---|---|---|---|---|---|---|---|---|");
    let sizes: &[usize] = if args.quick {
        &[1024]
    } else {
        &[1024, 32 * 1024]
    };
    for &size in sizes {
        let body = chat_body(size, false);
        let mut targets: Vec<(&str, String, Option<u32>)> =
            vec![("direct to mock", direct.clone(), None)];
        for p in &proxies {
            targets.push((p.name, p.url.clone(), Some(p.pid)));
        }
        for (name, url, pid) in targets {
            // Warm up connections and caches.
            let _ = saturate(&url, &body, args.concurrency, 1).await;
            let cpu0 = pid.map(cpu_time);
            let mut sat = saturate(&url, &body, args.concurrency, args.seconds).await;
            let cpu = match (pid, cpu0) {
                (Some(pid), Some(c0)) => {
                    let per = (cpu_time(pid).saturating_sub(c0)).as_secs_f64() * 1e6
                        / (sat.ok + sat.errors).max(1) as f64;
                    format!("{per:.1} µs")
                }
                _ => "–".into(),
            };
            let mut fixed = fixed_rate(&url, &body, args.rate, args.seconds.min(5)).await;
            let _ = writeln!(
                report,
                "| {name} | {} KB | {:.0} | {} µs | {} µs | {} | {cpu} | {} µs | {} µs |",
                size / 1024,
                sat.rps(),
                us(sat.percentile(0.5)),
                us(sat.percentile(0.99)),
                sat.errors + fixed.errors,
                us(fixed.percentile(0.5)),
                us(fixed.percentile(0.99)),
            );
            eprintln!("done: {name} {size}");
        }
    }

    if args.quick {
        drop(proxies);
        let _ = std::fs::remove_dir_all(&dir);
        print!("{report}");
        return;
    }
    // Streams: time to first byte, added by each proxy.
    let _ = writeln!(report, "\n## Streams\n");
    let direct_ttfb = stream_ttfb(&direct, 500).await;
    let _ = writeln!(
        report,
        "| target | time to first byte, p50 | added to direct |\n|---|---|---|"
    );
    let _ = writeln!(
        report,
        "| direct to mock | {} µs | – |",
        us(median(&direct_ttfb))
    );
    for p in &proxies {
        let ttfb = stream_ttfb(&p.url, 500).await;
        let added = median(&ttfb).saturating_sub(median(&direct_ttfb));
        let _ = writeln!(
            report,
            "| {} | {} µs | {} µs |",
            p.name,
            us(median(&ttfb)),
            us(added)
        );
    }

    // Memory: idle, and with 1,000 open streams.
    let _ = writeln!(report, "\n## Memory\n");
    let _ = writeln!(
        report,
        "| target | RSS idle | RSS with 1,000 open streams | per stream | stream TTFB p50 with 1,000 open |\n|---|---|---|---|---|"
    );
    for p in &proxies {
        let idle = if p.pid == router_pid {
            idle_rss
        } else {
            rss_kib(p.pid)
        };
        let url = p.url.clone();
        let pid = p.pid;
        let (completed, measured) = hold_streams(&mock, &url, 1000, || async {
            let held = rss_kib(pid);
            (held, first_bytes(&url, 200).await)
        })
        .await;
        let (held, ttfb) = measured;
        let _ = writeln!(
            report,
            "| {} | {:.1} MiB{} | {:.1} MiB | {:.1} KiB ({completed}/1000 completed) | {} µs |",
            p.name,
            idle as f64 / 1024.0,
            if p.pid == router_pid {
                " (at start)"
            } else {
                " (after the runs above)"
            },
            held as f64 / 1024.0,
            held.saturating_sub(idle) as f64 / 1000.0,
            us(median(&ttfb)),
        );
    }

    // Many streams at once, through the router.
    let n = args.many_streams;
    let before = rss_kib(router_pid);
    let router_url = proxies
        .iter()
        .find(|p| p.pid == router_pid)
        .map(|p| p.url.clone())
        .unwrap_or_default();
    let (completed, peak) =
        hold_streams(&mock, &router_url, n, || async { rss_kib(router_pid) }).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(router_pid);
    let _ = writeln!(
        report,
        "\n{n} concurrent streams through llm-router: {completed} completed; RSS {:.1} MiB before, {:.1} MiB with all open, {:.1} MiB after they ended.",
        before as f64 / 1024.0,
        peak as f64 / 1024.0,
        after as f64 / 1024.0,
    );

    // Throughput while the config is reloaded every second.
    let body = chat_body(1024, false);
    let base = saturate(&router_url, &body, args.concurrency, args.seconds).await;
    let reloading = {
        let config = config.clone();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        let writer = tokio::spawn(async move {
            let mut i = 0u64;
            while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_secs(1)).await;
                i += 1;
                if let Ok(text) = std::fs::read_to_string(&config) {
                    let text = text
                        .lines()
                        .filter(|l| !l.starts_with("# reload"))
                        .collect::<Vec<_>>()
                        .join("\n");
                    let _ = std::fs::write(&config, format!("{text}\n# reload {i}\n"));
                }
            }
            i
        });
        let run = saturate(&router_url, &body, args.concurrency, args.seconds).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let reloads = writer.await.unwrap_or(0);
        (run, reloads)
    };
    let (run, reloads) = reloading;
    let _ = writeln!(
        report,
        "\nReload every second under load (1 KB requests, {} s): {:.0} req/s without reloads, {:.0} req/s with {reloads} reloads ({:+.1}%), {} errors.",
        args.seconds,
        base.rps(),
        run.rps(),
        (run.rps() / base.rps() - 1.0) * 100.0,
        base.errors + run.errors,
    );

    drop(proxies);
    let _ = std::fs::remove_dir_all(&dir);
    match &args.out {
        Some(path) => {
            if let Err(e) = std::fs::write(path, &report) {
                eprintln!("cannot write {}: {e}", path.display());
            }
        }
        None => print!("{report}"),
    }
}
