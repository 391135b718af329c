//! Test harness: the real server on port 0, and a plain HTTP client.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use router_core::{Format, PairState, Router, Source, UsageRecord};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

pub mod otlp;
pub mod redis_server;

pub const KEY: &str = "client-key-for-tests";

pub struct TestServer {
    pub addr: SocketAddr,
    pub router: Arc<Router>,
    pub app: Arc<router_bin::App>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    pub async fn start(yaml: &str) -> Self {
        let router = Router::from_source(&Source::from_text(yaml, Format::Yaml)).unwrap();
        Self::with_router(Arc::new(router)).await
    }

    pub async fn start_file(path: &Path) -> Self {
        Self::with_router(Arc::new(Router::from_file(path).unwrap())).await
    }

    pub async fn with_router(router: Arc<Router>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let app = router_bin::App::new(router.clone());
        let task = tokio::spawn(router_bin::serve(listener, app.clone(), async move {
            let _ = rx.await;
        }));
        Self {
            addr,
            router,
            app,
            stop: Some(tx),
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Signals shutdown; returns the serve future's handle to await.
    pub fn begin_shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }

    pub async fn shutdown(mut self) {
        self.begin_shutdown();
        tokio::time::timeout(Duration::from_secs(30), &mut self.task)
            .await
            .expect("serve did not return")
            .unwrap()
            .unwrap();
    }
}

/// A config with one group `g` on one provider at `base_url` with `keys`.
pub fn config(base_url: &str, keys: &[&str], extra: &str) -> String {
    let keys: Vec<String> = keys.iter().map(|k| format!("\"{k}\"")).collect();
    format!(
        "api_key: \"{KEY}\"\n{extra}\ngroups:\n  - name: g\n    models: [{{provider: up, name: upstream-model}}]\nproviders:\n  - {{name: up, base_url: \"{base_url}\", api_keys: [{}]}}\n",
        keys.join(", ")
    )
}

pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8(self.body.to_vec()).unwrap()
    }
}

