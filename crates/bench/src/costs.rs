//! What a stream costs each proxy, and what compression costs the router.

use crate::{load::*, proxies::*, system::*, Args};
use bytes::Bytes;
use mock_upstream::MockUpstream;
use std::fmt::Write as _;
use std::time::Duration;

/// Words in the streamed answers: 55 events (role, 50 words, finish, usage, `[DONE]`).
const STREAM_WORDS: usize = 50;

/// Runs `url` at saturation for the run's seconds; the process `pid`'s CPU time per request
/// in µs, and the run.
async fn saturated_cpu(args: &Args, pid: u32, url: &str, body: &Bytes) -> (f64, Run) {
    // Warm up connections and caches.
    let _ = saturate(url, body, args.concurrency, 1).await;
    let before = cpu_time(pid);
    let run = saturate(url, body, args.concurrency, args.seconds).await;
    (cpu_us_per(pid, before, run.ok + run.errors), run)
}

/// CPU per 50-word stream through each proxy, with no delay between the upstream's events and
/// with 10 ms between them (as a model generates): `--rounds` rounds, the targets in turns
/// within each, as for the requests.
pub(crate) async fn stream_cpu(
    args: &Args,
    report: &mut String,
    mock: &MockUpstream,
    proxies: &[Proxy],
) {
    let rounds = args.rounds.max(1);
    let _ = writeln!(
        report,
        "\n## CPU per stream\n\n{STREAM_WORDS}-word answers streamed ({} events each), {} \
         concurrent streams for {} s; CPU of the proxy per stream. The median of {rounds} \
         round(s), the targets in turns within each; the range of the rounds in brackets.\n",
        STREAM_WORDS + 4,
        args.concurrency,
        args.seconds
    );
    let _ = writeln!(
        report,
        "| target | no delay: CPU per stream | streams/s | errors | 10 ms between events: CPU per stream | streams/s | errors |\n|---|---|---|---|---|---|---|"
    );
    let body = stream_body(STREAM_WORDS);
    let delays = [Duration::ZERO, Duration::from_millis(10)];
    // For each delay and target: CPU per stream, streams per second and errors of each round.
    let mut samples = vec![vec![Vec::new(); proxies.len()]; delays.len()];
    for round in 1..=rounds {
        for (delay, by_target) in delays.iter().zip(samples.iter_mut()) {
            mock.set_chunk_delay(*delay);
            for (p, rounds_of) in proxies.iter().zip(by_target.iter_mut()) {
                let (per, run) = saturated_cpu(args, p.pid, &p.url, &body).await;
                rounds_of.push((per, run.rps(), run.errors));
                eprintln!("done: stream cpu {} {delay:?}, round {round}", p.name);
            }
        }
    }
    mock.set_chunk_delay(Duration::ZERO);
    for (i, p) in proxies.iter().enumerate() {
        let mut row = format!("| {} ", p.name);
        for by_target in &samples {
            let rounds_of = &by_target[i];
            let cpu = crate::requests::range_cell(rounds_of.iter().map(|r| r.0).collect());
            let mut rps: Vec<f64> = rounds_of.iter().map(|r| r.1).collect();
            rps.sort_by(f64::total_cmp);
            let errors: u64 = rounds_of.iter().map(|r| r.2).sum();
            let _ = write!(row, "| {cpu} | {:.0} | {errors} ", rps[rps.len() / 2]);
        }
        let _ = writeln!(report, "{row}|");
    }
}

/// The codings the compression part asks for, `None` being identity (measured first in each
/// round, as the base of the others).
const CODINGS: [Option<&str>; 3] = [None, Some("gzip"), Some("br")];

/// The router's CPU per request with each `Accept-Encoding`, for complete prose answers of 1,
/// 4 and 8 KB and for a stream (compressed and flushed event by event): `--rounds` rounds, the
/// codings in turns within each, so that what compression adds is the ratio to identity
/// measured moments before, and a slow moment of the machine does not pass for the cost of an
/// encoding.
pub(crate) async fn compression_cost(args: &Args, report: &mut String, url: &str, pid: u32) {
    let rounds = args.rounds.max(1);
    let _ = writeln!(
        report,
        "\n## What compression costs\n\nllm-router only (`server.compression_min_bytes` at its \
         default); each answer echoes the request's text, which is prose (words of a small \
         vocabulary in a fixed pseudo-random order). CPU of the router per request at \
         saturation ({} connections, {} s each), and the answer's bytes on the wire. The median \
         of {rounds} round(s), identity, gzip and br in turns within each; what an encoding adds \
         is the median of its rounds' ratios to that round's identity, the range in brackets.\n",
        args.concurrency, args.seconds
    );
    let _ = writeln!(
        report,
        "| answer | Accept-Encoding | CPU per request | added to identity | errors | bytes on the wire |\n|---|---|---|---|---|---|"
    );
    let answers: [(&str, Bytes); 4] = [
        ("complete, 1 KB", prose_chat_body(1024)),
        ("complete, 4 KB", prose_chat_body(4 * 1024)),
        ("complete, 8 KB", prose_chat_body(8 * 1024)),
        ("streamed, 54 events", prose_stream_body(STREAM_WORDS)),
    ];
    for (answer, body) in answers {
        let mut bytes = [0; CODINGS.len()];
        // For each coding: CPU per request and errors of each round.
        let mut samples = vec![Vec::new(); CODINGS.len()];
        for round in 1..=rounds {
            for ((coding, kept), wire) in CODINGS.iter().zip(&mut samples).zip(&mut bytes) {
                accept_encoding(*coding);
                if round == 1 {
                    *wire = body_bytes(url, &body).await;
                }
                let (per, run) = saturated_cpu(args, pid, url, &body).await;
                kept.push((per, run.errors));
                eprintln!("done: compression {answer} {coding:?}, round {round}");
            }
        }
        let identity: Vec<f64> = samples[0].iter().map(|r| r.0).collect();
        for ((coding, kept), wire) in CODINGS.iter().zip(&samples).zip(bytes) {
            let cpu = crate::requests::range_cell(kept.iter().map(|r| r.0).collect());
            let added = if coding.is_none() {
                "–".to_string()
            } else {
                let ratios = kept.iter().zip(&identity).map(|(r, base)| r.0 / base - 1.0);
                percent_cell(ratios.collect())
            };
            let errors: u64 = kept.iter().map(|r| r.1).sum();
            let _ = writeln!(
                report,
                "| {answer} | {} | {cpu} | {added} | {errors} | {wire} |",
                coding.unwrap_or("identity"),
            );
        }
    }
    accept_encoding(args.accept_encoding.as_deref());
}

/// Ratios as a signed percentage: the median, and the range when there was more than one.
fn percent_cell(v: Vec<f64>) -> String {
    let pct = |x: f64| format!("{:+.0}%", x * 100.0);
    crate::requests::spread_cell(v, pct, pct, " to ")
}
