//! A counting OTLP/gRPC trace sink for benchmarks: it answers every `Export` and counts
//! requests and spans, keeping nothing.
//!
//! A real collector runs on another host; on a benchmark machine it shares the cores with
//! the proxy, so the sink must cost as little as possible: it decodes only the framing
//! down to each span's bytes (no attribute is decoded), unlike [`crate::otlp`]'s receiver,
//! which builds every span for assertions.

#![allow(
    clippy::expect_used,
    reason = "bench support: a sink that cannot start can only fail the run"
)]

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use tokio_util::sync::CancellationToken;
use tonic::body::Body;
use tonic::codegen::http;
use tonic_prost::ProstCodec;

/// `ExportTraceServiceRequest` with only what counting needs.
#[derive(Clone, PartialEq, prost::Message)]
struct Request {
    #[prost(message, repeated, tag = "1")]
    resource_spans: Vec<ResourceSpans>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ResourceSpans {
    #[prost(message, repeated, tag = "2")]
    scope_spans: Vec<ScopeSpans>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ScopeSpans {
    /// Each span left encoded.
    #[prost(bytes = "bytes", repeated, tag = "2")]
    spans: Vec<bytes::Bytes>,
}

#[derive(Default)]
struct Counts {
    requests: AtomicU64,
    spans: AtomicU64,
}

/// The running sink; stops when dropped.
pub struct OtlpSink {
    addr: SocketAddr,
    counts: Arc<Counts>,
    stop: CancellationToken,
}

impl OtlpSink {
    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// (export requests, spans) received so far.
    pub fn received(&self) -> (u64, u64) {
        (
            self.counts.requests.load(Ordering::Relaxed),
            self.counts.spans.load(Ordering::Relaxed),
        )
    }
}

impl Drop for OtlpSink {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Starts a sink on 127.0.0.1 with a free port, on a thread and runtime of its own.
pub fn start_otlp_sink() -> OtlpSink {
    let counts = Arc::new(Counts::default());
    let router = tonic::transport::Server::builder().add_service(Sink(counts.clone()));
    let (addr, stop) = crate::otlp::serve_on_own_thread("otlp-sink", router);
    OtlpSink { addr, counts, stop }
}

#[derive(Clone)]
struct Sink(Arc<Counts>);

impl tonic::server::NamedService for Sink {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = Result<T, Infallible>> + Send>>;

impl tonic::codegen::Service<http::Request<Body>> for Sink {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let sink = self.clone();
        Box::pin(async move {
            if req.uri().path() != "/opentelemetry.proto.collector.trace.v1.TraceService/Export" {
                return Ok(tonic::Status::unimplemented("only trace Export").into_http());
            }
            let mut grpc = tonic::server::Grpc::new(ProstCodec::<
                ExportTraceServiceResponse,
                Request,
            >::default());
            Ok(grpc.unary(sink, req).await)
        })
    }
}

impl tonic::server::UnaryService<Request> for Sink {
    type Response = ExportTraceServiceResponse;
    type Future = std::future::Ready<Result<tonic::Response<Self::Response>, tonic::Status>>;

    fn call(&mut self, request: tonic::Request<Request>) -> Self::Future {
        let spans: usize = request
            .get_ref()
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        self.0.requests.fetch_add(1, Ordering::Relaxed);
        self.0.spans.fetch_add(spans as u64, Ordering::Relaxed);
        std::future::ready(Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        })))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    use super::*;

    #[tokio::test]
    async fn counts_what_it_receives() {
        let sink = start_otlp_sink();
        let mut client = TraceServiceClient::connect(sink.endpoint()).await.unwrap();
        let scope = |n: usize| ScopeSpans {
            spans: vec![
                Span {
                    name: "pgward.query".into(),
                    ..Default::default()
                };
                n
            ],
            ..Default::default()
        };
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![scope(3), scope(2)],
                ..Default::default()
            }],
        };
        client.export(request.clone()).await.unwrap();
        client.export(request).await.unwrap();
        assert_eq!(sink.received(), (2, 10));
    }
}
