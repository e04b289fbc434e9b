//! The global tracing subscriber: an env-filtered fmt layer to stderr and, when an OTLP
//! endpoint is configured, a tracing-opentelemetry layer feeding a batch span processor.
//!
//! The exporter gets a small tokio runtime of its own, so `install` works before the
//! proxy's runtime exists and flushing on shutdown cannot deadlock against a runtime the
//! caller is blocking.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tracing::{Metadata, Subscriber};
use tracing_subscriber::filter::{filter_fn, FilterFn, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::export::{OtlpExporter, Transport};
use crate::otlp::Encoder;
use crate::queue;
use crate::LogFormat;

/// How long shutdown waits for the last batch to reach the collector.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// Spans waiting for export; beyond it new spans are dropped (and counted by the SDK).
const MAX_QUEUED_SPANS: usize = 65_536;
/// Spans per export request.
const EXPORT_BATCH_SPANS: usize = 2_048;
/// How long one export may take before the batch is dropped.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// What `install` sets up; mirrors the `telemetry:` section of pgward.yaml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetryConfig {
    /// OTLP/gRPC collector, e.g. `http://127.0.0.1:4317`. `None`: no exporter at all.
    pub otlp_endpoint: Option<String>,
    /// The `service.name` resource attribute.
    pub service_name: String,
    pub log_format: LogFormat,
    /// Log filter when `RUST_LOG` is unset, e.g. `"info"`.
    pub default_filter: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: "pgward".to_string(),
            log_format: LogFormat::Text,
            default_filter: "info".to_string(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid log filter: {0}")]
    Filter(String),
    #[error("starting the OTLP exporter runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("building the OTLP exporter for {endpoint}: {message}")]
    Exporter { endpoint: String, message: String },
    #[error("a global tracing subscriber is already installed: {0}")]
    AlreadyInstalled(String),
}

/// Keeps the exporter alive; [`TelemetryGuard::shutdown`] (or drop) flushes pending spans.
#[must_use = "dropping the guard shuts the span exporter down"]
pub struct TelemetryGuard {
    exporter: Option<Exporter>,
}

struct Exporter {
    provider: SdkTracerProvider,
    /// The statement-span thread; `None` if another install in this process owns it.
    queries: Option<queue::Exporting>,
    runtime: tokio::runtime::Runtime,
}

impl TelemetryGuard {
    /// Whether spans are being exported (an endpoint was configured).
    pub fn exporting(&self) -> bool {
        self.exporter.is_some()
    }

    /// Flushes the spans still queued and stops the exporter. Blocks for up to a few
    /// seconds; safe to call from inside a tokio runtime of any flavour (the exporter runs
    /// on its own runtime), though from async code `spawn_blocking` is kinder.
    pub fn shutdown(mut self) {
        self.shutdown_inner();
    }

    fn shutdown_inner(&mut self) {
        if let Some(Exporter {
            provider,
            queries,
            runtime,
        }) = self.exporter.take()
        {
            // Statement spans first: the thread sends on `runtime`.
            if let Some(queries) = queries {
                queries.stop();
            }
            if let Err(e) = provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT) {
                // The subscriber may be gone at process exit, so say it on stderr too.
                eprintln!("pgward: flushing spans failed: {e}");
            }
            // Dropping a runtime inside another runtime's context panics; this does not.
            runtime.shutdown_background();
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        self.shutdown_inner();
    }
}

impl std::fmt::Debug for TelemetryGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelemetryGuard")
            .field("exporting", &self.exporting())
            .finish()
    }
}

/// Installs the global subscriber. `RUST_LOG` overrides `cfg.default_filter` for the logs;
/// span export does not depend on the log level (it takes every `pgward*` span at INFO or
/// above, and `pgward*` events at WARN or above as span events). Can succeed once per
/// process.
pub fn install(cfg: &TelemetryConfig) -> Result<TelemetryGuard, TelemetryError> {
    let filter = log_filter(cfg)?;
    let exporter = match &cfg.otlp_endpoint {
        Some(endpoint) => Some(build_exporter(endpoint, &cfg.service_name)?),
        None => None,
    };
    let otel = exporter.as_ref().map(|e: &Exporter| {
        // Every attribute the layer adds by itself would cost each statement its
        // conversion and encoding in the exporter, and the timing and context-activation
        // bookkeeping run on every poll of a session's future (its span is entered per
        // poll): none of it is in SPEC §6, so all of it is off.
        tracing_opentelemetry::layer()
            .with_tracer(e.provider.tracer("pgward"))
            .with_threads(false)
            .with_location(false)
            .with_target(false)
            .with_tracked_inactivity(false)
            .with_context_activation(false)
            .with_filter(export_filter())
    });

    // Made before try_init so that on failure the guard's Drop stops the exporter runtime
    // (dropping a runtime plainly would panic inside async code).
    let format = cfg.log_format;
    let guard = TelemetryGuard { exporter };
    let installed = match otel {
        // Logs only: one global filter. Per-layer filters would check every enter and exit
        // of a span (the session span: every poll of a session) against each layer, and a
        // layer-less `None` would make spans below the log level be built and entered too.
        None => tracing_subscriber::registry()
            .with(filter.into_layer())
            .with(fmt_layer(format))
            .try_init(),
        Some(otel) => tracing_subscriber::registry()
            .with(filter.filtering(fmt_layer(format)))
            .with(otel)
            .try_init(),
    };
    installed.map_err(|e| TelemetryError::AlreadyInstalled(e.to_string()))?;
    EXPORTING.store(guard.exporting(), Ordering::Relaxed);
    Ok(guard)
}

