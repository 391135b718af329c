//! The long runs, each through a freshly started router with its own mock upstream: bursts of
//! large request bodies (is the memory given back?), and the soak (mixed traffic, upstream
//! faults, a reload every 10 seconds: is anything lost, is the accounting exact, is the memory
//! flat?).

use crate::{load::*, proxies::*, system::*, Args};
use bytes::Bytes;
use http_body_util::BodyExt;
use mock_upstream::{Fault, MockUpstream, Rule};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Two providers on one mock: `flaky` (key `sk-flaky`, which gets the faults) and `steady`.
/// The config is `<name>.yaml` with its own ledger `<name>.sqlite3`; `reload` only changes a
/// comment (a new generation, the same routing).
fn two_provider_config(
    dir: &Path,
    mock: &MockUpstream,
    name: &str,
    reload: u64,
) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    let yaml = format!(
        "api_key: bench-key\nledger: {{enabled: true, path: {name}.sqlite3}}\nresilience: {{rate_limit_cooldown: 1s}}\ngroups:\n  - name: g\n    models: [{{provider: flaky, name: bench-model}}, {{provider: steady, name: bench-model}}]\nproviders:\n  - {{name: flaky, base_url: \"{0}\", api_key: sk-flaky}}\n  - {{name: steady, base_url: \"{0}\", api_key: sk-steady}}\n# reload {reload}\n",
        mock.base_url()
    );
    let _ = std::fs::write(&path, yaml);
    path
}

/// Three bursts of 100 concurrent 1 MiB request bodies; the router's RSS before, at its peak
/// and after each burst.
pub(crate) async fn bodies(args: &Args, report: &mut String, dir: &Path) {
    let mock = MockUpstream::start()
        .await
        .unwrap_or_else(|e| panic!("mock upstream: {e}"));
    mock.keep_last_request_only();
    // The upstream answers after a moment, so a burst's bodies are all held at once.
    mock.set_response_delay(Duration::from_millis(300));
    let config = two_provider_config(dir, &mock, "bodies", 0);
    let router = start_router(&args.router, dir, &config, args.proxy_core);
    let start = rss_kib(router.pid);
    let body = chat_body(1024 * 1024, false);
    let client = client(100);
    let mut after = Vec::new();
    let mut failed = 0;
    for _ in 0..3 {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..100 {
            let (client, url, body) = (client.clone(), router.url.clone(), body.clone());
            tasks.spawn(async move { one(&client, &url, &body).await });
        }
        while let Some(ok) = tasks.join_next().await {
            failed += usize::from(!matches!(ok, Ok(true)));
        }
        // What the allocator gives back, it gives back within a few seconds.
        tokio::time::sleep(Duration::from_secs(5)).await;
        after.push(rss_kib(router.pid));
    }
    // The clients leave: their connections (and what the router holds for them) close.
    drop(client);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let left = rss_kib(router.pid);
    let mib = |k: u64| format!("{:.1}", k as f64 / 1024.0);
    let _ = writeln!(
        report,
        "\nBursts of 100 concurrent 1 MiB request bodies, three times ({}): router RSS at start {} MiB, peak {} MiB, 5 s after each burst {} MiB, 5 s after the clients closed their connections {} MiB; {failed} failed.",
        args.router.display(),
        mib(start),
        mib(peak_rss_kib(router.pid)),
        after.iter().map(|k| mib(*k)).collect::<Vec<_>>().join(", "),
        mib(left),
    );
}

/// The faults `sk-flaky` gets, each on every n-th of its requests: all happen before the first
/// byte reaches the client, so each request should fail over to `steady` (or just be slow) and
/// succeed.
fn fault_menu(mock: &MockUpstream) {
    let flaky = |fault: Fault, every: usize| Rule::new(fault).key("sk-flaky").every(every);
    mock.add_rule(flaky(Fault::Status(500), 13));
    mock.add_rule(flaky(Fault::StatusRetryAfter(429, "1".into()), 97));
    mock.add_rule(flaky(Fault::ResetBody, 29));
    mock.add_rule(flaky(Fault::EchoKey(503), 31));
    mock.add_rule(flaky(Fault::Delay(Duration::from_millis(300)), 17));
}

/// How one soak request ended.
enum Outcome {
    Ok,
    /// An answer, but not a good one: its status and how it ended.
    Bad(String),
}

async fn soak_one(client: &HttpClient, url: &str, body: &Bytes, stream: bool) -> Outcome {
    let resp = match client.request(request(url, body)).await {
        Ok(r) => r,
        Err(e) => return Outcome::Bad(format!("no answer: {e}")),
    };
    let status = resp.status();
    let bytes = match resp.into_body().collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) => return Outcome::Bad(format!("{status}, body cut: {e}")),
    };
    let complete = if stream {
        bytes.ends_with(b"data: [DONE]\n\n") && !has_error(&bytes)
    } else {
        serde_json::from_slice::<serde_json::Value>(&bytes).is_ok_and(|v| v["choices"].is_array())
    };
    if status.is_success() && complete {
        Outcome::Ok
    } else {
        let tail = String::from_utf8_lossy(&bytes[bytes.len().saturating_sub(200)..]).to_string();
        Outcome::Bad(format!("{status}: …{tail}"))
    }
}

