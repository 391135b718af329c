//! Upstream calls through an HTTP proxy: a provider's `proxy:` (a URL, or `none`), else the
//! environment's `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` and `NO_PROXY` (as curl reads
//! them). A proxied call opens a CONNECT tunnel (hyper-util's `Tunnel`) to the upstream's host
//! and port, plain HTTP upstreams too, and TLS runs inside it as it would without the proxy.
//! The proxy's credentials go in `Proxy-Authorization` and are never shown: a proxy is named
//! by its scheme, host and port only.

use super::plain::Plain;
use http::header::HeaderValue;
use http::Uri;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::net::TcpStream;

/// Where a provider's calls go.
#[derive(Clone, Debug)]
pub(crate) enum ProxyRoute {
    /// Straight to the upstream (`proxy: none`).
    Direct,
    /// As the environment says, per upstream host (no `proxy:`).
    Env,
    /// Through this proxy (`proxy: "http://user:pass@host:port"`).
    Via(Proxy),
}

/// One proxy: where it is, and the credentials it takes.
#[derive(Clone)]
pub(crate) struct Proxy {
    /// `http://host:port`, without credentials.
    uri: Uri,
    /// `Basic …` from the URL's user and password.
    auth: Option<HeaderValue>,
    /// The password, to be masked wherever text is shown.
    pub(crate) password: Option<crate::Secret>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Proxy({})", self.uri)
    }
}

impl Proxy {
    /// The proxy written `url` (`http://[user[:password]@]host[:port]`), or why it cannot be
    /// used (the message never holds the credentials).
    pub(crate) fn parse(url: &str) -> Result<Proxy, String> {
        let uri: Uri = url
            .parse()
            .map_err(|_| "is not a URL such as http://proxy.internal:3128".to_string())?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => {
                return Err(format!(
                    "a proxy is reached over plain HTTP (http://…), not {other}; HTTPS upstreams \
                     still get TLS end to end through its tunnel"
                ))
            }
            None => return Err("needs its scheme: http://host:port".into()),
        }
        let authority = uri.authority().ok_or("needs a host: http://host:port")?;
        let host = authority.host();
        let port = authority.port_u16().unwrap_or(80);
        let (auth, password) = match authority.as_str().rsplit_once('@') {
            Some((userinfo, _)) => {
                let decode = |s: &str| {
                    percent_encoding::percent_decode_str(s)
                        .decode_utf8()
                        .map(|c| c.into_owned())
                        .map_err(|_| "has credentials that are not UTF-8".to_string())
                };
                let (user, pass) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                let (user, pass) = (decode(user)?, decode(pass)?);
                use base64::Engine;
                let basic =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
                let mut header = HeaderValue::from_str(&format!("Basic {basic}"))
                    .map_err(|_| "has credentials a header cannot carry".to_string())?;
                header.set_sensitive(true);
                (
                    Some(header),
                    (!pass.is_empty()).then(|| crate::Secret::new(pass)),
                )
            }
            None => (None, None),
        };
        let uri = format!("http://{host}:{port}")
            .parse()
            .map_err(|_| "has a host that is not valid".to_string())?;
        Ok(Proxy {
            uri,
            auth,
            password,
        })
    }

    /// A key for the client cache: the same proxy and credentials share a pool.
    pub(crate) fn cache_key(&self) -> String {
        let auth = self.auth.as_ref().map(|a| {
            crate::Secret::new(String::from_utf8_lossy(a.as_bytes()).into_owned()).fingerprint()
        });
        format!("via {} {}", self.uri, auth.unwrap_or_default())
    }
}

impl ProxyRoute {
    /// The route written as a provider's `proxy:` (absent: the environment's).
    pub(crate) fn from_config(written: Option<&str>) -> Result<ProxyRoute, String> {
        match written.map(str::trim) {
            None | Some("") => Ok(ProxyRoute::Env),
            Some("none") => Ok(ProxyRoute::Direct),
            Some(url) => Proxy::parse(url).map(ProxyRoute::Via),
        }
    }

    /// A key for the client cache.
    pub(crate) fn cache_key(&self) -> String {
        match self {
            ProxyRoute::Direct => "direct".into(),
            ProxyRoute::Env => "env".into(),
            ProxyRoute::Via(p) => p.cache_key(),
        }
    }
}

/// A proxy refused or could not be reached: said with the proxy's address, never its
/// credentials.
#[derive(Debug)]
struct ProxyError(String);

