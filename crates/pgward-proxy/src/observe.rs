//! What a session tells SREs: a `pgward.query` span per statement (ended when its
//! CommandComplete or ErrorResponse passes back), an audit line per decision, and the
//! metrics. Only normalized statement text (literals replaced by `?`) is ever recorded.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use pgward_policy::{Denial, Need, Permit};
use pgward_sql::StatementAccess;
use pgward_telemetry::{
    AdminState, AuditLog, Decision, Metrics, ParseSpan, QueryFields, QuerySpan, SessionInfo,
    SpanParent, StatementCounter, StatementRecord,
};
use tracing::Span;

use crate::config::Config;
use crate::error::ConfigError;

/// The process's metrics, audit log and admin state.
pub struct Observe {
    pub metrics: Arc<Metrics>,
    pub audit: Option<AuditLog>,
    pub admin: Arc<AdminState>,
}

impl Observe {
    pub fn new(config: &Config) -> Result<Observe, ConfigError> {
        let metrics = Arc::new(Metrics::new());
        let audit = match &config.audit_path {
            Some(path) => Some(
                AuditLog::open(path)
                    .map_err(|e| ConfigError::Invalid {
                        path: "audit.path".to_owned(),
                        message: e.to_string(),
                    })?
                    .count_drops_in(&metrics),
            ),
            None => None,
        };
        Ok(Observe {
            admin: Arc::new(AdminState::new(metrics.clone())),
            metrics,
            audit,
        })
    }
}

/// The decision of a statement as telemetry names it.
pub fn decision_of(result: &Result<Permit, Denial>) -> (Decision, Option<String>) {
    match result {
        Ok(permit) => match permit.would_deny() {
            Some(d) => (Decision::WouldDeny, Some(d.message())),
            None => (Decision::Allow, None),
        },
        Err(d) => (Decision::Deny, Some(d.message())),
    }
}

/// What a statement was decided as, for its span (and a prepared statement's or portal's,
/// for the spans of its Executes). Shares the cached analysis instead of copying it.
#[derive(Clone)]
pub struct Traced {
    pub statements: Arc<[StatementAccess]>,
    /// Which statement of a multi-statement message this is.
    pub index: usize,
    pub decision: Decision,
    pub reason: Option<String>,
    /// The `pgward.parse` span of a prepared statement, linked from each Execute.
    pub parse: Option<ParseSpan>,
}

impl Traced {
    pub fn access(&self) -> Option<&StatementAccess> {
        self.statements.get(self.index)
    }
}

struct OpenQuery {
    span: QuerySpan,
    started: Instant,
    sync_seq: u64,
    kind: &'static str,
    decision: Decision,
}

/// The open query spans of one session, in the order their answers will come back.
#[derive(Default)]
pub struct QueryTrace {
    state: Mutex<TraceState>,
    /// The session span's context, taken at the first statement.
    parent: OnceLock<SpanParent>,
}

#[derive(Default)]
struct TraceState {
    open: VecDeque<OpenQuery>,
    /// The statement counters this session has bumped (a label lookup costs more than
    /// the rest of the bookkeeping of a statement).
    counters: Vec<(Decision, &'static str, StatementCounter)>,
}

impl TraceState {
    fn count(&mut self, metrics: &Metrics, q: &OpenQuery) {
        let known = self
            .counters
            .iter()
            .find(|(d, k, _)| *d == q.decision && std::ptr::eq(*k, q.kind));
        match known {
            Some((_, _, counter)) => counter.inc(),
            None => {
                let counter = metrics.statement_counter(q.decision, q.kind);
                counter.inc();
                self.counters.push((q.decision, q.kind, counter));
            }
        }
        metrics.statement_duration(q.started.elapsed());
    }
}

impl QueryTrace {
    /// Opens a span for a statement whose answer closes batch `sync_seq`.
    pub fn start(
        &self,
        session: &Span,
        database: &str,
        raw_sql: Option<&str>,
        traced: &Traced,
        sync_seq: u64,
    ) {
        let kind = operation(traced);
        // With no exporter no span is built, nor any of its attributes.
        let span = if pgward_telemetry::exporting() {
            let parent = self
                .parent
                .get_or_init(|| SpanParent::of(session, database));
            QuerySpan::start(
                parent,
                query_fields(database, traced),
                traced.parse.as_ref(),
                raw_sql,
            )
        } else {
            QuerySpan::none()
        };
        if let Ok(mut state) = self.state.lock() {
            state.open.push_back(OpenQuery {
                span,
                started: Instant::now(),
                sync_seq,
                kind,
                decision: traced.decision,
            });
        }
    }

