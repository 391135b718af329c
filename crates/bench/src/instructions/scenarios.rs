//! What is counted: requests through the router under callgrind (selection and the request
//! log's rows are counted in process, `in_process.rs`). The router runs with its ledger off:
//! a flush, once a second by the clock, would fall in one counted run and not in another.

use crate::callgrind::Counted;
use crate::in_process;
use crate::{Args, Count};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use mock_upstream::MockUpstream;
use std::path::Path;
use std::time::{Duration, Instant};

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// One request as a client sends it.
#[derive(Clone)]
struct Ask {
    path: &'static str,
    body: Bytes,
    accept_encoding: Option<&'static str>,
    /// Counted over a tenth of the session's requests.
    fewer: bool,
}

/// Requests sent before the counters are zeroed (callgrind translates code on first use).
const WARM_UP: u64 = 20;
/// The gap between a paced stream's events: long enough, even under callgrind, for the
/// router to go idle between two of them.
const PACE: Duration = Duration::from_millis(2);

/// Every figure, in the order of the baseline file.
pub(crate) async fn count_all(args: &Args) -> Result<Vec<Count>, String> {
    let mock = MockUpstream::start()
        .await
        .map_err(|e| format!("mock upstream: {e}"))?;
    mock.keep_last_request_only();
    let dir = args.keep.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("instructions-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let result = count_in(args, &mock, &dir).await;
    if args.keep.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

async fn count_in(args: &Args, mock: &MockUpstream, dir: &Path) -> Result<Vec<Count>, String> {
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "api_key: bench-key\nledger: {{enabled: false}}\nserver: {{compression_min_bytes: 1024}}\ngroups:\n  - name: g\n    models: [{{provider: up, name: bench-model}}]\nproviders:\n  - {{name: up, base_url: \"{}\", api_key: sk-bench}}\n",
            mock.base_url()
        ),
    )
    .map_err(|e| format!("{}: {e}", config.display()))?;
    let router = std::fs::canonicalize(&args.router)
        .map_err(|e| format!("{}: {e} (cargo build --release)", args.router.display()))?;
    let chat = Ask {
        path: "/v1/chat/completions",
        body: chat_body(1024),
        accept_encoding: None,
        fewer: false,
    };
    let mut session = Session::start(&router, dir, args.requests, &chat, |listen| {
        vec![
            "--config".into(),
            config.display().to_string(),
            "--listen".into(),
            listen,
        ]
    })
    .await?;
    let messages = Ask {
        path: "/v1/messages",
        body: messages_body(1024),
        accept_encoding: None,
        fewer: false,
    };
    let (few, many) = (
        stream_ask("/v1/chat/completions", 8),
        stream_ask("/v1/chat/completions", 40),
    );
    let (few_translated, many_translated) = (
        stream_ask("/v1/messages", 8),
        stream_ask("/v1/messages", 40),
    );
    let mut counts = vec![
        count(
            "chat_pass_through",
            "per 1 KB chat completion, OpenAI in and out",
            session.per_call(&chat).await?,
        ),
        count(
            "chat_gzip",
            "the same, Accept-Encoding: gzip (compression_min_bytes: 1024)",
            session.per_call(&chat.encoded("gzip")).await?,
        ),
        count(
            "chat_br",
            "the same, Accept-Encoding: br",
            session.per_call(&chat.encoded("br")).await?,
        ),
        count(
            "messages_translated",
            "per 1 KB Anthropic Messages request to an OpenAI provider",
            session.per_call(&messages).await?,
        ),
        count(
            "stream_pass_through",
            "per stream of 13 events, OpenAI in and out",
            session.per_call(&few).await?,
        ),
        count(
            "stream_chunk_pass_through",
            "per further event of an OpenAI stream",
            session.per_chunk(&few, &many).await?,
        ),
        count(
            "stream_chunk_gzip",
            "the same, Accept-Encoding: gzip",
            session
                .per_chunk(&few.encoded("gzip"), &many.encoded("gzip"))
                .await?,
        ),
        count(
            "stream_chunk_translated",
            "per further event of an Anthropic stream from an OpenAI provider",
            session.per_chunk(&few_translated, &many_translated).await?,
        ),
    ];
    counts.push(count(
        "stream_chunk_paced",
        "per further event of an OpenAI stream, 2 ms between events: each its own wake-up",
        session.paced_per_chunk(mock).await?,
    ));
    drop(session);
    counts.extend(bare_counts(&router.with_file_name("bareproxy"), args, mock, dir, &chat).await?);
    counts.push(count(
        "selection",
        "per pick and settlement, usage strategy over 16 pairs",
        in_process::selection(dir)?,
    ));
    counts.push(count(
        "ledger_row",
        "per request row of the request log, queued and written by a ledger flush",
        in_process::ledger_row(dir)?,
    ));
    Ok(counts)
}

