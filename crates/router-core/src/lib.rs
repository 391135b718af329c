//! `router-core`: a config-driven router for LLM APIs.
//!
//! A [`Router`] holds the config as one [`Snapshot`] swapped atomically on reload, picks a
//! (provider, model, key) pair of a group by the lowest `usage × weight`, forwards OpenAI chat
//! completions (complete or streamed) with failover, and counts tokens per
//! (provider, key, model) in counters that survive reloads.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let router = router_core::Router::from_file("config.yaml")?;
//! let body = br#"{"model":"demo","messages":[{"role":"user","content":"hi"}]}"#;
//! let response = router.chat_completions(body).await?;
//! let bytes = response.body.collect_bytes().await;
//! println!("{}", String::from_utf8_lossy(&bytes));
//! for row in router.usage() {
//!     println!("{} {} {}: {} tokens", row.provider, row.key_id, row.model, row.total_tokens);
//! }
//! # Ok(()) }
//! ```

pub mod config;
mod error;
mod forward;
mod health;
mod meter;
mod providers;
mod request;
mod router;
mod secret;
mod select;
mod snapshot;
pub mod sse;
mod upstream;
mod usage;
mod watch;

pub use config::{Config, ConfigError, Format, Source};
pub use error::{FailedAttempt, Origin, RouterError};
pub use forward::{usage_of_body, BoxError, ChatBody, ChatResponse, ClientHeaders, Served};
pub use health::Failure;
pub use request::{ChatRequest, Dialect, Endpoint};
pub use router::{ReloadOutcome, ReloadStats, Router};
pub use secret::Secret;
pub use select::{Selection, Unavailable};
pub use snapshot::{Group, Pair, Provider, Snapshot};
pub use usage::{FailureCounts, PairStats, SavedUsage, TokenUsage, UsageRecord};
pub use watch::watch_config;
