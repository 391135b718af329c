//! Doors left open are said at start, and a client key at an admin endpoint is told it needs
//! the admin key rather than that its key is wrong.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{as_admin, assert_openai_error, temp_dir, Running, TestServer};
use http::Method;

const GROUPS: &str = "providers:\n  - {name: m, type: mock}\ngroups:\n  - {name: g, models: [{provider: m, name: mock-echo}]}\n";

#[tokio::test]
async fn a_client_key_at_an_admin_endpoint_is_told_it_needs_the_admin_key() {
    let yaml = format!("api_key: sk-client-key-0001\nadmin_key: sk-admin-key-00001\n{GROUPS}");
    let server = TestServer::start(&yaml).await;
    let addr = server.addr.to_string();
    let as_client = as_admin(&addr, "sk-client-key-0001", Method::GET, "/admin/usage", "").await;
    assert_openai_error(&as_client, 403, "permission_denied");
    let said = as_client.json()["error"].clone();
    assert_eq!(said["code"], "admin_key_required");
    assert!(said["message"]
        .as_str()
        .unwrap()
        .starts_with("admin key required"));
    // A wrong key is still a wrong key.
    let wrong = as_admin(&addr, "sk-nobody-key-001", Method::GET, "/admin/usage", "").await;
    assert_openai_error(&wrong, 401, "authentication_error");
    let admin = as_admin(&addr, "sk-admin-key-00001", Method::GET, "/admin/usage", "").await;
    assert_eq!(admin.status.as_u16(), 200);
}

#[test]
fn a_keyless_router_beyond_loopback_is_warned_about_at_start() {
    let dir = temp_dir("safe-defaults-open");
    std::fs::write(dir.join("config.yaml"), GROUPS).unwrap();
    let mut open = Running::start(&dir, &["--config", "config.yaml", "--listen", "0.0.0.0:0"]);
    let line = open.logged("with no client key: anyone who can reach it may call the providers");
    assert!(line.contains("WARN"), "{line}");
    open.logged("no api_key and no admin_key");
    let log = open.stop_with_log();
    // Once each.
    let count = |needle: &str| log.iter().filter(|l| l.contains(needle)).count();
    assert_eq!(count("with no client key"), 1, "{log:?}");
    assert_eq!(count("no api_key and no admin_key"), 1, "{log:?}");
    // On loopback, the listener is not a door to the network.
    let local = Running::start(&dir, &["--config", "config.yaml"]);
    let log = local.stop_with_log();
    assert!(
        !log.iter().any(|l| l.contains("with no client key")),
        "{log:?}"
    );
}
