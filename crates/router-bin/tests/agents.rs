//! The coding agents from npm, end to end through the `llm-router` binary: Claude Code
//! (`claude -p`) on `/v1/messages` and Codex (`codex exec`) on `/v1/responses`, each passed
//! through to a mock of its own format and translated for another, each with a tool round trip:
//! the mock asks for a shell command, the agent runs it and sends the output back, and the
//! mock's last answer repeats it.
//!
//! The agents are installed by `scripts/test` (pinned versions, under `.agents/`), which sets
//! `LLM_ROUTER_TEST_AGENTS` to that folder.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{temp_dir, Running};
use mock_upstream::MockUpstream;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// The command each agent is asked to run, and what it prints.
const PROMPT: &str = "use a tool to run `echo agent-says-42`";
const PRINTED: &str = "agent-says-42";

/// An agent's executable, from the folder `scripts/test` installs them in.
fn agent(name: &str) -> PathBuf {
    let dir = std::env::var("LLM_ROUTER_TEST_AGENTS")
        .expect("set LLM_ROUTER_TEST_AGENTS to the folder holding the agents (scripts/test does)");
    Path::new(&dir).join("node_modules/.bin").join(name)
}

/// A router binary on a config whose groups name their provider's format and path:
/// `anthropic` and `chat` (an OpenAI chat-completions provider) for Claude Code, `native` (an
/// OpenAI provider that speaks Responses), `chat` and `anthropic` for Codex.
fn start(mock: &MockUpstream, tag: &str) -> (Running, PathBuf) {
    let dir = temp_dir(tag);
    let url = mock.base_url();
    let config = format!(
        "api_key: demo-key\ngroups:\n  - name: anthropic\n    models: [{{provider: claude, name: claude-mock}}]\n  - name: chat\n    models: [{{provider: chat, name: gpt-mock}}]\n  - name: native\n    models: [{{provider: native, name: gpt-mock}}]\nproviders:\n  - {{name: claude, type: anthropic, base_url: \"{url}\", api_key: sk-ant}}\n  - {{name: chat, base_url: \"{url}\", api_key: sk-oai}}\n  - {{name: native, base_url: \"{url}\", api_key: sk-oai, responses: native}}\n"
    );
    std::fs::write(dir.join("config.yaml"), config).unwrap();
    (Running::start(&dir, &[]), dir)
}

/// Runs `program` with `args` and only the environment given (a fresh `HOME` in `home`), stdin
/// closed, for at most two minutes; its stdout, after asserting it exited 0.
async fn run(program: &Path, args: &[&str], env: &[(&str, &str)], home: &Path) -> String {
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .envs(env.iter().copied())
        .current_dir(home)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("the agent finished within two minutes")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{} failed:\n{stdout}\n{stderr}",
        program.display()
    );
    stdout
}

/// `claude -p` on group `group`: the final text of a run with a tool round trip.
async fn claude(router: &Running, group: &str, home: &Path) -> Value {
    let base = format!("http://{}", router.addr);
    let stdout = run(
        &agent("claude"),
        &[
            "-p",
            PROMPT,
            "--output-format",
            "json",
            "--allowedTools",
            "Bash",
        ],
        &[
            ("ANTHROPIC_BASE_URL", &base),
            ("ANTHROPIC_API_KEY", "demo-key"),
            ("ANTHROPIC_MODEL", group),
            ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"),
            ("CLAUDE_CODE_MAX_RETRIES", "0"),
        ],
        home,
    )
    .await;
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// The requests the mock saw on `path` whose model is `model`.
fn seen(mock: &MockUpstream, path: &str, model: &str) -> usize {
    mock.requests()
        .iter()
        .filter(|r| r.path == path && r.json()["model"] == model)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the coding agents from npm: run through scripts/test"]
async fn claude_code_through_the_router() {
    let mock = MockUpstream::start().await.unwrap();
    let (router, dir) = start(&mock, "agents-claude");
    for (group, path, model) in [
        ("anthropic", "/v1/messages", "claude-mock"),
        ("chat", "/v1/chat/completions", "gpt-mock"),
    ] {
        let home = dir.join(group);
        std::fs::create_dir_all(&home).unwrap();
        let result = claude(&router, group, &home).await;
        assert_eq!(result["is_error"], false, "{group}: {result}");
        // Bash's result is the command's output, as it printed it.
        let text = result["result"].as_str().unwrap_or_default();
        assert!(
            text.contains(&format!("tool said: {PRINTED}")),
            "{group}: the answer repeats the command's output: {result}"
        );
        assert!(
            seen(&mock, path, model) >= 2,
            "{group}: the call and the answer to its result went to {path}"
        );
    }
    router.stop();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `codex exec` on group `group`: its JSONL events.
async fn codex(router: &Running, group: &str, home: &Path) -> Vec<Value> {
    let codex_home = home.join("codex-home");
    std::fs::create_dir_all(&codex_home).unwrap();
    let model = format!("model=\"{group}\"");
    let provider = format!(
        "model_providers.router={{name=\"llm-router\", base_url=\"http://{}/v1\", env_key=\"ROUTER_KEY\", wire_api=\"responses\", request_max_retries=0, stream_max_retries=0}}",
        router.addr
    );
    let stdout = run(
        &agent("codex"),
        &[
            "exec",
            "--skip-git-repo-check",
            "--dangerously-bypass-approvals-and-sandbox",
            "--ephemeral",
            "--json",
            "-c",
            &model,
            "-c",
            "model_provider=\"router\"",
            "-c",
            &provider,
            "-c",
            "features.plugins=false",
            "-c",
            "analytics.enabled=false",
            "-c",
            "check_for_update_on_startup=false",
            PROMPT,
        ],
        &[
            ("CODEX_HOME", codex_home.to_str().unwrap()),
            ("ROUTER_KEY", "demo-key"),
        ],
        home,
    )
    .await;
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the coding agents from npm: run through scripts/test"]
async fn codex_through_the_router() {
    let mock = MockUpstream::start().await.unwrap();
    let (router, dir) = start(&mock, "agents-codex");
    for (group, path, model) in [
        ("native", "/v1/responses", "gpt-mock"),
        ("chat", "/v1/chat/completions", "gpt-mock"),
        ("anthropic", "/v1/messages", "claude-mock"),
    ] {
        let home = dir.join(group);
        std::fs::create_dir_all(&home).unwrap();
        let events = codex(&router, group, &home).await;
        let completed = |kind: &str| -> Vec<&Value> {
            events
                .iter()
                .filter(|e| e["type"] == "item.completed" && e["item"]["type"] == kind)
                .map(|e| &e["item"])
                .collect()
        };
        let commands = completed("command_execution");
        assert!(
            commands.iter().any(|c| c["command"]
                .as_str()
                .is_some_and(|c| c.contains("echo agent-says-42"))
                && c["exit_code"] == 0),
            "{group}: the command ran: {events:?}"
        );
        let messages = completed("agent_message");
        let text = messages
            .last()
            .and_then(|m| m["text"].as_str())
            .unwrap_or_default();
        assert!(
            text.contains("tool said:") && text.contains(PRINTED),
            "{group}: the answer repeats the command's output: {events:?}"
        );
        assert!(
            seen(&mock, path, model) >= 2,
            "{group}: the call and the answer to its result went to {path}"
        );
    }
    router.stop();
    std::fs::remove_dir_all(&dir).unwrap();
}