    /// The `pgward.parse` span of an allowed Parse (empty when nothing is exported).
    pub fn parse_span(&self, session: &Span, database: &str, traced: &Traced) -> ParseSpan {
        if !pgward_telemetry::exporting() {
            return ParseSpan::default();
        }
        let parent = self
            .parent
            .get_or_init(|| SpanParent::of(session, database));
        ParseSpan::start(parent, query_fields(database, traced))
    }

    /// The oldest open statement got its answer: CommandComplete (`tag`), or an error.
    pub fn complete(&self, metrics: &Metrics, tag: Option<&[u8]>, sqlstate: Option<&str>) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let Some(q) = state.open.pop_front() else {
            return;
        };
        state.count(metrics, &q);
        drop(state);
        q.span.finish(tag.and_then(returned_rows), sqlstate);
    }

    /// ReadyForQuery number `seq`: statements of batches up to it that got no answer
    /// (skipped after an error) end now.
    pub fn sync(&self, metrics: &Metrics, seq: u64) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        while state.open.front().is_some_and(|q| q.sync_seq <= seq) {
            if let Some(q) = state.open.pop_front() {
                state.count(metrics, &q);
            }
        }
    }
}

/// Writes the audit line of each statement of a decision.
pub fn audit_decision(
    audit: Option<&AuditLog>,
    session: &SessionInfo,
    statements: &[StatementAccess],
    decision: Decision,
    reason: Option<&str>,
) {
    let Some(audit) = audit else { return };
    if statements.is_empty() {
        audit.statement(session, &StatementRecord::unanalysed(decision, reason));
    }
    for access in statements {
        audit.statement(session, &StatementRecord::new(access, decision, reason));
    }
}

/// `db.operation.name` of a statement (`UNKNOWN` when unanalysed).
fn operation(traced: &Traced) -> &'static str {
    traced
        .access()
        .map(|a| a.kind.operation_name())
        .unwrap_or("UNKNOWN")
}

/// The span attributes of a statement.
fn query_fields<'a>(database: &'a str, traced: &'a Traced) -> QueryFields<'a> {
    let access = traced.access();
    QueryFields {
        database,
        operation: operation(traced),
        text: access.map(|a| a.normalized.as_str()),
        collection: access.and_then(first_relation),
        decision: traced.decision,
        reason: traced.reason.as_deref(),
    }
}

fn first_relation(access: &StatementAccess) -> Option<String> {
    access.needs.iter().find_map(|n| match n {
        Need::Column { relation, .. }
        | Need::AnyColumn { relation, .. }
        | Need::Relation { relation, .. } => {
            // Not `to_string()`: the formatting machinery costs more than the span.
            let mut name = String::with_capacity(relation.schema.len() + 1 + relation.name.len());
            name.push_str(&relation.schema);
            name.push('.');
            name.push_str(&relation.name);
            Some(name)
        }
        Need::Function { .. } | Need::Ddl => None,
    })
}

/// The row count of a CommandComplete tag (`SELECT 5`, `INSERT 0 3`, `UPDATE 2`, ...).
fn returned_rows(tag: &[u8]) -> Option<i64> {
    let tag = tag.strip_suffix(b"\0").unwrap_or(tag);
    let text = std::str::from_utf8(tag).ok()?;
    let mut words = text.split_ascii_whitespace();
    let verb = words.next()?;
    if !matches!(
        verb,
        "SELECT" | "INSERT" | "UPDATE" | "DELETE" | "MERGE" | "COPY" | "FETCH" | "MOVE"
    ) {
        return None;
    }
    words.last()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_from_command_tags() {
        assert_eq!(returned_rows(b"SELECT 5\0"), Some(5));
        assert_eq!(returned_rows(b"INSERT 0 3\0"), Some(3));
        assert_eq!(returned_rows(b"CREATE TABLE\0"), None);
        assert_eq!(returned_rows(b"BEGIN\0"), None);
    }
}
