//! The binary under hostile conditions: upstreams that flood, clients that stall or vanish,
//! malformed requests. Each test runs the real `llm-router` process and measures it from the
//! outside (its answers, `/proc` for its memory and descriptors).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{call, metric, temp_dir, Running};
use http::Method;
use mock_upstream::{Fault, MockUpstream, Rule};

/// The peak resident memory of process `pid`, in bytes (`VmHWM`).
fn peak_rss(pid: u32) -> u64 {
    vm(pid, "VmHWM")
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

/// The config generation the binary at `addr` serves (from `/health`).
fn generation(addr: &str) -> u64 {
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "2", &format!("http://{addr}/health")])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v["generation"].as_u64().unwrap_or(0)
}

/// Waits up to `limit` for the served generation to reach `at_least`.
fn reaches(addr: &str, at_least: u64, limit: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if generation(addr) >= at_least {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    false
}

const DEMO: &str = "groups:\n  - name: demo\n    models: [{provider: echo, name: e}]\nproviders:\n  - {name: echo, type: mock}\n";

/// A busy file next to the config (a log, say) does not hold reloads back, and edits through
/// a symlink swap (as Kubernetes mounts a config) and a delete-then-write are seen.
#[test]
fn edits_apply_within_a_second_whatever_else_is_written() {
    let dir = temp_dir("hardening-watch");
    // config.yaml -> ..data/config.yaml, ..data -> v1 (a Kubernetes ConfigMap volume).
    std::fs::create_dir_all(dir.join("v1")).unwrap();
    std::fs::write(dir.join("v1/config.yaml"), DEMO).unwrap();
    std::os::unix::fs::symlink("v1", dir.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/config.yaml", dir.join("config.yaml")).unwrap();
    let router = Running::start(&dir, &[]);
    let addr = router.addr.clone();
    assert_eq!(generation(&addr), 1);
    // A file in the same folder written every 50 ms for the whole test.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let busy = {
        let (stop, path) = (stop.clone(), dir.join("busy.log"));
        std::thread::spawn(move || {
            use std::io::Write;
            let mut f = std::fs::File::create(path).unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                writeln!(f, "a line").unwrap();
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(300));
    let second = std::time::Duration::from_secs(1);
    // A symlink swap: the new version in its own folder, `..data` replaced, the old one gone.
    std::fs::create_dir_all(dir.join("v2")).unwrap();
    std::fs::write(
        dir.join("v2/config.yaml"),
        DEMO.replace("name: demo", "name: demo2"),
    )
    .unwrap();
    std::os::unix::fs::symlink("v2", dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    std::fs::remove_dir_all(dir.join("v1")).unwrap();
    assert!(
        reaches(&addr, 2, second),
        "the swap was not applied within a second"
    );
    // Deleted, then written again a little later.
    std::fs::remove_file(dir.join("v2/config.yaml")).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(400));
    std::fs::write(
        dir.join("v2/config.yaml"),
        DEMO.replace("name: demo", "name: demo3"),
    )
    .unwrap();
    assert!(
        reaches(&addr, 3, second),
        "the rewrite was not applied within a second"
    );
    // An edit in place.
    std::fs::write(
        dir.join("v2/config.yaml"),
        DEMO.replace("name: demo", "name: demo4"),
    )
    .unwrap();
    assert!(
        reaches(&addr, 4, second),
        "the edit was not applied within a second"
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    busy.join().unwrap();
    router.stop();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Logging everything to a file next to its config, the router stays quiet when idle and
/// exits on SIGTERM within its shutdown timeout.
#[test]
fn a_trace_log_next_to_the_config_neither_feeds_itself_nor_blocks_shutdown() {
    let dir = temp_dir("hardening-trace");
    std::fs::write(
        dir.join("config.yaml"),
        format!("server: {{shutdown_timeout: 2s}}\n{DEMO}"),
    )
    .unwrap();
    let log = dir.join("router.log");
    let mut child = Reaped(
        std::process::Command::new(common::BIN)
            .args(["--listen", "127.0.0.1:0"])
            .current_dir(&dir)
            .env("RUST_LOG", "trace")
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let started = std::time::Instant::now();
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("watching")
    {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "no start"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let at_start = std::fs::metadata(&log).unwrap().len();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let grown = std::fs::metadata(&log).unwrap().len() - at_start;
    assert!(
        grown < 64 * 1024,
        "the idle router wrote {grown} bytes of log in 2 s"
    );
    let sent = std::time::Instant::now();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap()
        .success());
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(
            sent.elapsed() < std::time::Duration::from_secs(3),
            "still running 3 s after SIGTERM (shutdown_timeout 2s)"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A child process killed if the test ends before it does.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A size of process `pid` from `/proc/<pid>/status` (`VmRSS`, `VmSize`), in bytes.
fn vm(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| {
            v.trim_start_matches(':')
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        })
        .unwrap();
    kb * 1024
}

/// 200 clients that each declare a 10 MiB body and send 10 bytes of it: nothing is set aside
/// for what has not arrived (the router's address space grew by gigabytes when it reserved the
/// declared length up front).
#[test]
fn a_declared_length_reserves_nothing() {
    use std::io::Write;
    let dir = temp_dir("hardening-declared");
    std::fs::write(
        dir.join("config.yaml"),
        format!("api_key: demo-key\n{DEMO}"),
    )
    .unwrap();
    let router = Running::start(&dir, &[]);
    let pid = router.child.id();
    let before = (vm(pid, "VmSize"), vm(pid, "VmRSS"));
    let mut held = Vec::new();
    for _ in 0..200 {
        let mut s = std::net::TcpStream::connect(&router.addr).unwrap();
        s.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nhost: t\r\nauthorization: Bearer demo-key\r\ncontent-length: 10485760\r\n\r\n{\"model\":")
            .unwrap();
        held.push(s);
    }
    // Wait until the router is reading all 200 bodies.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while metric(&router.addr, "llm_router_requests_in_flight ") < 200.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the requests never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let after = (vm(pid, "VmSize"), vm(pid, "VmRSS"));
    let grew = |(a, b): (u64, u64)| b.saturating_sub(a) >> 20;
    eprintln!(
        "VmSize grew {} MiB, VmRSS {} MiB",
        grew((before.0, after.0)),
        grew((before.1, after.1))
    );
    assert!(
        grew((before.0, after.0)) < 512,
        "VmSize {before:?} -> {after:?}"
    );
    drop(held);
    router.stop();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every request of the committed corpus of malformed HTTP (`tests/corpus/malformed-http`:
/// smuggling, broken framing, oversized or invalid headers, bodies that are not what the
/// endpoint reads) gets a 4xx from the real binary, each on its own connection, and the
/// binary is still up and serving afterwards.
#[test]
fn malformed_requests_get_a_4xx_and_the_router_stays_up() {
    use std::io::{Read, Write};
    let dir = temp_dir("hardening-corpus");
    std::fs::write(
        dir.join("config.yaml"),
        format!("api_key: demo-key\nserver: {{body_idle_timeout: 2s}}\n{DEMO}"),
    )
    .unwrap();
    let mut router = Running::start(&dir, &[]);
    let corpus =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/malformed-http");
    let mut files: Vec<_> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 30, "the corpus was not found");
    for file in &files {
        let request = std::fs::read(file).unwrap();
        let mut s = std::net::TcpStream::connect(&router.addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        // The router may answer and close before it has read everything (431, 413).
        let _ = s.write_all(&request);
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(2).any(|w| w == b"\r\n") {
            match s.read(&mut buf) {
                Ok(n) if n > 0 => head.extend_from_slice(&buf[..n]),
                _ => break,
            }
        }
        let line = String::from_utf8_lossy(&head);
        let line = line.lines().next().unwrap_or("");
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        assert!(
            (400..500).contains(&status),
            "{}: {line:?}",
            file.file_name().unwrap().to_string_lossy()
        );
    }
    assert!(
        router.child.try_wait().unwrap().is_none(),
        "the router exited"
    );
    assert!(reaches(&router.addr, 1, std::time::Duration::from_secs(2)));
    router.stop();
    std::fs::remove_dir_all(&dir).unwrap();
}
