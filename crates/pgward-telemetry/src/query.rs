//! `pgward.query` spans: one small record per statement, queued and encoded straight to
//! OTLP by pgward's own export thread (queue.rs, otlp.rs).
//!
//! A statement span goes through neither `tracing` (a registry entry, field visitors and
//! a second copy of every attribute: ~12k instructions per statement, measured) nor the
//! OpenTelemetry SDK's span objects (building one, ending it into a `SpanData` that moves
//! through a channel and a batch, and matching every attribute value on export: ~5k more):
//! at tens of thousands of statements a second those were more than the relay itself.
//! `pgward.parse` spans (one per named prepared statement; the proxy gives the unnamed
//! statement, parsed again before each execution, none) take the same path. The session and auth spans (a few per
//! session) stay `tracing` spans exported by the SDK; statement and parse spans take their
//! parent from the session span through [`SpanParent`], with the SDK's parent-based
//! sampling: a parent that is not sampled records no child.
//!
//! Attribute values are the normalized statement and policy words only, never a raw
//! literal (see [`QueryFields`]).

use std::sync::Arc;
use std::time::SystemTime;

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt as _};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::spans::{QueryFields, PARSE_SPAN, QUERY_SPAN};
use crate::traceparent::application_context;
use crate::{otlp, queue};

/// Where a session's statement spans hang: the span context of its `pgward.session`
/// span. Taken once per session (it costs a registry lookup).
#[derive(Clone, Default)]
pub struct SpanParent(Option<SpanContext>);

impl SpanParent {
    /// The context of `span`; empty when no spans are exported.
    pub fn of(span: &tracing::Span) -> SpanParent {
        if !queue::installed() {
            return SpanParent(None);
        }
        let cx = span.context();
        SpanParent(Some(cx.span().span_context().clone()))
    }
}

/// The attributes the spans of one statement share — all but the row count and the
/// SQLSTATE —, encoded once as the OTLP `KeyValue` fields of a span: every Execute of a
/// prepared statement, and the parse and query spans of one Parse, copy these bytes
/// instead of copying and encoding each value again.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpanAttributes(Arc<[u8]>);

impl SpanAttributes {
    /// Encodes the attributes of `f` (normalized text and policy words only).
    pub fn new(f: &QueryFields<'_>) -> SpanAttributes {
        SpanAttributes(Arc::from(otlp::encode_attributes(f)))
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// An open `pgward.parse` span: it lives as long as the prepared statement (every clone
/// of it), and each Execute's query span links to it. Empty when nothing is exported.
#[derive(Clone, Default)]
pub struct ParseSpan(Option<Arc<OpenParse>>);

/// Ends and queues the parse span when the last clone is gone.
struct OpenParse(Option<QueryRecord>);

impl Drop for OpenParse {
    fn drop(&mut self) {
        if let Some(mut record) = self.0.take() {
            record.end = SystemTime::now();
            queue::push(record);
        }
    }
}

impl ParseSpan {
    /// Starts the span of an allowed Parse, child of `parent` (the session's span).
    pub fn start(parent: &SpanParent, attributes: &SpanAttributes) -> ParseSpan {
        let mut span = QuerySpan::start(parent, attributes, None, None);
        ParseSpan(span.0.take().map(|mut r| {
            r.name = PARSE_SPAN;
            Arc::new(OpenParse(Some(*r)))
        }))
    }

    /// The span's context, for the links of the Executes that use the statement.
    fn link(&self) -> Option<&SpanContext> {
        self.0.as_ref()?.0.as_ref().map(|r| &r.context)
    }
}

/// A statement span as the export queue holds it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QueryRecord {
    /// `pgward.query`, or `pgward.parse`.
    pub name: &'static str,
    /// The span's own context: trace id, span id, flags and state (the parent's).
    pub context: SpanContext,
    pub parent_span_id: SpanId,
    pub parent_is_remote: bool,
    pub start: SystemTime,
    pub end: SystemTime,
    /// The Parse of the prepared statement an Execute runs.
    pub link: Option<SpanContext>,
    pub attributes: SpanAttributes,
    pub returned_rows: Option<i64>,
    pub sqlstate: Option<String>,
}

/// An open `pgward.query` span; it ends with [`QuerySpan::finish`] or when dropped. The
/// record is boxed: a session keeps its open spans in a queue, and an unexported span is
/// then one word to move rather than the whole record.
pub struct QuerySpan(Option<Box<QueryRecord>>);

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
        attributes: &SpanAttributes,
        parse: Option<&ParseSpan>,
        raw_sql: Option<&str>,
    ) -> QuerySpan {
        let Some(session) = parent.0.as_ref() else {
            return QuerySpan(None);
        };
        let app = raw_sql.and_then(application_context);
        let app_span = app.as_ref().map(|cx| cx.span());
        let parent_sc = match &app_span {
            Some(span) => span.span_context(),
            None => session,
        };
        // Parent-based sampling, as the SDK's default sampler does.
        if !parent_sc.is_sampled() {
            return QuerySpan(None);
        }
        let context = SpanContext::new(
            parent_sc.trace_id(),
            RandomIdGenerator::default().new_span_id(),
            parent_sc.trace_flags(),
            false,
            parent_sc.trace_state().clone(),
        );
        QuerySpan(Some(Box::new(QueryRecord {
            name: QUERY_SPAN,
            parent_span_id: parent_sc.span_id(),
            parent_is_remote: parent_sc.is_remote(),
            context,
            start: SystemTime::now(),
            end: SystemTime::UNIX_EPOCH,
            link: parse
                .and_then(ParseSpan::link)
                .filter(|link| link.is_valid())
                .cloned(),
            attributes: attributes.clone(),
            returned_rows: None,
            sqlstate: None,
        })))
    }

    /// Whether the span is exported (so what [`QuerySpan::finish`] takes is worth working out).
    pub fn is_recording(&self) -> bool {
        self.0.is_some()
    }

    /// The statement's answer passed back: its row count (CommandComplete) or SQLSTATE.
    pub fn finish(mut self, returned_rows: Option<i64>, sqlstate: Option<&str>) {
        if let Some(record) = self.0.as_mut() {
            record.returned_rows = returned_rows;
            record.sqlstate = sqlstate.map(str::to_owned);
        }
        // Drop ends and queues it.
    }
}

impl Drop for QuerySpan {
    fn drop(&mut self) {
        if let Some(mut record) = self.0.take() {
            record.end = SystemTime::now();
            queue::push(*record);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_an_exporter_nothing_is_built() {
        let span = QuerySpan::start(
            &SpanParent::default(),
            &SpanAttributes::default(),
            None,
            None,
        );
        assert!(span.0.is_none() && !span.is_recording());
        span.finish(Some(1), None);
    }
}
