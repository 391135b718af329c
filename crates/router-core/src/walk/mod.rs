//! A walk over JSON text that reads a few fields without building the value: strings are
//! skipped with `memchr`, and a [`Visit`] says where each value sits and gets the raw text of
//! the values it cares about.
//!
//! It serves the hot paths that need a few fields of a document they relay as it is: a
//! stream's text for the meter, what a prompt is made of. A complete answer's usage is read
//! from the answer's end instead ([`field`]). For a 260-byte OpenAI chunk,
//! parsing with serde_json took about 5,700 instructions (jiter 4,300, simd-json 4,200,
//! sonic-rs 5,700 without AVX2), this walk 2,900. It is not a validator: text it cannot walk
//! (cut short, something after the value, nesting deeper than serde_json's limit) is refused
//! as a whole, but a document it walks may still be one serde_json would refuse, the more so
//! in the places a visitor skips, where only brackets and strings are followed.

mod field;

pub(crate) use field::{field, field_value};

/// Where values sit, and what is done with them, for a document that lives for `'a`.
pub(crate) trait Visit<'a> {
    /// A place in the document, as far as the visitor cares.
    type At: Copy;
    /// Where the value under `key` (as written, without its quotes) of an object at `at` sits.
    fn key(&self, at: Self::At, key: &[u8]) -> Self::At;
    /// Where the elements of an array at `at` sit.
    fn element(&self, at: Self::At) -> Self::At;
    /// A value at `at`, as written (a string with its quotes).
    fn value(&mut self, at: Self::At, raw: &'a [u8]);
    /// Whether nothing at `at` matters: the value there, and all it holds, is passed over
    /// without a call (its brackets matched and its strings jumped, what lies between them
    /// not checked).
    fn skips(&self, _at: Self::At) -> bool {
        false
    }
}

/// Nesting deeper than this is refused (serde_json's own limit).
const MAX_DEPTH: usize = 128;

/// Whether `b` is JSON's whitespace (which has no form feed, unlike ASCII's).
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Walks `data`, one JSON value with only whitespace around it, from `root`. False when the
/// text cannot be walked; the visitor may have seen part of it by then.
pub(crate) fn walk<'a, V: Visit<'a>>(data: &'a [u8], root: V::At, visitor: &mut V) -> bool {
    let mut walker = Walker { data, visitor };
    let start = walker.ws(0);
    match walker.value(start, root, 0) {
        Some(end) => walker.ws(end) == data.len(),
        None => false,
    }
}

struct Walker<'a, 'v, V> {
    data: &'a [u8],
    visitor: &'v mut V,
}

impl<'a, V: Visit<'a>> Walker<'a, '_, V> {
    fn ws(&self, mut pos: usize) -> usize {
        while self.data.get(pos).is_some_and(|&b| is_ws(b)) {
            pos += 1;
        }
        pos
    }

    /// The end of the string opening at `pos` (just past its closing quote).
    fn string(&self, pos: usize) -> Option<usize> {
        let mut at = pos + 1;
        loop {
            at += memchr::memchr2(b'"', b'\\', self.data.get(at..)?)?;
            if self.data[at] == b'"' {
                return Some(at + 1);
            }
            // An escape: the byte after the backslash never ends the string.
            at += 2;
        }
    }

    /// The end of the value at `pos`, which sits at `at`.
    fn value(&mut self, pos: usize, at: V::At, depth: usize) -> Option<usize> {
        if depth > MAX_DEPTH {
            return None;
        }
        if self.visitor.skips(at) {
            return self.skip(pos, depth);
        }
        let end = match *self.data.get(pos)? {
            b'{' => self.object(pos, at, depth)?,
            b'[' => self.array(pos, at, depth)?,
            b'"' => self.string(pos)?,
            _ => self.scalar(pos)?,
        };
        let data = self.data;
        self.visitor.value(at, &data[pos..end]);
        Some(end)
    }

