//! What compressing a chat answer of prose costs, at the settings the router uses (deflate at
//! level 1 with a reused state, brotli at quality 0 with a 64 KiB window) and at the nearest
//! others: the numbers behind the levels in `src/compress.rs`.
//!
//! `cargo bench -p router-bin --bench encoders`

#![allow(missing_docs, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::io::Write;

/// An OpenAI chat completion whose message is `len` bytes of prose.
fn answer(len: usize) -> Vec<u8> {
    format!(
        r#"{{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"m","choices":[{{"index":0,"message":{{"role":"assistant","content":"{}"}},"finish_reason":"stop"}}],"usage":{{"prompt_tokens":10,"completion_tokens":20,"total_tokens":30}}}}"#,
        mock_upstream::prose(len)
    )
    .into_bytes()
}

/// Raw deflate of `data` into `out` with a state reset for it, as the router reuses its states.
fn deflate(state: &mut flate2::Compress, data: &[u8], out: &mut Vec<u8>) -> usize {
    state.reset();
    out.clear();
    out.reserve(data.len() + 64);
    let status = state.compress_vec(data, out, flate2::FlushCompress::Finish);
    assert!(matches!(status, Ok(flate2::Status::StreamEnd)));
    out.len()
}

fn brotli(data: &[u8], quality: u32) -> usize {
    let mut writer = brotli::CompressorWriter::new(Vec::new(), 4096, quality, 16);
    writer.write_all(data).expect("a Vec takes all");
    writer.into_inner().len()
}

fn encoders(c: &mut Criterion) {
    let mut group = c.benchmark_group("encoders");
    for kb in [1usize, 4, 8] {
        let data = answer(kb * 1024);
        group.throughput(Throughput::Bytes(data.len() as u64));
        for level in [1u32, 2, 3] {
            let mut state = flate2::Compress::new(flate2::Compression::new(level), false);
            let mut out = Vec::new();
            group.bench_with_input(
                BenchmarkId::new(format!("deflate_{level}"), format!("{kb}KB")),
                &data,
                |b, data| b.iter(|| deflate(&mut state, black_box(data), &mut out)),
            );
        }
        for quality in [0u32, 1, 2] {
            group.bench_with_input(
                BenchmarkId::new(format!("brotli_{quality}"), format!("{kb}KB")),
                &data,
                |b, data| b.iter(|| brotli(black_box(data), quality)),
            );
        }
        group.bench_with_input(
            BenchmarkId::new("crc32", format!("{kb}KB")),
            &data,
            |b, data| {
                b.iter(|| {
                    let mut crc = flate2::Crc::new();
                    crc.update(black_box(data));
                    crc.sum()
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, encoders);
criterion_main!(benches);
