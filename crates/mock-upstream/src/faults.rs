//! Misbehaving on command: the first [`Rule`] that matches a request and is due, and the
//! statuses queued by [`crate::MockUpstream::fail_next`].

use crate::stream::ChannelBody;
use crate::{error, full, Body, Fault, Rule, SeenRequest, State};
use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use serde_json::Value;
use tokio::sync::mpsc;

/// The fault due for `seen`, if a rule matches it (its count moves on).
fn due(rules: &mut [Rule], seen: &SeenRequest) -> Option<Fault> {
    let key = seen.key();
    let model = serde_json::from_slice::<Value>(&seen.body)
        .ok()
        .and_then(|v| v["model"].as_str().map(str::to_string));
    for rule in rules.iter_mut() {
        let matches = rule.key.as_ref().is_none_or(|k| key.as_ref() == Some(k))
            && rule
                .model
                .as_ref()
                .is_none_or(|m| model.as_ref() == Some(m));
        if !matches || rule.times == Some(0) {
            continue;
        }
        rule.seen += 1;
        if rule.seen % rule.every == 0 {
            if let Some(t) = rule.times.as_mut() {
                *t -= 1;
            }
            return Some(rule.fault.clone());
        }
    }
    None
}

/// Applies the fault due for `seen`: `Err` with the response that replaces the answer, or
/// `Ok` with the chunk after which a stream is to be cut, if any.
pub(crate) async fn apply(
    state: &State,
    seen: &SeenRequest,
) -> Result<Option<usize>, Response<Body>> {
    let fault = due(&mut state.rules.lock().unwrap(), seen);
    let mut cut_stream = None;
    match fault {
        Some(Fault::Status(code)) => return Err(error(code, "failure on command")),
        Some(Fault::StatusRetryAfter(code, value)) => {
            let mut r = error(code, "failure on command");
            r.headers_mut()
                .insert("retry-after", value.parse().unwrap());
            return Err(r);
        }
        Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
        Some(Fault::Gate(crate::Gate(mut open))) => {
            let _ = open.wait_for(|open| *open).await;
        }
        Some(Fault::ResetBody) => {
            let (tx, rx) = mpsc::channel(2);
            let _ = tx.try_send(Ok(Bytes::from_static(b"{\"id\":\"chatcmpl-mock\",")));
            let _ = tx.try_send(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "reset on command",
            )));
            return Err(Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .body(UnsyncBoxBody::new(ChannelBody(rx)))
                .unwrap());
        }
        Some(Fault::CutStreamAfter(n)) => cut_stream = Some(n),
        Some(Fault::Flood { head, bytes }) => {
            let (tx, rx) = mpsc::channel(2);
            tokio::spawn(async move {
                let mut first = head.into_bytes();
                first.extend_from_slice(b"data: ");
                if tx.send(Ok(Bytes::from(first))).await.is_err() {
                    return;
                }
                let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
                let mut left = bytes;
                while left > 0 {
                    let n = left.min(chunk.len());
                    if tx.send(Ok(chunk.slice(..n))).await.is_err() {
                        return;
                    }
                    left -= n;
                }
            });
            return Err(Response::builder()
                .status(200)
                .header("content-type", "text/event-stream")
                .body(UnsyncBoxBody::new(ChannelBody(rx)))
                .unwrap());
        }
        Some(Fault::EchoKey(code)) => {
            let key = seen.key().unwrap_or_default();
            return Err(error(
                code,
                &format!("invalid request; you sent auth Bearer {key}"),
            ));
        }
        Some(Fault::EventStream(text)) => {
            return Err(full(StatusCode::OK, "text/event-stream", text))
        }
        None => {}
    }
    let fail = {
        let mut f = state.fail_next.lock().unwrap();
        (!f.is_empty()).then(|| f.remove(0))
    };
    match fail {
        Some(status) => Err(error(status, "failure on command")),
        None => Ok(cut_stream),
    }
}
