//! A credential's tokens and its one flight: at most one request asks the token endpoint at a
//! time, and the ones that waited for it take its outcome instead of asking again.

use super::endpoint::{self, Granted};
use super::{Fault, OAuthCredential, REFUSED_PAUSE};
use crate::config::OAuthGrant;
use crate::Secret;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// Longest lead of a renewal ahead of the token's expiry.
const MAX_LEAD: Duration = Duration::from_secs(300);

/// How long a renewal ahead of expiry that failed waits before it is tried again (the token
/// still serves meanwhile).
const RETRY_PAUSE: Duration = Duration::from_secs(5);

/// The tokens of one credential, kept across reloads.
#[derive(Default)]
pub(super) struct TokenCell {
    now: Mutex<Current>,
    flight: Arc<tokio::sync::Mutex<()>>,
}

#[derive(Default)]
struct Current {
    access: Option<Access>,
    /// The refresh token last given by the endpoint, when it rotated the written one.
    refresh: Option<Secret>,
    /// Flights ended so far.
    round: u64,
    /// How the last flight failed, if it did (and until when a refusal stands).
    failed: Option<(Fault, Instant)>,
}

/// An access token and when to renew it.
struct Access {
    token: Secret,
    /// When a renewal starts in the background: a jittered lead before `expires_at`.
    renew_at: Option<Instant>,
    expires_at: Option<Instant>,
}

impl Access {
    /// A token granted at `now`, valid for `lifetime` (unknown: until the upstream refuses
    /// it). It is renewed ahead of expiry by a fifth of its lifetime at most, five minutes at
    /// most, less up to a fifth of that at random so replicas do not renew together.
    fn new(token: Secret, lifetime: Option<Duration>, now: Instant) -> Self {
        let Some(lifetime) = lifetime else {
            return Self {
                token,
                renew_at: None,
                expires_at: None,
            };
        };
        let lead = (lifetime / 5).min(MAX_LEAD);
        let lead = lead.mul_f64(1.0 - fastrand::f64() / 5.0);
        Self {
            token,
            renew_at: Some(crate::health::later(now, lifetime - lead)),
            expires_at: Some(crate::health::later(now, lifetime)),
        }
    }

    fn expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|e| now >= e)
    }
}

impl TokenCell {
    fn current(&self) -> MutexGuard<'_, Current> {
        self.now.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl OAuthCredential {
    /// An access token to send: the one held while it is good (a renewal starting in the
    /// background once it is due), else one from the token endpoint.
    pub(crate) async fn token(self: &Arc<Self>) -> Result<Secret, Fault> {
        let now = Instant::now();
        let round = {
            let current = self.cell.current();
            if let Some(access) = current.access.as_ref().filter(|a| !a.expired(now)) {
                let token = access.token.clone();
                if access.renew_at.is_some_and(|at| now >= at) {
                    drop(current);
                    self.renew_in_background();
                }
                return Ok(token);
            }
            if let Some((fault, until)) = &current.failed {
                if fault.refused && now < *until {
                    return Err(fault.clone());
                }
            }
            current.round
        };
        self.renew(round, None).await
    }

    /// The upstream refused `used` (401): a new token, unless another request has replaced
    /// it already.
    pub(crate) async fn renew_refused(self: &Arc<Self>, used: &Secret) -> Result<Secret, Fault> {
        let round = self.cell.current().round;
        self.renew(round, Some(used)).await
    }

    /// Waits for the flight, then takes the outcome of one that ended meanwhile (a token other
    /// than `refused`) or asks the endpoint itself.
    async fn renew(&self, round: u64, refused: Option<&Secret>) -> Result<Secret, Fault> {
        let _flight = self.cell.flight.lock().await;
        {
            let current = self.cell.current();
            let now = Instant::now();
            if let Some(access) = current.access.as_ref().filter(|a| !a.expired(now)) {
                let replaced = match refused {
                    Some(used) => *used != access.token,
                    None => current.round != round,
                };
                if replaced {
                    return Ok(access.token.clone());
                }
            }
            if let (true, Some((fault, _))) = (current.round != round, &current.failed) {
                return Err(fault.clone());
            }
        }
        self.fetch().await
    }

    /// Starts a renewal ahead of expiry, unless a flight is on.
    fn renew_in_background(self: &Arc<Self>) {
        let Ok(flight) = self.cell.flight.clone().try_lock_owned() else {
            return;
        };
        let credential = self.clone();
        tokio::spawn(async move {
            let _flight = flight;
            let _ = credential.fetch().await;
        });
    }

    /// Asks the token endpoint (under the flight), and keeps what it said.
    async fn fetch(&self) -> Result<Secret, Fault> {
        let mut refresh = match self.settings.grant {
            OAuthGrant::RefreshToken => self.refresh_token().await,
            OAuthGrant::ClientCredentials => None,
        };
        let mut outcome = endpoint::request(&self.client, &self.settings, refresh.as_ref()).await;
        if let (Err(Fault { refused: true, .. }), Some(sent)) = (&outcome, &refresh) {
            // Another replica may have rotated the token between this one's read of Redis and
            // its request: the endpoint refuses the one it retired. Once more with Redis's.
            if let Some(newer) = self.kept_in_redis().await.filter(|kept| kept != sent) {
                refresh = Some(newer);
                outcome = endpoint::request(&self.client, &self.settings, refresh.as_ref()).await;
            }
        }
        if let Ok(Granted {
            refresh_token: Some(rotated),
            ..
        }) = &outcome
        {
            if refresh.as_ref() != Some(rotated) {
                self.keep(rotated).await;
            }
        }
        let now = Instant::now();
        let mut current = self.cell.current();
        current.round += 1;
        match outcome {
            Ok(granted) => {
                tracing::info!(
                    key = %self.label,
                    "OAuth access token obtained{}",
                    granted.expires_in.map_or(String::new(), |e| format!(
                        ", valid for {}",
                        humantime::format_duration(e)
                    ))
                );
                let token = granted.access_token.clone();
                current.access = Some(Access::new(granted.access_token, granted.expires_in, now));
                if granted.refresh_token.is_some() {
                    current.refresh = granted.refresh_token;
                }
                current.failed = None;
                Ok(token)
            }
            Err(fault) => {
                if fault.refused {
                    tracing::warn!(key = %self.label, "{}; the key rests for {}", fault.message, humantime::format_duration(REFUSED_PAUSE));
                    current.access = None;
                } else {
                    tracing::warn!(key = %self.label, "{}", fault.message);
                    if let Some(access) = &mut current.access {
                        access.renew_at = Some(crate::health::later(now, RETRY_PAUSE));
                    }
                }
                current.failed = Some((fault.clone(), crate::health::later(now, REFUSED_PAUSE)));
                Err(fault)
            }
        }
    }

    /// The refresh token to send: Redis's (another replica may have rotated it), else the one
    /// this replica was given last, else the vault's (a restart), else the one written.
    async fn refresh_token(&self) -> Option<Secret> {
        if let Some(token) = self.kept_in_redis().await {
            return Some(token);
        }
        if let Some(token) = self.cell.current().refresh.clone() {
            return Some(token);
        }
        if let Some(token) = self.kept_in_vault().await {
            return Some(token);
        }
        self.settings.refresh_token.clone()
    }
}
