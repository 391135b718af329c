//! The server's and the ledger's settings as the binary uses them: addresses parsed, origins
//! as header values, the ledger's file resolved against the config file's folder.

use crate::config::{Config, LedgerConfig, ResilienceConfig, ServerConfig, Source};
use http::HeaderValue;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::compile::Problems;
use super::listener_tls::{self, TlsFiles};

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// For people.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The origins CORS allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    /// Any origin (`"*"`).
    Any,
    /// These origins, echoed back when a request comes from one of them.
    Only(Vec<HeaderValue>),
}

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Origins allowed by CORS.
    pub cors_origins: CorsOrigins,
    /// Compress responses when the client accepts it.
    pub compression: bool,
    /// Smallest non-streamed body worth compressing, in bytes.
    pub compression_min_bytes: usize,
    /// How long a shutdown waits for in-flight requests and streams.
    pub shutdown_timeout: Duration,
    /// Most client connections open at once per listener; `None`: derived from the file
    /// descriptor limit by the server.
    pub max_connections: Option<usize>,
    /// Time a new connection has to send its first request's headers.
    pub handshake_timeout: Duration,
    /// Time a connection may stay open with no request in flight.
    pub keepalive_timeout: Duration,
    /// Time allowed to receive a whole request body.
    pub body_timeout: Duration,
    /// Longest gap allowed between two chunks of a request body.
    pub body_idle_timeout: Duration,
    /// A second address serving only the admin endpoints (read at start).
    pub admin_listen: Option<SocketAddr>,
    /// Log format when none is given on the command line (read at start).
    pub log_format: LogFormat,
    /// The listeners' certificate files, when they serve HTTPS (read at start).
    pub tls: Option<TlsFiles>,
}

/// Where and how the usage ledger is kept.
#[derive(Debug, Clone)]
pub struct LedgerSettings {
    /// The SQLite file; `None` when there is no ledger (see [`LedgerSettings::enabled`]).
    pub path: Option<PathBuf>,
    /// Whether the config asks for a ledger (it still has none without a file to put it in).
    pub enabled: bool,
    /// How often counters are written.
    pub flush_interval: Duration,
    /// Whether one row per request is kept too.
    pub request_log: bool,
    /// How long request rows are kept.
    pub retention: Duration,
}

/// Checks the settings outside providers and groups, in file order.
pub(super) fn check(config: &Config, problems: &mut Problems<'_>) {
    let flush = config.ledger.flush_interval;
    if flush.is_zero() || flush > Duration::from_secs(1) {
        problems.push(
            "ledger.flush_interval".into(),
            "must be more than 0 and at most 1s (a crash may lose at most this much usage)",
        );
    }
    let server = &config.server;
    if let Some(a) = &server.admin_listen {
        if let Err(e) = a.as_str().parse::<SocketAddr>() {
            problems.push(
                "server.admin_listen".into(),
                format!(
                    "'{}' is not an address such as 127.0.0.1:9090: {e}",
                    a.as_str()
                ),
            );
        }
    }
    if let Some(tls) = &server.tls {
        for (path, file) in [("cert_file", &tls.cert_file), ("key_file", &tls.key_file)] {
            if file.as_str().trim().is_empty() {
                problems.push(format!("server.tls.{path}"), "must name a PEM file");
            }
        }
    }
    if server.max_body_bytes == 0 {
        problems.push("server.max_body_bytes".into(), "must be greater than 0");
    }
    if server.max_event_bytes == 0 {
        problems.push("server.max_event_bytes".into(), "must be greater than 0");
    }
    if server.max_connections == Some(0) {
        problems.push("server.max_connections".into(), "must be greater than 0");
    }
    check_resilience(server, &config.resilience, problems);
}

fn check_resilience(server: &ServerConfig, r: &ResilienceConfig, problems: &mut Problems<'_>) {
    if r.max_attempts == 0 {
        problems.push("resilience.max_attempts".into(), "must be at least 1");
    }
    if !(r.breaker.failure_rate > 0.0 && r.breaker.failure_rate <= 1.0) {
        problems.push(
            "resilience.breaker.failure_rate".into(),
            "must be a share in (0, 1]",
        );
    }
    let positive = [
        ("server.connect_timeout", server.connect_timeout),
        ("server.first_byte_timeout", server.first_byte_timeout),
        ("server.idle_timeout", server.idle_timeout),
        ("server.handshake_timeout", server.handshake_timeout),
        ("server.keepalive_timeout", server.keepalive_timeout),
        ("server.body_timeout", server.body_timeout),
        ("server.body_idle_timeout", server.body_idle_timeout),
        ("resilience.request_timeout", r.request_timeout),
    ];
    for (path, d) in positive {
        if d.is_zero() {
            problems.push(path.into(), "must be greater than 0");
        }
    }
    let cooldown = crate::health::MAX_COOLDOWN;
    let bounded = [
        (
            "resilience.rate_limit_cooldown",
            r.rate_limit_cooldown,
            cooldown,
        ),
        ("resilience.model_cooldown", r.model_cooldown, cooldown),
        ("resilience.breaker.open_for", r.breaker.open_for, cooldown),
        ("resilience.breaker.window", r.breaker.window, cooldown),
        (
            "resilience.retry_backoff",
            r.retry_backoff,
            Duration::from_secs(60),
        ),
    ];
    for (path, d, max) in bounded {
        if d > max {
            problems.push(
                path.into(),
                format!("must be at most {}", humantime::format_duration(max)),
            );
        }
    }
    if r.breaker.consecutive_failures == 0 {
        problems.push(
            "resilience.breaker.consecutive_failures".into(),
            "must be at least 1",
        );
    }
}

