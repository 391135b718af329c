//! Client authentication: the bearer key (or `x-api-key`) compared in constant time.

use http::HeaderMap;
use router_core::Secret;
use subtle::ConstantTimeEq;

/// The key a client presented: `Authorization: Bearer <key>` or `x-api-key: <key>`.
fn presented(headers: &HeaderMap) -> Option<&[u8]> {
    if let Some(v) = headers.get(http::header::AUTHORIZATION) {
        let v = v.as_bytes();
        if v.len() > 7 && v[..7].eq_ignore_ascii_case(b"bearer ") {
            return Some(v[7..].trim_ascii());
        }
    }
    headers.get("x-api-key").map(|v| v.as_bytes().trim_ascii())
}

/// Whether the request carries one of `keys`. With no keys configured, every request passes.
pub(crate) fn authorized(headers: &HeaderMap, keys: &[Secret]) -> bool {
    if keys.is_empty() {
        return true;
    }
    let Some(given) = presented(headers) else {
        return false;
    };
    // Compare against every key without stopping early.
    let mut ok = subtle::Choice::from(0u8);
    for key in keys {
        ok |= key.expose().as_bytes().ct_eq(given);
    }
    ok.into()
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
}
