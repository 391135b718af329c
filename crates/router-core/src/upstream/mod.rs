//! Upstream HTTP clients: hyper-util's pooled client over rustls (public roots plus a provider's
//! `ca_file`), HTTP/1.1 and HTTP/2 by ALPN. Clients are cached outside the snapshot, so a reload
//! keeps the connection pools. Calls go through a proxy as `proxy` says.

mod plain;
mod proxy;

pub(crate) use proxy::ProxyRoute;

use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The pooled upstream client type.
pub type HttpClient = Client<HttpsConnector<proxy::ProxyConnector>, Full<Bytes>>;

/// Extra trusted certificates parsed from a `ca_file`.
#[derive(Clone)]
pub(crate) struct ExtraRoots {
    pub(crate) certs: Vec<CertificateDer<'static>>,
    pub(crate) fingerprint: String,
}

/// Parses a PEM file of one or more certificates.
pub(crate) fn read_ca_file(path: &str) -> Result<ExtraRoots, String> {
    let (pem, certs) = read_pem_certificates(path)?;
    let fingerprint = crate::Secret::new(String::from_utf8_lossy(&pem).into_owned()).fingerprint();
    Ok(ExtraRoots { certs, fingerprint })
}

/// The file's text and the certificates it holds (at least one), or why it cannot be used.
pub(crate) fn read_pem_certificates(
    path: &str,
) -> Result<(Vec<u8>, Vec<CertificateDer<'static>>), String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read ca_file '{path}': {e}"))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("ca_file '{path}' is not valid PEM: {e}"))?;
    if certs.is_empty() {
        return Err(format!("ca_file '{path}' holds no certificate"));
    }
    Ok((pem, certs))
}

fn build_client(
    extra: Option<&ExtraRoots>,
    connect_timeout: Duration,
    route: &ProxyRoute,
) -> Result<HttpClient, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(extra) = extra {
        for cert in &extra.certs {
            roots
                .add(cert.clone())
                .map_err(|e| format!("ca_file certificate rejected: {e}"))?;
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS setup failed: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(proxy::ProxyConnector::new(http, route));
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .build(https))
}

/// Clients by (extra roots, connect timeout, proxy route).
#[derive(Default)]
pub(crate) struct ClientCache {
    clients: Mutex<HashMap<(String, Duration, String), HttpClient>>,
}

impl ClientCache {
    pub(crate) fn get(
        &self,
        extra: Option<&ExtraRoots>,
        connect_timeout: Duration,
        route: &ProxyRoute,
    ) -> Result<HttpClient, String> {
        let key = (
            extra.map(|e| e.fingerprint.clone()).unwrap_or_default(),
            connect_timeout,
            route.cache_key(),
        );
        let mut map = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = map.get(&key) {
            return Ok(c.clone());
        }
        let client = build_client(extra, connect_timeout, route)?;
        map.insert(key, client.clone());
        Ok(client)
    }
}