/// The server settings of a checked config. An origin that cannot be a header value matches
/// no request: it is left out with a warning.
pub(super) fn server(
    server: &ServerConfig,
    source: Option<&Source>,
    warnings: &mut Vec<String>,
) -> ServerSettings {
    let config_file = source.and_then(|s| s.file.as_deref());
    let origins = &server.cors_origins;
    let cors_origins = if origins.iter().any(|o| o.as_str() == "*") {
        CorsOrigins::Any
    } else {
        let mut allowed = Vec::new();
        for (i, origin) in origins.iter().enumerate() {
            match HeaderValue::from_str(origin.as_str()) {
                Ok(v) => allowed.push(v),
                Err(_) => warnings.push(format!(
                    "server.cors_origins[{i}]: '{}' cannot be an origin; left out",
                    origin.as_str()
                )),
            }
        }
        CorsOrigins::Only(allowed)
    };
    ServerSettings {
        max_body_bytes: server.max_body_bytes,
        cors_origins,
        compression: server.compression,
        compression_min_bytes: server.compression_min_bytes,
        shutdown_timeout: server.shutdown_timeout,
        max_connections: server.max_connections,
        handshake_timeout: server.handshake_timeout,
        keepalive_timeout: server.keepalive_timeout,
        body_timeout: server.body_timeout,
        body_idle_timeout: server.body_idle_timeout,
        admin_listen: server
            .admin_listen
            .as_ref()
            .and_then(|a| a.as_str().parse().ok()),
        log_format: server.log_format,
        tls: server.tls.as_ref().map(|tls| TlsFiles {
            cert_file: listener_tls::resolve(tls.cert_file.as_str(), config_file),
            key_file: listener_tls::resolve(tls.key_file.as_str(), config_file),
        }),
    }
}

/// The ledger settings: its `path` (relative to the config file's folder), or
/// `llm-router-usage.sqlite3` next to the config file; no file when it is switched off or the
/// config has no file.
/// The environment variable naming the folder the router writes its data to (the ledger),
/// when the config's folder is not writable (a container's read-only config mount).
pub(crate) const DATA_DIR_ENV: &str = "LLM_ROUTER_DATA_DIR";

pub(super) fn ledger(ledger: &LedgerConfig, source: Option<&Source>) -> LedgerSettings {
    let file = source.and_then(|s| s.file.as_deref());
    let data_dir = std::env::var_os(DATA_DIR_ENV)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from);
    LedgerSettings {
        path: ledger_path(file, data_dir.as_deref(), ledger),
        enabled: ledger.enabled,
        flush_interval: ledger.flush_interval,
        request_log: ledger.request_log,
        retention: ledger.retention,
    }
}

/// The ledger's file: `ledger.path` (relative to the config file's folder), else
/// `llm-router-usage.sqlite3` in the data folder (`LLM_ROUTER_DATA_DIR`), else next to the
/// config file; none for a config without a file and no data folder.
fn ledger_path(
    config_file: Option<&Path>,
    data_dir: Option<&Path>,
    ledger: &LedgerConfig,
) -> Option<PathBuf> {
    if !ledger.enabled {
        return None;
    }
    let folder = config_file.map(|f| {
        f.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    });
    if let (None, Some(data)) = (&ledger.path, data_dir) {
        return Some(data.join("llm-router-usage.sqlite3"));
    }
    match (&ledger.path, folder) {
        (Some(p), folder) => {
            let p = PathBuf::from(p.as_str());
            Some(match folder {
                Some(f) if p.is_relative() => f.join(p),
                _ => p,
            })
        }
        (None, Some(folder)) => Some(folder.join("llm-router-usage.sqlite3")),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledger_paths_follow_the_config_file() {
        let mut config = LedgerConfig::default();
        let file = Path::new("/etc/llm/config.yaml");
        assert_eq!(
            ledger_path(Some(file), None, &config),
            Some(PathBuf::from("/etc/llm/llm-router-usage.sqlite3"))
        );
        assert_eq!(ledger_path(None, None, &config), None);
        // A data folder takes the default file, with or without a config file.
        let data = Path::new("/var/lib/llm-router");
        let in_data = Some(data.join("llm-router-usage.sqlite3"));
        assert_eq!(ledger_path(Some(file), Some(data), &config), in_data);
        assert_eq!(ledger_path(None, Some(data), &config), in_data);
        config.path = Some("data/u.db".into());
        assert_eq!(
            ledger_path(Some(file), Some(data), &config),
            Some(PathBuf::from("/etc/llm/data/u.db"))
        );
        assert_eq!(
            ledger_path(Some(Path::new("config.yaml")), None, &config),
            Some(PathBuf::from("./data/u.db"))
        );
        config.enabled = false;
        assert_eq!(ledger_path(Some(file), None, &config), None);
    }
}
