//! Holding many streams open at once and telling how each ended.

use crate::load::*;
use http_body_util::BodyExt;
use mock_upstream::MockUpstream;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the held streams of one run ended.
#[derive(Default)]
pub(crate) struct Held {
    pub(crate) completed: usize,
    /// The request failed before a response head (connect, refused, reset), with an example.
    pub(crate) no_response: usize,
    /// A response that was not a 2xx.
    pub(crate) bad_status: usize,
    /// The body broke or ended before `[DONE]`.
    pub(crate) cut: usize,
    /// Still open when the run gave up waiting.
    pub(crate) unfinished: usize,
    pub(crate) example: Option<String>,
}

impl Held {
    pub(crate) fn failures(&self) -> String {
        let mut parts = Vec::new();
        for (n, what) in [
            (self.no_response, "without a response"),
            (self.bad_status, "with an error status"),
            (self.cut, "cut"),
            (self.unfinished, "unfinished"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
        if let Some(e) = &self.example {
            parts.push(format!("first error: `{}`", e.replace('`', "'")));
        }
        if parts.is_empty() {
            "no failures".into()
        } else {
            parts.join(", ")
        }
    }
}

pub(crate) enum StreamEnd {
    Completed,
    NoResponse(String),
    BadStatus(String),
    Cut(String),
}

/// Opens `n` streams that the mock holds before their last chunk, spread over `clients`,
/// waits until each has sent its first byte, runs `measure`, then lets them finish; returns
/// how they ended, and what `measure` found.
pub(crate) async fn hold_streams<T, Fut: std::future::Future<Output = T>>(
    mock: &MockUpstream,
    url: &str,
    n: usize,
    clients: &[HttpClient],
    measure: impl FnOnce() -> Fut,
) -> (Held, T) {
    mock.hold_last_chunk(true);
    let body = chat_body(256, true);
    let started = Arc::new(tokio::sync::Semaphore::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let (client, url, body, started) = (
            clients[i % clients.len()].clone(),
            url.to_string(),
            body.clone(),
            started.clone(),
        );
        tasks.spawn(async move {
            let resp = match client.request(request(&url, &body)).await {
                Ok(resp) => resp,
                Err(e) => {
                    started.add_permits(1);
                    let mut text = e.to_string();
                    let mut source = std::error::Error::source(&e);
                    while let Some(s) = source {
                        text.push_str(&format!(": {s}"));
                        source = s.source();
                    }
                    return StreamEnd::NoResponse(text);
                }
            };
            let status = resp.status();
            let mut b = resp.into_body();
            let first = b.frame().await;
            started.add_permits(1);
            let mut text = Vec::new();
            let mut broke = None;
            match first {
                Some(Ok(f)) => text.extend_from_slice(f.data_ref().map_or(&[][..], |d| d.as_ref())),
                Some(Err(e)) => broke = Some(e.to_string()),
                None => {}
            }
            while broke.is_none() {
                match b.frame().await {
                    Some(Ok(f)) => {
                        text.extend_from_slice(f.data_ref().map_or(&[][..], |d| d.as_ref()))
                    }
                    Some(Err(e)) => broke = Some(e.to_string()),
                    None => break,
                }
            }
            if !status.is_success() {
                StreamEnd::BadStatus(format!("{status}: {}", String::from_utf8_lossy(&text)))
            } else if let Some(e) = broke {
                StreamEnd::Cut(e)
            } else if text.ends_with(b"data: [DONE]\n\n") {
                StreamEnd::Completed
            } else {
                StreamEnd::Cut("ended before [DONE]".into())
            }
        });
    }
    let all = u32::try_from(n).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(Duration::from_secs(120), started.acquire_many(all)).await;
    let measured = measure().await;
    mock.hold_last_chunk(false);
    // Release until every held stream has ended (a stream may start holding just after).
    let mut held = Held::default();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !tasks.is_empty() && Instant::now() < deadline {
        mock.release();
        if let Ok(Some(Ok(end))) =
            tokio::time::timeout(Duration::from_millis(50), tasks.join_next()).await
        {
            let error = match end {
                StreamEnd::Completed => {
                    held.completed += 1;
                    None
                }
                StreamEnd::NoResponse(e) => {
                    held.no_response += 1;
                    Some(e)
                }
                StreamEnd::BadStatus(e) => {
                    held.bad_status += 1;
                    Some(e)
                }
                StreamEnd::Cut(e) => {
                    held.cut += 1;
                    Some(e)
                }
            };
            if held.example.is_none() {
                held.example = error;
            }
        }
    }
    held.unfinished = tasks.len();
    // Streams opened by `measure` and left may still be held.
    mock.release();
    (held, measured)
}
