//! A provider key obtained by OAuth 2.0 instead of written as a string (`oauth:`).

use super::EnvString;
use serde::Deserialize;

/// An upstream credential whose access token the router obtains from a token endpoint and
/// refreshes: written as a provider key's `oauth:` in place of its `key`. The token is sent as
/// `Authorization: Bearer` to every provider type (Azure OpenAI included, in place of
/// `api-key`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthConfig {
    /// How a token is obtained.
    pub grant: OAuthGrant,
    /// The token endpoint (`https://login.microsoftonline.com/TENANT/oauth2/v2.0/token`).
    pub token_url: EnvString,
    /// The client id sent with each token request.
    pub client_id: EnvString,
    /// The client secret, sent in the request body (`client_secret_post`); required by
    /// `client_credentials`, optional for `refresh_token` (public clients have none).
    #[serde(default)]
    pub client_secret: Option<EnvString>,
    /// `refresh_token`: the refresh token the account was given when it logged in. A rotated
    /// one the token endpoint returns replaces it, and is kept across restarts (the ledger's
    /// SQLite file, or Redis when `state.redis` is set) until this value is changed.
    #[serde(default)]
    pub refresh_token: Option<EnvString>,
    /// The scope asked for (`https://cognitiveservices.azure.com/.default` for Azure OpenAI
    /// through Microsoft Entra ID).
    #[serde(default)]
    pub scope: Option<EnvString>,
}

/// An OAuth 2.0 grant (RFC 6749).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OAuthGrant {
    /// Refresh-token grant (§6): an account that logged in once and refreshes.
    RefreshToken,
    /// Client-credentials grant (§4.4): a service identity (Microsoft Entra ID).
    ClientCredentials,
}

impl OAuthGrant {
    /// Its `grant_type`.
    pub fn name(self) -> &'static str {
        match self {
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
        }
    }
}
