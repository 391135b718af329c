//! The `llm-router` server: a hyper server (HTTP/1.1 and h2c, or HTTPS with HTTP/2 by ALPN)
//! around `router-core`, with
//! bearer auth, CORS, compression, a body limit, admin endpoints and graceful shutdown.
//! [`run`] is what the binary runs; [`Server`] is the same in two steps (bind, then run) for
//! tests and embedders that want the bound address; [`serve`] serves one listener.

mod app;
mod auth;
mod body;
pub mod cli;
pub mod client_cmd;
mod clients;

mod compress;
mod conns;
mod cors;
mod dashboard;
pub mod editor;
mod handler;
mod history;
mod hooked;

pub mod ledger;
pub mod manage;
mod manage_admin;
mod manage_list;
mod metrics;
mod observe;
mod one_line;
mod recent;
mod routes;
mod run;
mod server;
pub mod status;
mod telemetry;
mod tls;

pub use app::{App, LedgerState};
pub use handler::handle;
pub use observe::access_lines_as_text;
pub use one_line::{one_line_stderr, OneLine};
pub use recent::RecentError;
pub use run::{run, shutdown_signal, Server};
pub use server::{serve, serve_admin};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use router_core::{Dialect, RouterError};
use std::convert::Infallible;

/// The response body type of the server.
pub type ResBody = UnsyncBoxBody<Bytes, Infallible>;

/// The config the binary serves when no config file is given and `config.yaml` is absent.
pub const EMBEDDED_CONFIG: &str = include_str!("../../../config.example.yaml");

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<ResBody> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())).boxed_unsync());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// An error as the client's response: its status, headers and body in the client's dialect,
/// all from [`RouterError::reply`] (which the last event of a broken stream comes from too).
pub fn error_response(error: &RouterError, dialect: Dialect) -> Response<ResBody> {
    match error.origin() {
        router_core::Origin::Internal => tracing::error!("{error}"),
        router_core::Origin::Upstream => tracing::warn!("{error}"),
        router_core::Origin::Client => tracing::debug!("{error}"),
    }
    let reply = error.reply(dialect);
    let mut response = json_response(reply.status, &reply.body);
    if let Some(secs) = reply.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    for (name, value) in &reply.headers {
        if let Ok(value) = HeaderValue::from_str(value) {
            response.headers_mut().insert(*name, value);
        }
    }
    if reply.ask_credentials {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}
