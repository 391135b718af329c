//! A small HTTP server for the test doubles beside the mock upstream (a token endpoint, an
//! OTLP receiver, a span sink): each request's path and whole body are handed to a function
//! whose answer (a future) is sent back.

use bytes::Bytes;
use http::Response;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// What a served request carries: its path and body.
pub struct Asked {
    /// The request's path.
    pub path: String,
    /// Its body (empty when it could not be read).
    pub body: Bytes,
}

/// Serves HTTP/1.1 and HTTP/2 on a free local port, each request answered by `answer`, until
/// the task is aborted. Returns the address and the task.
pub async fn serve<F, A>(answer: F) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)>
where
    F: Fn(Asked) -> A + Send + Sync + 'static,
    A: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let answer = Arc::new(answer);
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let answer = answer.clone();
                    async move {
                        let path = req.uri().path().to_string();
                        let body = req.into_body().collect().await;
                        let body = body.map(|b| b.to_bytes()).unwrap_or_default();
                        Ok::<_, Infallible>(answer(Asked { path, body }).await)
                    }
                });
                let builder = auto::Builder::new(TokioExecutor::new());
                let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    });
    Ok((addr, task))
}
