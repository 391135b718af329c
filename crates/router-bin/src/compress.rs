//! Response compression: brotli or gzip chosen by `Accept-Encoding` q-values, with
//! `Vary: Accept-Encoding`, a minimum size for complete bodies, and a flush after every frame
//! of a stream so each SSE event reaches the client at once.

use crate::hooked::{BodyHook, Hooked};
use crate::ResBody;
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::Response;
use http_body_util::BodyExt;
use std::io::Write;

/// A supported content coding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Coding {
    Brotli,
    Gzip,
}

impl Coding {
    fn name(self) -> &'static str {
        match self {
            Coding::Brotli => "br",
            Coding::Gzip => "gzip",
        }
    }
}

/// The best coding the client accepts for a complete body: highest q (> 0), gzip before
/// brotli on a tie (on a 4–8 KB prose answer gzip costs the router about two thirds of
/// brotli's CPU, for a fifth more bytes; see `docs/benchmarks.md`); `*` covers codings not
/// named.
pub(crate) fn negotiate(accept: &str) -> Option<Coding> {
    let (br, gz) = accepted(accept);
    if br <= 0.0 && gz <= 0.0 {
        None
    } else if br > gz {
        Some(Coding::Brotli)
    } else {
        Some(Coding::Gzip)
    }
}

/// The coding for a stream: gzip when accepted, else none. Flushed after every event, gzip
/// keeps its window across events and shrinks an OpenAI stream 12 to 16 times for 6–12% more
/// CPU; brotli at quality 1, flushed per event, shrank it by a sixth for 56% more (measured
/// in `docs/benchmarks.md`, the second round).
fn negotiate_stream(accept: &str) -> Option<Coding> {
    (accepted(accept).1 > 0.0).then_some(Coding::Gzip)
}

/// The q-values of brotli and gzip in an `Accept-Encoding` (0 for a coding not accepted).
fn accepted(accept: &str) -> (f32, f32) {
    let mut q_br: Option<f32> = None;
    let mut q_gzip: Option<f32> = None;
    let mut q_any: Option<f32> = None;
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let mut q = 1.0f32;
        for p in parts {
            let p = p.trim();
            if let Some(v) = p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")) {
                q = v.trim().parse().unwrap_or(0.0);
            }
        }
        match name.as_str() {
            "br" => q_br = Some(q),
            "gzip" | "x-gzip" => q_gzip = Some(q),
            "*" => q_any = Some(q),
            _ => {}
        }
    }
    (
        q_br.or(q_any).unwrap_or(0.0),
        q_gzip.or(q_any).unwrap_or(0.0),
    )
}

/// Brotli's quality: the fastest. On prose answers of 1–8 KB it took 66–88% of quality 1's
/// time for 6–7% more bytes, still a sixth fewer than gzip's (`cargo bench -p router-bin
/// --bench encoders`; `docs/benchmarks.md`, the eighth round), and it needs none of the
/// 640 KiB of buffers quality 1 allocates, zeroed, for each response.
const BROTLI_QUALITY: u32 = 0;
/// Brotli's window: 64 KiB, more than a JSON answer or an SSE event needs.
const BROTLI_WINDOW: u32 = 16;
/// Deflate's level for gzip: the fastest.
const GZIP_LEVEL: u32 = 1;
/// Deflate states kept per thread for the next response (each is a few hundred KiB).
const KEPT_DEFLATERS: usize = 16;

