//! Observability for pgward: structured logs, OpenTelemetry spans exported over OTLP/gRPC,
//! the audit log (JSON lines), Prometheus metrics and the admin HTTP listener.
//!
//! Never logs a secret or a raw statement literal: spans and audit records carry only the
//! normalized statement text (`pgward_sql::StatementAccess::normalized`, literals replaced
//! by `?`), and the audit types cannot be built from anything else.

mod admin;
mod audit;
mod export;
mod histogram;
mod metrics;
mod otlp;
mod pipeline;
mod query;
mod queue;
mod spans;
mod time;
mod traceparent;

pub use admin::{serve_admin, AdminState};
pub use audit::{AuditError, AuditLog, NormalizedSql, SessionInfo, StatementRecord};
pub use metrics::{Metrics, StatementCounter};
pub use pipeline::{exporting, install, TelemetryConfig, TelemetryError, TelemetryGuard};
pub use query::{ParseSpan, QuerySpan, SpanAttributes, SpanParent};
pub use spans::{
    fields, session_span, Decision, QueryFields, AUTH_SPAN, PARSE_SPAN, QUERY_SPAN, SESSION_SPAN,
    UPSTREAM_CONNECT_SPAN,
};
pub use traceparent::{parse_sqlcommenter, SqlComment};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Installs the global subscriber with logs only (no span export). `RUST_LOG` overrides
/// `default_filter`. Returns an error if a subscriber is already installed (tests call it
/// repeatedly). Kept for callers that have no telemetry configuration; see [`install`].
pub fn init(default_filter: &str, format: LogFormat) -> Result<(), String> {
    install(&TelemetryConfig {
        otlp_endpoint: None,
        service_name: "pgward".to_string(),
        log_format: format,
        default_filter: default_filter.to_string(),
    })
    .map(drop)
    .map_err(|e| e.to_string())
}
