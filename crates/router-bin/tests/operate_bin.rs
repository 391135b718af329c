//! The binary in operation: its access log (and that no log line ever holds a key), the usage
//! ledger across restarts and a `kill -9`, a corrupt ledger, and the CLI subcommands.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{eventually, temp_dir, Running, BIN};
use mock_upstream::MockUpstream;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const CLIENT: &str = "client-secret-key-0123456789";
const ADMIN: &str = "admin-secret-key-9876543210";
const KEY_A: &str = "sk-upstream-secret-aaaa-1111";
const KEY_B: &str = "sk-upstream-secret-bbbb-2222";

fn write_config(dir: &Path, base_url: &str, keys: &[&str], extra: &str) {
    let keys: Vec<String> = keys.iter().map(|k| format!("\"{k}\"")).collect();
    let yaml = format!(
        "api_key: \"{CLIENT}\"\nadmin_key: \"{ADMIN}\"\n{extra}\ngroups:\n  - name: g\n    models: [{{provider: up, name: m}}]\nproviders:\n  - {{name: up, base_url: \"{base_url}\", api_keys: [{}]}}\n",
        keys.join(", ")
    );
    std::fs::write(dir.join("config.yaml"), yaml).unwrap();
}

fn chat(running: &Running, extra_headers: &[&str]) -> String {
    let mut args = vec![
        "-H".to_string(),
        format!("Authorization: Bearer {CLIENT}"),
        "-H".to_string(),
        "Content-Type: application/json".to_string(),
    ];
    for h in extra_headers {
        args.push("-H".into());
        args.push((*h).to_string());
    }
    args.push("-d".into());
    args.push(
        r#"{"model":"g","messages":[{"role":"user","content":"four words right here"}]}"#.into(),
    );
    args.push(format!("http://{}/v1/chat/completions", running.addr));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    running.curl(&refs)
}

fn admin_json(running: &Running, path: &str) -> Value {
    let out = running.curl(&[
        "-H",
        &format!("Authorization: Bearer {ADMIN}"),
        &format!("http://{}{path}", running.addr),
    ]);
    serde_json::from_str(&out).unwrap()
}

