//! What the integration tests share: asking a router in each client dialect, reading its
//! usage rows.

#![allow(dead_code, clippy::expect_used)]

use router_core::{ChatResponse, ClientRequest, PairState, Router, RouterError, UsageRecord};

/// An OpenAI chat completions request on the router's current config.
pub async fn chat(r: &Router, body: &[u8]) -> Result<ChatResponse, RouterError> {
    r.forward(&r.snapshot(), ClientRequest::chat(body)).await
}

/// An Anthropic Messages request on the router's current config.
pub async fn messages(r: &Router, body: &[u8]) -> Result<ChatResponse, RouterError> {
    r.forward(&r.snapshot(), ClientRequest::messages(body))
        .await
}

/// The live state of a usage row of a running router.
pub trait LiveRecord {
    /// The pair's state (a running router's rows always have one).
    fn live_state(&self) -> &PairState;
}

impl LiveRecord for UsageRecord {
    fn live_state(&self) -> &PairState {
        self.live
            .as_ref()
            .expect("a running router's usage row has its state")
    }
}
