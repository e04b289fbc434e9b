//! `pgward.query` spans, built directly on the OpenTelemetry SDK's tracer.
//!
//! A statement span goes through neither `tracing` nor tracing-opentelemetry: those add a
//! registry entry, field visitors and a second copy of every attribute to each span, which
//! measured ~12k instructions per statement — a third of what the relay itself costs. The
//! session, auth and parse spans (a few per session) stay `tracing` spans; a query span
//! takes its parent from them through [`SpanParent`].
//!
//! Attribute values are the normalized statement and policy words only, never a raw
//! literal (see [`QueryFields`]).

use std::sync::{Arc, OnceLock};

use opentelemetry::trace::{
    Link, Span as _, SpanContext, Status, TraceContextExt as _, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, Key, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::spans::{fields, QueryFields, QUERY_SPAN};
use crate::traceparent::application_context;

/// The tracer of the installed exporter; unset when nothing is exported.
static TRACER: OnceLock<SdkTracer> = OnceLock::new();

pub(crate) fn set_provider(provider: &SdkTracerProvider) {
    let _ = TRACER.set(provider.tracer("pgward"));
}

/// Where a session's statement spans hang: the OpenTelemetry context of its
/// `pgward.session` span, and the session's database name shared by all its spans. Taken
/// once per session (it costs a registry lookup).
#[derive(Clone, Default)]
pub struct SpanParent(Option<(Context, Arc<str>)>);

impl SpanParent {
    /// The context of `span`, a session on `database`; empty when no spans are exported.
    pub fn of(span: &tracing::Span, database: &str) -> SpanParent {
        if TRACER.get().is_none() {
            return SpanParent(None);
        }
        SpanParent(Some((span.context(), Arc::from(database))))
    }
}

/// A `pgward.parse` span and its span context, for the links of the Executes that use it.
#[derive(Clone)]
pub struct ParseSpan {
    /// Kept for its lifetime: the span ends when the prepared statement is gone.
    _span: tracing::Span,
    link: Option<SpanContext>,
}

impl ParseSpan {
    pub(crate) fn new(span: tracing::Span) -> ParseSpan {
        let link = TRACER
            .get()
            .map(|_| span.context().span().span_context().clone());
        ParseSpan { _span: span, link }
    }
}

/// An open `pgward.query` span; it ends with [`QuerySpan::finish`] or when dropped.
pub struct QuerySpan(Option<opentelemetry_sdk::trace::Span>);

impl QuerySpan {
    /// A span that records nothing (no exporter).
    pub fn none() -> QuerySpan {
        QuerySpan(None)
    }

    /// Starts the span of a statement, child of `parent` — or of the application's span
    /// when `raw_sql` carries a valid sqlcommenter `traceparent`. `parse` links an
    /// Execute to the Parse of its prepared statement.
    pub fn start(
        parent: &SpanParent,
        f: &QueryFields<'_>,
        parse: Option<&ParseSpan>,
        raw_sql: Option<&str>,
    ) -> QuerySpan {
        let (Some(tracer), Some((session, database))) = (TRACER.get(), parent.0.as_ref()) else {
            return QuerySpan(None);
        };
        let database = if **database == *f.database {
            database.clone()
        } else {
            Arc::from(f.database)
        };
        let mut attributes = Vec::with_capacity(9);
        attributes.push(kv_static(fields::DB_SYSTEM_NAME, "postgresql"));
        attributes.push(KeyValue::new(
            Key::from_static_str(fields::DB_NAMESPACE),
            Value::String(StringValue::from(database)),
        ));
        attributes.push(kv_static(fields::DB_OPERATION_NAME, f.operation));
        if let Some(collection) = f.collection {
            attributes.push(kv(fields::DB_COLLECTION_NAME, collection));
        }
        if let Some(text) = f.text {
            attributes.push(kv(fields::DB_QUERY_TEXT, text));
        }
        attributes.push(kv_static(fields::DECISION, f.decision.as_str()));
        if let Some(reason) = f.reason {
            attributes.push(kv(fields::DENY_REASON, reason));
        }
        let mut builder = tracer.span_builder(QUERY_SPAN).with_attributes(attributes);
        if let Some(link) = parse.and_then(|p| p.link.clone()) {
            builder = builder.with_links(vec![Link::with_context(link)]);
        }
        let app = raw_sql.and_then(application_context);
        let span = tracer.build_with_context(builder, app.as_ref().unwrap_or(session));
        QuerySpan(Some(span))
    }

    /// The statement's answer passed back: its row count (CommandComplete) or SQLSTATE.
    pub fn finish(self, returned_rows: Option<i64>, sqlstate: Option<&str>) {
        let Some(mut span) = self.0 else { return };
        if let Some(rows) = returned_rows {
            span.set_attribute(KeyValue::new(
                Key::from_static_str(fields::DB_RESPONSE_RETURNED_ROWS),
                rows,
            ));
        }
        if let Some(code) = sqlstate {
            span.set_attribute(kv(fields::DB_RESPONSE_STATUS_CODE, code));
            span.set_status(Status::error(format!("SQLSTATE {code}")));
        }
        span.end();
    }
}

fn kv_static(key: &'static str, value: &'static str) -> KeyValue {
    KeyValue::new(
        Key::from_static_str(key),
        Value::String(StringValue::from(value)),
    )
}

fn kv(key: &'static str, value: &str) -> KeyValue {
    KeyValue::new(Key::from_static_str(key), value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_an_exporter_nothing_is_built() {
        let span = QuerySpan::start(
            &SpanParent::default(),
            &QueryFields {
                database: "db",
                operation: "SELECT",
                text: Some("SELECT ?"),
                collection: None,
                decision: crate::Decision::Allow,
                reason: None,
            },
            None,
            None,
        );
        assert!(span.0.is_none());
        span.finish(Some(1), None);
    }
}