thread_local! {
    static DEFLATERS: std::cell::RefCell<Vec<flate2::Compress>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A raw deflate state, reused: making one zeroes a few hundred KiB of tables, which cost more
/// than compressing an answer (and, above the allocator's mmap threshold, page faults).
fn deflater() -> flate2::Compress {
    DEFLATERS
        .with(|kept| kept.borrow_mut().pop())
        .unwrap_or_else(|| flate2::Compress::new(flate2::Compression::new(GZIP_LEVEL), false))
}

fn keep_deflater(mut state: flate2::Compress) {
    state.reset();
    DEFLATERS.with(|kept| {
        let mut kept = kept.borrow_mut();
        if kept.len() < KEPT_DEFLATERS {
            kept.push(state);
        }
    });
}

/// gzip (RFC 1952) around a reused raw deflate state: the 10-byte header, then the deflate
/// stream, then the CRC-32 and length of the input.
struct Gzip {
    deflate: Option<flate2::Compress>,
    crc: flate2::Crc,
    header_sent: bool,
}

/// The gzip header: deflate, no name or time, unknown OS.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

impl Gzip {
    fn new() -> Self {
        Self {
            deflate: Some(deflater()),
            crc: flate2::Crc::new(),
            header_sent: false,
        }
    }

    /// Compresses `data` with `flush` into `out`.
    fn compress(&mut self, data: &[u8], flush: flate2::FlushCompress, out: &mut Vec<u8>) {
        if !std::mem::replace(&mut self.header_sent, true) {
            out.extend_from_slice(&GZIP_HEADER);
        }
        self.crc.update(data);
        let Some(deflate) = self.deflate.as_mut() else {
            return;
        };
        let mut input = data;
        loop {
            out.reserve(input.len() / 2 + 64);
            let before = deflate.total_in();
            let status = deflate.compress_vec(input, out, flush);
            let read = (deflate.total_in() - before) as usize;
            input = &input[read..];
            let done = match status {
                Ok(flate2::Status::StreamEnd) => true,
                // Room ran out: go round with more. Done once the input is in and the flush
                // left room to spare (nothing more was waiting).
                Ok(_) => input.is_empty() && out.len() < out.capacity(),
                Err(_) => true,
            };
            if done {
                return;
            }
        }
    }

    fn finish(mut self, out: &mut Vec<u8>) {
        self.compress(&[], flate2::FlushCompress::Finish, out);
        out.extend_from_slice(&self.crc.sum().to_le_bytes());
        out.extend_from_slice(&self.crc.amount().to_le_bytes());
    }
}

impl Drop for Gzip {
    fn drop(&mut self) {
        if let Some(state) = self.deflate.take() {
            keep_deflater(state);
        }
    }
}

enum Encoder {
    Gzip(Gzip),
    Brotli(Box<brotli::CompressorWriter<Vec<u8>>>),
}

impl Encoder {
    fn new(coding: Coding) -> Self {
        match coding {
            Coding::Gzip => Encoder::Gzip(Gzip::new()),
            Coding::Brotli => Encoder::Brotli(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                4096,
                BROTLI_QUALITY,
                BROTLI_WINDOW,
            ))),
        }
    }

    /// Compresses `data` and flushes, returning every byte produced so far.
    fn push(&mut self, data: &[u8]) -> Bytes {
        match self {
            Encoder::Gzip(e) => {
                let mut out = Vec::new();
                e.compress(data, flate2::FlushCompress::Sync, &mut out);
                Bytes::from(out)
            }
            Encoder::Brotli(e) => {
                // Writing into a Vec cannot fail.
                let _ = e.write_all(data);
                let _ = e.flush();
                Bytes::from(std::mem::take(e.get_mut()))
            }
        }
    }

    /// Compresses the whole of `data` and ends the stream.
    fn whole(self, data: &[u8]) -> Bytes {
        match self {
            Encoder::Gzip(mut e) => {
                let mut out = Vec::with_capacity(data.len() / 3 + 64);
                e.compress(data, flate2::FlushCompress::None, &mut out);
                e.finish(&mut out);
                Bytes::from(out)
            }
            Encoder::Brotli(mut e) => {
                let _ = e.write_all(data);
                Bytes::from(e.into_inner())
            }
        }
    }

    /// Ends the stream, returning the remaining bytes.
    fn finish(self) -> Bytes {
        match self {
            Encoder::Gzip(e) => {
                let mut out = Vec::new();
                e.finish(&mut out);
                Bytes::from(out)
            }
            Encoder::Brotli(e) => Bytes::from(e.into_inner()),
        }
    }
}

/// Compresses a stream frame by frame, each flushed, so events are not held back.
struct Compressing(Option<Encoder>);

impl<B> BodyHook<B> for Compressing {
    fn on_data(&mut self, data: Bytes) -> Bytes {
        self.0.as_mut().map(|e| e.push(&data)).unwrap_or_default()
    }
    fn on_end(&mut self) -> Option<Bytes> {
        self.0.take().map(Encoder::finish)
    }
    fn keeps_length(&self) -> bool {
        false
    }
}

