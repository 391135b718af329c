//! HTTPS on the router's listener (`server.tls`): HTTP/2 and HTTP/1.1 by ALPN to a client that
//! trusts the certificate, a renewed certificate served without a restart, a bad one refused
//! with the previous one still served, and a router that cannot read its certificate not
//! starting.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::Bytes;
use common::{temp_dir, Running, BIN, KEY};
use http::{Request, Version};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use mock_upstream::{test_certificates, TestCertificates};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::path::Path;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

const CONFIG: &str = r#"api_key: "client-key-for-tests"
server:
  tls: {cert_file: tls/cert.pem, key_file: tls/key.pem}
providers:
  - {name: mock, type: mock}
groups:
  - {name: g, models: [{provider: mock, name: mock-echo}]}
"#;

/// Writes the certificate and its key where the config names them.
fn install(dir: &Path, certs: &TestCertificates) {
    std::fs::create_dir_all(dir.join("tls")).unwrap();
    std::fs::write(dir.join("tls/key.pem"), &certs.key_pem).unwrap();
    std::fs::write(dir.join("tls/cert.pem"), &certs.cert_pem).unwrap();
}

/// What a chat call over TLS got: the HTTP version and the answer's text.
struct Answer {
    version: Version,
    status: u16,
    text: String,
}

/// One chat call to `addr` by a client that trusts only `ca_pem` and offers `alpn`.
async fn chat(addr: &str, ca_pem: &str, alpn: &[&[u8]]) -> Result<Answer, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let tls = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
    let request = Request::post(format!(
        "https://localhost:{}/v1/chat/completions",
        port(addr)
    ))
    .header("authorization", format!("Bearer {KEY}"))
    .header("host", "localhost")
    .body(Full::new(Bytes::from_static(
        br#"{"model":"g","messages":[{"role":"user","content":"over tls"}]}"#,
    )))
    .unwrap();
    let io = TokioIo::new(tls);
    let response = if h2 {
        let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .unwrap();
        tokio::spawn(conn);
        send.send_request(request).await.unwrap()
    } else {
        let (mut send, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(conn);
        send.send_request(request).await.unwrap()
    };
    let (version, status) = (response.version(), response.status().as_u16());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Ok(Answer {
        version,
        status,
        text: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn port(addr: &str) -> &str {
    addr.rsplit(':').next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_http2_by_alpn_and_a_renewed_certificate_without_a_restart() {
    let dir = temp_dir("tls-listener");
    let first = test_certificates().unwrap();
    install(&dir, &first);
    std::fs::write(dir.join("config.yaml"), CONFIG).unwrap();
    let mut router = Running::start(&dir, &["--config", "config.yaml"]);
    router.logged("listening on https://");
    let addr = router.addr.clone();

    let h2 = chat(&addr, &first.ca_pem, &[b"h2", b"http/1.1"])
        .await
        .unwrap();
    assert_eq!(
        (h2.version, h2.status),
        (Version::HTTP_2, 200),
        "{}",
        h2.text
    );
    assert!(h2.text.contains("over tls"), "{}", h2.text);
    let h1 = chat(&addr, &first.ca_pem, &[b"http/1.1"]).await.unwrap();
    assert_eq!(
        (h1.version, h1.status),
        (Version::HTTP_11, 200),
        "{}",
        h1.text
    );
    let none = chat(&addr, &first.ca_pem, &[]).await.unwrap();
    assert_eq!((none.version, none.status), (Version::HTTP_11, 200));
    // A client that trusts another CA is refused in the handshake, counted as such.
    let second = test_certificates().unwrap();
    assert!(chat(&addr, &second.ca_pem, &[b"h2"]).await.is_err());
    let auth = format!("authorization: Bearer {KEY}");
    let url = format!("https://localhost:{}/metrics", port(&addr));
    let failed = "llm_router_connections_closed_total{reason=\"tls_handshake_failed\"} 1";
    let counted = common::eventually(std::time::Duration::from_secs(10), || {
        router.curl(&["-k", "-H", &auth, &url]).contains(failed)
    });
    assert!(counted.await, "{}", router.curl(&["-k", "-H", &auth, &url]));

    // Renewal: the files change, the next handshakes get the new certificate.
    install(&dir, &second);
    router.wait_for("TLS certificate reloaded");
    let renewed = chat(&addr, &second.ca_pem, &[b"h2"]).await.unwrap();
    assert_eq!(renewed.status, 200);
    assert!(chat(&addr, &first.ca_pem, &[b"h2"]).await.is_err());

    // A certificate that cannot be used is logged, and the one before keeps serving.
    std::fs::write(dir.join("tls/cert.pem"), "not a certificate\n").unwrap();
    let error = router.wait_for("TLS certificate cannot be used");
    assert!(error.contains("cert.pem holds no certificate"), "{error}");
    let kept = chat(&addr, &second.ca_pem, &[b"h2"]).await.unwrap();
    assert_eq!(kept.status, 200);
    // A key that does not go with the certificate, the same.
    let third = test_certificates().unwrap();
    std::fs::write(dir.join("tls/cert.pem"), &second.cert_pem).unwrap();
    std::fs::write(dir.join("tls/key.pem"), &third.key_pem).unwrap();
    let error = router.wait_for("TLS certificate cannot be used");
    assert!(
        error.contains("does not go with the certificate"),
        "{error}"
    );
    assert!(!error.contains("PRIVATE KEY"), "{error}");
    assert_eq!(
        chat(&addr, &second.ca_pem, &[b"h2"]).await.unwrap().status,
        200
    );
    router.stop();
}

#[test]
fn a_certificate_that_cannot_be_read_stops_the_start_and_fails_check() {
    let dir = temp_dir("tls-unreadable");
    std::fs::write(dir.join("config.yaml"), CONFIG).unwrap();
    let check = std::process::Command::new(BIN)
        .args(["check", "--config", "config.yaml"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(!check.status.success());
    let said = String::from_utf8_lossy(&check.stderr);
    assert!(said.contains("server.tls: cannot read"), "{said}");
    assert!(said.contains("tls/cert.pem"), "{said}");
    let start = std::process::Command::new(BIN)
        .args(["--config", "config.yaml", "--listen", "127.0.0.1:0"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(!start.status.success());
    let said = String::from_utf8_lossy(&start.stderr);
    assert!(said.contains("server.tls: cannot read"), "{said}");
    // With the files in place, check reads them.
    install(&dir, &test_certificates().unwrap());
    let check = std::process::Command::new(BIN)
        .args(["check", "--config", "config.yaml"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(String::from_utf8_lossy(&check.stdout).contains("TLS certificate"));
}
