//! A provider's `base_url`: the one written, checked (a URL with a host, not ending in an
//! endpoint's path), else the official API of the `type` written.

use super::compile::Problems;
use crate::config::ProviderConfig;

/// The base URL of `providers[pi]` (not a local kind), or `None` after reporting why it has
/// none.
pub(super) fn compile(
    pi: usize,
    p: &ProviderConfig,
    problems: &mut Problems<'_>,
) -> Option<String> {
    let name = p.name.as_str();
    let official = p.kind.and_then(|k| k.room().official_base_url());
    match (&p.base_url, official) {
        (Some(url), _) => match check_url(url.as_str()) {
            Ok(u) => Some(u),
            Err(e) => {
                problems.push(format!("providers[{pi}].base_url"), e);
                None
            }
        },
        (None, Some(url)) => Some(url.to_string()),
        (None, None) => {
            let why = match p.kind {
                Some(k) if k.name() == "azure" => format!("provider '{name}' needs a base_url: its Azure OpenAI resource's endpoint, such as https://<resource>.openai.azure.com"),
                Some(_) => format!("provider '{name}' needs a base_url"),
                None => format!("provider '{name}' needs a base_url (an OpenAI-compatible server's, such as http://localhost:8000/v1), or a type: openai, anthropic or gemini call the official API without one"),
            };
            problems.push(format!("providers[{pi}]"), why);
            None
        }
    }
}

/// `url` without its trailing slashes, if it is an http(s) URL with a host that does not end
/// in an endpoint's path.
fn check_url(url: &str) -> Result<String, String> {
    let trimmed = url.trim_end_matches('/');
    let uri: http::Uri = trimmed
        .parse()
        .map_err(|e| format!("'{url}' is not a valid URL: {e}"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => return Err(format!("'{url}' must start with http:// or https://")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("'{url}' has no host"));
    }
    if let Some(start) = endpoint_path(trimmed) {
        return Err(format!(
            "'{url}' ends in an endpoint's path: base_url is where the API's paths start, and the router adds the endpoint; write '{}'",
            &trimmed[..start]
        ));
    }
    Ok(trimmed.to_string())
}

/// Where an endpoint's path begins at the end of `url`, if it ends in one (a URL copied from
/// an API reference's example call rather than its base).
fn endpoint_path(url: &str) -> Option<usize> {
    const ENDPOINTS: [&str; 7] = [
        "/chat/completions",
        "/completions",
        "/embeddings",
        "/responses",
        "/messages",
        "/messages/count_tokens",
        ":generateContent",
    ];
    let lower = url.to_ascii_lowercase();
    ENDPOINTS
        .iter()
        .filter(|e| lower.ends_with(&e.to_ascii_lowercase()))
        .map(|e| url.len() - e.len())
        .min()
        .map(|start| match url[..start].rfind("/models/") {
            // Gemini's `/models/<model>:generateContent`: the base ends before `/models`.
            Some(models) if url[start..].starts_with(':') => models,
            _ => start,
        })
}
