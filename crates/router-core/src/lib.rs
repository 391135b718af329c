//! `router-core`: a config-driven router for LLM APIs.
//!
//! A [`Router`] holds the config as one [`Snapshot`] swapped atomically on reload, picks a
//! (provider, model, key) pair of a group by its strategy (by default the lowest
//! `usage × weight`), forwards a client's request (complete or streamed, translated between
//! OpenAI's and Anthropic's formats and the providers' own where they differ) with failover,
//! and counts tokens per (provider, key, model) in counters that survive reloads.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use router_core::{ClientRequest, Router};
//! let router = Router::from_file("config.yaml")?;
//! let body = br#"{"model":"demo","messages":[{"role":"user","content":"hi"}]}"#;
//! let response = router.forward(&router.snapshot(), ClientRequest::chat(body)).await?;
//! let bytes = response.body.collect_bytes().await;
//! println!("{}", String::from_utf8_lossy(&bytes));
//! for row in router.usage() {
//!     let key = row.key_id.as_deref().unwrap_or("-"); // `provider#index`
//!     println!("{key} ({}) {}: {} tokens", row.key_masked, row.model, row.total_tokens);
//! }
//! # Ok(()) }
//! ```

mod cache;
mod codec;
pub mod config;
mod dialects;
mod error;
mod exchange;
mod fields;
mod forward;
mod json;
mod meter;
mod oauth;
mod providers;
mod redact;
mod router;
mod secret;
mod select;
pub mod shared;
mod snapshot;
pub mod sse;
mod state;
pub mod tenants;
mod tokens;
mod trace;
#[cfg(test)]
mod translations;
mod upstream;
mod walk;
mod watch;

use state::{health, usage};

pub use cache::{CacheOutcome, CACHE_HEADER};
pub use config::{Config, ConfigError, Format, Source};
pub use dialects::tags::TAGS_HEADER;
pub use dialects::{ChatRequest, ClientRequest, CompletionLimit, Dialect, Endpoint};
pub use error::{ErrorReply, FailedAttempt, Origin, RouterError};
pub use fields::{UnknownFields, DROPPED_HEADER};
pub use forward::{BoxError, ChatBody, ChatResponse, Served};
pub use health::Failure;
pub use oauth::{TokenVault, VaultFuture};
pub use providers::openai::usage_of_body;
pub use providers::ProviderKind;
pub use redact::{Redactor, MIN_SECRET_LEN};
pub use router::{ReloadOutcome, ReloadStats, Router};
pub use secret::{key_id, masked_apart, Secret};
pub use select::{Expected, Selection, Strategy, Unavailable};
pub use snapshot::{
    CorsOrigins, Group, LedgerSettings, LogFormat, Pair, Provider, ServerSettings, SharedSettings,
    Snapshot, TelemetrySettings, TlsFiles,
};
pub use trace::{AttemptSpan, Trace};
pub use usage::{FailureCounts, InGroup, PairState, PairStats, TokenUsage, UsageRecord};
pub use watch::{watch_config, watch_files};
