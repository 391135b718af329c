//! How spans reach the collector: the OTLP exporter's HTTP client. The SDK's batch processor
//! exports from a thread of its own, outside the runtime; each export is run on the router's
//! runtime (hyper's client needs it) and awaited from there, within a timeout.

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use opentelemetry_http::{HttpClient, HttpError};
use std::time::Duration;

/// Largest answer read from the collector.
const MAX_ANSWER: usize = 64 * 1024;

/// The exporter's client: HTTP or HTTPS (public roots), on the runtime it was made on.
#[derive(Debug, Clone)]
pub(super) struct Export {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    runtime: tokio::runtime::Handle,
    timeout: Duration,
}

impl Export {
    /// A client on the current runtime; each export waits `timeout` at most.
    pub(super) fn new(timeout: Duration) -> Self {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .build();
        Self {
            client: Client::builder(TokioExecutor::new()).build(https),
            runtime: tokio::runtime::Handle::current(),
            timeout,
        }
    }
}

#[async_trait::async_trait]
impl HttpClient for Export {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let (client, timeout) = (self.client.clone(), self.timeout);
        let call = async move {
            let response = client.request(request.map(Full::new)).await?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_ANSWER).collect().await?.to_bytes();
            Ok::<_, HttpError>(Response::from_parts(parts, body))
        };
        let task = self.runtime.spawn(async move {
            match tokio::time::timeout(timeout, call).await {
                Ok(answer) => answer,
                Err(_) => Err(format!("the collector did not answer within {timeout:?}").into()),
            }
        });
        task.await?
    }
}
