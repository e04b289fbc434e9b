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
    SpanAttributes, SpanParent, StatementCounter, StatementRecord,
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
    attributes: AttributeCache,
}

/// How many statements' span attributes a session keeps encoded.
const CACHED_ATTRIBUTES: usize = 32;

/// The encoded span attributes of the statements a session ran lately. The decision
/// cache hands out one `Arc` of analysed statements per statement shape, role and policy
/// version, with its decision: a statement run again finds its own attributes by that
/// pointer. Each entry holds its `Arc`, so no other analysis can reuse the address.
#[derive(Default)]
struct AttributeCache {
    entries: Vec<(Arc<[StatementAccess]>, usize, SpanAttributes)>,
    /// The entry to replace next once full.
    next: usize,
}

impl AttributeCache {
    fn get(&mut self, database: &str, traced: &Traced) -> SpanAttributes {
        let build = || SpanAttributes::new(&query_fields(database, traced));
        // Refusals (rate limit, unanalysable) carry no analysis to key by.
        if traced.statements.is_empty() {
            return build();
        }
        let hit = self
            .entries
            .iter()
            .find(|(s, i, _)| Arc::ptr_eq(s, &traced.statements) && *i == traced.index);
        if let Some((_, _, attributes)) = hit {
            return attributes.clone();
        }
        let attributes = build();
        let entry = (traced.statements.clone(), traced.index, attributes.clone());
        if self.entries.len() < CACHED_ATTRIBUTES {
            self.entries.push(entry);
        } else if let Some(slot) = self.entries.get_mut(self.next) {
            *slot = entry;
            self.next = (self.next + 1) % CACHED_ATTRIBUTES;
        }
        attributes
    }
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
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        // With no exporter no span is built, nor any of its attributes.
        let span = if pgward_telemetry::exporting() {
            let parent = self.parent.get_or_init(|| SpanParent::of(session));
            let attributes = state.attributes.get(database, traced);
            QuerySpan::start(parent, &attributes, traced.parse.as_ref(), raw_sql)
        } else {
            QuerySpan::none()
        };
        state.open.push_back(OpenQuery {
            span,
            started: Instant::now(),
            sync_seq,
            kind,
            decision: traced.decision,
        });
    }

    /// The `pgward.parse` span of an allowed Parse (empty when nothing is exported).
    pub fn parse_span(&self, session: &Span, database: &str, traced: &Traced) -> ParseSpan {
        if !pgward_telemetry::exporting() {
            return ParseSpan::default();
        }
        let Ok(mut state) = self.state.lock() else {
            return ParseSpan::default();
        };
        let parent = self.parent.get_or_init(|| SpanParent::of(session));
        ParseSpan::start(parent, &state.attributes.get(database, traced))
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
        if q.span.is_recording() {
            q.span.finish(tag.and_then(returned_rows), sqlstate);
        }
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
    use pgward_sql::StatementKind;

    fn analysed(texts: &[&str]) -> Arc<[StatementAccess]> {
        texts
            .iter()
            .map(|t| StatementAccess {
                kind: StatementKind::Select,
                needs: Default::default(),
                normalized: (*t).to_owned(),
            })
            .collect()
    }

    fn traced(statements: &Arc<[StatementAccess]>, index: usize) -> Traced {
        Traced {
            statements: statements.clone(),
            index,
            decision: Decision::Allow,
            reason: None,
            parse: None,
        }
    }

    #[test]
    fn a_statement_run_again_reuses_its_encoded_attributes() {
        let mut cache = AttributeCache::default();
        let message = analysed(&["SELECT ?", "SELECT ? + ?"]);
        let first = cache.get("db", &traced(&message, 0));
        assert_eq!(cache.get("db", &traced(&message, 0)), first);
        assert_eq!(cache.entries.len(), 1, "a hit adds nothing");
        let second = cache.get("db", &traced(&message, 1));
        assert_ne!(second, first, "each statement of a message has its own");
        assert_eq!(cache.entries.len(), 2);
        // The same text from another analysis (another role, policy version) is another
        // entry: the key is the analysis, never the text.
        cache.get("db", &traced(&analysed(&["SELECT ?"]), 0));
        assert_eq!(cache.entries.len(), 3);
        // Bounded: old entries are replaced in turn.
        for i in 0..2 * CACHED_ATTRIBUTES {
            cache.get("db", &traced(&analysed(&[&format!("SELECT {i}")]), 0));
        }
        assert_eq!(cache.entries.len(), CACHED_ATTRIBUTES);
        // Refusals carry no analysis: built each time, never cached.
        cache.get("db", &traced(&analysed(&[]), 0));
        assert_eq!(cache.entries.len(), CACHED_ATTRIBUTES);
    }

    #[test]
    fn rows_from_command_tags() {
        assert_eq!(returned_rows(b"SELECT 5\0"), Some(5));
        assert_eq!(returned_rows(b"INSERT 0 3\0"), Some(3));
        assert_eq!(returned_rows(b"CREATE TABLE\0"), None);
        assert_eq!(returned_rows(b"BEGIN\0"), None);
    }
}
