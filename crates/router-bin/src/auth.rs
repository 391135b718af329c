//! Client authentication: the bearer key (or `x-api-key`) compared in constant time.

use http::HeaderMap;
use router_core::Secret;
use subtle::{ConditionallySelectable, ConstantTimeEq};

/// The key a client presented: `Authorization: Bearer <key>` or `x-api-key: <key>`.
fn presented(headers: &HeaderMap) -> Option<&[u8]> {
    if let Some(v) = headers.get(http::header::AUTHORIZATION) {
        let v = v.as_bytes();
        if v.len() > 7 && v[..7].eq_ignore_ascii_case(b"bearer ") {
            return Some(v[7..].trim_ascii());
        }
    }
    const X_API_KEY: http::HeaderName = http::HeaderName::from_static("x-api-key");
    headers.get(X_API_KEY).map(|v| v.as_bytes().trim_ascii())
}

/// Whether the request carries one of `keys`. With no keys configured, every request passes.
pub(crate) fn authorized(headers: &HeaderMap, keys: &[Secret]) -> bool {
    keys.is_empty() || identify(headers, keys).is_some()
}

/// Which of `keys` the request carries, by index. A configured key written as `sha256:<hex>`
/// (what `llm-router key hash` prints) matches the key whose SHA-256 that is, so the config
/// need not hold the key itself. Every key is compared, in constant time, whichever matches.
pub(crate) fn identify(headers: &HeaderMap, keys: &[Secret]) -> Option<usize> {
    let given = presented(headers)?;
    // The presented key's SHA-256 in lowercase hex, for keys written as `sha256:<hex>`
    // (computed only when there are such keys).
    let mut digest = [0u8; 64];
    if keys.iter().any(|k| k.expose().starts_with("sha256:")) {
        use sha2::Digest;
        // 32 bytes always fit 64 hex digits.
        let _ = hex::encode_to_slice(sha2::Sha256::digest(given), &mut digest);
    }
    // Compare against every key without stopping early; the index of a match is kept by
    // constant-time selection.
    let (mut found, mut index) = (subtle::Choice::from(0u8), 0u64);
    for (i, key) in keys.iter().enumerate() {
        let key = key.expose();
        let matched = match key.strip_prefix("sha256:") {
            Some(hex) if hex.len() == 64 => {
                let mut lower = [0u8; 64];
                for (l, h) in lower.iter_mut().zip(hex.bytes()) {
                    *l = h.to_ascii_lowercase();
                }
                lower.ct_eq(&digest)
            }
            // Not a SHA-256 in hex: matches nothing.
            Some(_) => subtle::Choice::from(0u8),
            None => key.as_bytes().ct_eq(given),
        };
        index = u64::conditional_select(&index, &(i as u64), matched);
        found |= matched;
    }
    bool::from(found).then_some(index as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: &str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
        h
    }

    #[test]
    fn checks_bearer_and_x_api_key() {
        let keys = vec![Secret::new("k1"), Secret::new("k2")];
        assert!(authorized(&headers("authorization", "Bearer k2"), &keys));
        assert!(authorized(&headers("authorization", "bearer k1"), &keys));
        assert!(authorized(&headers("x-api-key", "k1"), &keys));
        assert!(!authorized(&headers("authorization", "Bearer k3"), &keys));
        assert!(!authorized(&headers("authorization", "Basic k1"), &keys));
        assert!(!authorized(&HeaderMap::new(), &keys));
        assert!(authorized(&HeaderMap::new(), &[]));
    }

    #[test]
    fn hashed_keys_match_the_key_they_hash() {
        // sha256("abc"), as `llm-router key hash abc` prints it.
        let hashed = [Secret::new(
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        )];
        assert!(authorized(&headers("authorization", "Bearer abc"), &hashed));
        assert!(authorized(&headers("x-api-key", "abc"), &hashed));
        assert!(!authorized(
            &headers("authorization", "Bearer abd"),
            &hashed
        ));
        // The hash itself is not a key.
        let as_given =
            "Bearer sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert!(!authorized(&headers("authorization", as_given), &hashed));
    }
}