pub async fn call(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Reply {
    let mut req = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(body.into())).unwrap();
    let resp = client().request(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

pub async fn post_chat(server: &TestServer, body: &str) -> Reply {
    call(
        Method::POST,
        &server.url("/v1/chat/completions"),
        &[
            ("authorization", &format!("Bearer {KEY}")),
            ("content-type", "application/json"),
        ],
        body.to_string(),
    )
    .await
}

/// A one-line chat call to `group` with client key `key` at the router whose base URL is
/// `base` (`http://host:port`).
pub async fn say_hi(base: &str, key: &str, group: &str) -> Reply {
    call(
        Method::POST,
        &format!("{base}/v1/chat/completions"),
        &[("authorization", &format!("Bearer {key}"))],
        format!(r#"{{"model":"{group}","messages":[{{"role":"user","content":"hi"}}]}}"#),
    )
    .await
}

/// A call with admin key `key` to `path` at the router listening on `addr`.
pub async fn as_admin(
    addr: &str,
    key: &str,
    method: Method,
    path: &str,
    body: impl Into<Bytes>,
) -> Reply {
    call(
        method,
        &format!("http://{addr}{path}"),
        &[("authorization", &format!("Bearer {key}"))],
        body,
    )
    .await
}

/// Polls `cond` every 20 ms until it holds or `limit` passes.
pub async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn assert_openai_error(reply: &Reply, status: u16, kind: &str) {
    assert_eq!(reply.status.as_u16(), status, "{}", reply.text());
    let v = reply.json();
    assert_eq!(v["error"]["type"], kind, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
}

/// A fresh folder under the system temp dir, unique per test binary and tag.
pub fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("llm-router-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `yaml` to `<tmp>/<tag>/config.yaml` and serves it from that file.
pub async fn start_with_file(tag: &str, yaml: &str) -> (TestServer, std::path::PathBuf) {
    let path = temp_dir(tag).join("config.yaml");
    std::fs::write(&path, yaml).unwrap();
    (TestServer::start_file(&path).await, path)
}

/// A streaming chat request for group `g` with `content` as the user message.
pub fn stream_request(
    server: &TestServer,
    content: &str,
    accept_encoding: Option<&str>,
) -> Request<Full<Bytes>> {
    let body = serde_json::json!({"model": "g", "stream": true, "messages": [{"role": "user", "content": content}]});
    let mut req = Request::post(server.url("/v1/chat/completions"))
        .header("authorization", format!("Bearer {KEY}"));
    if let Some(enc) = accept_encoding {
        req = req.header("accept-encoding", enc);
    }
    req.body(Full::new(Bytes::from(body.to_string()))).unwrap()
}

pub const BIN: &str = env!("CARGO_BIN_EXE_llm-router");

/// Whether the tests run as root (as on CI), where file modes bind nobody.
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A running binary whose log lines are collected.
pub struct Running {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
    pub addr: String,
}

impl Running {
    pub fn start(dir: &Path, args: &[&str]) -> Self {
        Self::start_with(dir, args, "info")
    }

    /// Starts the binary with `RUST_LOG` set to `filter`.
    pub fn start_with(dir: &Path, args: &[&str], filter: &str) -> Self {
        Self::spawn(Command::new(BIN), dir, args, filter)
    }

    /// Starts the binary as the image runs it: as uid 10001 when the test runs as root
    /// (`setpriv`, from util-linux), else as the test's own user; with `env` set.
    pub fn start_unprivileged(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = if is_root() {
            let mut c = Command::new("setpriv");
            c.args([
                "--reuid=10001",
                "--regid=10001",
                "--clear-groups",
                "--",
                BIN,
            ]);
            c
        } else {
            Command::new(BIN)
        };
        command.envs(env.iter().copied());
        Self::spawn(command, dir, args, "info")
    }

    /// Starts the binary with `env` set.
    pub fn start_with_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(BIN);
        command.envs(env.iter().copied());
        Self::spawn(command, dir, args, "info")
    }

    /// Starts the binary with at most `nofile` open files (soft and hard limit).
    pub fn start_with_nofile(dir: &Path, args: &[&str], nofile: u32) -> Self {
        let mut sh = Command::new("sh");
        sh.args([
            "-c",
            &format!("ulimit -n {nofile} && exec \"$0\" \"$@\""),
            BIN,
        ]);
        Self::spawn(sh, dir, args, "info")
    }

    fn spawn(mut command: Command, dir: &Path, args: &[&str], filter: &str) -> Self {
        command.args(args);
        // Any free port on loopback, unless the test names its own address.
        if !args.contains(&"--listen") {
            command.args(["--listen", "127.0.0.1:0"]);
        }
        let mut child = command
            .current_dir(dir)
            .env("RUST_LOG", filter)
            .env("NO_COLOR", "1")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut running = Self {
            child,
            lines,
            log: Vec::new(),
            addr: String::new(),
        };
        let line = running.wait_for("listening on http");
        // The address ends where the log line's text does (plain or JSON; http or https).
        running.addr = line
            .rsplit("://")
            .next()
            .unwrap()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || ".:[]".contains(*c))
            .collect();
        running
    }

    /// A log line containing `needle` already logged, else the next one (up to 20 s).
    pub fn logged(&mut self, needle: &str) -> String {
        match self.log.iter().find(|l| l.contains(needle)) {
            Some(line) => line.clone(),
            None => self.wait_for(needle),
        }
    }

    /// Waits (up to 20 s) for a log line containing `needle`.
    pub fn wait_for(&mut self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no log line with {needle:?}; log so far:\n{}",
                    self.log.join("\n")
                ),
            }
        }
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    pub fn curl(&self, args: &[&str]) -> String {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "20"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "curl failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn stop(self) {
        self.stop_with_log();
    }

    /// Stops with SIGTERM, asserts a clean exit, and returns every log line.
    pub fn stop_with_log(mut self) -> Vec<String> {
        self.signal("-TERM");
        let status = self.child.wait().unwrap();
        assert!(status.success(), "exit status {status}");
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.log.push(line);
        }
        std::mem::take(&mut self.log)
    }

    /// Kills the process outright (SIGKILL), as a crash would.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Running {
    /// A test that fails midway leaves no router running.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
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

/// A metric's value in the `/metrics` of the binary at `addr` (served with `demo-key`), from
/// the line that starts with `line_start`.
pub fn metric(addr: &str, line_start: &str) -> f64 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nhost: t\r\nauthorization: Bearer demo-key\r\nconnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.lines()
        .find_map(|l| l.strip_prefix(line_start))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {line_start} in\n{out}"))
}

/// Headless Chromium (Debian package chromium) with its profile in `profile`: no GPU, no
/// sandbox (CI runs as root), no network of its own, killed with the test.
pub fn headless_chromium(profile: &Path) -> tokio::process::Command {
    let mut c = tokio::process::Command::new("chromium");
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .kill_on_drop(true);
    c
}
