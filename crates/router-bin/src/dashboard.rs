//! The dashboard: one self-contained page (`/dashboard`, `/demo`) that polls
//! `/admin/dashboard`, the JSON view it shares with scripts. The page holds no data; the key
//! it sends is taken from the URL fragment (never sent to the server in the URL) or typed in.

use crate::{App, ResBody};
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::Response;
use http_body_util::{BodyExt, Full};
use router_core::Snapshot;
use serde_json::{json, Value};
use std::collections::HashMap;

/// The page.
pub const PAGE: &[u8] = include_bytes!("dashboard.html");

/// The page's Content-Security-Policy: its one inline script allowed by hash, styles inline,
/// requests to this origin only.
pub fn content_security_policy() -> &'static str {
    static CSP: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    CSP.get_or_init(|| {
        use base64::Engine;
        use sha2::Digest;
        let page = String::from_utf8_lossy(PAGE);
        let script = page
            .split_once("<script>")
            .and_then(|(_, rest)| rest.split_once("</script>"))
            .map_or("", |(script, _)| script);
        let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(script));
        format!(
            "default-src 'none'; script-src 'sha256-{hash}'; style-src 'unsafe-inline'; \
             connect-src 'self'; img-src data:; frame-ancestors 'none'; base-uri 'none'; \
             form-action 'none'"
        )
    })
}

/// The page, with headers that keep everything outside it out: no CDN, no frames, no other
/// origin, and no script but the page's own (by its hash).
pub fn page() -> Response<ResBody> {
    let mut r = Response::new(Full::new(Bytes::from_static(PAGE)).boxed_unsync());
    let headers = r.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(csp) = HeaderValue::from_str(content_security_policy()) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Seconds as a JSON number, or `null` when unknown.
fn seconds(v: f64) -> Value {
    if v.is_finite() {
        json!(v)
    } else {
        Value::Null
    }
}

/// One key of a group's model: its counters, share of the group's calls, state and last
/// error (masked as every upstream text is).
fn key_json(
    p: &router_core::Pair,
    record: Option<&router_core::UsageRecord>,
    group_requests: u64,
    snapshot: &Snapshot,
) -> Value {
    let live = record.and_then(|r| r.live.as_ref());
    json!({
        "key": p.key_id(),
        "key_masked": p.key_masked(),
        "usage": p.usage(),
        "prompt_tokens": record.map_or(0, |r| r.prompt_tokens),
        "completion_tokens": record.map_or(0, |r| r.completion_tokens),
        "cache_read_tokens": record.map_or(0, |r| r.cache_read_tokens),
        "cache_write_tokens": record.map_or(0, |r| r.cache_write_tokens),
        "total_tokens": record.map_or(0, |r| r.total_tokens),
        "requests": record.map_or(0, |r| r.requests),
        "errors": record.map_or(0, |r| r.errors),
        "share": if group_requests == 0 { 0.0 } else {
            record.map_or(0, |r| r.requests) as f64 / group_requests as f64
        },
        "state": live.map_or("closed", |l| l.state.as_str()),
        "until": live.and_then(|l| l.until.clone()),
        "consecutive_failures": live.map_or(0, |l| l.consecutive_failures),
        "failures": live.map(|l| l.failures),
        "last_error": live
            .and_then(|l| l.last_error.as_deref())
            .map(|m| snapshot.redactor().redact_str(m).into_owned()),
        "last_error_at": live.and_then(|l| l.last_error_at),
    })
}

/// The dashboard's data: groups → models → keys with usage, share of traffic, health and
/// failures; latency and time-to-first-token percentiles per group; reloads; the ledger; the
/// recent errors.
pub fn data(app: &App, snapshot: &Snapshot) -> Value {
    let records = app.router.usage();
    // The pairs the config in force serves, by key id and model.
    let by_pair: HashMap<(&str, &str), &router_core::UsageRecord> = (records.iter())
        .filter_map(|r| Some(((r.key_id.as_deref()?, r.model.as_str()), r)))
        .collect();
    let client = app.metrics.group_requests();
    let p50 = app.metrics.quantiles(0.5);
    let p95 = app.metrics.quantiles(0.95);
    let p99 = app.metrics.quantiles(0.99);
    let percentile = |list: &[(String, f64, f64)], group: &str| {
        list.iter()
            .find(|(g, _, _)| g == group)
            .map_or((f64::NAN, f64::NAN), |(_, l, t)| (*l, *t))
    };
    let mut groups = Vec::new();
    for group in snapshot.groups() {
        let pairs: Vec<_> = group
            .pairs()
            .iter()
            .map(|p| {
                let record = by_pair.get(&(p.key_id(), p.model())).copied();
                (p, record)
            })
            .collect();
        let group_requests: u64 = pairs
            .iter()
            .filter_map(|(_, r)| r.map(|r| r.requests))
            .sum();
        let mut models: Vec<Value> = Vec::new();
        for (p, record) in &pairs {
            let key = key_json(p, *record, group_requests, snapshot);
            let existing = models.iter_mut().find(|m| {
                m["index"] == json!(p.model_index()) && m["provider"] == json!(p.provider().name())
            });
            match existing {
                Some(m) => {
                    if let Some(keys) = m["keys"].as_array_mut() {
                        keys.push(key);
                    }
                }
                None => models.push(json!({
                    "index": p.model_index(),
                    "provider": p.provider().name(),
                    "model": p.model(),
                    "weight": p.weight(),
                    "keys": [key],
                })),
            }
        }
        let (l50, t50) = percentile(&p50, group.name());
        let (l95, t95) = percentile(&p95, group.name());
        let (l99, t99) = percentile(&p99, group.name());
        let (requests, errors) = client
            .iter()
            .find(|(g, _, _)| g == group.name())
            .map_or((0, 0), |(_, r, e)| (*r, *e));
        groups.push(json!({
            "name": group.name(),
            "client_requests": requests,
            "client_errors": errors,
            "strategy": group.strategy().name(),
            "upstream_calls": group_requests,
            "latency_seconds": {"p50": seconds(l50), "p95": seconds(l95), "p99": seconds(l99)},
            "ttft_seconds": {"p50": seconds(t50), "p95": seconds(t95), "p99": seconds(t99)},
            "models": models,
        }));
    }
    let reloads = app.router.reload_stats();
    let last_reload = reloads.last.as_ref().map(|(at, result)| match result {
        Ok(generation) => json!({"at": at, "ok": true, "generation": generation}),
        Err(error) => json!({"at": at, "ok": false, "error": error}),
    });
    // Every client request counts in the rates, those refused before naming a group too.
    let (requests, errors) = (client.iter()).fold((0, 0), |(r, e), (_, gr, ge)| (r + gr, e + ge));
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "requests": requests,
        "errors": errors,
        "generation": snapshot.generation(),
        "uptime_seconds": app.uptime().as_secs(),
        "config_path": app.router.config_path().map(|p| {
            std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf()).display().to_string()
        }),
        "state": app.router.shared_state().name(),
        "reloads": {"succeeded": reloads.succeeded, "failed": reloads.failed, "last": last_reload},
        "ledger": app.ledger_state(),
        "groups": groups,
        "recent_errors": app.recent_errors(),
        "clients": crate::clients::report(snapshot)["clients"].take(),
    })
}