    /// The end of the number, `true`, `false` or `null` at `pos`.
    fn scalar(&self, pos: usize) -> Option<usize> {
        let len = self.data[pos..]
            .iter()
            .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
            .unwrap_or(self.data.len() - pos);
        (len > 0).then_some(pos + len)
    }

    /// The end of the value at `pos` (at `depth`), passed over: each bracket must close
    /// the last one opened, and a container whose contents would sit deeper than the limit
    /// must be empty; strings are jumped, and nothing else is checked (`[1,,2]` passes).
    fn skip(&self, pos: usize, depth: usize) -> Option<usize> {
        match *self.data.get(pos)? {
            b'{' | b'[' => {}
            b'"' => return self.string(pos),
            _ => return self.scalar(pos),
        }
        // Bit `i` of `arrays` says whether the container `i` levels up is an array; the
        // depth limit keeps `level` within its 128 bits.
        let (mut arrays, mut level, mut at) = (0u128, 0usize, pos);
        loop {
            match *self.data.get(at)? {
                b'"' => {
                    at = self.string(at)?;
                    continue;
                }
                open @ (b'{' | b'[') => {
                    level += 1;
                    arrays = (arrays << 1) | u128::from(open == b'[');
                    // Its contents would sit deeper than the limit: as in the walk, only an
                    // empty one passes (and then nothing opens deeper).
                    let close = if open == b'[' { b']' } else { b'}' };
                    if depth + level > MAX_DEPTH && self.data.get(self.ws(at + 1)) != Some(&close) {
                        return None;
                    }
                }
                close @ (b'}' | b']') => {
                    if (arrays & 1 == 1) != (close == b']') {
                        return None;
                    }
                    (arrays, level) = (arrays >> 1, level - 1);
                    if level == 0 {
                        return Some(at + 1);
                    }
                }
                _ => {}
            }
            at += 1;
        }
    }

    fn object(&mut self, pos: usize, at: V::At, depth: usize) -> Option<usize> {
        let mut pos = self.ws(pos + 1);
        if self.data.get(pos) == Some(&b'}') {
            return Some(pos + 1);
        }
        loop {
            if self.data.get(pos) != Some(&b'"') {
                return None;
            }
            let key_end = self.string(pos)?;
            let data = self.data;
            let child = self.visitor.key(at, &data[pos + 1..key_end - 1]);
            pos = self.ws(key_end);
            if self.data.get(pos) != Some(&b':') {
                return None;
            }
            pos = self.ws(pos + 1);
            let end = self.value(pos, child, depth + 1)?;
            pos = self.ws(end);
            match self.data.get(pos)? {
                b',' => pos = self.ws(pos + 1),
                b'}' => return Some(pos + 1),
                _ => return None,
            }
        }
    }

    fn array(&mut self, pos: usize, at: V::At, depth: usize) -> Option<usize> {
        let mut pos = self.ws(pos + 1);
        if self.data.get(pos) == Some(&b']') {
            return Some(pos + 1);
        }
        let element = self.visitor.element(at);
        loop {
            let end = self.value(pos, element, depth + 1)?;
            pos = self.ws(end);
            match self.data.get(pos)? {
                b',' => pos = self.ws(pos + 1),
                b']' => return Some(pos + 1),
                _ => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{walk, Visit};

    /// The raw text of the top-level field `key` of the JSON object `data`, found by a walk from
    /// its start that skips every other value: the walk's skip, tested through a visitor.
    fn field<'a>(data: &'a [u8], key: &str) -> Option<&'a [u8]> {
        struct Field<'k, 'a> {
            key: &'k [u8],
            found: Option<&'a [u8]>,
        }
        /// The document, the field, or anything else.
        #[derive(Clone, Copy, PartialEq, Eq)]
        enum At {
            Top,
            Field,
            Other,
        }
        impl<'a> Visit<'a> for Field<'_, 'a> {
            type At = At;
            fn key(&self, at: At, key: &[u8]) -> At {
                if at == At::Top && key == self.key {
                    At::Field
                } else {
                    At::Other
                }
            }
            fn element(&self, _: At) -> At {
                At::Other
            }
            fn value(&mut self, at: At, raw: &'a [u8]) {
                if at == At::Field {
                    self.found = Some(raw);
                }
            }
            fn skips(&self, at: At) -> bool {
                at == At::Other
            }
        }
        if data.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return None;
        }
        let mut visitor = Field {
            key: key.as_bytes(),
            found: None,
        };
        if walk(data, At::Top, &mut visitor) {
            visitor.found
        } else {
            None
        }
    }

