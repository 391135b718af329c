//! An OTLP/HTTP receiver in the test (on `mock_upstream::serve`): it takes `POST /v1/traces` (protobuf), decodes each
//! export with the OpenTelemetry protocol's own types, and keeps the spans with their
//! resource's `service.name`.

use bytes::Bytes;
use http_body_util::Full;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use std::sync::{Arc, Mutex};

/// A span as received, with its service's name.
#[derive(Debug, Clone)]
pub struct Received {
    pub service: String,
    pub span: Span,
}

impl Received {
    /// An attribute's value as text (numbers in decimal); empty when absent.
    pub fn attr(&self, key: &str) -> String {
        value_of(&self.span.attributes, key)
    }
}

fn value_of(attributes: &[KeyValue], key: &str) -> String {
    let value = attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_ref()?.value.clone());
    match value {
        Some(any_value::Value::StringValue(s)) => s,
        Some(any_value::Value::IntValue(n)) => n.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

/// The receiver, serving until dropped.
pub struct OtlpReceiver {
    pub url: String,
    spans: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl OtlpReceiver {
    pub async fn start() -> Self {
        let spans: Arc<Mutex<Vec<Received>>> = Arc::default();
        let kept = spans.clone();
        let (addr, task) = mock_upstream::serve(move |asked| {
            let decoded = ExportTraceServiceRequest::decode(asked.body);
            let status = match decoded {
                Ok(export) if asked.path == "/v1/traces" => {
                    keep(&kept, export);
                    200
                }
                _ => 400,
            };
            let answer = http::Response::builder()
                .status(status)
                .header("content-type", "application/x-protobuf")
                .body(Full::new(Bytes::new()))
                .unwrap();
            async move { answer }
        })
        .await
        .unwrap();
        Self {
            url: format!("http://{addr}"),
            spans,
            task,
        }
    }

    /// The spans received so far.
    pub fn spans(&self) -> Vec<Received> {
        self.spans.lock().unwrap().clone()
    }
}

fn keep(kept: &Mutex<Vec<Received>>, export: ExportTraceServiceRequest) {
    let mut kept = kept.lock().unwrap();
    for resource_spans in export.resource_spans {
        let service = resource_spans
            .resource
            .as_ref()
            .map(|r| value_of(&r.attributes, "service.name"))
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                kept.push(Received {
                    service: service.clone(),
                    span,
                });
            }
        }
    }
}
