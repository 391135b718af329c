//! The binary under hostile conditions: upstreams that flood, clients that stall or vanish,
//! malformed requests. Each test runs the real `llm-router` process and measures it from the
//! outside (its answers, `/proc` for its memory and descriptors).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{call, temp_dir, Running};
use http::Method;
use mock_upstream::{Fault, MockUpstream, Rule};

/// The peak resident memory of process `pid`, in bytes (`VmHWM`).
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

/// Five upstreams at once that each send one 100 MB line: every stream is cut at the event
/// limit, and the router's memory stays near its resting size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flooding_upstreams_leave_memory_bounded() {
    let mut mocks = Vec::new();
    let mut providers = String::new();
    let mut groups = String::new();
    for i in 0..5 {
        let mock = MockUpstream::start().await.unwrap();
        mock.add_rule(Rule::new(Fault::Flood {
            head: String::new(),
            bytes: 100 * 1024 * 1024,
        }));
        providers += &format!(
            "  - {{name: p{i}, base_url: \"{}\", api_key: k{i}}}\n",
            mock.base_url()
        );
        groups += &format!("  - name: g{i}\n    models: [{{provider: p{i}, name: m}}]\n");
        mocks.push(mock);
    }
    let dir = temp_dir("hardening-flood");
    std::fs::write(
        dir.join("config.yaml"),
        format!("api_key: demo-key\ngroups:\n{groups}providers:\n{providers}"),
    )
    .unwrap();
    let router = Running::start(&dir, &[]);
    let pid = router.child.id();
    let resting = peak_rss(pid);
    let url = format!("http://{}/v1/chat/completions", router.addr);
    let calls = (0..5).map(|i| {
        let url = url.clone();
        tokio::spawn(async move {
            let body = format!(
                r#"{{"model":"g{i}","stream":true,"messages":[{{"role":"user","content":"hi"}}]}}"#
            );
            call(
                Method::POST,
                &url,
                &[
                    ("authorization", "Bearer demo-key"),
                    ("content-type", "application/json"),
                ],
                body,
            )
            .await
        })
    });
    for reply in futures_join(calls).await {
        // The one provider of each group failed before the first byte: a 502 naming why.
        assert_eq!(reply.status, 502, "{}", reply.text());
        assert!(reply.text().contains("max_event_bytes"), "{}", reply.text());
    }
    let peak = peak_rss(pid);
    eprintln!("peak RSS {} MiB, at rest {} MiB", peak >> 20, resting >> 20);
    assert!(
        peak < resting + 64 * 1024 * 1024,
        "peak RSS {} MiB from {} MiB at rest",
        peak >> 20,
        resting >> 20
    );
    router.stop();
    std::fs::remove_dir_all(&dir).unwrap();
}

async fn futures_join<T>(handles: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}
