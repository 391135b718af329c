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

/// The page as written, with a mark where the chart library goes.
const SOURCE: &str = include_str!("dashboard.html");

/// The chart library, vendored: uPlot 1.6.32 (MIT; its license is `vendor/uplot.LICENSE`).
const CHART_JS: &str = include_str!("vendor/uplot.iife.min.js");
const CHART_CSS: &str = include_str!("vendor/uplot.min.css");
const CHART_LICENSE: &str = include_str!("vendor/uplot.LICENSE");

/// The page as served: one self-contained document, the chart library inlined.
fn page_text() -> &'static str {
    static PAGE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PAGE.get_or_init(|| {
        let library = format!(
            "<style>{CHART_CSS}</style>\n<script>/*! uPlot 1.6.32\n{CHART_LICENSE}*/\n{CHART_JS}</script>"
        );
        SOURCE.replacen("<!-- chart library -->", &library, 1)
    })
}

/// The page's Content-Security-Policy: its inline scripts (the chart library and its own)
/// allowed by hash, styles inline, requests to this origin only.
pub fn content_security_policy() -> &'static str {
    static CSP: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    CSP.get_or_init(|| {
        use base64::Engine;
        use sha2::Digest;
        let hashes: Vec<String> = (page_text().split("<script>").skip(1))
            .filter_map(|rest| rest.split_once("</script>"))
            .map(|(script, _)| {
                let hash = sha2::Sha256::digest(script);
                format!(
                    "'sha256-{}'",
                    base64::engine::general_purpose::STANDARD.encode(hash)
                )
            })
            .collect();
        format!(
            "default-src 'none'; script-src {}; style-src 'unsafe-inline'; \
             connect-src 'self'; img-src data:; frame-ancestors 'none'; base-uri 'none'; \
             form-action 'none'",
            hashes.join(" ")
        )
    })
}

/// The page, with headers that keep everything outside it out: no CDN, no frames, no other
/// origin, and no script but the page's own (by their hashes).
pub fn page() -> Response<ResBody> {
    let mut r = Response::new(Full::new(Bytes::from_static(page_text().as_bytes())).boxed_unsync());
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

/// One key of a group's model: what this group sent it (`group_requests`, `group_tokens`,
/// `share` of the group's calls), the pair's totals over every group (the other groups that
/// share it in `shared_with`), its state and last error (masked as every upstream text is).
fn key_json(
    p: &router_core::Pair,
    record: Option<&router_core::UsageRecord>,
    group_calls: u64,
    shared_with: Vec<&str>,
    snapshot: &Snapshot,
) -> Value {
    let live = record.and_then(|r| r.live.as_ref());
    let calls = p.in_group().calls();
    json!({
        "key": p.key_id(),
        "key_masked": p.key_masked(),
        "usage": p.usage(),
        "group_requests": calls,
        "group_tokens": p.in_group().tokens(),
        "shared_with": shared_with,
        "prompt_tokens": record.map_or(0, |r| r.prompt_tokens),
        "completion_tokens": record.map_or(0, |r| r.completion_tokens),
        "cache_read_tokens": record.map_or(0, |r| r.cache_read_tokens),
        "cache_write_tokens": record.map_or(0, |r| r.cache_write_tokens),
        "total_tokens": record.map_or(0, |r| r.total_tokens),
        "requests": record.map_or(0, |r| r.requests),
        "errors": record.map_or(0, |r| r.errors),
        "share": if group_calls == 0 { 0.0 } else { calls as f64 / group_calls as f64 },
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

/// A group's models, each with its keys (see [`key_json`]): `by_pair` gives each pair's
/// totals, `sharing` the groups each pair is in.
fn models_json(
    group: &router_core::Group,
    by_pair: &HashMap<(&str, &str), &router_core::UsageRecord>,
    sharing: &HashMap<(&str, &str), Vec<&str>>,
    snapshot: &Snapshot,
) -> (Vec<Value>, u64) {
    let group_calls: u64 = group.pairs().iter().map(|p| p.in_group().calls()).sum();
    let mut models: Vec<Value> = Vec::new();
    for p in group.pairs() {
        let id = (p.key_id(), p.model());
        let others = (sharing.get(&id).into_iter().flatten())
            .copied()
            .filter(|g| *g != group.name())
            .collect();
        let key = key_json(p, by_pair.get(&id).copied(), group_calls, others, snapshot);
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
    (models, group_calls)
}

/// The dashboard's data: groups → models → keys with usage, share of traffic, health and
/// failures; latency and time-to-first-token percentiles per group; the rates' counts and
/// their history; reloads; the ledger; the recent errors.
pub fn data(app: &App, snapshot: &Snapshot) -> Value {
    let records = app.router.usage();
    // The pairs the config in force serves, by key id and model, and the groups each is in.
    let by_pair: HashMap<(&str, &str), &router_core::UsageRecord> = (records.iter())
        .filter_map(|r| Some(((r.key_id.as_deref()?, r.model.as_str()), r)))
        .collect();
    let mut sharing: HashMap<(&str, &str), Vec<&str>> = HashMap::new();
    for g in snapshot.groups() {
        for p in g.pairs() {
            let groups = sharing.entry((p.key_id(), p.model())).or_default();
            if !groups.contains(&g.name()) {
                groups.push(g.name());
            }
        }
    }
    let figures = app.metrics.figures();
    let client = figures.group_requests();
    let p50 = figures.quantiles(0.5);
    let p95 = figures.quantiles(0.95);
    let p99 = figures.quantiles(0.99);
    let percentile = |list: &[(String, f64, f64)], group: &str| {
        list.iter()
            .find(|(g, _, _)| g == group)
            .map_or((f64::NAN, f64::NAN), |(_, l, t)| (*l, *t))
    };
    let mut groups = Vec::new();
    for group in snapshot.groups() {
        let (models, upstream_calls) = models_json(group, &by_pair, &sharing, snapshot);
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
            "upstream_calls": upstream_calls,
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
        "history": app.history_json(&figures),
        "clients": crate::clients::report(snapshot)["clients"].take(),
    })
}
