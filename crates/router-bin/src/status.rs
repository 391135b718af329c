//! `llm-router status` and `llm-router health`: what a running router says of itself, read
//! from its admin API (`/admin/dashboard`, with the admin key) and `/health/ready`. Exit codes
//! for scripts: 0 ready, 1 running but not ready (a group without a usable pair, a failing
//! ledger), 3 not reachable or refusing the key.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::process::ExitCode;

/// The exit code of a router that cannot be asked.
const UNREACHABLE: u8 = 3;

/// A running router, and the key its admin API takes.
#[derive(Debug, Clone)]
pub struct Target {
    /// The router's base URL, such as `http://127.0.0.1:8080`.
    pub url: String,
    /// Its admin key (else a client key, when the config has no `admin_key`).
    pub admin_key: Option<String>,
}

impl Target {
    /// `GET path`: its status and JSON body.
    pub async fn get(&self, path: &str) -> Result<(u16, Value), String> {
        let url = format!("{}{path}", self.url.trim_end_matches('/'));
        let mut request = http::Request::get(&url);
        if let Some(key) = &self.admin_key {
            request = request.header(http::header::AUTHORIZATION, format!("Bearer {key}"));
        }
        let request = request
            .body(Empty::<bytes::Bytes>::new())
            .map_err(|e| format!("{url} is not a URL this command can call: {e}"))?;
        let client = Client::builder(TokioExecutor::new()).build_http();
        let asked =
            tokio::time::timeout(std::time::Duration::from_secs(10), client.request(request));
        let response = match asked.await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Err(format!("no router answers at {}: {e}", self.url)),
            Err(_) => return Err(format!("the router at {} did not answer in 10 s", self.url)),
        };
        let status = response.status().as_u16();
        let bytes = (response.into_body().collect().await)
            .map_err(|e| format!("{url}: the answer broke off: {e}"))?
            .to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok((status, body))
    }

    /// `get`, on a runtime of its own, for a command.
    fn get_now(&self, path: &str) -> Result<(u16, Value), String> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?
            .block_on(self.get(path))
    }

    /// The config file the router serves (as it resolves it), if it serves one.
    pub fn served_file(&self) -> Result<Option<String>, String> {
        let (status, body) = self.get_now("/admin/dashboard")?;
        if status != 200 {
            return Err(refusal(status, &body));
        }
        Ok(body["config_path"].as_str().map(str::to_string))
    }
}

/// What an error answer says.
fn refusal(status: u16, body: &Value) -> String {
    let message = body["error"]["message"].as_str().unwrap_or("no message");
    match status {
        401 => format!("the admin key was refused (401): pass --admin-key or set LLM_ROUTER_ADMIN_KEY; {message}"),
        _ => format!("the router answered {status}: {message}"),
    }
}

/// A pair's state in words: ok, cooling, open breaker or disabled.
fn state_word(state: &str) -> &'static str {
    match state {
        "closed" => "ok",
        "rate_limited" | "model_cooldown" => "cooling",
        "open" | "half_open" => "open breaker",
        "disabled" => "disabled",
        _ => "unknown",
    }
}

/// `health`: whether the router is ready, and if not why.
pub fn health(target: &Target) -> ExitCode {
    match target.get_now("/health/ready") {
        Ok((200, body)) => {
            println!("ready (state: {})", body["state"].as_str().unwrap_or("-"));
            ExitCode::SUCCESS
        }
        Ok((503, body)) => {
            println!("not ready");
            for reason in body["reasons"].as_array().into_iter().flatten() {
                println!("  {}", reason.as_str().unwrap_or_default());
            }
            ExitCode::FAILURE
        }
        Ok((status, body)) => {
            eprintln!("error: {}", refusal(status, &body));
            ExitCode::from(UNREACHABLE)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(UNREACHABLE)
        }
    }
}

/// `status`: generation, uptime, each group's pairs with their state and last error, the
/// ledger and shared state, then readiness.
pub fn status(target: &Target) -> ExitCode {
    let data = match target.get_now("/admin/dashboard") {
        Ok((200, body)) => body,
        Ok((status, body)) => {
            eprintln!("error: {}", refusal(status, &body));
            return ExitCode::from(UNREACHABLE);
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(UNREACHABLE);
        }
    };
    let uptime = std::time::Duration::from_secs(data["uptime_seconds"].as_u64().unwrap_or(0));
    println!(
        "llm-router {} at {}: generation {}, up {}",
        data["version"].as_str().unwrap_or("?"),
        target.url,
        data["generation"],
        humantime::format_duration(uptime)
    );
    println!(
        "config: {}",
        data["config_path"].as_str().unwrap_or("(built-in example)")
    );
    let ledger = &data["ledger"];
    let ledger_line = match ledger["state"].as_str() {
        Some("ok") => format!("ok ({})", ledger["path"].as_str().unwrap_or("-")),
        Some("failing") => format!(
            "failing ({}): {}",
            ledger["path"].as_str().unwrap_or("-"),
            ledger["error"].as_str().unwrap_or("-")
        ),
        _ => format!("off ({})", ledger["reason"].as_str().unwrap_or("-")),
    };
    println!("ledger: {ledger_line}");
    // local: this replica alone; shared: through Redis; degraded: Redis is not answering.
    println!("shared state: {}", data["state"].as_str().unwrap_or("-"));
    for group in data["groups"].as_array().into_iter().flatten() {
        println!(
            "group {} ({})",
            group["name"].as_str().unwrap_or("?"),
            group["strategy"].as_str().unwrap_or("?")
        );
        for model in group["models"].as_array().into_iter().flatten() {
            for key in model["keys"].as_array().into_iter().flatten() {
                let state = key["state"].as_str().unwrap_or("-");
                let until = key["until"]
                    .as_str()
                    .map_or(String::new(), |u| format!(" until {u}"));
                let error = key["last_error"]
                    .as_str()
                    .map_or(String::new(), |e| format!("  last error: {e}"));
                println!(
                    "  {}/{}  {} {}  {}{until}  requests {}  errors {}{error}",
                    model["provider"].as_str().unwrap_or("?"),
                    model["model"].as_str().unwrap_or("?"),
                    key["key"].as_str().unwrap_or("?"),
                    key["key_masked"].as_str().unwrap_or("?"),
                    state_word(state),
                    key["requests"],
                    key["errors"],
                );
            }
        }
    }
    health(target)
}