fn count(name: &'static str, what: &'static str, instructions: u64) -> Count {
    Count {
        name,
        what,
        instructions,
    }
}

/// The same chat completion, and a paced stream, through the router's HTTP stack alone
/// (`bareproxy`).
async fn bare_counts(
    bare: &Path,
    args: &Args,
    mock: &MockUpstream,
    dir: &Path,
    chat: &Ask,
) -> Result<Vec<Count>, String> {
    let mut session = Session::start(bare, dir, args.requests, chat, |listen| {
        vec![
            "--listen".into(),
            listen,
            "--upstream".into(),
            format!("http://{}", mock.addr()),
        ]
    })
    .await?;
    let plain = count(
        "bare_stack",
        "per 1 KB chat completion through bareproxy: the HTTP stack without the router",
        session.per_call(chat).await?,
    );
    Ok(vec![
        plain,
        count(
            "bare_stream_chunk_paced",
            "the paced stream's further event through bareproxy",
            session.paced_per_chunk(mock).await?,
        ),
    ])
}

impl Ask {
    /// The same request, counted over a tenth as many requests (for the paced streams,
    /// which take their time).
    fn fewer(&self) -> Self {
        Self {
            fewer: true,
            ..self.clone()
        }
    }

    /// The same request, accepting `coding`.
    fn encoded(&self, coding: &'static str) -> Self {
        Self {
            accept_encoding: Some(coding),
            ..self.clone()
        }
    }
}

/// The router under callgrind and a client on one keep-alive connection to it.
struct Session {
    client: HttpClient,
    base: String,
    counted: Counted,
    /// Counted requests per run.
    n: u64,
}

