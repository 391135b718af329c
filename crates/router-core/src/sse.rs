//! An incremental scanner for server-sent events that hands out each complete event as the
//! exact bytes received (zero-copy slices), so events that need no change are forwarded as is.
//! A scanner made [`SseScanner::with_limit`] holds no event larger than its limit: an upstream
//! that sends an endless line costs that much memory at most.

use bytes::{Bytes, BytesMut};

/// Splits a byte stream into SSE events at blank lines (`\n\n`, `\r\n\r\n`, `\r\r`, mixed).
#[derive(Debug, Default)]
pub struct SseScanner {
    buf: BytesMut,
    /// Where scanning resumes.
    pos: usize,
    /// Whether the byte before `pos` ended a line (so an immediate line end is a blank line).
    at_line_start: bool,
    /// The largest event held (0: no limit).
    limit: usize,
    /// Whether an event went over the limit; nothing is scanned after it.
    too_large: bool,
}

impl SseScanner {
    /// A new scanner.
    pub fn new() -> Self {
        Self {
            at_line_start: true,
            ..Self::default()
        }
    }

    /// A scanner that stops at the first event over `limit` bytes (see
    /// [`SseScanner::too_large`]).
    pub fn with_limit(limit: usize) -> Self {
        Self {
            limit,
            ..Self::new()
        }
    }

    /// Whether an event went over the limit. The events before it were handed out; the rest
    /// of the stream is not scanned, and what was held of it is let go.
    pub fn too_large(&self) -> bool {
        self.too_large
    }

    /// Adds bytes and returns every event completed by them, each with its terminating blank line.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Bytes> {
        let mut events = Vec::new();
        self.push_into(chunk, &mut events);
        events
    }

    /// [`SseScanner::push`], the events appended to `events` (a buffer the caller reuses).
    pub fn push_into(&mut self, chunk: &[u8], events: &mut Vec<Bytes>) {
        if self.too_large {
            return;
        }
        self.buf.extend_from_slice(chunk);
        let from = events.len();
        self.scan(events);
        if self.limit > 0 {
            if let Some(at) = events[from..].iter().position(|e| e.len() > self.limit) {
                events.truncate(from + at);
                self.overflow();
            } else if self.buf.len() > self.limit {
                self.overflow();
            }
        }
    }

    fn overflow(&mut self) {
        self.too_large = true;
        self.buf = BytesMut::new();
        self.pos = 0;
    }

    fn scan(&mut self, events: &mut Vec<Bytes>) {
        let mut i = self.pos;
        while i < self.buf.len() {
            // Jump to the next line end; the bytes skipped belong to a line.
            let Some(at) = memchr::memchr2(b'\n', b'\r', &self.buf[i..]) else {
                self.at_line_start = false;
                i = self.buf.len();
                break;
            };
            if at > 0 {
                self.at_line_start = false;
            }
            i += at;
            let mut end = i + 1;
            if self.buf[i] == b'\r' {
                if end == self.buf.len() {
                    // `\r` or `\r\n`: undecided until the next byte arrives.
                    break;
                }
                if self.buf[end] == b'\n' {
                    end += 1;
                }
            }
            if self.at_line_start {
                events.push(self.buf.split_to(end).freeze());
                i = 0;
            } else {
                self.at_line_start = true;
                i = end;
            }
        }
        self.pos = i;
    }

    /// At end of stream: whatever is left (an event without its blank line), if any.
    pub fn finish(&mut self) -> Option<Bytes> {
        if self.too_large {
            return None;
        }
        self.pos = 0;
        self.at_line_start = true;
        if self.buf.iter().all(|b| b.is_ascii_whitespace()) {
            self.buf.clear();
            return None;
        }
        Some(self.buf.split().freeze())
    }
}

