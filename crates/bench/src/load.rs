//! Load generators: HTTP clients, request bodies, saturation and fixed-rate runs, first bytes.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use std::time::{Duration, Instant};

pub(crate) type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub(crate) fn client(max_idle: usize) -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(max_idle)
        .build(connector)
}

/// A client that speaks HTTP/2 over cleartext (h2c, prior knowledge): one connection carries
/// many streams.
pub(crate) fn h2_client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build(connector)
}

pub(crate) fn chat_body(size: usize, stream: bool) -> Bytes {
    chat_body_of(size, stream, 64, |n| vec![b'a'; n])
}

/// A chat request of `size` bytes whose message is prose (`mock_upstream::prose`): the mock
/// echoes all of it (`max_tokens` is above its word count), so the answer is about as long as
/// the request and compresses as a model's text does, not as a run of one letter.
pub(crate) fn prose_chat_body(size: usize) -> Bytes {
    chat_body_of(size, false, 1_000_000, |n| {
        mock_upstream::prose(n).into_bytes()
    })
}

/// A chat request of `size` bytes whose message is `fill`'s bytes for the room left.
fn chat_body_of(
    size: usize,
    stream: bool,
    max_tokens: u32,
    fill: impl Fn(usize) -> Vec<u8>,
) -> Bytes {
    let head = format!(
        r#"{{"model":"g","stream":{stream},"temperature":0.2,"messages":[{{"role":"user","content":""#
    );
    let tail = format!(r#"hi"}}],"max_tokens":{max_tokens}}}"#);
    let mut body = head.into_bytes();
    body.extend(fill(size.saturating_sub(body.len() + tail.len())));
    body.extend_from_slice(tail.as_bytes());
    Bytes::from(body)
}

/// A streamed request whose message is `words` words: the mock echoes it one word per event,
/// so the answer is `words` + 5 events (role, finish, usage when asked, `[DONE]`).
pub(crate) fn stream_body(words: usize) -> Bytes {
    stream_body_of(&vec!["word"; words].join(" "))
}

/// A streamed request of `words` words of prose (see `prose_chat_body`).
pub(crate) fn prose_stream_body(words: usize) -> Bytes {
    // Words average under six bytes with their spaces: sixteen a word leaves room to spare.
    let text = mock_upstream::prose(words * 16);
    let text: Vec<&str> = text.split_whitespace().take(words).collect();
    stream_body_of(&text.join(" "))
}

fn stream_body_of(text: &str) -> Bytes {
    Bytes::from(format!(
        r#"{{"model":"g","stream":true,"max_tokens":64,"messages":[{{"role":"user","content":"{text}"}}]}}"#
    ))
}

/// The `Accept-Encoding` requests send, if any (`--accept-encoding`, or a part's phase).
static ACCEPT_ENCODING: std::sync::RwLock<Option<String>> = std::sync::RwLock::new(None);

/// Requests from now on send `Accept-Encoding: coding` (none: no such header).
pub(crate) fn accept_encoding(coding: Option<&str>) {
    if let Ok(mut current) = ACCEPT_ENCODING.write() {
        *current = coding.map(str::to_string);
    }
}

/// The bytes of one answer's body as sent (a compressed answer is not decompressed).
pub(crate) async fn body_bytes(url: &str, body: &Bytes) -> usize {
    match client(1).request(request(url, body)).await {
        Ok(resp) => resp
            .into_body()
            .collect()
            .await
            .map_or(0, |b| b.to_bytes().len()),
        Err(_) => 0,
    }
}

pub(crate) fn request(url: &str, body: &Bytes) -> http::Request<Full<Bytes>> {
    let mut req = http::Request::post(url)
        .header("content-type", "application/json")
        .header("authorization", "Bearer bench-key");
    if let Some(coding) = ACCEPT_ENCODING.read().ok().and_then(|c| c.clone()) {
        req = req.header("accept-encoding", coding);
    }
    req.body(Full::new(body.clone())).unwrap_or_default()
}

/// What one load run saw.
pub(crate) struct Run {
    pub(crate) ok: u64,
    pub(crate) errors: u64,
    pub(crate) elapsed: Duration,
    pub(crate) latencies: Vec<Duration>,
}

impl Run {
    pub(crate) fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }
    pub(crate) fn percentile(&mut self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        self.latencies.sort_unstable();
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[i]
    }
}

pub(crate) async fn one(client: &HttpClient, url: &str, body: &Bytes) -> bool {
    match client.request(request(url, body)).await {
        Ok(resp) => {
            let ok = resp.status().is_success();
            ok && resp.into_body().collect().await.is_ok()
        }
        Err(_) => false,
    }
}

/// `concurrency` clients in closed loops for `seconds`.
pub(crate) async fn saturate(url: &str, body: &Bytes, concurrency: usize, seconds: u64) -> Run {
    let client = client(concurrency);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (client, url, body) = (client.clone(), url.to_string(), body.clone());
        tasks.spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            while Instant::now() < deadline {
                let t = Instant::now();
                if one(&client, &url, &body).await {
                    lat.push(t.elapsed());
                } else {
                    errors += 1;
                }
            }
            (lat, errors)
        });
    }
    let mut run = Run {
        ok: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    while let Some(Ok((lat, errors))) = tasks.join_next().await {
        run.ok += lat.len() as u64;
        run.errors += errors;
        run.latencies.extend(lat);
    }
    run.elapsed = started.elapsed();
    run
}

/// An open loop at `rate` requests per second for `seconds`.
pub(crate) async fn fixed_rate(url: &str, body: &Bytes, rate: u64, seconds: u64) -> Run {
    let client = client(256);
    let started = Instant::now();
    let total = rate * seconds;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        let due = started + Duration::from_secs_f64(i as f64 / rate as f64);
        tokio::time::sleep_until(due.into()).await;
        let (client, url, body) = (client.clone(), url.to_string(), body.clone());
        tasks.spawn(async move {
            let t = Instant::now();
            one(&client, &url, &body).await.then(|| t.elapsed())
        });
    }
    let mut run = Run {
        ok: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    while let Some(Ok(r)) = tasks.join_next().await {
        match r {
            Some(l) => {
                run.ok += 1;
                run.latencies.push(l);
            }
            None => run.errors += 1,
        }
    }
    run.elapsed = started.elapsed();
    run
}

/// Time to the first body byte of `n` streams, one after another, each left after that byte
/// (so it works while the mock holds streams open).
pub(crate) async fn first_bytes(url: &str, n: usize) -> Vec<Duration> {
    let client = client(4);
    let body = chat_body(1024, true);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let Ok(resp) = client.request(request(url, &body)).await else {
            continue;
        };
        if let Some(Ok(_)) = resp.into_body().frame().await {
            out.push(t.elapsed());
        }
    }
    out.sort_unstable();
    out
}

/// Time to the first body byte of `n` streams, one after another.
pub(crate) async fn stream_ttfb(url: &str, n: usize) -> Vec<Duration> {
    let client = client(4);
    let body = chat_body(1024, true);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let Ok(resp) = client.request(request(url, &body)).await else {
            continue;
        };
        let mut b = resp.into_body();
        if let Some(Ok(_)) = b.frame().await {
            out.push(t.elapsed());
        }
        while let Some(Ok(_)) = b.frame().await {}
    }
    out.sort_unstable();
    out
}

pub(crate) fn median(v: &[Duration]) -> Duration {
    v.get(v.len() / 2).copied().unwrap_or_default()
}

pub(crate) fn us(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1e6)
}
