//! Text that compresses about as a model's answer does, for benchmarks of what the router does
//! with an answer's bytes.

/// `len` bytes of English-like text: words of a small vocabulary in a fixed pseudo-random
/// order, with sentence ends. gzip at level 1 shrinks it about 2.5 times, as it does a model's
/// prose (a run of one letter shrinks about 20 times, and costs an encoder less per byte).
pub fn prose(len: usize) -> String {
    const WORDS: [&str; 32] = [
        "the",
        "model",
        "returns",
        "a",
        "response",
        "with",
        "tokens",
        "and",
        "usage",
        "which",
        "router",
        "counts",
        "for",
        "each",
        "key",
        "budget",
        "stream",
        "event",
        "provider",
        "request",
        "answer",
        "of",
        "to",
        "in",
        "is",
        "that",
        "JSON",
        "compression",
        "latency",
        "cost",
        "when",
        "every",
    ];
    let mut text = String::with_capacity(len + 16);
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    while text.len() < len {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        text.push_str(WORDS[(state >> 59) as usize]);
        text.push_str(if (state >> 20).is_multiple_of(11) {
            ". "
        } else {
            " "
        });
    }
    text.truncate(len);
    text
}

#[cfg(test)]
mod tests {
    use super::prose;

    #[test]
    fn prose_is_as_long_as_asked_and_the_same_each_time() {
        for len in [0, 1, 100, 4096] {
            assert_eq!(prose(len).len(), len);
        }
        assert_eq!(prose(500), prose(500));
        assert!(prose(64).starts_with(&prose(20)));
        // Words and sentence ends, nothing a JSON string would need to escape.
        let text = prose(4096);
        assert!(text.split(' ').filter(|w| !w.is_empty()).count() > 400);
        assert!(text.contains(". "));
        assert!(text
            .bytes()
            .all(|b| b.is_ascii_alphabetic() || b == b' ' || b == b'.'));
    }
}
