//! One exchange with a token endpoint (RFC 6749 §4.4, §6): a form POST, and its JSON answer.

use super::{Fault, Settings};
use crate::config::OAuthGrant;
use crate::upstream::HttpClient;
use crate::{Redactor, Secret};
use bytes::Bytes;
use http::{header, HeaderValue, Request};
use http_body_util::{BodyExt, Full, Limited};
use serde::Deserialize;
use std::time::Duration;

/// Longest wait for a token endpoint's whole answer.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Largest token answer read.
const MAX_ANSWER: usize = 64 * 1024;

/// What a token endpoint granted.
pub(super) struct Granted {
    pub(super) access_token: Secret,
    /// Its lifetime (`expires_in`), when the endpoint says.
    pub(super) expires_in: Option<Duration>,
    /// A new refresh token, when the endpoint rotates them.
    pub(super) refresh_token: Option<Secret>,
}

/// The token answer's fields the router reads (RFC 6749 §5.1).
#[derive(Deserialize)]
struct Answer {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
    #[serde(default)]
    refresh_token: Option<String>,
}

/// An error answer's fields (RFC 6749 §5.2).
#[derive(Deserialize)]
struct Refusal {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// The form of a token request.
fn form(settings: &Settings, refresh_token: Option<&Secret>) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", settings.grant.name());
    if let (OAuthGrant::RefreshToken, Some(token)) = (settings.grant, refresh_token) {
        form.append_pair("refresh_token", token.expose());
    }
    form.append_pair("client_id", &settings.client_id);
    if let Some(secret) = &settings.client_secret {
        form.append_pair("client_secret", secret.expose());
    }
    if let Some(scope) = &settings.scope {
        form.append_pair("scope", scope);
    }
    form.finish()
}

/// Asks `settings.token_url` for an access token (with `refresh_token` for that grant). A
/// refusal (a 400 or 401 with an OAuth error) is a [`Fault`] that is `refused`; an endpoint
/// that cannot be reached or answers otherwise is one that is not.
pub(super) async fn request(
    client: &HttpClient,
    settings: &Settings,
    refresh_token: Option<&Secret>,
) -> Result<Granted, Fault> {
    let url = &settings.token_url;
    let mut request = Request::post(url.as_str())
        .body(Full::new(Bytes::from(form(settings, refresh_token))))
        .map_err(|e| Fault::unreachable(format!("bad token request to {url}: {e}")))?;
    let headers = request.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    let exchange = async {
        let response = client.request(request).await.map_err(|e| {
            let detail = std::error::Error::source(&e).map_or(e.to_string(), |s| s.to_string());
            Fault::unreachable(format!(
                "the token endpoint {url} could not be reached ({detail})"
            ))
        })?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| Fault::unreachable(format!("the token endpoint {url} broke off ({e})")))?
            .to_bytes();
        Ok::<_, Fault>((status, body))
    };
    let (status, body) = match tokio::time::timeout(TIMEOUT, exchange).await {
        Ok(answer) => answer?,
        Err(_) => {
            return Err(Fault::unreachable(format!(
                "the token endpoint {url} did not answer within {TIMEOUT:?}"
            )))
        }
    };
    if status.is_success() {
        return granted(&body, url);
    }
    match serde_json::from_slice::<Refusal>(&body) {
        // Only the endpoint's error code and description: never the body, which might echo
        // what was sent. The description too may name the credential's secrets, or the refresh
        // token sent (a rotated one is in no config): all masked.
        Ok(r) if status.is_client_error() => {
            let written = Redactor::new(&settings.secrets().collect::<Vec<_>>());
            let redactor = match refresh_token {
                Some(token) => written.and(token),
                None => written,
            };
            let shown = |text: &str| redactor.redact_str(text).into_owned();
            Err(Fault::refused(format!(
                "the token endpoint {url} refused the {} grant ({status}): {}{}",
                settings.grant.name(),
                shown(&r.error),
                r.error_description
                    .map(|d| format!(" ({})", shown(&d).chars().take(200).collect::<String>()))
                    .unwrap_or_default()
            )))
        }
        _ => Err(Fault::unreachable(format!(
            "the token endpoint {url} answered {status}"
        ))),
    }
}

/// The token of a successful answer.
fn granted(body: &[u8], url: &str) -> Result<Granted, Fault> {
    let answer: Answer = serde_json::from_slice(body).map_err(|e| {
        Fault::unreachable(format!(
            "the token endpoint {url} answered without a usable access_token ({})",
            json_problem(&e)
        ))
    })?;
    if let Some(kind) = &answer.token_type {
        if !kind.eq_ignore_ascii_case("bearer") {
            return Err(Fault::unreachable(format!(
                "the token endpoint {url} granted a '{kind}' token; only bearer tokens can be sent"
            )));
        }
    }
    if answer.access_token.is_empty()
        || HeaderValue::from_str(&format!("Bearer {}", answer.access_token)).is_err()
    {
        return Err(Fault::unreachable(format!(
            "the token endpoint {url} granted an access token that cannot be sent in a header"
        )));
    }
    // `expires_in` is a number, though some endpoints send it as a string.
    let expires_in = match &answer.expires_in {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    Ok(Granted {
        access_token: Secret::new(answer.access_token),
        expires_in: expires_in.map(Duration::from_secs),
        refresh_token: answer
            .refresh_token
            .filter(|t| !t.is_empty())
            .map(Secret::new),
    })
}

/// What was wrong with a token answer, without its text (it holds secrets).
fn json_problem(e: &serde_json::Error) -> &'static str {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data => "access_token missing or not a string",
        Category::Syntax | Category::Eof => "not JSON",
        Category::Io => "unreadable",
    }
}