#[allow(
    clippy::large_enum_variant,
    reason = "one value, built once at startup and consumed by install"
)]
enum LogFilter {
    Targets(Targets),
    Env(EnvFilter),
}

impl LogFilter {
    /// As a global filter.
    fn into_layer<S>(self) -> Box<dyn Layer<S> + Send + Sync>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        match self {
            LogFilter::Targets(t) => Layer::boxed(t),
            LogFilter::Env(e) => Layer::boxed(e),
        }
    }

    /// As the per-layer filter of `layer` (the log layer beside the exporter's).
    fn filtering<S>(self, layer: Box<dyn Layer<S> + Send + Sync>) -> Box<dyn Layer<S> + Send + Sync>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        match self {
            LogFilter::Targets(t) => layer.with_filter(t).boxed(),
            LogFilter::Env(e) => layer.with_filter(e).boxed(),
        }
    }
}

fn fmt_layer<S>(format: LogFormat) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed(),
    }
}

/// `RUST_LOG` if set and valid, else `cfg.default_filter`. A plain list of `target=level`
/// directives becomes a `Targets` filter; only directives on span names or fields need
/// `EnvFilter`, which tracks spans at run time and so takes a lock on every enter and exit
/// of a span — the session span is entered on every poll of the session.
fn log_filter(cfg: &TelemetryConfig) -> Result<LogFilter, TelemetryError> {
    let from_env = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let mut last_error = None;
    for directives in [from_env.as_deref(), Some(cfg.default_filter.as_str())]
        .into_iter()
        .flatten()
    {
        if let Ok(targets) = directives.parse::<Targets>() {
            return Ok(LogFilter::Targets(targets));
        }
        match EnvFilter::try_new(directives) {
            Ok(env) => return Ok(LogFilter::Env(env)),
            Err(e) => last_error = Some(e.to_string()),
        }
    }
    Err(TelemetryError::Filter(last_error.unwrap_or_default()))
}

/// Set once by `install`, like the global subscriber it describes.
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether the installed subscriber exports spans: when it does not, per-statement spans
/// would be disabled anyway, so callers skip building their attributes altogether.
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// Only pgward's own spans go to the collector: the exporter's own stack (tonic, h2, hyper)
/// must never feed spans back into itself, and library spans would only add noise.
fn export_filter() -> FilterFn<fn(&Metadata<'_>) -> bool> {
    filter_fn(is_exported as fn(&Metadata<'_>) -> bool)
}

fn is_exported(meta: &Metadata<'_>) -> bool {
    let max = if meta.is_span() {
        tracing::Level::INFO
    } else {
        tracing::Level::WARN
    };
    meta.target().starts_with("pgward") && *meta.level() <= max
}

fn build_exporter(endpoint: &str, service_name: &str) -> Result<Exporter, TelemetryError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("pgward-otlp")
        .enable_all()
        .build()
        .map_err(TelemetryError::Runtime)?;
    // The tonic channel spawns its connection task on the runtime it is built in.
    let built = {
        let _entered = runtime.enter();
        Transport::new(endpoint, runtime.handle().clone(), EXPORT_TIMEOUT)
    };
    let transport = match built {
        Ok(transport) => Arc::new(transport),
        Err(message) => {
            // A plain drop of a runtime panics inside async code.
            runtime.shutdown_background();
            return Err(TelemetryError::Exporter {
                endpoint: endpoint.to_string(),
                message,
            });
        }
    };
    let resource = Resource::builder()
        .with_service_name(service_name.to_string())
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    // A queue for a few seconds of statements at high rates (a full queue drops spans),
    // exported in large batches (fewer, bigger requests).
    let mut query_encoder = Encoder::default();
    query_encoder.set_resource(&resource);
    let queries = queue::start(
        transport.clone(),
        query_encoder,
        MAX_QUEUED_SPANS,
        EXPORT_BATCH_SPANS,
    );
    let batch = BatchSpanProcessor::builder(OtlpExporter::new(transport))
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_max_queue_size(MAX_QUEUED_SPANS)
                .with_max_export_batch_size(EXPORT_BATCH_SPANS)
                .build(),
        )
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(batch)
        .with_resource(resource)
        .build();
    Ok(Exporter {
        provider,
        queries,
        runtime,
    })
}