impl Session {
    /// Starts `program` under callgrind on a free port (`args` given the address to listen
    /// on) and waits until it answers `ready` (slowly at first, under callgrind).
    async fn start(
        program: &Path,
        dir: &Path,
        n: u64,
        ready: &Ask,
        args: impl FnOnce(String) -> Vec<String>,
    ) -> Result<Self, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("a free port: {e}"))?
            .port();
        let counted = Counted::start(
            program,
            &args(format!("127.0.0.1:{port}")),
            dir,
            &[("RUST_LOG", "info")],
        )?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let session = Session {
            client: Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(1)
                .build(connector),
            base: format!("http://127.0.0.1:{port}"),
            counted,
            n,
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        while let Err(e) = session.send(ready).await {
            if Instant::now() > deadline {
                return Err(format!("{} did not start: {e}", program.display()));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(session)
    }

    /// Sends `ask`; the answer's body, checked.
    async fn send(&self, ask: &Ask) -> Result<Bytes, String> {
        let mut req = http::Request::post(format!("{}{}", self.base, ask.path))
            .header("content-type", "application/json")
            .header("authorization", "Bearer bench-key")
            .header("anthropic-version", "2023-06-01");
        if let Some(coding) = ask.accept_encoding {
            req = req.header("accept-encoding", coding);
        }
        let req = req
            .body(Full::new(ask.body.clone()))
            .map_err(|e| e.to_string())?;
        let resp = self
            .client
            .request(req)
            .await
            .map_err(|e| format!("{}: {e}", ask.path))?;
        let (head, body) = resp.into_parts();
        let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        if head.status != 200 {
            return Err(format!(
                "{}: {} {}",
                ask.path,
                head.status,
                String::from_utf8_lossy(&body)
            ));
        }
        let coding = head
            .headers
            .get("content-encoding")
            .and_then(|v| v.to_str().ok());
        if coding != ask.accept_encoding {
            return Err(format!("{}: content-encoding {coding:?}", ask.path));
        }
        Ok(body)
    }

    /// Instructions for `n` requests of `ask`, after a warm-up.
    async fn counted_run(&mut self, ask: &Ask) -> Result<u64, String> {
        for _ in 0..WARM_UP {
            self.send(ask).await?;
        }
        self.counted.zero()?;
        for _ in 0..self.runs(ask) {
            self.send(ask).await?;
        }
        self.counted.dump()
    }

    /// Counted requests of `ask`.
    fn runs(&self, ask: &Ask) -> u64 {
        if ask.fewer {
            (self.n / 10).max(1)
        } else {
            self.n
        }
    }

    /// Instructions per request of `ask`.
    async fn per_call(&mut self, ask: &Ask) -> Result<u64, String> {
        Ok(self.counted_run(ask).await? / self.n)
    }

    /// Instructions per event: two streams of the same bytes, one in more events.
    async fn per_chunk(&mut self, few: &Ask, many: &Ask) -> Result<u64, String> {
        let extra = self
            .events(many)
            .await?
            .saturating_sub(self.events(few).await?);
        if extra == 0 {
            return Err(format!("{}: no more events in the longer stream", few.path));
        }
        let runs = self.runs(few);
        let few = self.counted_run(few).await?;
        let many = self.counted_run(many).await?;
        Ok(many.saturating_sub(few) / (runs * extra))
    }

    /// Instructions per event of an OpenAI stream whose events come `PACE` apart, over a tenth
    /// of the requests.
    async fn paced_per_chunk(&mut self, mock: &MockUpstream) -> Result<u64, String> {
        let few = stream_ask("/v1/chat/completions", 8).fewer();
        let many = stream_ask("/v1/chat/completions", 40).fewer();
        mock.set_chunk_delay(PACE);
        let counted = self.per_chunk(&few, &many).await;
        mock.set_chunk_delay(Duration::ZERO);
        counted
    }

    /// Events in the answer to `ask` (sent uncompressed).
    async fn events(&self, ask: &Ask) -> Result<u64, String> {
        let plain = Ask {
            accept_encoding: None,
            ..ask.clone()
        };
        let body = self.send(&plain).await?;
        Ok(body.windows(2).filter(|w| w == b"\n\n").count() as u64)
    }
}

/// A chat request of `size` bytes whose message is prose, echoed whole (its limit is far
/// above its words): the answer compresses as a model's would.
fn chat_body(size: usize) -> Bytes {
    let head = r#"{"model":"g","temperature":0.2,"max_tokens":1000000,"messages":[{"role":"user","content":""#;
    let tail = r#""}]}"#;
    let fill = size.saturating_sub(head.len() + tail.len());
    Bytes::from(format!("{head}{}{tail}", mock_upstream::prose(fill)))
}

fn messages_body(size: usize) -> Bytes {
    let head = r#"{"model":"g","max_tokens":64,"messages":[{"role":"user","content":""#;
    let tail = r#"hi"}]}"#;
    filled(head, tail, size)
}

fn filled(head: &str, tail: &str, size: usize) -> Bytes {
    let fill = size.saturating_sub(head.len() + tail.len());
    let mut body = head.as_bytes().to_vec();
    body.extend(std::iter::repeat_n(b'a', fill));
    body.extend_from_slice(tail.as_bytes());
    Bytes::from(body)
}

/// A streamed request whose 200-byte message is `words` words (so the answer, the message
/// echoed, is that many events plus a fixed few).
fn stream_ask(path: &'static str, words: usize) -> Ask {
    let word = "w".repeat(200 / words - 1);
    let text = vec![word; words].join(" ");
    let body = format!(
        r#"{{"model":"g","stream":true,"max_tokens":64,"messages":[{{"role":"user","content":"{text}"}}]}}"#
    );
    Ask {
        path,
        body: Bytes::from(body),
        accept_encoding: None,
        fewer: false,
    }
}