/// Whether a stream carries an error object.
fn has_error(bytes: &[u8]) -> bool {
    bytes.windows(9).any(|w| w == b"\"error\":{")
}

/// The JSON the router answers at `path` (with the bench key); null if it cannot be had.
async fn router_json(base: &str, path: &str) -> serde_json::Value {
    let req = http::Request::get(format!("{base}{path}"))
        .header("authorization", "Bearer bench-key")
        .body(http_body_util::Full::new(Bytes::new()))
        .unwrap_or_default();
    let Ok(resp) = client(1).request(req).await else {
        return serde_json::Value::Null;
    };
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    serde_json::from_slice(&bytes).unwrap_or_default()
}

/// Tokens the router counted, from its `/admin/usage`: (requests, total tokens).
async fn router_usage(base: &str) -> (u64, u64) {
    let v = router_json(base, "/admin/usage").await;
    let rows = v["usage"].as_array().cloned().unwrap_or_default();
    let sum = |field: &str| rows.iter().map(|r| r[field].as_u64().unwrap_or(0)).sum();
    (sum("requests"), sum("total_tokens"))
}

/// `soak_rate` requests a second for `soak_seconds` (every other one streamed) through a fresh
/// router whose group has a flaky provider (see [`fault_menu`]) and a steady one, with the config
/// rewritten every 10 seconds. Reports what was lost, the tokens counted against the mock's,
/// and the RSS after the first minute (the warm-up: pools, buffers and the allocator's arenas
/// fill) against its range over the rest of the run, by minute.
pub(crate) async fn soak(args: &Args, report: &mut String, dir: &Path) {
    let mock = MockUpstream::start()
        .await
        .unwrap_or_else(|e| panic!("mock upstream: {e}"));
    mock.keep_last_request_only();
    fault_menu(&mock);
    let config = two_provider_config(dir, &mock, "soak", 0);
    let router = start_router(&args.router, dir, &config, args.proxy_core);
    let pid = router.pid;
    let base = router
        .url
        .trim_end_matches("/v1/chat/completions")
        .to_string();
    let client = client(256);
    let (plain, streamed) = (chat_body(1024, false), chat_body(1024, true));
    let started = Instant::now();
    let total = args.soak_rate * args.soak_seconds;
    let ok = Arc::new(AtomicU64::new(0));
    let bad = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut samples: Vec<(u64, u64)> = Vec::new();
    let (mut next_sample, mut next_reload, mut reloads) = (started, started, 0u64);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        let due = started + Duration::from_secs_f64(i as f64 / args.soak_rate as f64);
        tokio::time::sleep_until(due.into()).await;
        if Instant::now() >= next_sample {
            samples.push((started.elapsed().as_secs(), rss_kib(pid)));
            next_sample += Duration::from_secs(10);
        }
        if Instant::now() >= next_reload {
            two_provider_config(dir, &mock, "soak", reloads);
            reloads += 1;
            next_reload += Duration::from_secs(10);
        }
        let stream = i % 2 == 1;
        let body = if stream {
            streamed.clone()
        } else {
            plain.clone()
        };
        let (client, url, ok, bad) = (client.clone(), router.url.clone(), ok.clone(), bad.clone());
        tasks.spawn(async move {
            match soak_one(&client, &url, &body, stream).await {
                Outcome::Ok => {
                    ok.fetch_add(1, Relaxed);
                }
                Outcome::Bad(why) => bad.lock().unwrap_or_else(|p| p.into_inner()).push(why),
            }
        });
        // Reap as we go rather than keep every finished task in the set.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    samples.push((started.elapsed().as_secs(), rss_kib(pid)));
    let (requests, counted) = router_usage(&base).await;
    let generation = router_json(&base, "/health").await["generation"]
        .as_u64()
        .unwrap_or(0);
    let reported = mock.tokens_reported();
    let bad = bad.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let _ = writeln!(
        report,
        "\nSoak with faults for {} s ({} req/s, 1 KB, every other one streamed; provider `flaky` \
         answers 500, 429, a reset body, a 503 echoing its key, or a 300 ms delay on a share of its \
         requests, `steady` never fails; the config rewritten \
         every 10 s, {reloads} times, the router at generation {generation} at the end): {} of {total} answered in full, {} not{}. Upstream \
         requests: {requests} counted by the router, {} received by the mock. Tokens: {counted} \
         counted by the router, {reported} reported by the mock ({}).",
        args.soak_seconds,
        args.soak_rate,
        ok.load(Relaxed),
        bad.len(),
        bad.first().map_or(String::new(), |b| format!(" (first: {b})")),
        mock.request_count(),
        if counted == reported { "exact" } else { "MISMATCH" },
    );
    rss_report(report, &samples);
}

/// The RSS samples: after the first minute against the rest of the run, and by minute.
fn rss_report(report: &mut String, samples: &[(u64, u64)]) {
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
        "Router RSS at 1 min {:.1} MiB, at the end {:.1} MiB ({:+.1}%); lowest {:.1} MiB ({:+.1}%), highest {:.1} MiB ({:+.1}%) after the first minute; at start {:.1} MiB.",
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