    #[test]
    fn a_top_level_field_is_found_as_written() {
        let doc = br#" {"id":"x","choices":[{"usage":1}],"usage" : {"prompt_tokens": 3} } "#;
        assert_eq!(field(doc, "usage"), Some(&br#"{"prompt_tokens": 3}"#[..]));
        assert_eq!(field(doc, "id"), Some(&br#""x""#[..]));
        // A nested field of that name is not it.
        assert_eq!(field(br#"{"choices":[{"usage":1}]}"#, "usage"), None);
        // Not an object, cut short, or something after it.
        assert_eq!(field(br#"[{"usage":1}]"#, "usage"), None);
        assert_eq!(field(br#"{"usage":{"a":1}"#, "usage"), None);
        assert_eq!(field(br#"{"usage":1} {"#, "usage"), None);
        assert_eq!(field(br#"{"usage":}"#, "usage"), None);
        // Quotes inside strings do not end them.
        assert_eq!(
            field(br#"{"a":"\"usage\":2,\\","usage":3}"#, "usage"),
            Some(&b"3"[..])
        );
        // Escaped quotes and backslashes in longer strings.
        for fill in 10..20 {
            let a = "x".repeat(fill);
            let doc = format!(r#"{{"a":"{a}\"usage\":2,\\","usage":3,"b":"{a}\\"}}"#);
            assert_eq!(field(doc.as_bytes(), "usage"), Some(&b"3"[..]), "{doc}");
            let cut = format!(r#"{{"a":"{a}\""#);
            assert_eq!(field(cut.as_bytes(), "a"), None, "{cut}");
        }
    }

    #[test]
    fn a_field_is_found_past_values_it_skips() {
        let doc = br#"{"choices":[{"m":{"c":"}]\"{["},"l":null}],"n":[[],{}],"usage":{"t":1}}"#;
        assert_eq!(field(doc, "usage"), Some(&br#"{"t":1}"#[..]));
        // A bracket closed by the other kind, or never closed, is refused.
        assert_eq!(field(br#"{"a":[1},"usage":2}"#, "usage"), None);
        assert_eq!(field(br#"{"a":{"b":1]],"usage":2}"#, "usage"), None);
        assert_eq!(field(br#"{"a":[[1],"usage":2}"#, "usage"), None);
        assert_eq!(field(br#"{"a":,"usage":2}"#, "usage"), None);
    }

    #[test]
    fn skipped_nesting_has_the_same_limit() {
        /// Visits everything.
        struct All;
        impl Visit<'_> for All {
            type At = ();
            fn key(&self, _: (), _: &[u8]) {}
            fn element(&self, _: ()) {}
            fn value(&mut self, _: (), _: &[u8]) {}
        }
        let nested = |n: usize, inner: &str| {
            format!(
                r#"{{"a":{}{inner}{},"usage":2}}"#,
                "[".repeat(n),
                "]".repeat(n)
            )
        };
        // The object is at depth 0: the `n` arrays' contents sit at depth `n + 1`, and an
        // empty innermost array at depth `n`.
        for (n, inner, walks) in [
            (127, "1", true),
            (128, "1", false),
            (128, "", true),
            (128, "{}", false),
            (127, "{}", true),
            (127, "{ }", true),
            (127, "{\"b\":1}", false),
            (129, "", false),
        ] {
            let doc = nested(n, inner);
            assert_eq!(walk(doc.as_bytes(), (), &mut All), walks, "{n} {inner}");
            assert_eq!(
                field(doc.as_bytes(), "usage").is_some(),
                walks,
                "{n} {inner}"
            );
        }
    }
}
