//! A provider's keys as compiled: the usable ones (static keys and OAuth credentials), how
//! each is named, and their upstream limits.

use super::compile::Problems;
use crate::config::{KeyLimitsConfig, OAuthConfig, OAuthGrant, ProviderConfig, ProviderKey};
use crate::oauth::Settings;
use crate::state::limits::KeyLimit;
use crate::state::State;
use crate::Secret;
use std::num::NonZeroU64;

/// How an upstream key is named wherever it is shown: by its id, `provider#index`, the index
/// being its place among the provider's keys as written (`api_key` first, then `api_keys`,
/// disabled and empty ones counted, as `provider key` numbers them), and by its masked form,
/// distinct among the provider's keys (see [`crate::masked_apart`]); an OAuth credential by
/// `oauth:` and its client id.
#[derive(Debug, Clone)]
pub(crate) struct KeyName {
    pub(crate) id: String,
    pub(crate) masked: String,
}

/// A usable key as written.
pub(super) struct Written {
    /// Its place among the provider's keys as written.
    pub(super) place: usize,
    /// The key; for an OAuth credential, what stands for it ([`Settings::identity`]).
    pub(super) key: Secret,
    /// Its limits: its own, else the provider's.
    pub(super) limits: KeyLimitsConfig,
    /// Its OAuth credential's settings, if it is one.
    pub(super) oauth: Option<Settings>,
}

/// What stands for `k` where its key is counted and told apart: the key, or its OAuth
/// credential's identity.
fn written_key(k: &ProviderKey) -> Secret {
    match &k.oauth {
        Some(o) => Settings::of(o).identity(),
        None => Secret::new(k.key.as_str()),
    }
}

/// The names of the keys `written`: its id, and its masked form told apart from the
/// provider's other keys, disabled ones included, as `provider key list` shows them. The
/// in-process provider's one key is `mock`.
pub(super) fn key_names(
    name: &str,
    p: &ProviderConfig,
    local: bool,
    written: &[Written],
) -> Vec<KeyName> {
    let all: Vec<Secret> = (p.api_key.iter().chain(&p.api_keys))
        .map(written_key)
        .collect();
    let masked = crate::masked_apart(&all);
    (written.iter())
        .map(|w| KeyName {
            id: crate::key_id(name, w.place),
            masked: match (&w.oauth, local) {
                (_, true) => "mock".to_string(),
                (Some(oauth), false) => oauth.shown(),
                (None, false) => masked.get(w.place).cloned().unwrap_or_default(),
            },
        })
        .collect()
}

/// The keys that are not empty (an unset variable) nor disabled, in config order; none for a
/// disabled provider.
pub(super) fn keys(
    pi: usize,
    p: &ProviderConfig,
    problems: &mut Problems<'_>,
    warnings: &mut Vec<String>,
) -> Vec<Written> {
    if p.disabled {
        return Vec::new();
    }
    let paths = (p.api_key.iter().map(|_| format!("providers[{pi}].api_key")))
        .chain((0..p.api_keys.len()).map(|i| format!("providers[{pi}].api_keys[{i}]")));
    let written = (p.api_key.iter().chain(&p.api_keys))
        .zip(paths)
        .enumerate()
        .filter(|(_, (k, _))| !k.disabled);
    let mut keys = Vec::new();
    for (place, (k, path)) in written {
        let limits = KeyLimitsConfig {
            rpm: k.rpm.or(p.limits.rpm),
            tpm: k.tpm.or(p.limits.tpm),
        };
        let own = KeyLimitsConfig {
            rpm: k.rpm,
            tpm: k.tpm,
        };
        let usable = match &k.oauth {
            Some(oauth) => oauth_ok(&path, oauth, problems, warnings),
            None if k.key.as_str().is_empty() => {
                let what = k.key.template().unwrap_or("the key");
                warnings.push(format!("{path}: {what} is empty; key skipped"));
                false
            }
            None => super::compile::key_text_ok(&path, k.key.as_str(), problems),
        };
        if usable && limits_ok(&path, &own, problems) {
            keys.push(Written {
                place,
                key: written_key(k),
                limits,
                oauth: k.oauth.as_ref().map(Settings::of),
            });
        }
    }
    keys
}

/// Whether the OAuth credential written at `path` can ask for a token: an http(s) token URL,
/// a client id, and what its grant needs (a refresh token, a client secret). A secret whose
/// variable expanded to nothing skips the key with a warning, as an empty key does.
fn oauth_ok(
    path: &str,
    o: &OAuthConfig,
    problems: &mut Problems<'_>,
    warnings: &mut Vec<String>,
) -> bool {
    let mut ok = true;
    let url = o.token_url.as_str().parse::<http::Uri>();
    let web = url.as_ref().is_ok_and(|u| {
        matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some_and(|h| !h.is_empty())
    });
    if !web {
        problems.push(
            format!("{path}.oauth.token_url"),
            "must be an http:// or https:// URL with a host",
        );
        ok = false;
    }
    if o.client_id.as_str().is_empty() {
        problems.push(format!("{path}.oauth.client_id"), "must not be empty");
        ok = false;
    }
    let (field, needed) = match o.grant {
        OAuthGrant::RefreshToken => ("refresh_token", &o.refresh_token),
        OAuthGrant::ClientCredentials => ("client_secret", &o.client_secret),
    };
    match needed {
        None => {
            problems.push(
                format!("{path}.oauth.{field}"),
                format!("the {} grant needs one", o.grant.name()),
            );
            ok = false;
        }
        Some(v) if v.as_str().is_empty() && ok => {
            let what = v.template().unwrap_or("it");
            warnings.push(format!(
                "{path}.oauth.{field}: {what} is empty; key skipped"
            ));
            ok = false;
        }
        Some(_) => {}
    }
    ok
}

/// The variables of `p`'s keys that expanded to nothing, as written.
pub(super) fn empty_variables(p: &ProviderConfig) -> Vec<String> {
    let written = p.api_key.iter().chain(&p.api_keys);
    let secret = |k: &ProviderKey| match &k.oauth {
        Some(o) => match o.grant {
            OAuthGrant::RefreshToken => o.refresh_token.clone(),
            OAuthGrant::ClientCredentials => o.client_secret.clone(),
        },
        None => Some(k.key.clone()),
    };
    written
        .filter_map(secret)
        .filter(|s| s.as_str().is_empty())
        .filter_map(|s| s.template().map(str::to_string))
        .collect()
}

/// Whether `limits` (at `path`) are usable: a limit of 0 would never let a request through.
pub(super) fn limits_ok(path: &str, limits: &KeyLimitsConfig, problems: &mut Problems<'_>) -> bool {
    let mut ok = true;
    for (what, value) in [("rpm", limits.rpm), ("tpm", limits.tpm)] {
        if value == Some(0) {
            problems.push(
                format!("{path}.{what}"),
                "must be at least 1 (leave it out for no limit)",
            );
            ok = false;
        }
    }
    ok
}

/// The limit of `provider`'s `key`, counted in its window of `state` (none without limits).
pub(super) fn key_limit(
    provider: &str,
    key: &Secret,
    limits: &KeyLimitsConfig,
    state: &State,
) -> Option<KeyLimit> {
    let (rpm, tpm) = (
        limits.rpm.and_then(NonZeroU64::new),
        limits.tpm.and_then(NonZeroU64::new),
    );
    (rpm.is_some() || tpm.is_some()).then(|| KeyLimit {
        rpm,
        tpm,
        window: state.limits.of(provider, &key.fingerprint()),
    })
}
