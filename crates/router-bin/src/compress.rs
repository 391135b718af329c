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

/// The best coding the client accepts: highest q (> 0), brotli before gzip on a tie; `*`
/// covers codings not named.
pub(crate) fn negotiate(accept: &str) -> Option<Coding> {
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
    let br = q_br.or(q_any).unwrap_or(0.0);
    let gz = q_gzip.or(q_any).unwrap_or(0.0);
    if br <= 0.0 && gz <= 0.0 {
        None
    } else if br >= gz {
        Some(Coding::Brotli)
    } else {
        Some(Coding::Gzip)
    }
}

enum Encoder {
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Brotli(Box<brotli::CompressorWriter<Vec<u8>>>),
}

impl Encoder {
    fn new(coding: Coding) -> Self {
        match coding {
            Coding::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::new(5),
            )),
            Coding::Brotli => Encoder::Brotli(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                4096,
                5,
                22,
            ))),
        }
    }

    /// Compresses `data` and flushes, returning every byte produced so far.
    fn push(&mut self, data: &[u8]) -> Bytes {
        // Writing into a Vec cannot fail.
        let out = match self {
            Encoder::Gzip(e) => {
                let _ = e.write_all(data);
                let _ = e.flush();
                e.get_mut()
            }
            Encoder::Brotli(e) => {
                let _ = e.write_all(data);
                let _ = e.flush();
                e.get_mut()
            }
        };
        Bytes::from(std::mem::take(out))
    }

    /// Ends the stream, returning the remaining bytes.
    fn finish(self) -> Bytes {
        match self {
            Encoder::Gzip(e) => Bytes::from(e.finish().unwrap_or_default()),
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
    let coding = accept.and_then(negotiate);
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
        let mut encoder = Encoder::new(coding);
        let head = encoder.push(&bytes);
        let tail = encoder.finish();
        let mut all = Vec::with_capacity(head.len() + tail.len());
        all.extend_from_slice(&head);
        all.extend_from_slice(&tail);
        http_body_util::Full::new(Bytes::from(all)).boxed_unsync()
    } else {
        Hooked::new(body, Compressing(Some(Encoder::new(coding)))).boxed_unsync()
    };
    Response::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates_by_q_value() {
        assert_eq!(negotiate("gzip, deflate, br"), Some(Coding::Brotli));
        assert_eq!(negotiate("gzip"), Some(Coding::Gzip));
        assert_eq!(negotiate("br;q=0.5, gzip;q=0.8"), Some(Coding::Gzip));
        assert_eq!(negotiate("br;q=0, gzip;q=0"), None);
        assert_eq!(negotiate("identity"), None);
        assert_eq!(negotiate("*"), Some(Coding::Brotli));
        assert_eq!(negotiate("br;q=0, *;q=0.1"), Some(Coding::Gzip));
        assert_eq!(negotiate(""), None);
    }
}
