//! The span exporter behind the batch processor: each batch is encoded once (otlp.rs)
//! and sent to the collector's `TraceService/Export` over gRPC (tonic), on the exporter's
//! own runtime.
//!
//! Never blocks a session: the batch processor calls it from its own thread, a collector
//! that is down costs one failed request per batch (the batch is dropped, counted and
//! reported in the log at most once a minute), and every request is bounded in time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use opentelemetry_sdk::Resource;
use prost::Message;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder as TonicEncoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};
use tonic::Status;

use crate::otlp::Encoder;

const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
/// gRPC servers refuse messages over 4 MiB by default (the OTel Collector and Jaeger
/// among them): a bigger batch is sent in parts.
pub(crate) const MAX_REQUEST_BYTES: usize = 3 * 1024 * 1024;
/// How often a collector that keeps failing is reported in the log.
const FAILURE_REPORT_EVERY: Duration = Duration::from_secs(60);

/// The gRPC channel to the collector, shared by the SDK's exporter (session spans) and
/// the statement-span thread.
pub(crate) struct Transport {
    endpoint: String,
    channel: Channel,
    runtime: tokio::runtime::Handle,
    timeout: Duration,
    failures: Failures,
}

impl Transport {
    /// Must be called inside `runtime`'s context: the channel's connection task is
    /// spawned there. Connects lazily, so a collector that is down does not stop startup.
    pub(crate) fn new(
        endpoint: &str,
        runtime: tokio::runtime::Handle,
        timeout: Duration,
    ) -> Result<Self, String> {
        let channel = Endpoint::from_shared(endpoint.to_owned())
            .map_err(|e| e.to_string())?
            .timeout(timeout)
            .connect_timeout(timeout)
            .connect_lazy();
        Ok(Transport {
            endpoint: endpoint.to_owned(),
            channel,
            runtime,
            timeout,
            failures: Failures::default(),
        })
    }

    /// Sends one encoded `ExportTraceServiceRequest`, from a thread outside the runtime.
    /// A failure is counted and reported (the spans are lost).
    pub(crate) fn send_blocking(&self, body: Vec<u8>, spans: u64) {
        if let Err(e) = self.runtime.block_on(self.send(Bytes::from(body))) {
            self.failures.record(&self.endpoint, spans, &e);
        }
    }

    async fn send(&self, body: Bytes) -> Result<(), String> {
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        let timeout = self.timeout;
        let task = self.runtime.spawn(async move {
            tokio::time::timeout(timeout, async move {
                grpc.ready().await.map_err(|e| e.to_string())?;
                grpc.unary(
                    tonic::Request::new(body),
                    PathAndQuery::from_static(EXPORT_PATH),
                    PrebuiltCodec,
                )
                .await
                .map_err(|status| format!("{}: {}", status.code(), status.message()))
            })
            .await
            .map_err(|_| format!("no answer within {timeout:?}"))?
        });
        let response = task.await.map_err(|e| e.to_string())??;
        if let Some(partial) = response.into_inner().partial_success {
            if partial.rejected_spans > 0 {
                return Err(format!(
                    "the collector rejected {} spans: {}",
                    partial.rejected_spans, partial.error_message
                ));
            }
        }
        Ok(())
    }
}

/// The SDK's span exporter (session, auth and parse spans).
pub(crate) struct OtlpExporter {
    transport: Arc<Transport>,
    /// Export is never called concurrently; the lock only makes the exporter `Sync`.
    encoder: Mutex<Encoder>,
}

impl std::fmt::Debug for OtlpExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpExporter")
            .field("endpoint", &self.transport.endpoint)
            .finish()
    }
}

impl OtlpExporter {
    pub(crate) fn new(transport: Arc<Transport>) -> Self {
        OtlpExporter {
            transport,
            encoder: Mutex::new(Encoder::default()),
        }
    }

    /// The requests for `spans`: one, unless it would be too large for the collector.
    fn encode(&self, spans: &[SpanData], out: &mut Vec<Bytes>) -> Result<(), OTelSdkError> {
        let mut body = Vec::new();
        self.encoder
            .lock()
            .map_err(|_| OTelSdkError::InternalFailure("encoder lock poisoned".into()))?
            .encode_request(spans, &mut body);
        if body.len() > MAX_REQUEST_BYTES && spans.len() > 1 {
            let (a, b) = spans.split_at(spans.len() / 2);
            self.encode(a, out)?;
            return self.encode(b, out);
        }
        out.push(Bytes::from(body));
        Ok(())
    }
}

impl SpanExporter for OtlpExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let mut requests = Vec::with_capacity(1);
        self.encode(&batch, &mut requests)?;
        let spans = batch.len() as u64;
        drop(batch);
        let mut first_error = None;
        for body in requests {
            if let Err(e) = self.transport.send(body).await {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            None => Ok(()),
            Some(e) => {
                self.transport
                    .failures
                    .record(&self.transport.endpoint, spans, &e);
                Err(OTelSdkError::InternalFailure(e))
            }
        }
    }

    fn set_resource(&mut self, resource: &Resource) {
        if let Ok(encoder) = self.encoder.get_mut() {
            encoder.set_resource(resource);
        }
    }
}

/// Failed exports since the last report, reported at most once a minute.
#[derive(Default)]
struct Failures {
    batches: AtomicU64,
    spans: AtomicU64,
    last_report: Mutex<Option<Instant>>,
}

impl Failures {
    fn record(&self, endpoint: &str, spans: u64, error: &str) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.spans.fetch_add(spans, Ordering::Relaxed);
        let Ok(mut last) = self.last_report.lock() else {
            return;
        };
        if last.is_some_and(|t| t.elapsed() < FAILURE_REPORT_EVERY) {
            return;
        }
        *last = Some(Instant::now());
        let batches = self.batches.swap(0, Ordering::Relaxed);
        let spans = self.spans.swap(0, Ordering::Relaxed);
        tracing::warn!(
            endpoint,
            batches,
            spans,
            error,
            "exporting spans failed; those spans are lost"
        );
    }
}

/// Sends an already encoded `ExportTraceServiceRequest` as it is; decodes the response.
struct PrebuiltCodec;

impl Codec for PrebuiltCodec {
    type Encode = Bytes;
    type Decode = ExportTraceServiceResponse;
    type Encoder = PrebuiltCodec;
    type Decoder = ResponseDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        PrebuiltCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        ResponseDecoder
    }
}

impl TonicEncoder for PrebuiltCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

struct ResponseDecoder;

impl Decoder for ResponseDecoder {
    type Item = ExportTraceServiceResponse;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
        ExportTraceServiceResponse::decode(src)
            .map(Some)
            .map_err(|e| Status::internal(format!("undecodable export response: {e}")))
    }
}
