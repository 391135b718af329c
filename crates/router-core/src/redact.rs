//! Redaction of upstream words: before an upstream's error text reaches a client, a log or the
//! dashboard, every configured secret in it is replaced by its masked form (`sk-…a1b2`). An
//! upstream that echoes the `Authorization` header it got ("you sent Bearer sk-…") must not
//! hand the provider key to whoever made the request.
//!
//! One [`Redactor`] per config snapshot holds a matcher over that snapshot's secrets, so a
//! reload that adds or removes a key changes what is redacted. A secret that is not in the
//! config, such as the OAuth access token an attempt sent, is added for that attempt with
//! [`Redactor::and`]. Secrets shorter than [`MIN_SECRET_LEN`] characters are not searched for:
//! they would match ordinary words.

use crate::Secret;
use aho_corasick::AhoCorasick;
use bytes::Bytes;
use std::borrow::Cow;
use std::sync::Arc;

/// The shortest secret searched for.
pub const MIN_SECRET_LEN: usize = 8;

/// Replaces configured secrets in text by their masked forms.
#[derive(Debug, Default, Clone)]
pub struct Redactor {
    matcher: Option<AhoCorasick>,
    masks: Arc<[String]>,
    /// One more secret and its mask, looked for after the others.
    extra: Option<(Secret, String)>,
}

impl Redactor {
    /// A redactor of `secrets` (duplicates and short ones left out).
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a Secret>) -> Self {
        let mut values: Vec<&Secret> = secrets
            .into_iter()
            .filter(|s| s.expose().chars().count() >= MIN_SECRET_LEN)
            .collect();
        // The longest first, so a secret that contains another is replaced whole.
        values.sort_by(|a, b| {
            b.expose()
                .len()
                .cmp(&a.expose().len())
                .then(a.expose().cmp(b.expose()))
        });
        values.dedup_by(|a, b| a.expose() == b.expose());
        if values.is_empty() {
            return Self::default();
        }
        let matcher = aho_corasick::AhoCorasickBuilder::new()
            .match_kind(aho_corasick::MatchKind::LeftmostLongest)
            .build(values.iter().map(|s| s.expose()))
            .ok();
        Self {
            matcher,
            masks: values.iter().map(|s| s.masked()).collect(),
            extra: None,
        }
    }

    /// This redactor and `secret` too (ignored when shorter than [`MIN_SECRET_LEN`]): for a
    /// secret known only while a request runs, such as an OAuth access token. Cheap: the
    /// matcher is shared, not built again.
    pub fn and(&self, secret: &Secret) -> Self {
        let extra = (secret.expose().chars().count() >= MIN_SECRET_LEN)
            .then(|| (secret.clone(), secret.masked()));
        Self {
            extra,
            ..self.clone()
        }
    }

    /// `text` with every secret masked (borrowed as it is when it holds none).
    pub fn redact<'t>(&self, text: &'t [u8]) -> Cow<'t, [u8]> {
        let configured = match &self.matcher {
            Some(matcher) if matcher.is_match(text) => {
                Cow::Owned(matcher.replace_all_bytes(text, &self.masks))
            }
            _ => Cow::Borrowed(text),
        };
        match &self.extra {
            Some((secret, mask)) => replace_all(configured, secret.expose().as_bytes(), mask),
            None => configured,
        }
    }

    /// [`Redactor::redact`] over text.
    pub fn redact_str<'t>(&self, text: &'t str) -> Cow<'t, str> {
        match self.redact(text.as_bytes()) {
            Cow::Borrowed(_) => Cow::Borrowed(text),
            // Masks are whole characters replacing whole (UTF-8) secrets: still UTF-8.
            Cow::Owned(bytes) => Cow::Owned(String::from_utf8_lossy(&bytes).into_owned()),
        }
    }

    /// [`Redactor::redact`] over a buffer, which stays shared when it holds no secret.
    pub fn redact_bytes(&self, bytes: Bytes) -> Bytes {
        match self.redact(&bytes) {
            Cow::Borrowed(_) => bytes,
            Cow::Owned(owned) => Bytes::from(owned),
        }
    }
}

/// `text` with every `needle` replaced by `with` (as it is when it holds none).
fn replace_all<'t>(text: Cow<'t, [u8]>, needle: &[u8], with: &str) -> Cow<'t, [u8]> {
    let finder = memchr::memmem::Finder::new(needle);
    let mut found = finder.find_iter(&text).peekable();
    if found.peek().is_none() {
        return text;
    }
    let mut out = Vec::with_capacity(text.len());
    let mut from = 0;
    for at in found {
        // Matches do not overlap: find_iter resumes after each one.
        out.extend_from_slice(&text[from..at]);
        out.extend_from_slice(with.as_bytes());
        from = at + needle.len();
    }
    out.extend_from_slice(&text[from..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_secret_is_masked_wherever_it_appears() {
        let keys = [
            Secret::new("sk-live-0123456789abcdef"),
            Secret::new("sk-live-0123456789abcdef-longer"),
            Secret::new("short"),
            Secret::new("another-secret-value"),
        ];
        let r = Redactor::new(&keys);
        let text = r#"{"error":{"message":"you sent auth Bearer sk-live-0123456789abcdef, and sk-live-0123456789abcdef-longer; another-secret-value too; short stays"}}"#;
        let out = r.redact_str(text);
        assert_eq!(
            out,
            r#"{"error":{"message":"you sent auth Bearer sk-…cdef, and sk-…nger; ano…alue too; short stays"}}"#
        );
        // Nothing to mask: the same buffer.
        let clean = Bytes::from_static(b"no keys here");
        assert!(matches!(r.redact(&clean), Cow::Borrowed(_)));
        assert_eq!(r.redact_bytes(clean.clone()).as_ptr(), clean.as_ptr());
        assert_eq!(Redactor::default().redact_str(text), text);
    }

    #[test]
    fn a_secret_added_for_a_request_is_masked_beside_the_configured_ones() {
        let r = Redactor::new(&[Secret::new("sk-live-0123456789abcdef")]);
        let token = Secret::new("eyJ0eXAi.access.token-value-1234");
        let with = r.and(&token);
        let text = "sent sk-live-0123456789abcdef and eyJ0eXAi.access.token-value-1234, twice: eyJ0eXAi.access.token-value-1234";
        assert_eq!(
            with.redact_str(text),
            "sent sk-…cdef and eyJ…1234, twice: eyJ…1234"
        );
        // The configured redactor is unchanged, and one without a matcher still masks it.
        assert!(r.redact_str(text).contains("token-value-1234"));
        assert_eq!(
            Redactor::default()
                .and(&token)
                .redact_str("got eyJ0eXAi.access.token-value-1234"),
            "got eyJ…1234"
        );
        // Too short to look for.
        assert_eq!(r.and(&Secret::new("abc")).redact_str("abc"), "abc");
    }
}
