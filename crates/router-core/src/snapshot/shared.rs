//! `state.redis` as the shared-state task uses it: the URL checked, the password kept out of
//! every message.

use super::compile::Problems;
use crate::config::StateConfig;
use std::time::Duration;

/// Where and how the replicas share state.
#[derive(Clone)]
pub struct SharedSettings {
    url: String,
    /// The URL with its password masked, for messages.
    shown: String,
    /// Prefix of every key written.
    pub prefix: String,
    /// How often a replica exchanges with Redis.
    pub sync_interval: Duration,
    /// Longest wait for an answer.
    pub timeout: Duration,
    /// The roots a `rediss://` server must chain to, PEM (`ca_file`), if not the system's.
    ca: Option<Vec<u8>>,
}

impl SharedSettings {
    /// The URL with its password masked.
    pub fn shown_url(&self) -> &str {
        &self.shown
    }

    /// A client of the server, trusting `ca_file` if there is one.
    pub(crate) fn client(&self) -> redis::RedisResult<redis::Client> {
        client(&self.url, self.ca.as_deref())
    }
}

fn client(url: &str, ca: Option<&[u8]>) -> redis::RedisResult<redis::Client> {
    match ca {
        None => redis::Client::open(url),
        Some(pem) => redis::Client::build_with_tls(
            url,
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem.to_vec()),
            },
        ),
    }
}

impl std::fmt::Debug for SharedSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedSettings")
            .field("url", &self.shown)
            .field("prefix", &self.prefix)
            .field("sync_interval", &self.sync_interval)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// `url` with the password (the userinfo after `:`) replaced by `***`.
fn masked(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => format!("{scheme}://***@{host}"),
    }
}

/// The settings of `state`, or `None` without Redis; problems are located under
/// `state.redis`.
pub(super) fn compile(state: &StateConfig, problems: &mut Problems<'_>) -> Option<SharedSettings> {
    let redis = state.redis.as_ref()?;
    let url = redis.url.as_str();
    let shown = masked(url);
    let mut fine = true;
    let ca = match redis.ca_file.as_ref().map(|f| read_ca(f.as_str(), url)) {
        Some(Ok(pem)) => Some(pem),
        Some(Err(e)) => {
            problems.push("state.redis.ca_file".into(), e);
            return None;
        }
        None => None,
    };
    if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
        problems.push(
            "state.redis.url".into(),
            format!("'{shown}' is not a redis:// or rediss:// URL"),
        );
        fine = false;
    } else if let Err(e) = client(url, ca.as_deref()) {
        problems.push(
            "state.redis.url".into(),
            format!("'{shown}' cannot be used: {e}"),
        );
        fine = false;
    }
    if redis.prefix.is_empty() {
        problems.push(
            "state.redis.prefix".into(),
            "must not be empty (replicas of other routers on the same Redis would mix)",
        );
        fine = false;
    }
    for (path, d) in [
        ("state.redis.sync_interval", redis.sync_interval),
        ("state.redis.timeout", redis.timeout),
    ] {
        if d.is_zero() || d > Duration::from_secs(60) {
            problems.push(path.into(), "must be more than 0 and at most 60s");
            fine = false;
        }
    }
    fine.then(|| SharedSettings {
        url: url.to_string(),
        shown,
        prefix: redis.prefix.clone(),
        sync_interval: redis.sync_interval,
        timeout: redis.timeout,
        ca,
    })
}

/// The PEM of `path`, checked, for the server of `url` (which must use TLS).
fn read_ca(path: &str, url: &str) -> Result<Vec<u8>, String> {
    if !url.starts_with("rediss://") {
        return Err("is for a TLS server: the url must be rediss://".into());
    }
    crate::upstream::read_pem_certificates(path).map(|(pem, _)| pem)
}

#[cfg(test)]
mod tests {
    use super::masked;
    use crate::config::{Format, Source};
    use crate::Router;

    fn refused(state: &str) -> String {
        let yaml = format!(
            "{state}\ngroups: [{{name: g, models: [{{provider: m, name: x}}]}}]\nproviders: [{{name: m, type: mock}}]\n"
        );
        match Router::from_source(&Source::from_text(&yaml, Format::Yaml)) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn bad_settings_are_located_and_keep_the_password_out() {
        let e = refused("state: {redis: {url: \"http://:hunter2secret@h:6379\"}}");
        assert!(e.contains("state.redis.url"), "{e}");
        assert!(e.contains("redis:// or rediss://"), "{e}");
        assert!(!e.contains("hunter2secret"), "{e}");
        let e = refused("state: {redis: {url: \"redis://h\", prefix: \"\", sync_interval: 0s}}");
        assert!(
            e.contains("state.redis.prefix") && e.contains("state.redis.sync_interval"),
            "{e}"
        );
        assert_eq!(
            refused("state: {redis: {url: \"rediss://u:p@h:6380/1\"}}"),
            ""
        );
        assert_eq!(refused("state: {}"), "");
        // A CA file is for TLS, and must hold a certificate.
        let e = refused("state: {redis: {url: \"redis://h\", ca_file: \"/etc/hostname\"}}");
        assert!(
            e.contains("state.redis.ca_file") && e.contains("rediss://"),
            "{e}"
        );
        let e = refused("state: {redis: {url: \"rediss://h\", ca_file: \"/no/such/ca.pem\"}}");
        assert!(
            e.contains("state.redis.ca_file") && e.contains("cannot read"),
            "{e}"
        );
    }

    #[test]
    fn the_password_is_never_shown() {
        assert_eq!(masked("redis://:pw@h:6379/0"), "redis://:***@h:6379/0");
        assert_eq!(masked("rediss://user:p@ss@h"), "rediss://user:***@h");
        assert_eq!(masked("redis://h:6379"), "redis://h:6379");
        assert_eq!(masked("redis://token@h"), "redis://***@h");
    }
}