fn cli(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

/// The ledger as `llm-router usage --json` prints it.
fn ledger_rows(dir: &Path) -> Vec<Value> {
    let out = cli(dir, &["usage", "--json"]);
    if !out.status.success() {
        return Vec::new();
    }
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn total(rows: &[Value]) -> u64 {
    rows.iter()
        .map(|r| r["total_tokens"].as_u64().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_lines_have_every_field_and_no_log_line_holds_a_key() {
    let mock = MockUpstream::start().await.unwrap();
    let dir = temp_dir("operate-logs");
    write_config(&dir, &mock.base_url(), &[KEY_A, KEY_B], "");
    // Everything every crate logs, at its most verbose.
    let running = Running::start_with(&dir, &["--log-format", "json"], "trace");
    chat(&running, &["x-request-id: trace-me-7"]);
    // A stream, a wrong key, an upstream that refuses a key, a reload, the admin views.
    running.curl(&[
        "-N",
        "-H",
        &format!("Authorization: Bearer {CLIENT}"),
        "-d",
        r#"{"model":"g","stream":true,"messages":[{"role":"user","content":"streamed"}]}"#,
        &format!("http://{}/v1/chat/completions", running.addr),
    ]);
    running.curl(&[
        "-H",
        "Authorization: Bearer wrong-key",
        &format!("http://{}/v1/models", running.addr),
    ]);
    mock.fail_next(&[401]);
    chat(&running, &[]);
    running.curl(&[
        "-X",
        "POST",
        "-H",
        &format!("x-api-key: {ADMIN}"),
        &format!("http://{}/admin/reload", running.addr),
    ]);
    admin_json(&running, "/admin/usage");
    admin_json(&running, "/admin/dashboard");
    running.curl(&[
        "-H",
        &format!("Authorization: Bearer {ADMIN}"),
        &format!("http://{}/metrics", running.addr),
    ]);
    let log = running.stop_with_log();
    assert!(log.len() > 50, "trace logging is on: {} lines", log.len());
    for secret in [CLIENT, ADMIN, KEY_A, KEY_B] {
        let hits: Vec<&String> = log.iter().filter(|l| l.contains(secret)).collect();
        assert!(hits.is_empty(), "{secret} logged:\n{hits:#?}");
    }
    let access: Vec<Value> = log
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["target"] == "access")
        .collect();
    let line = access
        .iter()
        .find(|v| v["fields"]["request_id"] == "trace-me-7")
        .expect("the access line of the first request");
    let f = &line["fields"];
    assert_eq!(f["status"], 200);
    assert_eq!(f["path"], "/v1/chat/completions");
    assert_eq!(f["group"], "g");
    assert_eq!(f["provider"], "up");
    assert_eq!(f["model"], "m");
    assert!(f["key"].as_str().unwrap().starts_with("up#"), "{f}");
    assert_eq!(f["attempts"], 1);
    assert!(f["prompt_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        f["completion_tokens"], 6,
        "mock says: four words right here"
    );
    for field in ["latency_ms", "ttft_ms"] {
        let ms = f[field].as_f64().unwrap();
        assert!(ms > 0.0);
        let decimals = f[field].to_string().split('.').nth(1).map_or(0, str::len);
        assert!(decimals <= 3, "{field}: {f}");
    }
    assert!(f.get("overhead_us").is_some());
    // One line per request, the refused one included: two chats, a stream, the wrong key,
    // the reload, the usage, the dashboard's data and the metrics.
    assert_eq!(access.len(), 8, "{access:#?}");
    assert!(access
        .iter()
        .any(|v| v["fields"]["status"] == 401 && v["fields"]["path"] == "/v1/models"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_survives_restarts_and_kill_9_and_selection_resumes_from_it() {
    let mock = MockUpstream::start().await.unwrap();
    let dir = temp_dir("operate-ledger");
    write_config(
        &dir,
        &mock.base_url(),
        &[KEY_A],
        "ledger: {flush_interval: 100ms}",
    );
    let running = Running::start(&dir, &[]);
    for _ in 0..5 {
        chat(&running, &[]);
    }
    let served = mock.tokens_reported();
    assert!(served > 0);
    // Written within the flush interval, while serving.
    assert!(
        eventually(Duration::from_secs(10), || total(&ledger_rows(&dir))
            == served)
        .await,
        "the ledger never caught up: {:?}",
        ledger_rows(&dir)
    );
    running.kill9();

    // After a crash, the counters are back, and a new key is preferred until it catches up.
    write_config(&dir, &mock.base_url(), &[KEY_A, KEY_B], "");
    let running = Running::start(&dir, &[]);
    let usage = admin_json(&running, "/admin/usage");
    let restored: u64 = usage["usage"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["total_tokens"].as_u64().unwrap())
        .sum();
    assert_eq!(restored, served);
    let before = mock.requests().len();
    chat(&running, &[]);
    let last = &mock.requests()[before];
    assert_eq!(
        last.bearer().as_deref(),
        Some(KEY_B),
        "the unused key goes first"
    );
    // A clean stop writes everything.
    running.stop();
    let rows = ledger_rows(&dir);
    assert_eq!(total(&rows), mock.tokens_reported());
    assert_eq!(rows.len(), 2);

    // `usage` prints a table a person can read.
    let out = cli(&dir, &["usage"]);
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.starts_with("provider"), "{table}");
    assert!(table.contains("up") && table.contains(" m "), "{table}");
    assert!(!table.contains(KEY_A) && !table.contains(KEY_B), "{table}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_ledger_is_reported_and_the_router_still_serves() {
    let mock = MockUpstream::start().await.unwrap();
    let dir = temp_dir("operate-corrupt");
    write_config(&dir, &mock.base_url(), &[KEY_A], "");
    std::fs::write(
        dir.join("llm-router-usage.sqlite3"),
        b"this is not a database, not even close; a disk went bad",
    )
    .unwrap();
    let running = Running::start(&dir, &[]);
    assert!(chat(&running, &[]).contains("mock says"));
    let dashboard = admin_json(&running, "/admin/dashboard");
    assert_eq!(dashboard["ledger"]["state"], "failing", "{dashboard}");
    assert!(dashboard["ledger"]["error"]
        .as_str()
        .unwrap()
        .contains("llm-router-usage.sqlite3"));
    let log = running.stop_with_log();
    let line = log
        .iter()
        .find(|l| l.contains("usage ledger"))
        .expect("the ledger's error is logged");
    assert!(
        line.contains("ERROR") && line.contains("usage kept in memory"),
        "{line}"
    );
    // `usage` says what is wrong, with a failing exit code.
    let out = cli(&dir, &["usage"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage ledger"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn key_version_and_usage_subcommands() {
    let dir = temp_dir("operate-cli");
    // key generate: distinct, well-formed keys.
    let keys: Vec<String> = (0..2)
        .map(|_| {
            let out = cli(&dir, &["key", "generate"]);
            assert!(out.status.success());
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        })
        .collect();
    for k in &keys {
        assert!(k.starts_with("sk-llmr-") && k.len() == 48, "{k}");
        assert!(k[8..].bytes().all(|b| b.is_ascii_alphanumeric()), "{k}");
    }
    assert_ne!(keys[0], keys[1]);
    // key hash: from an argument or from standard input, the same SHA-256.
    let abc = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    let out = cli(&dir, &["key", "hash", "abc"]);
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), abc);
    let mut child = Command::new(BIN)
        .args(["key", "hash"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"abc\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), abc);
    let mut child = Command::new(BIN)
        .args(["key", "hash"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no key given"));
    // --version.
    let out = cli(&dir, &["--version"]);
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        format!("llm-router {}", env!("CARGO_PKG_VERSION"))
    );
    // usage: without a config file there is no ledger to read.
    let out = cli(&dir, &["usage"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("keeps no ledger"));
    // usage --ledger on a file that is not there: a clear failure.
    let out = cli(&dir, &["usage", "--ledger", "missing.sqlite3"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no ledger at missing.sqlite3"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_listener_serves_admin_only_and_the_config_sets_json_logs() {
    let mock = MockUpstream::start().await.unwrap();
    let dir = temp_dir("operate-admin-listen");
    write_config(
        &dir,
        &mock.base_url(),
        &[KEY_A],
        "server: {admin_listen: \"127.0.0.1:0\", log_format: json}",
    );
    let mut running = Running::start(&dir, &[]);
    let line = running.wait_for("admin endpoints also on");
    // JSON lines, as the config asks.
    let v: Value = serde_json::from_str(&line).unwrap();
    let message = v["fields"]["message"].as_str().unwrap();
    let admin = message.rsplit("http://").next().unwrap().to_string();
    let get = |url: String| {
        let out = Command::new("curl")
            .args([
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "10",
            ])
            .args(["-H", &format!("Authorization: Bearer {ADMIN}")])
            .arg(url)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(get(format!("http://{admin}/metrics")), "200");
    assert_eq!(get(format!("http://{admin}/admin/dashboard")), "200");
    assert_eq!(get(format!("http://{admin}/dashboard")), "200");
    assert_eq!(get(format!("http://{admin}/v1/models")), "404");
    // The main address serves everything.
    assert_eq!(get(format!("http://{}/metrics", running.addr)), "200");
    running.stop();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `key=value` fields of a text access line.
fn text_fields(line: &str) -> HashMap<String, String> {
    line.split_once(" access: ")
        .unwrap()
        .1
        .split(' ')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_access_lines_look_like_every_other_text_line_and_follow_the_filter() {
    let mock = MockUpstream::start().await.unwrap();
    let dir = temp_dir("operate-text-logs");
    write_config(&dir, &mock.base_url(), &[KEY_A], "");
    let running = Running::start_with(&dir, &[], "info");
    chat(&running, &["x-request-id: text-line-1"]);
    running.curl(&[
        "-H",
        &format!("Authorization: Bearer {CLIENT}"),
        "-d",
        r#"{"model":"no-such-group","messages":[{"role":"user","content":"hi"}]}"#,
        &format!("http://{}/v1/chat/completions", running.addr),
    ]);
    let log = running.stop_with_log();
    let access: Vec<&String> = log.iter().filter(|l| l.contains(" access: ")).collect();
    assert_eq!(access.len(), 2, "{log:#?}");
    // The same prefix as the lines `tracing` writes: an RFC 3339 time in microseconds, two
    // spaces, the level, the target.
    let other = log
        .iter()
        .find(|l| l.contains("  INFO ") && !l.contains(" access: "))
        .expect("a line written by tracing");
    let (time, rest) = access[0].split_once("  INFO access: ").unwrap();
    assert_eq!(
        time.len(),
        other.split_once("  INFO ").unwrap().0.len(),
        "{other}"
    );
    assert!(time.ends_with('Z') && time.as_bytes()[10] == b'T', "{time}");
    assert!(rest.starts_with("request_id=text-line-1 method=POST path=/v1/chat/completions status=200 group=g provider=up model=m key="), "{rest}");
    let served = text_fields(access[0]);
    for field in ["key", "attempts", "prompt_tokens", "completion_tokens"] {
        assert!(
            served[field].parse::<u64>().is_ok() || field == "key",
            "{field}: {rest}"
        );
    }
    assert_eq!(served["key"], "up#0");
    assert_eq!(served["attempts"], "1");
    assert!(
        served["prompt_tokens"].parse::<u64>().unwrap() > 0,
        "{rest}"
    );
    for field in ["latency_ms", "ttft_ms"] {
        assert!(
            served[field].parse::<f64>().unwrap() > 0.0,
            "{field}: {rest}"
        );
        // To the microsecond, without float noise.
        let decimals = served[field].split('.').nth(1).map_or(0, str::len);
        assert!(decimals <= 3, "{field}: {rest}");
    }
    assert!(served["overhead_us"].parse::<u64>().is_ok(), "{rest}");
    let failed = text_fields(access[1]);
    assert_eq!(failed["status"], "404", "{}", access[1]);
    assert_eq!(failed["group"], "\"-\"", "{}", access[1]);
    assert!(!failed.contains_key("provider"), "{}", access[1]);

    // Filtered out, no access line.
    let running = Running::start_with(&dir, &[], "info,access=off");
    chat(&running, &[]);
    let log = running.stop_with_log();
    assert!(log.iter().all(|l| !l.contains(" access: ")), "{log:#?}");
}

/// The image's layout, without Docker: the config in a folder the router's user cannot write
/// (root-owned `/etc/llm-router`; here a folder of mode 555, the router run as uid 10001 when
/// the test runs as root), and a data folder it owns, named by `LLM_ROUTER_DATA_DIR`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_layout_keeps_the_ledger_in_the_data_folder() {
    use std::os::unix::fs::PermissionsExt;
    let mock = MockUpstream::start().await.unwrap();
    let root = temp_dir("image-layout");
    let (etc, data) = (root.join("etc"), root.join("data"));
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::create_dir_all(&data).unwrap();
    write_config(&etc, &mock.base_url(), &[KEY_A], "");
    std::fs::set_permissions(&etc, std::fs::Permissions::from_mode(0o555)).unwrap();
    if common::is_root() {
        std::os::unix::fs::chown(&data, Some(10001), Some(10001)).unwrap();
    }
    let config = etc.join("config.yaml");
    let args = ["--config", config.to_str().unwrap()];
    let ledger_in = |dir: &Path| dir.join("llm-router-usage.sqlite3");

    // Without a data folder, the ledger would go next to the config: it cannot be written.
    let mut running = Running::start_unprivileged(&root, &args, &[]);
    let warning = running.logged("usage kept in memory only");
    assert!(warning.contains("llm-router-usage.sqlite3"), "{warning}");
    running.stop();
    assert!(!ledger_in(&etc).exists());

    // With it, usage is written there, and read back by the CLI.
    let env = [("LLM_ROUTER_DATA_DIR", data.to_str().unwrap())];
    let running = Running::start_unprivileged(&root, &args, &env);
    assert!(chat(&running, &[]).contains("\"usage\""));
    running.stop();
    assert!(ledger_in(&data).exists());
    let out = Command::new(BIN)
        .args(["usage", "--json", "--config", config.to_str().unwrap()])
        .env("LLM_ROUTER_DATA_DIR", &data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(total(rows.as_array().unwrap()) > 0, "{rows}");
    std::fs::set_permissions(&etc, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Redis going away and coming back, twice, is one warning each way each time, however many
/// exchanges fail meanwhile; requests are answered all along.
#[tokio::test(flavor = "multi_thread")]
async fn redis_going_and_coming_back_is_one_warning_each_way() {
    let mut redis = common::redis_server::RedisServer::start().await;
    let mock = MockUpstream::start().await.unwrap();
    let dir = temp_dir("operate-redis-warnings");
    let state = format!(
        "state: {{redis: {{url: \"{}\", sync_interval: 20ms, timeout: 200ms}}}}",
        redis.url()
    );
    write_config(&dir, &mock.base_url(), &[KEY_A], &state);
    let mut running = Running::start(&dir, &[]);
    let ready = |running: &Running| admin_json(running, "/health/ready")["state"].clone();
    assert!(eventually(Duration::from_secs(10), || ready(&running) == "shared").await);
    for round in 1..=2 {
        redis.kill();
        running.wait_for("Redis cannot be reached");
        // Exchanges fail every 20 ms for a second, and requests are answered.
        for _ in 0..10 {
            assert!(chat(&running, &[]).contains("\"choices\""));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(ready(&running), "degraded", "round {round}");
        redis.restart().await;
        running.wait_for("Redis answers again");
        assert!(chat(&running, &[]).contains("\"choices\""));
    }
    let log = running.stop_with_log();
    let count = |needle: &str| log.iter().filter(|l| l.contains(needle)).count();
    assert_eq!(count("Redis cannot be reached"), 2, "{}", log.join("\n"));
    assert_eq!(count("Redis answers again"), 2, "{}", log.join("\n"));
}
