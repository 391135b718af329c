//! CORS: the allowed origin on every response, and answers to preflight requests.

use http::header::{self, HeaderMap, HeaderValue};
use router_core::CorsOrigins;

const ALLOW_HEADERS: &str = "authorization, content-type, x-api-key, anthropic-version, \
     anthropic-beta, x-request-id, cache-control, x-llm-router-tags";
const ALLOW_METHODS: &str = "GET, POST, OPTIONS";

/// Adds `Access-Control-Allow-Origin` (and `Vary: Origin` when it echoes) if `origin` is allowed.
pub(crate) fn apply(allowed: &CorsOrigins, origin: Option<&HeaderValue>, headers: &mut HeaderMap) {
    let Some(origin) = origin else {
        return;
    };
    match allowed {
        CorsOrigins::Any => {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
        }
        CorsOrigins::Only(list) if list.contains(origin) => {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            headers.append(header::VARY, HeaderValue::from_static("Origin"));
        }
        CorsOrigins::Only(_) => {}
    }
}

/// Headers of a preflight answer (the status is 204 either way; without the allow-origin
/// header the browser refuses).
pub(crate) fn preflight(
    allowed: &CorsOrigins,
    origin: Option<&HeaderValue>,
    headers: &mut HeaderMap,
) {
    apply(allowed, origin, headers);
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(ALLOW_METHODS),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(ALLOW_HEADERS),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
}
