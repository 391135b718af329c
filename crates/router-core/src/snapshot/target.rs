//! Where a provider's requests go, worked out once for a config rather than for every request:
//! the `Host` header of a plain-HTTP provider, and the parsed URL of each operation whose URL
//! names no model.

use crate::dialects::Endpoint;
use http::uri::InvalidUri;
use http::{HeaderValue, Uri};
use std::sync::OnceLock;

/// A provider's `Host` header and the URLs built so far.
#[derive(Clone)]
pub(crate) struct Target {
    host: Option<HeaderValue>,
    uris: [OnceLock<Uri>; 5],
}

impl Target {
    /// The target of a provider at `base_url` (empty for a local kind: no `Host`).
    ///
    /// Only a plain-HTTP provider gets a `Host` here: its connections are HTTP/1. Over HTTPS
    /// the connection may be HTTP/2 (by ALPN), where the authority goes in `:authority` as
    /// written and a `Host` beside it must not differ; the client adds one to HTTP/1
    /// requests only.
    pub(crate) fn new(base_url: &str) -> Self {
        let host = (base_url.parse::<Uri>().ok())
            .filter(|uri| uri.scheme_str() == Some("http"))
            .as_ref()
            .and_then(host_header);
        Self {
            host,
            uris: Default::default(),
        }
    }

    /// The `Host` header of every request to a plain-HTTP provider: every kind's URLs start
    /// with its base URL.
    pub(crate) fn host(&self) -> Option<&HeaderValue> {
        self.host.as_ref()
    }

    /// The URL of `op`, parsed from `url()` the first time it is asked for. Only for a kind
    /// whose URL depends on the operation alone.
    pub(crate) fn uri(
        &self,
        op: Endpoint,
        url: impl FnOnce() -> String,
    ) -> Result<Uri, InvalidUri> {
        let cell = &self.uris[slot(op)];
        if let Some(uri) = cell.get() {
            return Ok(uri.clone());
        }
        let uri: Uri = url().parse()?;
        Ok(cell.get_or_init(|| uri).clone())
    }
}

fn slot(op: Endpoint) -> usize {
    match op {
        Endpoint::Chat => 0,
        Endpoint::Completions => 1,
        Endpoint::Embeddings => 2,
        Endpoint::CountTokens => 3,
        Endpoint::Responses => 4,
    }
}

/// The `Host` header of a request to `uri`: its host, with its port unless that is the
/// scheme's default (as HTTP clients write it).
fn host_header(uri: &Uri) -> Option<HeaderValue> {
    let host = uri.host()?;
    let value = match (uri.port_u16(), uri.scheme_str()) {
        (None, _) | (Some(80), Some("http")) | (Some(443), Some("https")) => {
            HeaderValue::from_str(host)
        }
        (Some(port), _) => HeaderValue::from_str(&format!("{host}:{port}")),
    };
    value.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_header_leaves_out_the_default_port_only() {
        let host = |url: &str| host_header(&url.parse().unwrap()).unwrap();
        assert_eq!(host("https://api.openai.com/v1"), "api.openai.com");
        assert_eq!(host("https://api.openai.com:443/v1"), "api.openai.com");
        assert_eq!(host("HTTP://127.0.0.1:80"), "127.0.0.1");
        assert_eq!(host("http://127.0.0.1:8080/v1"), "127.0.0.1:8080");
        assert_eq!(host("https://example.com:80/x"), "example.com:80");
        assert_eq!(host("http://[::1]:9000"), "[::1]:9000");
        assert_eq!(host("http://user:pw@proxy.lan:3128/v1"), "proxy.lan:3128");
    }

    #[test]
    fn only_a_plain_http_provider_gets_its_host_here() {
        let host = |url: &str| Target::new(url).host().cloned();
        assert_eq!(host("http://127.0.0.1:8080/v1").unwrap(), "127.0.0.1:8080");
        // HTTPS may be HTTP/2, where `:authority` carries it.
        assert_eq!(host("https://api.openai.com/v1"), None);
        // A local kind has no base URL.
        assert_eq!(host(""), None);
    }

    #[test]
    fn an_operations_url_is_parsed_once() {
        let target = Target::new("http://127.0.0.1:8080/v1");
        let first = target.uri(Endpoint::Chat, || {
            "http://127.0.0.1:8080/v1/chat/completions".into()
        });
        assert_eq!(first.unwrap(), "http://127.0.0.1:8080/v1/chat/completions");
        // Built already: the closure is not called again.
        let again = target.uri(Endpoint::Chat, || unreachable!("built once"));
        assert_eq!(again.unwrap(), "http://127.0.0.1:8080/v1/chat/completions");
        let other = target.uri(Endpoint::Embeddings, || {
            "http://127.0.0.1:8080/v1/embeddings".into()
        });
        assert_eq!(other.unwrap().path(), "/v1/embeddings");
        // A URL that does not parse is an error each time, and nothing is kept.
        assert!(target
            .uri(Endpoint::Responses, || "http://a b".into())
            .is_err());
        assert!(target
            .uri(Endpoint::Responses, || "http://a/ok".into())
            .is_ok());
    }
}
