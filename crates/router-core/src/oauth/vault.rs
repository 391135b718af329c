//! Where rotated refresh tokens are kept across restarts: Redis while the replica is linked to
//! it (so replicas sharing an account go on from the last rotation), and the embedder's
//! [`TokenVault`] (the binary keeps them in its ledger's SQLite file).

use super::OAuthCredential;
use crate::Secret;
use std::future::Future;
use std::pin::Pin;

/// The future a [`TokenVault`] call returns.
pub type VaultFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send + 'a>>;

/// A store for the refresh tokens OAuth credentials were given in place of the written ones,
/// so a restart goes on with the latest (a token endpoint that rotates refresh tokens refuses
/// the older ones). Credentials are named by a digest of their settings, never by a secret.
/// Give one to [`crate::Router::keep_tokens_in`].
pub trait TokenVault: Send + Sync {
    /// The refresh token kept for `credential`, if any.
    fn load<'a>(&'a self, credential: &'a str) -> VaultFuture<'a, Option<Secret>>;
    /// Keeps `refresh_token` for `credential`, in place of the one kept.
    fn save<'a>(&'a self, credential: &'a str, refresh_token: &'a Secret) -> VaultFuture<'a, ()>;
}

impl OAuthCredential {
    /// The refresh token Redis keeps for this credential, while the replica is linked to it.
    pub(super) async fn kept_in_redis(&self) -> Option<Secret> {
        let handle = self.link.handle()?;
        match crate::shared::tokens::get(&handle, &self.id).await {
            Ok(token) => token,
            Err(e) => {
                tracing::warn!(key = %self.label, "the kept OAuth refresh token could not be read from Redis: {e}");
                None
            }
        }
    }

    /// The refresh token the vault keeps for this credential.
    pub(super) async fn kept_in_vault(&self) -> Option<Secret> {
        let vault = self.tokens.vault()?;
        match vault.load(&self.id).await {
            Ok(token) => token,
            Err(e) => {
                tracing::warn!(key = %self.label, "the kept OAuth refresh token could not be read: {e}");
                None
            }
        }
    }

    /// Keeps a rotated refresh token wherever tokens are kept.
    pub(super) async fn keep(&self, token: &Secret) {
        if let Some(handle) = self.link.handle() {
            if let Err(e) = crate::shared::tokens::set(&handle, &self.id, token).await {
                tracing::warn!(key = %self.label, "the rotated OAuth refresh token could not be kept in Redis: {e}");
            }
        }
        if let Some(vault) = self.tokens.vault() {
            if let Err(e) = vault.save(&self.id, token).await {
                tracing::error!(key = %self.label, "the rotated OAuth refresh token could not be kept: {e}; a restart would start from an older one");
            }
        }
    }
}
