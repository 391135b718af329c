//! Micro-benchmarks of the per-request work: selection over 1, 10 and 1,000 keys (`usage`,
//! `least_busy` as `select_least_busy/*`, `lowest_cost` as `select_lowest_cost/*`, `lowest_latency` as
//! `select_lowest_latency/*`, `lowest_tpm_rpm` over keys with limits as
//! `select_lowest_tpm_rpm/*`), request
//! validation and rewriting (1 KB, 32 KB, 1 MB bodies), SSE event scanning and usage
//! extraction, and a whole in-process request on the `mock` provider (complete and streamed).
//!
//! `cargo bench -p router-core --bench hot_path`

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use router_core::sse::{event_data, SseScanner};
use router_core::{usage_of_body, ChatRequest, ClientRequest, Format, Router, Source};
use std::hint::black_box;

fn router_with_keys(n: usize, strategy: &str) -> Router {
    let keys: Vec<String> = (0..n).map(|i| format!("\"sk-bench-key-{i:06}\"")).collect();
    // Limits that every pick counts against (and none reaches), where they are the strategy.
    let limits = if strategy == "lowest_tpm_rpm" {
        ", limits: {rpm: 1000000000, tpm: 1000000000000}"
    } else {
        ""
    };
    let yaml = format!(
        "groups:\n  - name: g\n    strategy: {strategy}\n    models: [{{provider: p, name: m}}]\nproviders:\n  - {{name: p, base_url: \"http://127.0.0.1:9\", api_keys: [{}]{limits}}}\n",
        keys.join(", ")
    );
    Router::from_source(&Source::from_text(yaml, Format::Yaml)).unwrap()
}

fn selection(c: &mut Criterion) {
    let strategies = [
        ("select", "usage"),
        ("select_least_busy", "least_busy"),
        ("select_lowest_cost", "lowest_cost"),
        ("select_lowest_latency", "lowest_latency"),
        ("select_lowest_tpm_rpm", "lowest_tpm_rpm"),
    ];
    for (name, strategy) in strategies {
        let mut group = c.benchmark_group(name);
        let limited = strategy == "lowest_tpm_rpm";
        for n in [1usize, 10, 1000] {
            let router = router_with_keys(n, strategy);
            group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
                b.iter(|| {
                    let selection = router.pick(black_box("g"), 300).unwrap();
                    if limited {
                        // Nothing sent: the keys' minutes do not fill up with the bench's picks.
                        selection.withdraw();
                    } else {
                        selection.release();
                    }
                })
            });
        }
        group.finish();
    }
}

/// A chat request body of about `size` bytes (one user message filling the rest).
fn body_of(size: usize) -> Vec<u8> {
    let head = r#"{"model":"g","temperature":0.2,"stream":false,"messages":[{"role":"system","content":"be brief"},{"role":"user","content":""#;
    let tail = r#""}],"max_tokens":256}"#;
    let fill = size.saturating_sub(head.len() + tail.len());
    let mut body = Vec::with_capacity(size);
    body.extend_from_slice(head.as_bytes());
    body.extend(std::iter::repeat_n(b'a', fill));
    body.extend_from_slice(tail.as_bytes());
    body
}

fn rewrite(c: &mut Criterion) {
    let mut group = c.benchmark_group("rewrite");
    for (name, size) in [
        ("1KB", 1024usize),
        ("32KB", 32 * 1024),
        ("1MB", 1024 * 1024),
    ] {
        let body = body_of(size);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &body, |b, body| {
            b.iter(|| {
                let request = ChatRequest::parse(black_box(body)).unwrap();
                black_box(request.upstream_body("upstream-model", None))
            })
        });
    }
    group.finish();
}

/// A typical streamed answer: 200 content chunks, a finish chunk, the usage chunk, `[DONE]`.
fn stream_bytes() -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..200 {
        out.extend_from_slice(
            format!(
                "data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"word{i} \"}},\"logprobs\":null,\"finish_reason\":null}}]}}\n\n"
            )
            .as_bytes(),
        );
    }
    out.extend_from_slice(b"data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n");
    out.extend_from_slice(b"data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":200,\"total_tokens\":212}}\n\n");
    out.extend_from_slice(b"data: [DONE]\n\n");
    out
}

fn sse(c: &mut Criterion) {
    let bytes = stream_bytes();
    let mut group = c.benchmark_group("sse");
    group.throughput(Throughput::Elements(203));
    group.bench_function("scan_203_events", |b| {
        b.iter(|| {
            let mut scanner = SseScanner::new();
            let mut n = 0;
            // Arrives in 1 KiB reads, as from a socket.
            for piece in bytes.chunks(1024) {
                for event in scanner.push(black_box(piece)) {
                    n += event_data(&event).map_or(0, |d| d.len());
                }
            }
            n
        })
    });
    group.finish();
    let answer = br#"{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there, how can I help you today?"},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21}}"#;
    c.bench_function("usage_of_complete_answer", |b| {
        b.iter(|| usage_of_body(black_box(answer)).unwrap())
    });
}

fn in_process(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let yaml = "groups:\n  - name: g\n    models: [{provider: mock, name: m}]\nproviders:\n  - {name: mock, type: mock}\n";
    let router = Router::from_source(&Source::from_text(yaml, Format::Yaml)).unwrap();
    let complete = br#"{"model":"g","messages":[{"role":"user","content":"one two three four"}]}"#;
    let streamed =
        br#"{"model":"g","stream":true,"messages":[{"role":"user","content":"one two three four"}]}"#;
    let mut group = c.benchmark_group("request_on_mock_provider");
    group.bench_function("complete", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let request = ClientRequest::chat(black_box(complete));
                let answer = router.forward(&router.snapshot(), request).await.unwrap();
                answer.body.collect_bytes().await
            })
        })
    });
    group.bench_function("streamed", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let request = ClientRequest::chat(black_box(streamed));
                let answer = router.forward(&router.snapshot(), request).await.unwrap();
                answer.body.collect_bytes().await
            })
        })
    });
    group.finish();
}

criterion_group!(benches, selection, rewrite, sse, in_process);
criterion_main!(benches);
