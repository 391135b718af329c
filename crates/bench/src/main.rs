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
    /// Only these parts, comma-separated: requests, ttfb, memory, many, reload, soak.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Seconds of the steady-rate run that samples the router's RSS (0 skips it).
    #[arg(long, default_value_t = 600)]
    soak_seconds: u64,
    /// Requests per second during that run (half of them streamed).
    #[arg(long, default_value_t = 500)]
    soak_rate: u64,
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

/// A client that speaks HTTP/2 over cleartext (h2c, prior knowledge): one connection carries
/// many streams.
fn h2_client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .http2_only(true)
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

/// How the held streams of one run ended.
#[derive(Default)]
struct Held {
    completed: usize,
    /// The request failed before a response head (connect, refused, reset), with an example.
    no_response: usize,
    /// A response that was not a 2xx.
    bad_status: usize,
    /// The body broke or ended before `[DONE]`.
    cut: usize,
    /// Still open when the run gave up waiting.
    unfinished: usize,
    example: Option<String>,
}

impl Held {
    fn failures(&self) -> String {
        let mut parts = Vec::new();
        for (n, what) in [
            (self.no_response, "without a response"),
            (self.bad_status, "with an error status"),
            (self.cut, "cut"),
            (self.unfinished, "unfinished"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
        if let Some(e) = &self.example {
            parts.push(format!("first error: `{}`", e.replace('`', "'")));
        }
        if parts.is_empty() {
            "no failures".into()
        } else {
            parts.join(", ")
        }
    }
}

enum StreamEnd {
    Completed,
    NoResponse(String),
    BadStatus(String),
    Cut(String),
}

/// Opens `n` streams that the mock holds before their last chunk, spread over `clients`,
/// waits until each has sent its first byte, runs `measure`, then lets them finish; returns
/// how they ended, and what `measure` found.
async fn hold_streams<T, Fut: std::future::Future<Output = T>>(
    mock: &MockUpstream,
    url: &str,
    n: usize,
    clients: &[HttpClient],
    measure: impl FnOnce() -> Fut,
) -> (Held, T) {
    mock.hold_last_chunk(true);
    let body = chat_body(256, true);
    let started = Arc::new(tokio::sync::Semaphore::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let (client, url, body, started) = (
            clients[i % clients.len()].clone(),
            url.to_string(),
            body.clone(),
            started.clone(),
        );
        tasks.spawn(async move {
            let resp = match client.request(request(&url, &body)).await {
                Ok(resp) => resp,
                Err(e) => {
                    started.add_permits(1);
                    let mut text = e.to_string();
                    let mut source = std::error::Error::source(&e);
                    while let Some(s) = source {
                        text.push_str(&format!(": {s}"));
                        source = s.source();
                    }
                    return StreamEnd::NoResponse(text);
                }
            };
            let status = resp.status();
            let mut b = resp.into_body();
            let first = b.frame().await;
            started.add_permits(1);
            let mut text = Vec::new();
            let mut broke = None;
            match first {
                Some(Ok(f)) => text.extend_from_slice(f.data_ref().map_or(&[][..], |d| d.as_ref())),
                Some(Err(e)) => broke = Some(e.to_string()),
                None => {}
            }
            while broke.is_none() {
                match b.frame().await {
                    Some(Ok(f)) => {
                        text.extend_from_slice(f.data_ref().map_or(&[][..], |d| d.as_ref()))
                    }
                    Some(Err(e)) => broke = Some(e.to_string()),
                    None => break,
                }
            }
            if !status.is_success() {
                StreamEnd::BadStatus(format!("{status}: {}", String::from_utf8_lossy(&text)))
            } else if let Some(e) = broke {
                StreamEnd::Cut(e)
            } else if text.ends_with(b"data: [DONE]\n\n") {
                StreamEnd::Completed
            } else {
                StreamEnd::Cut("ended before [DONE]".into())
            }
        });
    }
    let all = u32::try_from(n).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(Duration::from_secs(120), started.acquire_many(all)).await;
    let measured = measure().await;
    mock.hold_last_chunk(false);
    // Release until every held stream has ended (a stream may start holding just after).
    let mut held = Held::default();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !tasks.is_empty() && Instant::now() < deadline {
        mock.release();
        if let Ok(Some(Ok(end))) =
            tokio::time::timeout(Duration::from_millis(50), tasks.join_next()).await
        {
            let error = match end {
                StreamEnd::Completed => {
                    held.completed += 1;
                    None
                }
                StreamEnd::NoResponse(e) => {
                    held.no_response += 1;
                    Some(e)
                }
                StreamEnd::BadStatus(e) => {
                    held.bad_status += 1;
                    Some(e)
                }
                StreamEnd::Cut(e) => {
                    held.cut += 1;
                    Some(e)
                }
            };
            if held.example.is_none() {
                held.example = error;
            }
        }
    }
    held.unfinished = tasks.len();
    // Streams opened by `measure` and left may still be held.
    mock.release();
    (held, measured)
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
    /// SIGTERM, and SIGKILL after 10 seconds (a profiler wrapping the proxy writes its data
    /// when the proxy exits).
    fn drop(&mut self) {
        let _ = run_tool("kill", &["-TERM".into(), self.child.id().to_string()]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
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

    let want = |part: &str| args.only.is_empty() || args.only.iter().any(|p| p == part);
    let router_url = proxies
        .iter()
        .find(|p| p.pid == router_pid)
        .map(|p| p.url.clone())
        .unwrap_or_default();

    if want("requests") || args.quick {
        requests(&args, &mut report, &direct, &proxies).await;
    }
    if args.quick {
        drop(proxies);
        let _ = std::fs::remove_dir_all(&dir);
        print!("{report}");
        return;
    }
    if want("ttfb") {
        ttfb(&mut report, &direct, &proxies).await;
    }
    if want("memory") {
        memory(&mut report, &mock, &proxies, router_pid, idle_rss).await;
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
    if want("soak") && args.soak_seconds > 0 {
        // A fresh router: its memory from start, not what the runs above left.
        let fresh = start_router(&args.router, &dir, &config, args.proxy_core);
        soak(&args, &mut report, &fresh.url, fresh.pid).await;
    }

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

/// Saturation and fixed rate, for each target and body size.
async fn requests(args: &Args, report: &mut String, direct: &str, proxies: &[Proxy]) {
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
            vec![("direct to mock", direct.to_string(), None)];
        for p in proxies {
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
}

/// Streams: time to first byte, added by each proxy.
async fn ttfb(report: &mut String, direct: &str, proxies: &[Proxy]) {
    let _ = writeln!(report, "\n## Streams\n");
    let direct_ttfb = stream_ttfb(direct, 500).await;
    let _ = writeln!(
        report,
        "| target | time to first byte, p50 | added to direct |\n|---|---|---|"
    );
    let _ = writeln!(
        report,
        "| direct to mock | {} µs | – |",
        us(median(&direct_ttfb))
    );
    for p in proxies {
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
}

/// Memory: idle, and with 1,000 open HTTP/1.1 streams (one connection each).
async fn memory(
    report: &mut String,
    mock: &MockUpstream,
    proxies: &[Proxy],
    router_pid: u32,
    idle_rss: u64,
) {
    let _ = writeln!(report, "\n## Memory\n");
    let _ = writeln!(
        report,
        "| target | RSS idle | RSS with 1,000 open streams | per stream | TTFB p50, new connections, none open | the same with 1,000 open |\n|---|---|---|---|---|---|"
    );
    for p in proxies {
        let idle = if p.pid == router_pid {
            idle_rss
        } else {
            rss_kib(p.pid)
        };
        let url = p.url.clone();
        let pid = p.pid;
        // Each of these streams is left after its first byte, so each takes new connections:
        // measured the same way with no streams open, for comparison.
        let (_, ttfb_alone) =
            hold_streams(mock, &url, 0, &[client(1)], || first_bytes(&url, 200)).await;
        let (held_streams, measured) = hold_streams(mock, &url, 1000, &[client(1000)], || async {
            let held = rss_kib(pid);
            (held, first_bytes(&url, 200).await)
        })
        .await;
        let (held, ttfb) = measured;
        let _ = writeln!(
            report,
            "| {} | {:.1} MiB{} | {:.1} MiB | {:.1} KiB ({}/1000 completed) | {} µs | {} µs |",
            p.name,
            idle as f64 / 1024.0,
            if p.pid == router_pid {
                " (at start)"
            } else {
                " (after the runs above)"
            },
            held as f64 / 1024.0,
            held.saturating_sub(idle) as f64 / 1000.0,
            held_streams.completed,
            us(median(&ttfb_alone)),
            us(median(&ttfb)),
        );
        if held_streams.completed < 1000 {
            let _ = writeln!(report, "\n{}: {}\n", p.name, held_streams.failures());
        }
    }
}

/// Open files of `pid`.
fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Many streams at once through the router. Clients arrive over h2c, 100 streams per
/// connection, so that the router's own sockets (one per client connection, one per upstream
/// stream) fit under this machine's open-file limit; upstream, each stream has its own
/// HTTP/1.1 connection.
async fn many_streams(
    report: &mut String,
    mock: &MockUpstream,
    router_url: &str,
    router_pid: u32,
    n: usize,
) {
    let before = rss_kib(router_pid);
    let clients: Vec<HttpClient> = (0..n.div_ceil(100)).map(|_| h2_client()).collect();
    let (held, (peak, fds)) = hold_streams(mock, router_url, n, &clients, || async {
        (rss_kib(router_pid), open_files(router_pid))
    })
    .await;
    // Memory the allocator keeps after a burst: wait, then read again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(router_pid);
    let _ = writeln!(
        report,
        "\n{n} concurrent streams through llm-router ({} h2c client connections, one HTTP/1.1 upstream connection per stream; {fds} files open in the router with all streams open): {} completed ({}); RSS {:.1} MiB before, {:.1} MiB with all open, {:.1} MiB after they ended.",
        clients.len(),
        held.completed,
        held.failures(),
        before as f64 / 1024.0,
        peak as f64 / 1024.0,
        after as f64 / 1024.0,
    );
}

/// Throughput while the config is reloaded every second.
async fn reload(args: &Args, report: &mut String, router_url: &str, config: &Path) {
    let body = chat_body(1024, false);
    let base = saturate(router_url, &body, args.concurrency, args.seconds).await;
    let config = config.to_path_buf();
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
    let run = saturate(router_url, &body, args.concurrency, args.seconds).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let reloads = writer.await.unwrap_or(0);
    let _ = writeln!(
        report,
        "\nReload every second under load (1 KB requests, {} s): {:.0} req/s without reloads, {:.0} req/s with {reloads} reloads ({:+.1}%), {} errors.",
        args.seconds,
        base.rps(),
        run.rps(),
        (run.rps() / base.rps() - 1.0) * 100.0,
        base.errors + run.errors,
    );
}

/// A steady rate for `soak_seconds` (every other request streamed) through a freshly started
/// router, sampling its RSS every 10 seconds; reports it after the first minute (the warm-up:
/// pools, buffers and the allocator's arenas fill) against its range over the rest of the run,
/// and by minute.
async fn soak(args: &Args, report: &mut String, router_url: &str, router_pid: u32) {
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    let client = client(256);
    let plain = chat_body(1024, false);
    let streamed = chat_body(1024, true);
    let started = Instant::now();
    let total = args.soak_rate * args.soak_seconds;
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let mut samples: Vec<(u64, u64)> = Vec::new();
    let mut next_sample = started;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        let due = started + Duration::from_secs_f64(i as f64 / args.soak_rate as f64);
        tokio::time::sleep_until(due.into()).await;
        if Instant::now() >= next_sample {
            samples.push((started.elapsed().as_secs(), rss_kib(router_pid)));
            next_sample += Duration::from_secs(10);
        }
        let body = if i % 2 == 0 {
            plain.clone()
        } else {
            streamed.clone()
        };
        let (client, url, ok, errors) = (
            client.clone(),
            router_url.to_string(),
            ok.clone(),
            errors.clone(),
        );
        tasks.spawn(async move {
            let counter = if one(&client, &url, &body).await {
                ok
            } else {
                errors
            };
            counter.fetch_add(1, Relaxed);
        });
        // Reap as we go rather than keep every finished task in the set.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    samples.push((started.elapsed().as_secs(), rss_kib(router_pid)));
    let mib = |k: u64| k as f64 / 1024.0;
    let warm: Vec<u64> = samples
        .iter()
        .filter(|(t, _)| *t >= 60)
        .map(|(_, r)| *r)
        .collect();
    let first = warm.first().copied().unwrap_or(0);
    let last = warm.last().copied().unwrap_or(0);
    let (lo, hi) = (
        warm.iter().copied().min().unwrap_or(0),
        warm.iter().copied().max().unwrap_or(0),
    );
    let pct = |k: u64| (k as f64 / first.max(1) as f64 - 1.0) * 100.0;
    let _ = writeln!(
        report,
        "\nSteady load for {} s ({} req/s, 1 KB, every other one streamed): {} ok, {} errors. Router RSS at 1 min {:.1} MiB, at the end {:.1} MiB ({:+.1}%); lowest {:.1} MiB ({:+.1}%), highest {:.1} MiB ({:+.1}%) after the first minute; at start {:.1} MiB.",
        args.soak_seconds,
        args.soak_rate,
        ok.load(Relaxed),
        errors.load(Relaxed),
        mib(first),
        mib(last),
        pct(last),
        mib(lo),
        pct(lo),
        mib(hi),
        pct(hi),
        mib(samples.first().map_or(0, |s| s.1)),
    );
    let by_minute: Vec<String> = samples
        .iter()
        .filter(|(t, _)| t % 60 < 10)
        .map(|(t, r)| format!("{} min {:.1}", t / 60, mib(*r)))
        .collect();
    let _ = writeln!(report, "\nRSS by minute (MiB): {}.", by_minute.join(", "));
}