/// The `data` of an event: its `data:` lines joined by `\n`; `None` for an event without data
/// (a comment or keep-alive).
pub fn event_data(event: &[u8]) -> Option<std::borrow::Cow<'_, [u8]>> {
    // The usual event: one `data:` line and its blank line.
    if let Some(end) = memchr::memchr2(b'\n', b'\r', event) {
        if event[end..].iter().all(|&b| b == b'\n' || b == b'\r') {
            return data_value(&event[..end]).map(std::borrow::Cow::Borrowed);
        }
    }
    let mut parts: Vec<&[u8]> = Vec::new();
    for line in event.split(|&b| b == b'\n' || b == b'\r') {
        parts.extend(data_value(line));
    }
    match parts.len() {
        0 => None,
        1 => Some(std::borrow::Cow::Borrowed(parts[0])),
        _ => Some(std::borrow::Cow::Owned(parts.join(&b'\n'))),
    }
}

/// The value of a `data` line (`data`, `data:x` or `data: x`), `None` for any other line.
fn data_value(line: &[u8]) -> Option<&[u8]> {
    let rest = line.strip_prefix(b"data")?;
    match rest.first() {
        None => Some(rest),
        Some(b':') => {
            let v = &rest[1..];
            Some(v.strip_prefix(b" ").unwrap_or(v))
        }
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_in_pieces(input: &[u8], piece: usize) -> Vec<Vec<u8>> {
        let mut s = SseScanner::new();
        let mut out: Vec<Vec<u8>> = Vec::new();
        for c in input.chunks(piece) {
            out.extend(s.push(c).into_iter().map(|b| b.to_vec()));
        }
        out.extend(s.finish().map(|b| b.to_vec()));
        out
    }

    #[test]
    fn splits_events_at_any_chunking_and_line_ending() {
        let input = b"data: a\n\ndata: b\r\n\r\n: ping\n\ndata: c\rdata: d\r\r";
        for piece in 1..input.len() {
            let events = scan_in_pieces(input, piece);
            assert_eq!(
                events,
                vec![
                    b"data: a\n\n".to_vec(),
                    b"data: b\r\n\r\n".to_vec(),
                    b": ping\n\n".to_vec(),
                    b"data: c\rdata: d\r\r".to_vec()
                ],
                "piece size {piece}"
            );
            assert_eq!(events.concat(), input.to_vec());
        }
    }

    #[test]
    fn an_event_over_the_limit_stops_the_scan_and_lets_its_bytes_go() {
        // A line that never ends.
        let mut s = SseScanner::with_limit(64);
        assert_eq!(
            s.push(b"data: a\n\ndata: "),
            vec![Bytes::from_static(b"data: a\n\n")]
        );
        for _ in 0..10 {
            assert!(s.push(&[b'x'; 16]).is_empty());
        }
        assert!(s.too_large());
        assert!(s.buf.capacity() == 0 && s.finish().is_none());
        assert!(s.push(b"\n\ndata: b\n\n").is_empty(), "nothing after it");
        // A complete event over the limit in one piece: the ones before it come out.
        let mut s = SseScanner::with_limit(16);
        let big = format!("data: ok\n\ndata: {}\n\ndata: z\n\n", "y".repeat(40));
        assert_eq!(
            s.push(big.as_bytes()),
            vec![Bytes::from_static(b"data: ok\n\n")]
        );
        assert!(s.too_large());
        // Without a limit, any size.
        let mut s = SseScanner::new();
        assert_eq!(s.push(big.as_bytes()).len(), 3);
        assert!(!s.too_large());
    }

    #[test]
    fn keeps_unterminated_tail() {
        assert_eq!(scan_in_pieces(b"data: x\n\ndata: y", 3).len(), 2);
    }

    #[test]
    fn extracts_data() {
        assert_eq!(
            event_data(b"data: {\"a\":1}\n\n").unwrap().as_ref(),
            b"{\"a\":1}"
        );
        assert_eq!(
            event_data(b"event: x\ndata:1\ndata: 2\n\n")
                .unwrap()
                .as_ref(),
            b"1\n2"
        );
        assert!(event_data(b": keep-alive\n\n").is_none());
        // One line, with each kind of ending, or none.
        for event in [
            &b"data: x\r\n\r\n"[..],
            b"data:x\r\r",
            b"data: x",
            b"data: x\n",
        ] {
            assert_eq!(event_data(event).unwrap().as_ref(), b"x");
        }
        assert_eq!(event_data(b"data\n\n").unwrap().as_ref(), b"");
        assert!(event_data(b"datum: x\n\n").is_none());
    }
}
