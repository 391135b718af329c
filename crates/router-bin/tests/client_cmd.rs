//! `llm-router client …` end to end: edits that keep the config's comments, a running router
//! that picks them up, two editors at once, and the refusals.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{call, repo_root, temp_dir, Running, BIN};
use http::Method;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

fn client(config: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("client")
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The key `client add` or `client rotate` printed.
fn printed_key(out: &Output) -> String {
    let text = stdout(out);
    let line = text
        .lines()
        .find(|l| l.starts_with("key (shown once"))
        .unwrap();
    line.rsplit(' ').next().unwrap().to_string()
}

async fn chat_status(addr: &str, key: &str) -> u16 {
    call(
        Method::POST,
        &format!("http://{addr}/v1/chat/completions"),
        &[("authorization", &format!("Bearer {key}"))],
        r#"{"model":"demo","messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await
    .status
    .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_are_added_disabled_rotated_and_removed_on_a_running_router() {
    let dir = temp_dir("client-cmd");
    let config = dir.join("config.yaml");
    let example = std::fs::read_to_string(repo_root().join("config.example.yaml")).unwrap();
    std::fs::write(&config, &example).unwrap();
    let router = Running::start(&dir, &["--config", config.to_str().unwrap()]);
    let addr = router.addr.clone();

    let added = client(
        &config,
        &[
            "add",
            "team-b",
            "--group",
            "demo",
            "--budget-usd",
            "5",
            "--rpm",
            "60",
        ],
    );
    assert!(
        added.status.success(),
        "{}{}",
        stdout(&added),
        String::from_utf8_lossy(&added.stderr)
    );
    assert!(
        stdout(&added).starts_with("added client 'team-b' in "),
        "{}",
        stdout(&added)
    );
    let key = printed_key(&added);
    // The file keeps every line of the example and holds the key's hash, never the key.
    let text = std::fs::read_to_string(&config).unwrap();
    for line in example.lines() {
        assert!(text.contains(line), "lost: {line}");
    }
    assert!(!text.contains(&key));
    let hash = String::from_utf8_lossy(
        &Command::new(BIN)
            .args(["key", "hash", &key])
            .output()
            .unwrap()
            .stdout,
    )
    .trim()
    .to_string();
    assert!(text.contains(&hash), "{text}");
    // The running router picks the change up: the new key works.
    let mut status = 0;
    for _ in 0..100 {
        status = chat_status(&addr, &key).await;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, 200);
    let listed = client(&config, &["list"]);
    assert!(
        stdout(&listed)
            .contains("team-b  active  groups: demo  budget: $5 per month  limits: 60 rpm"),
        "{}",
        stdout(&listed)
    );

    assert!(client(&config, &["disable", "team-b"]).status.success());
    let mut refused = false;
    for _ in 0..100 {
        if chat_status(&addr, &key).await == 401 {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(refused, "the disabled key still works");
    assert!(client(&config, &["enable", "team-b"]).status.success());
    let rotated = client(&config, &["rotate", "team-b"]);
    assert!(rotated.status.success());
    let new_key = printed_key(&rotated);
    assert_ne!(new_key, key);
    let removed = client(&config, &["remove", "team-b"]);
    assert_eq!(
        stdout(&removed).lines().next().unwrap(),
        format!("removed client 'team-b' in {}", config.display())
    );
    let after = std::fs::read_to_string(&config).unwrap();
    for line in example.lines() {
        assert!(after.contains(line), "lost: {line}");
    }
    // Refusals: the file stays as it was, the exit code says why.
    let missing = client(&config, &["remove", "nobody"]);
    assert_eq!(missing.status.code(), Some(2));
    let bad = client(&config, &["add", "x", "--group", "no-such-group"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no group named 'no-such-group'"));
    assert_eq!(std::fs::read_to_string(&config).unwrap(), after);
    router.stop();
}

#[test]
fn two_editors_at_once_lose_neither_client() {
    let dir = temp_dir("client-cmd-race");
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        std::fs::read_to_string(repo_root().join("config.example.yaml")).unwrap(),
    )
    .unwrap();
    for round in 0..5 {
        let spawn = |name: String| {
            Command::new(BIN)
                .args(["client", "add", &name, "--config"])
                .arg(&config)
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        };
        let mut a = spawn(format!("a{round}"));
        let mut b = spawn(format!("b{round}"));
        assert!(a.wait().unwrap().success());
        assert!(b.wait().unwrap().success());
    }
    let listed = stdout(&client(&config, &["list"]));
    for round in 0..5 {
        for who in ["a", "b"] {
            assert!(
                listed.contains(&format!("{who}{round}  active")),
                "{who}{round} lost: {listed}"
            );
        }
    }
}

#[test]
fn a_read_only_config_is_refused_with_a_clear_message() {
    let dir = temp_dir("client-cmd-ro");
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        std::fs::read_to_string(repo_root().join("config.example.yaml")).unwrap(),
    )
    .unwrap();
    let mut perms = std::fs::metadata(&config).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&config, perms).unwrap();
    let out = client(&config, &["add", "x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is read-only"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_json_config_is_edited_in_place_too() {
    let dir = temp_dir("client-cmd-json");
    let config = dir.join("config.json");
    let example = std::fs::read_to_string(repo_root().join("config.example.json")).unwrap();
    std::fs::write(&config, &example).unwrap();
    let added = client(&config, &["add", "j", "--group", "demo", "--tpm", "1000"]);
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let text = std::fs::read_to_string(&config).unwrap();
    let head = example.trim_end().trim_end_matches('}').trim_end();
    assert!(text.starts_with(head), "{text}");
    assert!(stdout(&client(&config, &["list"]))
        .contains("j  active  groups: demo  budget: none  limits: 1000 tpm"));
    assert!(client(&config, &["remove", "j"]).status.success());
    assert!(std::fs::read_to_string(&config).unwrap().starts_with(head));
}