fn compressible(content_type: Option<&HeaderValue>) -> bool {
    let Some(ct) = content_type.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let ct = ct.to_ascii_lowercase();
    ct.starts_with("application/json") || ct.starts_with("text/")
}

/// Compresses `response` if the client accepts a coding we have and it is worth it.
/// `known_len` is the body length for complete bodies (`None` for streams).
pub(crate) async fn apply(
    response: Response<ResBody>,
    accept: Option<&str>,
    known_len: Option<usize>,
    min_bytes: usize,
) -> Response<ResBody> {
    let (mut parts, body) = response.into_parts();
    parts
        .headers
        .append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    let coding = match known_len {
        Some(_) => accept.and_then(negotiate),
        None => accept.and_then(negotiate_stream),
    };
    let worth_it = known_len.is_none_or(|n| n >= min_bytes);
    let Some(coding) = coding.filter(|_| {
        worth_it
            && !parts.headers.contains_key(header::CONTENT_ENCODING)
            && compressible(parts.headers.get(header::CONTENT_TYPE))
    }) else {
        return Response::from_parts(parts, body);
    };
    parts.headers.insert(
        header::CONTENT_ENCODING,
        HeaderValue::from_static(coding.name()),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    let body = if known_len.is_some() {
        // A complete body: compress it in one go and send its length.
        let bytes = match body.collect().await {
            Ok(c) => c.to_bytes(),
            Err(never) => match never {},
        };
        http_body_util::Full::new(Encoder::new(coding).whole(&bytes)).boxed_unsync()
    } else {
        Hooked::new(body, Compressing(Some(Encoder::new(coding)))).boxed_unsync()
    };
    Response::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gunzip(data: &[u8]) -> Vec<u8> {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn gzip_with_a_reused_state_decodes_to_the_input() {
        // Large enough to take several rounds of output room, and each state reused.
        let text: Vec<u8> = (0..300_000u32)
            .flat_map(|i| format!("{} ", i % 977).into_bytes())
            .collect();
        for _ in 0..3 {
            let whole = Encoder::new(Coding::Gzip).whole(&text);
            assert!(whole.len() < text.len() / 2);
            assert_eq!(gunzip(&whole), text);
            let mut streamed = Vec::new();
            let mut encoder = Encoder::new(Coding::Gzip);
            for chunk in text.chunks(7_000) {
                let part = encoder.push(chunk);
                streamed.extend_from_slice(&part);
            }
            streamed.extend_from_slice(&encoder.finish());
            assert_eq!(gunzip(&streamed), text);
        }
        assert!(DEFLATERS.with(|kept| !kept.borrow().is_empty()));
        let empty = Encoder::new(Coding::Gzip).whole(b"");
        assert_eq!(gunzip(&empty), b"");
    }

    #[test]
    fn negotiates_by_q_value() {
        assert_eq!(negotiate("gzip, deflate, br"), Some(Coding::Gzip));
        assert_eq!(negotiate("br"), Some(Coding::Brotli));
        assert_eq!(negotiate("gzip;q=0.9, br"), Some(Coding::Brotli));
        assert_eq!(negotiate("gzip"), Some(Coding::Gzip));
        assert_eq!(negotiate("br;q=0.5, gzip;q=0.8"), Some(Coding::Gzip));
        assert_eq!(negotiate("br;q=0, gzip;q=0"), None);
        assert_eq!(negotiate("identity"), None);
        assert_eq!(negotiate("*"), Some(Coding::Gzip));
        assert_eq!(negotiate("br;q=0, *;q=0.1"), Some(Coding::Gzip));
        assert_eq!(negotiate(""), None);
        // Streams: gzip or nothing.
        assert_eq!(negotiate_stream("gzip, deflate, br"), Some(Coding::Gzip));
        assert_eq!(negotiate_stream("gzip;q=0.5, br"), Some(Coding::Gzip));
        assert_eq!(negotiate_stream("*"), Some(Coding::Gzip));
        assert_eq!(negotiate_stream("br"), None);
        assert_eq!(negotiate_stream("gzip;q=0, br"), None);
    }
}
