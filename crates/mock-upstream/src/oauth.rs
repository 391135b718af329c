//! An OAuth 2.0 token endpoint (RFC 6749 §4.4, §5, §6) for tests of upstream credentials: the
//! refresh-token and client-credentials grants, refresh tokens it rotates on request, a
//! lifetime it says, and refusals (`invalid_grant`, `invalid_client`) when told to; it can hold
//! requests, and rotate a token as another client would. It serves `POST /oauth2/token` on a
//! loopback port and notes every form it was sent.

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// A token request's form, field by field.
pub type Form = BTreeMap<String, String>;

#[derive(Default)]
struct Inner {
    issued: u64,
    expires_in: Option<u64>,
    rotate: bool,
    refuse: bool,
    refresh_tokens: HashSet<String>,
    client_secret: Option<String>,
    forms: Vec<Form>,
}

/// The token endpoint, serving until dropped.
pub struct TokenEndpoint {
    addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    /// Whether requests are answered (`false`: held until released).
    open: Arc<tokio::sync::watch::Sender<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TokenEndpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TokenEndpoint {
    /// Starts one on a free local port. It grants tokens valid for an hour, accepts no
    /// refresh token and no client secret until told to, and does not rotate.
    pub async fn start() -> std::io::Result<Self> {
        let inner = Arc::new(Mutex::new(Inner {
            expires_in: Some(3600),
            ..Inner::default()
        }));
        let shared = inner.clone();
        let open = Arc::new(tokio::sync::watch::Sender::new(true));
        let gate = open.clone();
        let (addr, task) = crate::serve(move |asked| {
            let (shared, mut open) = (shared.clone(), gate.subscribe());
            async move {
                let form = form_of(&asked.body);
                (shared.lock().unwrap_or_else(|p| p.into_inner()))
                    .forms
                    .push(form.clone());
                // Held while the test holds the endpoint (its form is noted already).
                let _ = open.wait_for(|open| *open).await;
                answer(&shared, form)
            }
        })
        .await?;
        Ok(Self {
            addr,
            inner,
            open,
            task,
        })
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `http://127.0.0.1:<port>/oauth2/token`.
    pub fn url(&self) -> String {
        format!("http://{}/oauth2/token", self.addr)
    }

    /// Accepts `token` as a refresh token (until it is rotated away).
    pub fn accept_refresh_token(&self, token: &str) {
        self.inner().refresh_tokens.insert(token.to_string());
    }

    /// Accepts the client-credentials grant with this secret.
    pub fn accept_client_secret(&self, secret: &str) {
        self.inner().client_secret = Some(secret.to_string());
    }

    /// The `expires_in` it says (none: it says nothing of the lifetime).
    pub fn set_expires_in(&self, seconds: Option<u64>) {
        self.inner().expires_in = seconds;
    }

    /// Whether each refresh gives a new refresh token and retires the one used.
    pub fn rotate_refresh_tokens(&self, rotate: bool) {
        self.inner().rotate = rotate;
    }

    /// Whether it refuses every grant (`invalid_grant`), as after a revoked login.
    pub fn refuse(&self, refuse: bool) {
        self.inner().refuse = refuse;
    }

    /// Holds the requests that come from now on (their forms noted) until [`Self::release`].
    pub fn hold(&self) {
        self.open.send_replace(false);
    }

    /// Answers the held requests, and the next ones at once.
    pub fn release(&self) {
        self.open.send_replace(true);
    }

    /// Rotates `from` to `to` as a refresh by another client of the same account would:
    /// `from` is refused from now on, `to` accepted.
    pub fn rotate_now(&self, from: &str, to: &str) {
        let mut inner = self.inner();
        inner.refresh_tokens.remove(from);
        inner.refresh_tokens.insert(to.to_string());
    }

    /// The forms it was sent, in order.
    pub fn forms(&self) -> Vec<Form> {
        self.inner().forms.clone()
    }

    /// Access tokens granted so far (the last one is `access-<n>`).
    pub fn issued(&self) -> u64 {
        self.inner().issued
    }

    /// The refresh tokens it accepts now.
    pub fn refresh_tokens(&self) -> Vec<String> {
        let mut tokens: Vec<String> = self.inner().refresh_tokens.iter().cloned().collect();
        tokens.sort();
        tokens
    }
}

fn form_of(body: &Bytes) -> Form {
    form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn json_response(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("cache-control", "no-store")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

fn refusal(status: StatusCode, error: &str, description: &str) -> Response<Full<Bytes>> {
    json_response(
        status,
        json!({"error": error, "error_description": description}),
    )
}

/// The answer to one token request.
fn answer(shared: &Mutex<Inner>, form: Form) -> Response<Full<Bytes>> {
    let mut inner = shared.lock().unwrap_or_else(|p| p.into_inner());
    if inner.refuse {
        let revoked = match form.get("refresh_token") {
            Some(token) => format!("the grant of refresh token {token} was revoked"),
            None => "the grant was revoked".to_string(),
        };
        return refusal(StatusCode::BAD_REQUEST, "invalid_grant", &revoked);
    }
    let mut rotated = None;
    match form.get("grant_type").map(String::as_str) {
        Some("refresh_token") => {
            let sent = form.get("refresh_token").cloned().unwrap_or_default();
            if !inner.refresh_tokens.contains(&sent) {
                // Naming the token, as some identity providers do.
                return refusal(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    &format!("the refresh token {sent} is not valid"),
                );
            }
            if inner.rotate {
                inner.refresh_tokens.remove(&sent);
                let next = format!("refresh-{}", inner.issued + 1);
                inner.refresh_tokens.insert(next.clone());
                rotated = Some(next);
            }
        }
        Some("client_credentials") => {
            let good = inner.client_secret.is_some()
                && form.get("client_secret") == inner.client_secret.as_ref();
            if !good {
                return refusal(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "client authentication failed",
                );
            }
        }
        _ => {
            return refusal(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "unknown grant_type",
            )
        }
    }
    inner.issued += 1;
    let mut body = json!({
        "access_token": format!("access-{}", inner.issued),
        "token_type": "Bearer",
    });
    if let Some(seconds) = inner.expires_in {
        body["expires_in"] = json!(seconds);
    }
    if let Some(next) = rotated {
        body["refresh_token"] = json!(next);
    }
    json_response(StatusCode::OK, body)
}