impl std::fmt::Display for ProxyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProxyError {}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The connector under TLS: TCP to the upstream, or a CONNECT tunnel through a proxy.
#[derive(Clone)]
pub(crate) struct ProxyConnector {
    http: HttpConnector,
    route: Arc<Routing>,
}

/// The route, with the environment read once.
enum Routing {
    Direct,
    Env(Matcher),
    Via(Proxy),
}

impl ProxyConnector {
    pub(crate) fn new(http: HttpConnector, route: &ProxyRoute) -> Self {
        let routing = match route {
            ProxyRoute::Direct => Routing::Direct,
            ProxyRoute::Env => Routing::Env(Matcher::from_env()),
            ProxyRoute::Via(p) => Routing::Via(p.clone()),
        };
        ProxyConnector {
            http,
            route: Arc::new(routing),
        }
    }

    /// The proxy for `dst`, if it goes through one.
    fn proxy_for(&self, dst: &Uri) -> Option<(Uri, Option<HeaderValue>)> {
        match &*self.route {
            Routing::Direct => None,
            Routing::Env(m) => m.intercept(dst).map(|i| {
                let shown = i.uri().clone();
                (shown, i.basic_auth().cloned())
            }),
            Routing::Via(p) => Some((p.uri.clone(), p.auth.clone())),
        }
    }
}

/// The connection as the pool sees it: no addresses copied into each response (see `Plain`).
fn plain(io: TokioIo<TcpStream>) -> TokioIo<Plain> {
    TokioIo::new(Plain(io.into_inner()))
}

/// `scheme://host:port` of `uri`, without anything secret.
fn shown(uri: &Uri) -> String {
    let host = uri.host().unwrap_or("?");
    match uri.port_u16() {
        Some(port) => format!("{}://{host}:{port}", uri.scheme_str().unwrap_or("http")),
        None => format!("{}://{host}", uri.scheme_str().unwrap_or("http")),
    }
}

impl tower_service::Service<Uri> for ProxyConnector {
    type Response = TokioIo<Plain>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let mut http = self.http.clone();
        match self.proxy_for(&dst) {
            None => Box::pin(async move {
                let io = http.call(dst).await?;
                Ok(plain(io))
            }),
            Some((proxy, auth)) => {
                let target = format!(
                    "{}:{}",
                    dst.host().unwrap_or("?"),
                    dst.port_u16()
                        .unwrap_or(if dst.scheme_str() == Some("https") {
                            443
                        } else {
                            80
                        })
                );
                let via = shown(&proxy);
                let mut tunnel = Tunnel::new(proxy, http);
                if let Some(auth) = auth {
                    tunnel = tunnel.with_auth(auth);
                }
                Box::pin(async move {
                    tunnel.call(dst).await.map(plain).map_err(|e| {
                        let mut why = e.to_string();
                        let mut source = std::error::Error::source(&e);
                        while let Some(s) = source {
                            why = format!("{why}: {s}");
                            source = s.source();
                        }
                        BoxError::from(ProxyError(format!(
                            "proxy {via} did not open a tunnel to {target} ({why})"
                        )))
                    })
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proxy_url_keeps_its_credentials_out_of_sight() {
        let p = Proxy::parse("http://user:s%40cret-pass@proxy.internal:3128").unwrap();
        assert_eq!(format!("{p:?}"), "Proxy(http://proxy.internal:3128/)");
        assert_eq!(p.password.as_ref().unwrap().expose(), "s@cret-pass");
        let auth = p.auth.as_ref().unwrap();
        assert!(auth.is_sensitive());
        // base64("user:s@cret-pass")
        assert_eq!(auth.to_str().unwrap(), "Basic dXNlcjpzQGNyZXQtcGFzcw==");
        assert_eq!(
            Proxy::parse("http://proxy.internal")
                .unwrap()
                .uri
                .port_u16(),
            Some(80)
        );
        let https = Proxy::parse("https://user:pw@p:1").unwrap_err();
        assert!(
            https.contains("plain HTTP") && !https.contains("pw"),
            "{https}"
        );
        assert!(
            ProxyRoute::from_config(Some("none")).is_ok_and(|r| matches!(r, ProxyRoute::Direct))
        );
        assert!(matches!(ProxyRoute::from_config(None), Ok(ProxyRoute::Env)));
        let bad = ProxyRoute::from_config(Some("not a url")).unwrap_err();
        assert!(bad.contains("is not a URL"), "{bad}");
    }
}
