//! Client connections against the real binary: each one makes progress or is closed. Silent
//! sockets, half-sent h2 prefaces and idle keep-alive connections are closed on time; at
//! `server.max_connections` the connection idle the longest makes room, and a new one is shed
//! (503) only when every open one is busy; request bodies that stall get 408.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{metric, temp_dir, Running};
use mock_upstream::MockUpstream;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const DEMO: &str = "api_key: demo-key\ngroups:\n  - name: demo\n    models: [{provider: echo, name: e}]\nproviders:\n  - {name: echo, type: mock}\n";

const CHAT: &str = r#"{"model":"demo","messages":[{"role":"user","content":"hi"}]}"#;

fn post(path: &str, body: &str, close: bool) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nhost: t\r\nauthorization: Bearer demo-key\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{}\r\n{body}",
        body.len(),
        if close { "connection: close\r\n" } else { "" }
    )
}

/// Sends one chat request on a new connection and returns the response's status line and how
/// long it took to arrive whole (its head and `content-length` bytes of body; the close that
/// follows is not timed), reading for up to `limit`.
fn chat_once(addr: &str, limit: Duration) -> (String, Duration) {
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(post("/v1/chat/completions", CHAT, true).as_bytes())
        .unwrap();
    let mut out: Vec<u8> = Vec::new();
    let mut buf = [0u8; 4096];
    let whole = |out: &[u8]| {
        let text = String::from_utf8_lossy(out);
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            return false;
        };
        let length = (head.lines())
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(str::to_string)
            })
            .and_then(|v| v.trim().parse::<usize>().ok());
        length.is_some_and(|n| body.len() >= n)
    };
    while !whole(&out) {
        let left = limit.saturating_sub(started.elapsed());
        if left.is_zero() {
            break;
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&out);
    let status = text.lines().next().unwrap_or("").to_string();
    (status, took)
}

