//! The report's parts: time to first byte, memory, many streams, reloads (the long
//! runs are in `soak.rs`).

use crate::{load::*, proxies::*, streams::*, system::*, Args};
use mock_upstream::MockUpstream;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Streams: time to first byte, added by each proxy.
pub(crate) async fn ttfb(report: &mut String, direct: &str, proxies: &[Proxy]) {
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
pub(crate) async fn memory(
    report: &mut String,
    mock: &MockUpstream,
    proxies: &[Proxy],
    router_pid: u32,
    idle_rss: u64,
) {
    let _ = writeln!(report, "\n## Memory\n");
    let _ = writeln!(
        report,
        "| target | RSS idle | RSS with 1,000 open streams | per stream (over the RSS just before) | TTFB p50, new connections, none open | the same with 1,000 open |\n|---|---|---|---|---|---|"
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
        // Per stream: against the RSS just before they open, not the idle figure, which may
        // predate other parts' load (an allocator keeps some of what a run used).
        let before = rss_kib(pid);
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
            held.saturating_sub(before) as f64 / 1000.0,
            held_streams.completed,
            us(median(&ttfb_alone)),
            us(median(&ttfb)),
        );
        if held_streams.completed < 1000 {
            let _ = writeln!(report, "\n{}: {}\n", p.name, held_streams.failures());
        }
    }
}

/// Many streams at once through the router. Clients arrive over h2c, 100 streams per
/// connection, so that the router's own sockets (one per client connection, one per upstream
/// stream) fit under this machine's open-file limit; upstream, each stream has its own
/// HTTP/1.1 connection.
pub(crate) async fn many_streams(
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
pub(crate) async fn reload(args: &Args, report: &mut String, router_url: &str, config: &Path) {
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
