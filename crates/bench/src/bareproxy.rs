//! `bareproxy`: llm-router's HTTP stack with none of the router in it, for loadbench to tell
//! what the stack costs from what the router adds. The same crates, set up the same way:
//! hyper-util's auto server (HTTP/1.1 and h2c) on tokio's multi-thread runtime, and hyper-util's
//! pooled client behind hyper-rustls's connector. Each request goes to the one upstream as it
//! came, body streamed, and the answer comes back as it came: no JSON, no selection, no
//! accounting, no logging.
//!
//! `bareproxy --listen 127.0.0.1:8081 --upstream http://127.0.0.1:9000`

#![allow(clippy::print_stderr)]

use clap::Parser;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::sync::Arc;

#[derive(Parser)]
#[command(about = "A bare hyper reverse proxy (the router's HTTP stack, no router logic)")]
struct Args {
    /// Where to listen.
    #[arg(long)]
    listen: std::net::SocketAddr,
    /// The upstream's base URL (scheme and authority).
    #[arg(long)]
    upstream: String,
    /// Tokio's current-thread runtime instead of the multi-thread one the router runs on.
    #[arg(long)]
    current_thread: bool,
}

type Upstream = Client<hyper_rustls::HttpsConnector<HttpConnector>, Incoming>;

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = if args.current_thread {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Runtime::new()
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bareproxy: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(args: Args) -> Result<(), String> {
    let upstream: http::Uri = args
        .upstream
        .parse()
        .map_err(|e| format!("--upstream: {e}"))?;
    let client = Arc::new(client()?);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("{}: {e}", args.listen))?;
    let server = auto::Builder::new(TokioExecutor::new());
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (client, upstream, server) = (client.clone(), upstream.clone(), server.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req| forward(client.clone(), upstream.clone(), req));
            let _ = server.serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

fn client() -> Result<Upstream, String> {
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new()).build(https))
}

/// The request to the upstream, the answer back; a failure is a bare 502.
async fn forward(
    client: Arc<Upstream>,
    upstream: http::Uri,
    req: http::Request<Incoming>,
) -> Result<http::Response<http_body_util::Either<Incoming, String>>, Infallible> {
    let (mut head, body) = req.into_parts();
    let path = head.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut uri = http::uri::Parts::default();
    uri.scheme = upstream.scheme().cloned();
    uri.authority = upstream.authority().cloned();
    uri.path_and_query = path.parse().ok();
    head.uri = http::Uri::from_parts(uri).unwrap_or_default();
    head.headers.remove(http::header::HOST);
    head.version = http::Version::HTTP_11;
    match client.request(http::Request::from_parts(head, body)).await {
        Ok(resp) => Ok(resp.map(http_body_util::Either::Left)),
        Err(e) => {
            let mut resp = http::Response::new(http_body_util::Either::Right(e.to_string()));
            *resp.status_mut() = http::StatusCode::BAD_GATEWAY;
            Ok(resp)
        }
    }
}