/// Whether the server closed `s` within `limit` (end of file or a reset; whatever it sent
/// before closing is read and dropped).
fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// Under a limit of 256 open files, 400 silent connections and 50 half-sent h2 prefaces do not
/// keep clients out: the connections idle the longest make room, and every request is answered
/// within a second.
#[test]
fn silent_connections_cannot_keep_clients_out_under_a_low_fd_limit() {
    let dir = temp_dir("conns-fd");
    // A handshake timeout far off: room is made by eviction, not by the timeout.
    let config = format!("server: {{handshake_timeout: 60s}}\n{DEMO}");
    std::fs::write(dir.join("config.yaml"), config).unwrap();
    let router = Running::start_with_nofile(&dir, &[], 256);
    let addr = router.addr.clone();
    let mut idle = Vec::new();
    for i in 0..450 {
        let mut s = TcpStream::connect(&addr).unwrap();
        if i % 9 == 0 {
            s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM").unwrap();
        }
        idle.push(s);
    }
    for _ in 0..20 {
        let (status, took) = chat_once(&addr, Duration::from_secs(1));
        assert_eq!(status, "HTTP/1.1 200 OK", "after {took:?}");
        assert!(took < Duration::from_secs(1), "{took:?}");
    }
    let evicted = metric(
        &addr,
        "llm_router_connections_closed_total{reason=\"evicted\"}",
    );
    // (256 - 64) / 2 = 96 connections at most: the rest of the 450 made room.
    assert!(evicted >= 300.0, "{evicted} evicted");
    let open = metric(&addr, "llm_router_connections_open ");
    assert!(open <= 97.0, "{open} open");
    drop(idle);
    let log = router.stop_with_log();
    assert!(
        !log.iter().any(|l| l.contains("Too many open files")),
        "{}",
        log.join("\n")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Connections that make no progress are closed on time: a silent socket, a half-sent h2
/// preface, an h2c connection idle after its SETTINGS, an HTTP/1.1 connection idle after its
/// answer. A client that stalls its body gets 408.
#[test]
fn connections_that_make_no_progress_are_closed_on_time() {
    let dir = temp_dir("conns-timeouts");
    let config = format!(
        "server: {{handshake_timeout: 1s, keepalive_timeout: 1s, body_idle_timeout: 1s, body_timeout: 2s}}\n{DEMO}"
    );
    std::fs::write(dir.join("config.yaml"), config).unwrap();
    let router = Running::start(&dir, &[]);
    let addr = router.addr.clone();
    let connect = || TcpStream::connect(&addr).unwrap();

    let mut silent = connect();
    let mut half_preface = connect();
    half_preface.write_all(b"PRI * HTTP/2.0\r\n\r\nSM").unwrap();
    let mut h2c = connect();
    h2c.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .unwrap();
    let mut kept_alive = connect();
    kept_alive
        .write_all(post("/v1/chat/completions", CHAT, false).as_bytes())
        .unwrap();
    let mut head = [0u8; 15];
    kept_alive.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200 OK");
    for (what, s) in [
        ("silent", &mut silent),
        ("half h2 preface", &mut half_preface),
        ("h2c after SETTINGS", &mut h2c),
        ("idle keep-alive", &mut kept_alive),
    ] {
        // 1 s of timeout, and at most 1 s of grace.
        assert!(
            closed_within(s, Duration::from_secs(4)),
            "{what} still open"
        );
    }

    // A body that stops short of its Content-Length: 408 after the idle gap.
    let mut stalled = connect();
    let request = post("/v1/chat/completions", CHAT, false);
    let started = Instant::now();
    stalled
        .write_all(&request.as_bytes()[..request.len() - 10])
        .unwrap();
    stalled
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut out = Vec::new();
    let _ = stalled.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("server.body_idle_timeout"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(3));

    // A body that trickles in, a byte every 500 ms: 408 at the total limit.
    let mut trickle = connect();
    let started = Instant::now();
    trickle
        .write_all(&request.as_bytes()[..request.len() - CHAT.len()])
        .unwrap();
    trickle
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut out = Vec::new();
    for b in CHAT.as_bytes() {
        if trickle.write_all(&[*b]).is_err() {
            break;
        }
        let mut buf = [0u8; 4096];
        match trickle.read(&mut buf) {
            Ok(n) if n > 0 => {
                out.extend_from_slice(&buf[..n]);
                break;
            }
            _ => {}
        }
    }
    let _ = trickle.set_read_timeout(Some(Duration::from_secs(2)));
    let mut rest = Vec::new();
    let _ = trickle.read_to_end(&mut rest);
    out.extend_from_slice(&rest);
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("server.body_timeout"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(4));
    router.stop();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// At `server.max_connections` with every connection busy, a new one is refused with a 503
/// and counted; once they are done, connections are accepted again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_connection_busy_a_new_one_is_shed() {
    let mock = MockUpstream::start().await.unwrap();
    mock.set_response_delay(Duration::from_secs(2));
    let dir = temp_dir("conns-shed");
    let config = format!(
        "api_key: demo-key\nserver: {{max_connections: 3}}\ngroups:\n  - name: demo\n    models: [{{provider: slow, name: m}}]\nproviders:\n  - {{name: slow, base_url: \"{}\", api_key: k}}\n",
        mock.base_url()
    );
    std::fs::write(dir.join("config.yaml"), config).unwrap();
    let router = Running::start(&dir, &[]);
    let addr = router.addr.clone();
    let busy: Vec<_> = (0..3)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || chat_once(&addr, Duration::from_secs(10)))
        })
        .collect();
    // The three requests reach the (slow) upstream: every connection is busy.
    let deadline = Instant::now() + Duration::from_secs(5);
    while mock.requests().len() < 3 {
        assert!(
            Instant::now() < deadline,
            "the requests never reached the upstream"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (status, _) = chat_once(&addr, Duration::from_secs(5));
    assert_eq!(status, "HTTP/1.1 503 Service Unavailable");
    for handle in busy {
        assert_eq!(handle.join().unwrap().0, "HTTP/1.1 200 OK");
    }
    let (status, _) = chat_once(&addr, Duration::from_secs(5));
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(metric(&addr, "llm_router_connections_shed_total "), 1.0);
    router.stop();
    std::fs::remove_dir_all(&dir).unwrap();
}
