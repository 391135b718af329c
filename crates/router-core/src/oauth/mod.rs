//! Upstream credentials obtained by OAuth 2.0 (a provider key's `oauth:`): the access token is
//! asked of the token endpoint when first needed, renewed ahead of its expiry (at a jittered
//! point before it, in the background while the old one is still good) and once when the
//! upstream answers 401 (then the call is sent again), never by two requests at once. A
//! rotated refresh token is kept (in Redis while the replica is linked to it, and in the
//! [`TokenVault`] the embedder gave, the binary's ledger) so a restart goes on with it.

mod cell;
mod endpoint;
mod vault;

pub use vault::{TokenVault, VaultFuture};

use crate::config::{OAuthConfig, OAuthGrant};
use crate::upstream::HttpClient;
use crate::Secret;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// How long a key rests after its token endpoint refused it (picked only when no other pair
/// is left): the refusal is given to every request meanwhile, without asking again.
pub(crate) const REFUSED_PAUSE: Duration = Duration::from_secs(60);

/// What a credential sends to its token endpoint.
pub(crate) struct Settings {
    pub(crate) grant: OAuthGrant,
    pub(crate) token_url: String,
    pub(crate) client_id: String,
    pub(crate) client_secret: Option<Secret>,
    pub(crate) scope: Option<String>,
    /// The refresh token as written (a rotated one replaces it).
    pub(crate) refresh_token: Option<Secret>,
}

impl Settings {
    /// The settings of `written` (already checked).
    pub(crate) fn of(written: &OAuthConfig) -> Self {
        let text = |s: &crate::config::EnvString| s.as_str().to_string();
        Self {
            grant: written.grant,
            token_url: text(&written.token_url),
            client_id: text(&written.client_id),
            client_secret: (written.client_secret.as_ref())
                .filter(|s| !s.as_str().is_empty())
                .map(|s| Secret::new(s.as_str())),
            scope: (written.scope.as_ref())
                .filter(|s| !s.as_str().is_empty())
                .map(text),
            refresh_token: (written.refresh_token.as_ref())
                .filter(|s| !s.as_str().is_empty())
                .map(|s| Secret::new(s.as_str())),
        }
    }

    /// What stands for the credential where a key would: `oauth:` and a digest of the account
    /// (grant, endpoint, client, scope and the refresh token as written). Its fingerprint keys
    /// the counters, the kept refresh token and the tokens held across reloads; writing a new
    /// refresh token (a new login) makes it a new credential.
    pub(crate) fn identity(&self) -> Secret {
        let mut digest = Sha256::new();
        for part in [
            self.grant.name(),
            &self.token_url,
            &self.client_id,
            self.scope.as_deref().unwrap_or(""),
            self.refresh_token.as_ref().map_or("", Secret::expose),
        ] {
            digest.update(part.as_bytes());
            digest.update([0]);
        }
        Secret::new(format!("oauth:{}", hex::encode(digest.finalize())))
    }

    /// How the key is shown: `oauth:` and its client id (not a secret).
    pub(crate) fn shown(&self) -> String {
        format!("oauth:{}", self.client_id)
    }

    /// Its secrets, for the redactor.
    pub(crate) fn secrets(&self) -> impl Iterator<Item = Secret> + '_ {
        self.client_secret
            .iter()
            .chain(&self.refresh_token)
            .cloned()
    }
}

/// Why no access token could be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fault {
    /// What happened, safe to show (no token, no secret).
    pub(crate) message: String,
    /// The endpoint refused the credential (the key rests), rather than failing to answer.
    pub(crate) refused: bool,
}

impl Fault {
    fn refused(message: String) -> Self {
        Self {
            message,
            refused: true,
        }
    }
    fn unreachable(message: String) -> Self {
        Self {
            message,
            refused: false,
        }
    }
}

/// The tokens of every credential ever configured, by identity, across reloads; and where
/// rotated refresh tokens are kept.
#[derive(Default)]
pub(crate) struct Tokens {
    cells: Mutex<HashMap<String, Arc<cell::TokenCell>>>,
    vault: RwLock<Option<Arc<dyn TokenVault>>>,
}

impl Tokens {
    /// Keeps rotated refresh tokens in `vault` from now on.
    pub(crate) fn keep_in(&self, vault: Arc<dyn TokenVault>) {
        *self.vault.write().unwrap_or_else(|p| p.into_inner()) = Some(vault);
    }

    fn vault(&self) -> Option<Arc<dyn TokenVault>> {
        self.vault.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn cell(&self, id: &str) -> Arc<cell::TokenCell> {
        let mut cells = self.cells.lock().unwrap_or_else(|p| p.into_inner());
        cells.entry(id.to_string()).or_default().clone()
    }
}

/// One OAuth credential of a compiled provider.
pub(crate) struct OAuthCredential {
    settings: Settings,
    /// The identity's fingerprint: the name its tokens are kept under.
    id: String,
    /// The key's id (`provider#index`), for log lines.
    label: String,
    cell: Arc<cell::TokenCell>,
    /// The provider's client: the token endpoint is reached as the provider is (its proxy,
    /// its extra roots).
    client: HttpClient,
    tokens: Arc<Tokens>,
    link: Arc<crate::shared::Link>,
}

impl std::fmt::Debug for OAuthCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthCredential")
            .field("key", &self.label)
            .field("client_id", &self.settings.client_id)
            .finish_non_exhaustive()
    }
}

impl OAuthCredential {
    /// The credential of `settings` for key `label`, its tokens taken from `state`.
    pub(crate) fn new(
        settings: Settings,
        label: String,
        client: HttpClient,
        state: &crate::state::State,
    ) -> Self {
        let id = settings.identity().fingerprint();
        Self {
            cell: state.oauth.cell(&id),
            settings,
            id,
            label,
            client,
            tokens: state.oauth.clone(),
            link: state.shared.clone(),
        }
    }

    /// Its settings.
    pub(crate) fn settings(&self) -> &Settings {
        &self.settings
    }
}
