//! Provider API keys and client keys: a type that never shows itself.

use http::HeaderValue;
use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::{Arc, OnceLock};

/// A secret string (an API key). `Debug` and `Display` show only a masked form, it is never
/// serialized, and the only way to the real value is [`Secret::expose`]. A clone shares the
/// value (a pick copies no key).
#[derive(Clone)]
pub struct Secret(Arc<Inner>);

struct Inner {
    value: String,
    /// The value as a header value, as is and as a bearer token: built on the first request
    /// that sends it, then shared by every request (`None` if it cannot be a header value).
    headers: [OnceLock<Option<HeaderValue>>; 2],
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.0.value == other.0.value
    }
}

impl Eq for Secret {}

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(Arc::new(Inner {
            value: value.into(),
            headers: Default::default(),
        }))
    }

    /// The value as a sensitive header value, after `Bearer ` when `bearer`; `None` if it
    /// holds characters a header cannot.
    pub(crate) fn header_value(&self, bearer: bool) -> Option<HeaderValue> {
        let cell = &self.0.headers[usize::from(bearer)];
        cell.get_or_init(|| {
            let mut value = if bearer {
                HeaderValue::from_str(&format!("Bearer {}", self.0.value))
            } else {
                HeaderValue::from_str(&self.0.value)
            }
            .ok()?;
            value.set_sensitive(true);
            Some(value)
        })
        .clone()
    }

    /// The real value, for the one place that needs it: the upstream request header or the
    /// constant-time comparison of a client key.
    pub fn expose(&self) -> &str {
        &self.0.value
    }

    /// A masked form safe to show: the first three and last four characters of a long key
    /// (`sk-…a1b2`), only the last two of a shorter one, nothing of a very short one.
    pub fn masked(&self) -> String {
        let chars: Vec<char> = self.0.value.chars().collect();
        let n = chars.len();
        if n >= 16 {
            let head: String = chars[..3].iter().collect();
            let tail: String = chars[n - 4..].iter().collect();
            format!("{head}…{tail}")
        } else if n >= 8 {
            let tail: String = chars[n - 2..].iter().collect();
            format!("…{tail}")
        } else {
            "…".to_string()
        }
    }

    /// A stable, non-reversible identifier of the key: the first 16 hex digits of its SHA-256.
    /// Usage counters are keyed by it, so they follow a key when keys are reordered.
    pub fn fingerprint(&self) -> String {
        hex::encode(&Sha256::digest(self.0.value.as_bytes())[..8])
    }
}

/// A key's id, wherever it is shown: `provider#index`, the index being its place among the
/// provider's keys as written (`api_key` first, then `api_keys`; disabled and empty ones
/// counted).
pub fn key_id(provider: &str, index: usize) -> String {
    format!("{provider}#{index}")
}

/// The masked forms of one provider's keys, told apart: each key's [`Secret::masked`], and
/// where different keys would show the same (`…ed` and `…ed`), each of them followed by `~`
/// and as many leading hex digits of its [`Secret::fingerprint`] (at least four) as set it
/// apart (`…ed~3fa2`). The same key written twice shows the same.
pub fn masked_apart(keys: &[Secret]) -> Vec<String> {
    let masked: Vec<String> = keys.iter().map(Secret::masked).collect();
    let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for m in &masked {
        *seen.entry(m.as_str()).or_default() += 1;
    }
    let prints: Vec<String> = keys.iter().map(Secret::fingerprint).collect();
    (0..keys.len())
        .map(|i| {
            if seen[masked[i].as_str()] < 2 {
                return masked[i].clone();
            }
            let rivals: Vec<usize> = (0..keys.len())
                .filter(|&j| masked[j] == masked[i] && keys[j] != keys[i])
                .collect();
            if rivals.is_empty() {
                return masked[i].clone();
            }
            let apart = |n: usize| rivals.iter().all(|&j| prints[j][..n] != prints[i][..n]);
            let n = (4..=prints[i].len())
                .find(|&n| apart(n))
                .unwrap_or(prints[i].len());
            format!("{}~{}", masked[i], &prints[i][..n])
        })
        .collect()
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.masked())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_and_redacts() {
        let s = Secret::new("sk-proj-abcdefghijklmnopa1b2");
        assert_eq!(s.masked(), "sk-…a1b2");
        assert_eq!(format!("{s}"), "sk-…a1b2");
        assert_eq!(format!("{s:?}"), "Secret(sk-…a1b2)");
        assert_eq!(Secret::new("abcdefgh12").masked(), "…12");
        assert_eq!(Secret::new("short").masked(), "…");
    }

    #[test]
    fn header_values_are_built_once_and_stay_sensitive() {
        let s = Secret::new("sk-one");
        let bearer = s.header_value(true).unwrap();
        assert_eq!(bearer, "Bearer sk-one");
        assert!(bearer.is_sensitive());
        assert_eq!(s.header_value(false).unwrap(), "sk-one");
        // A clone shares what was built; a secret is still compared by its text alone.
        assert_eq!(s.clone().header_value(true).unwrap(), bearer);
        assert_eq!(s, Secret::new("sk-one"));
        assert_eq!(Secret::new("sk-\none").header_value(true), None);
    }

    #[test]
    fn fingerprint_is_stable_and_distinct() {
        let a = Secret::new("sk-one");
        assert_eq!(a.fingerprint(), Secret::new("sk-one").fingerprint());
        assert_ne!(a.fingerprint(), Secret::new("sk-two").fingerprint());
        assert_eq!(a.fingerprint().len(), 16);
        assert!(!a.fingerprint().contains("sk-one"));
    }

    #[test]
    fn masked_forms_of_one_providers_keys_stay_apart() {
        let keys: Vec<Secret> = [
            "key-aaaa-ed",
            "key-bbbb-ed",
            "sk-proj-abcdefghijklmnopa1b2",
            "key-aaaa-ed",
        ]
        .into_iter()
        .map(Secret::new)
        .collect();
        let shown = masked_apart(&keys);
        // Two keys ending alike get their fingerprints' heads; one alone keeps its plain mask.
        assert!(
            shown[0].starts_with("…ed~") && shown[1].starts_with("…ed~"),
            "{shown:?}"
        );
        assert_ne!(shown[0], shown[1]);
        assert_eq!(shown[0], format!("…ed~{}", &keys[0].fingerprint()[..4]));
        assert_eq!(shown[2], "sk-…a1b2");
        // The same key written twice is one key, shown alike.
        assert_eq!(shown[3], shown[0]);
        assert_eq!(masked_apart(&keys[..1]), vec!["…ed".to_string()]);
    }
}
