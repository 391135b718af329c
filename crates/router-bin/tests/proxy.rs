//! Upstream calls through an HTTP proxy: a provider's `proxy:` with credentials, an HTTPS
//! upstream tunnelled, a proxy that refuses (a clear upstream error, then failover), and the
//! environment's `HTTP_PROXY` with `NO_PROXY`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{say_hi, temp_dir, Running, TestServer, KEY};
use mock_upstream::{ConnectProxy, MockUpstream, TunnelAsked};

fn groups(models: &[(&str, &str)]) -> String {
    let mut out = String::from("groups:\n");
    for (group, provider) in models {
        out.push_str(&format!(
            "  - {{name: {group}, strategy: fallback, models: [{{provider: {provider}, name: m}}]}}\n"
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_go_through_the_providers_proxy_with_its_credentials_https_too() {
    let mock = MockUpstream::start().await.unwrap();
    let (tls_mock, ca_pem) = MockUpstream::start_tls().await.unwrap();
    let ca = temp_dir("proxy-ca").join("ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let proxy = ConnectProxy::start(false).await.unwrap();
    let with_credentials = proxy
        .url()
        .replace("http://", "http://team:proxy-pass-9876@");
    let yaml = format!(
        "api_key: \"{KEY}\"\n{}providers:\n  - {{name: plain, base_url: \"{}\", api_key: sk-plain-1, proxy: \"{with_credentials}\"}}\n  - {{name: tls, base_url: \"{}\", api_key: sk-tls-1, proxy: \"{}\", ca_file: \"{}\"}}\n",
        groups(&[("g", "plain"), ("secure", "tls")]),
        mock.base_url(),
        tls_mock.base_url(),
        proxy.url(),
        ca.display()
    );
    let server = TestServer::start(&yaml).await;
    let reply = say_hi(&server.url(""), KEY, "g").await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text());
    assert_eq!(mock.request_count(), 1);
    let secure = say_hi(&server.url(""), KEY, "secure").await;
    assert_eq!(secure.status.as_u16(), 200, "{}", secure.text());
    assert_eq!(
        tls_mock.requests().last().unwrap().bearer().as_deref(),
        Some("sk-tls-1")
    );
    // base64("team:proxy-pass-9876"); the HTTPS upstream is tunnelled to its host and port,
    // TLS running inside the tunnel to the upstream itself.
    assert_eq!(
        proxy.asked(),
        [
            TunnelAsked {
                target: mock.addr().to_string(),
                auth: Some("Basic dGVhbTpwcm94eS1wYXNzLTk4NzY=".into()),
            },
            TunnelAsked {
                target: format!("localhost:{}", tls_mock.addr().port()),
                auth: None,
            },
        ]
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_proxy_is_a_clear_upstream_error_and_the_next_provider_serves() {
    let mock = MockUpstream::start().await.unwrap();
    let refusing = ConnectProxy::start(true).await.unwrap();
    let with_credentials = refusing
        .url()
        .replace("http://", "http://team:proxy-pass-9876@");
    let yaml = format!(
        "api_key: \"{KEY}\"\ngroups:\n  - {{name: g, strategy: fallback, models: [{{provider: blocked, name: m}}, {{provider: open, name: m}}]}}\n  - {{name: only, models: [{{provider: blocked, name: m}}]}}\nproviders:\n  - {{name: blocked, base_url: \"{0}\", api_key: sk-blocked-1, proxy: \"{with_credentials}\"}}\n  - {{name: open, base_url: \"{0}\", api_key: sk-open-1, proxy: none}}\n",
        mock.base_url(),
    );
    let server = TestServer::start(&yaml).await;
    let reply = say_hi(&server.url(""), KEY, "g").await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text());
    assert_eq!(mock.requests()[0].bearer().as_deref(), Some("sk-open-1"));
    assert_eq!(refusing.asked().len(), 1);
    let blocked = server
        .router
        .usage()
        .into_iter()
        .find(|r| r.provider == "blocked")
        .unwrap();
    let said = blocked.live.unwrap().last_error.unwrap();
    let expected = format!(
        "proxy {} did not open a tunnel to {}",
        refusing.url(),
        mock.addr()
    );
    assert!(said.contains(&expected), "{said}");
    assert!(!said.contains("proxy-pass-9876"), "{said}");
    // With no other provider, the client is told why, the password masked.
    let alone = say_hi(&server.url(""), KEY, "only").await;
    assert!(alone.status.is_server_error(), "{}", alone.text());
    let text = alone.text();
    assert!(text.contains("did not open a tunnel"), "{text}");
    assert!(!text.contains("proxy-pass-9876"), "{text}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_environments_proxy_is_used_but_for_the_hosts_no_proxy_names() {
    let mock = MockUpstream::start().await.unwrap();
    let proxy = ConnectProxy::start(false).await.unwrap();
    let dir = temp_dir("proxy-env");
    let config = dir.join("config.yaml");
    let port = mock.addr().port();
    std::fs::write(
        &config,
        format!(
            "api_key: \"{KEY}\"\n{}providers:\n  - {{name: via, base_url: \"http://127.0.0.1:{port}/v1\", api_key: sk-via-1}}\n  - {{name: direct, base_url: \"http://localhost:{port}/v1\", api_key: sk-direct-1}}\n",
            groups(&[("via", "via"), ("direct", "direct")])
        ),
    )
    .unwrap();
    let router = Running::start_with_env(
        &dir,
        &["--config", config.to_str().unwrap()],
        &[("HTTP_PROXY", &proxy.url()), ("NO_PROXY", "localhost")],
    );
    let url = format!("http://{}", router.addr);
    assert_eq!(say_hi(&url, KEY, "via").await.status.as_u16(), 200);
    assert_eq!(say_hi(&url, KEY, "direct").await.status.as_u16(), 200);
    assert_eq!(mock.request_count(), 2);
    let asked: Vec<String> = proxy.asked().into_iter().map(|t| t.target).collect();
    assert_eq!(asked, [format!("127.0.0.1:{port}")]);
    router.stop();
}
