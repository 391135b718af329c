//! Embedding router-core in another Rust service: build a router from config text, forward a
//! complete and a streamed chat request, read the usage counters, and swap in a new config.
//!
//! Run: `cargo run -p examples --example embed`

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use http_body_util::BodyExt;
use mock_upstream::MockUpstream;
use router_core::{ClientRequest, Format, Router, Source};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // An OpenAI-compatible upstream on a local port (stands in for a real provider).
    let upstream = MockUpstream::start().await?;
    let yaml = format!(
        r#"
groups:
  - name: chat
    models:
      - {{provider: local, name: local-model, weight: 1}}
      - {{provider: demo, name: mock-echo, weight: 2}}
providers:
  - {{name: local, base_url: "{}", api_keys: ["sk-local-1", "sk-local-2"]}}
  - {{name: demo, type: mock}}
"#,
        upstream.base_url()
    );
    let router = Router::from_source(&Source::from_text(yaml, Format::Yaml))?;

    // A complete answer. One snapshot per request: it sees one config, whatever reloads.
    let hi = br#"{"model":"chat","messages":[{"role":"user","content":"hi"}]}"#;
    let answer = router
        .forward(&router.snapshot(), ClientRequest::chat(hi))
        .await?;
    println!(
        "served by {}/{} ({}), status {}",
        answer.served.provider, answer.served.model, answer.served.key_id, answer.status
    );
    println!(
        "{}",
        String::from_utf8_lossy(&answer.body.collect_bytes().await)
    );

    // A stream, relayed event by event.
    let streamed =
        br#"{"model":"chat","stream":true,"messages":[{"role":"user","content":"stream this"}]}"#;
    let answer = router
        .forward(&router.snapshot(), ClientRequest::chat(streamed))
        .await?;
    let mut body = answer.body;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            print!("{}", String::from_utf8_lossy(&data));
        }
    }

    // Usage per (provider, key, model): each key by its id and masked, never itself.
    for row in router.usage() {
        println!(
            "{:<6} {:<8} {:<10} {:<12} prompt {:>3} completion {:>3} total {:>3} requests {}",
            row.provider,
            row.key_id.as_deref().unwrap_or("-"),
            row.key_masked,
            row.model,
            row.prompt_tokens,
            row.completion_tokens,
            row.total_tokens,
            row.requests
        );
    }

    // Swap in a new config; counters carry over.
    let next = Source::from_text(
        "groups:\n  - name: only-demo\n    models: [{provider: demo, name: mock-echo}]\nproviders:\n  - {name: demo, type: mock}\n",
        Format::Yaml,
    );
    let outcome = router.apply(&next.parse()?)?;
    println!("now serving generation {}", outcome.generation);
    Ok(())
}
