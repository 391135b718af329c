//! The refresh tokens OAuth credentials were given in place of the written ones, kept in the
//! ledger so a restart goes on with the latest (a token endpoint that rotates them refuses the
//! older ones). Written at once, not at the next flush: a token lost to a crash could not be
//! had again without a new login.

use super::{db_error, Ledger};
use router_core::{Secret, TokenVault, VaultFuture};
use rusqlite::{params, OptionalExtension};
use std::sync::Arc;

/// Migration 7: the table, one row per credential (named by a digest, never by a secret).
pub(super) const SCHEMA: &str = "CREATE TABLE oauth_tokens (
        credential TEXT PRIMARY KEY,
        refresh_token TEXT NOT NULL,
        updated_at_ms INTEGER NOT NULL
    );";

impl Ledger {
    /// The refresh token kept for `credential`.
    pub fn kept_token(&self, credential: &str) -> Result<Option<Secret>, String> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        conn.query_row(
            "SELECT refresh_token FROM oauth_tokens WHERE credential = ?1",
            params![credential],
            |r| r.get::<_, String>(0),
        )
        .optional()
        .map(|token| token.map(Secret::new))
        .map_err(|e| db_error(&self.path, e))
    }

    /// Keeps `token` for `credential`, in place of the one kept.
    pub fn keep_token(&self, credential: &str, token: &Secret) -> Result<(), String> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        conn.execute(
            "INSERT INTO oauth_tokens (credential, refresh_token, updated_at_ms)
             VALUES (?1, ?2, ?3)
             ON CONFLICT (credential) DO UPDATE
             SET refresh_token = excluded.refresh_token, updated_at_ms = excluded.updated_at_ms",
            params![credential, token.expose(), super::now_ms()],
        )
        .map(|_| ())
        .map_err(|e| db_error(&self.path, e))
    }
}

/// The ledger as the router's [`TokenVault`]; each call runs off the async threads.
pub struct LedgerVault(pub Arc<Ledger>);

impl TokenVault for LedgerVault {
    fn load<'a>(&'a self, credential: &'a str) -> VaultFuture<'a, Option<Secret>> {
        let (ledger, credential) = (self.0.clone(), credential.to_string());
        Box::pin(async move {
            tokio::task::spawn_blocking(move || ledger.kept_token(&credential))
                .await
                .map_err(|e| e.to_string())?
        })
    }

    fn save<'a>(&'a self, credential: &'a str, refresh_token: &'a Secret) -> VaultFuture<'a, ()> {
        let (ledger, credential, token) = (
            self.0.clone(),
            credential.to_string(),
            refresh_token.clone(),
        );
        Box::pin(async move {
            tokio::task::spawn_blocking(move || ledger.keep_token(&credential, &token))
                .await
                .map_err(|e| e.to_string())?
        })
    }
}
