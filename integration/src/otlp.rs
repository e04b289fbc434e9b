//! An in-process OTLP/gRPC trace receiver: what a collector (or Jaeger) would see from
//! pgward, kept in memory for assertions.
//!
//! It runs on a thread and runtime of its own, so a test may block its own runtime (for
//! instance while the exporter flushes on shutdown) without starving the receiver.

#![allow(
    clippy::expect_used,
    reason = "test support: a receiver that cannot start can only fail the test"
)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use tokio_util::sync::CancellationToken;

/// One span as received, ids in lowercase hex (`parent_span_id` empty for a root span).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedSpan {
    pub name: String,
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
    /// Attribute values rendered as text (ints and bools via `to_string`).
    pub attributes: BTreeMap<String, String>,
    /// The resource's attributes (`service.name`, `service.version`, ...).
    pub resource: BTreeMap<String, String>,
    /// Linked spans as (trace id, span id).
    pub links: Vec<(String, String)>,
    /// The span status: 0 unset, 1 ok, 2 error (OTLP's `StatusCode`).
    pub status_code: i32,
}

impl ReceivedSpan {
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

/// The running receiver; stops when dropped.
pub struct OtlpReceiver {
    addr: SocketAddr,
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
    stop: CancellationToken,
}

/// Starts a receiver on 127.0.0.1 with a free port. Panics if it cannot (test support).
pub async fn start_otlp_receiver() -> OtlpReceiver {
    let spans = Arc::new(Mutex::new(Vec::new()));
    let collector = Collector {
        spans: spans.clone(),
    };
    let router =
        tonic::transport::Server::builder().add_service(TraceServiceServer::new(collector));
    let (addr, stop) = serve_on_own_thread("otlp-receiver", router);
    OtlpReceiver { addr, spans, stop }
}

/// Serves `router` on 127.0.0.1 with a free port from a thread and runtime of its own,
/// until the token is cancelled. Panics if it cannot start (test support).
pub(crate) fn serve_on_own_thread(
    name: &str,
    router: tonic::transport::server::Router,
) -> (SocketAddr, CancellationToken) {
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("grpc server runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("binding the grpc server");
                let _ = ready_tx.send(listener.local_addr().expect("grpc server address"));
                router
                    .serve_with_incoming_shutdown(
                        tonic::transport::server::TcpIncoming::from(listener),
                        stopped.cancelled_owned(),
                    )
                    .await
                    .expect("grpc server failed");
            });
        })
        .expect("spawning the grpc server thread");
    let addr = ready_rx.recv().expect("grpc server did not start");
    (addr, stop)
}

impl OtlpReceiver {
    /// `http://127.0.0.1:PORT`, for `TelemetryConfig::otlp_endpoint`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every span received so far, in arrival order.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans.lock().expect("spans lock").clone()
    }

    /// Waits until `predicate` holds for the spans received so far, or `timeout` passes;
    /// returns the spans either way (assert on them for a clear failure message).
    pub async fn wait_for(
        &self,
        predicate: impl Fn(&[ReceivedSpan]) -> bool,
        timeout: Duration,
    ) -> Vec<ReceivedSpan> {
        let deadline = Instant::now() + timeout;
        loop {
            let spans = self.spans();
            if predicate(&spans) || Instant::now() >= deadline {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

struct Collector {
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut received = Vec::new();
        for resource_spans in request.into_inner().resource_spans {
            let resource = resource_spans
                .resource
                .map(|r| attributes(&r.attributes))
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    received.push(ReceivedSpan {
                        name: span.name,
                        trace_id: hex(&span.trace_id),
                        span_id: hex(&span.span_id),
                        parent_span_id: hex(&span.parent_span_id),
                        attributes: attributes(&span.attributes),
                        resource: resource.clone(),
                        links: span
                            .links
                            .iter()
                            .map(|l| (hex(&l.trace_id), hex(&l.span_id)))
                            .collect(),
                        status_code: span.status.map_or(0, |s| s.code),
                    });
                }
            }
        }
        self.spans
            .lock()
            .map_err(|_| tonic::Status::internal("poisoned"))?
            .extend(received);
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

fn attributes(kvs: &[KeyValue]) -> BTreeMap<String, String> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), any_value(kv.value.as_ref())))
        .collect()
}

fn any_value(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(Value::ArrayValue(a)) => {
            let items: Vec<String> = a.values.iter().map(|v| any_value(Some(v))).collect();
            format!("[{}]", items.join(","))
        }
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
