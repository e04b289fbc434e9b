//! The audit log: one JSON line per session start, session end and statement decision,
//! written to stdout or a file by a writer thread.
//!
//! Never holds a raw literal or a secret: statement text enters only as [`NormalizedSql`],
//! which can only be made from the analyser's output. Never blocks the relay: lines go
//! through a bounded channel; when the writer falls behind, lines are dropped and counted
//! ([`AuditLog::dropped`], and `pgward_audit_dropped_total` once wired to [`Metrics`]).

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::SystemTime;

use pgward_sql::{Need, StatementAccess};
use prometheus_client::metrics::counter::Counter;
use serde::Serialize;

use crate::metrics::Metrics;
use crate::spans::Decision;
use crate::time::rfc3339;

/// Lines buffered between the relay and the writer thread before lines are dropped.
pub const DEFAULT_CAPACITY: usize = 8192;

/// Statement text with every literal replaced by `?`. The only way to make one is from the
/// analyser's output, so raw SQL text cannot reach an audit line or a span by mistake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct NormalizedSql(String);

impl NormalizedSql {
    /// The analyser's normalized text of this statement.
    pub fn from_access(access: &StatementAccess) -> Self {
        Self(access.normalized.clone())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Who a session is; logged with every line of the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub session_id: String,
    /// The login name the client gave.
    pub user: String,
    /// The policy role, once authenticated.
    pub role: Option<String>,
    pub client_address: SocketAddr,
    pub database: String,
}

/// One statement decision. Build it with [`StatementRecord::new`] (from the analysis) or
/// [`StatementRecord::unanalysed`] (the statement could not be analysed: its text is not
/// logged at all, since only the analyser can strip its literals).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementRecord {
    statement: Option<NormalizedSql>,
    kind: &'static str,
    decision: Decision,
    reason: Option<String>,
    tables: BTreeSet<String>,
    columns: BTreeSet<String>,
    functions: BTreeSet<String>,
}

impl StatementRecord {
    /// `reason` is the denial's text (policy reasons name tables and columns, never values).
    pub fn new(access: &StatementAccess, decision: Decision, reason: Option<&str>) -> Self {
        let mut tables = BTreeSet::new();
        let mut columns = BTreeSet::new();
        let mut functions = BTreeSet::new();
        for need in &access.needs {
            match need {
                Need::Column {
                    relation, column, ..
                } => {
                    tables.insert(relation.to_string());
                    columns.insert(format!("{relation}.{column}"));
                }
                Need::AnyColumn { relation, .. } | Need::Relation { relation, .. } => {
                    tables.insert(relation.to_string());
                }
                Need::Function { function } => {
                    functions.insert(function.to_string());
                }
                Need::Ddl => {}
            }
        }
        Self {
            statement: Some(NormalizedSql::from_access(access)),
            kind: access.kind.operation_name(),
            decision,
            reason: reason.map(str::to_string),
            tables,
            columns,
            functions,
        }
    }

    /// A statement the analyser rejected (a parse error is a denial).
    pub fn unanalysed(decision: Decision, reason: Option<&str>) -> Self {
        Self {
            statement: None,
            kind: "UNKNOWN",
            decision,
            reason: reason.map(str::to_string),
            tables: BTreeSet::new(),
            columns: BTreeSet::new(),
            functions: BTreeSet::new(),
        }
    }

    pub fn decision(&self) -> Decision {
        self.decision
    }

    pub fn statement(&self) -> Option<&NormalizedSql> {
        self.statement.as_ref()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("opening the audit log {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("starting the audit writer thread: {0}")]
    Spawn(#[source] std::io::Error),
}

/// The audit log handle; cheap to share behind an `Arc`. Dropping it (or [`close`])
/// writes out every line already accepted.
///
/// [`close`]: AuditLog::close
#[derive(Debug)]
pub struct AuditLog {
    tx: Option<SyncSender<String>>,
    writer: Option<JoinHandle<()>>,
    dropped: Counter,
}

#[derive(Serialize)]
struct Line<'a> {
    time: String,
    event: &'static str,
    session_id: &'a str,
    user: &'a str,
    role: Option<&'a str>,
    client_address: String,
    client_port: u16,
    database: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<&'a str>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    statement: Option<StatementFields<'a>>,
}

#[derive(Serialize)]
struct StatementFields<'a> {
    statement: Option<&'a NormalizedSql>,
    kind: &'static str,
    decision: &'static str,
    reason: Option<&'a str>,
    tables: &'a BTreeSet<String>,
    columns: &'a BTreeSet<String>,
    functions: &'a BTreeSet<String>,
}

impl AuditLog {
    /// Opens `path` for appending (`"-"`: stdout) with [`DEFAULT_CAPACITY`].
    pub fn open(path: &str) -> Result<Self, AuditError> {
        Self::with_capacity(path, DEFAULT_CAPACITY)
    }

    pub fn with_capacity(path: &str, capacity: usize) -> Result<Self, AuditError> {
        let out: Box<dyn Write + Send> = if path == "-" {
            Box::new(std::io::stdout())
        } else {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|source| AuditError::Open {
                    path: path.into(),
                    source,
                })?;
            Box::new(file)
        };
        let (tx, rx) = mpsc::sync_channel(capacity.max(1));
        let writer = std::thread::Builder::new()
            .name("pgward-audit".into())
            .spawn(move || write_lines(rx, BufWriter::new(out)))
            .map_err(AuditError::Spawn)?;
        Ok(Self {
            tx: Some(tx),
            writer: Some(writer),
            dropped: Counter::default(),
        })
    }

    /// Counts dropped lines in `metrics` (`pgward_audit_dropped_total`) from now on.
    pub fn count_drops_in(mut self, metrics: &Metrics) -> Self {
        self.dropped = metrics.audit_dropped_counter();
        self
    }

    /// Lines dropped because the writer could not keep up.
    pub fn dropped(&self) -> u64 {
        self.dropped.get()
    }

    pub fn session_start(&self, session: &SessionInfo) {
        self.send(line(session, "session_start", None, None));
    }

    pub fn session_end(&self, session: &SessionInfo, outcome: &str) {
        self.send(line(session, "session_end", Some(outcome), None));
    }

    /// Logs the decision; denials also go to the tracing log at WARN (target `audit`).
    pub fn statement(&self, session: &SessionInfo, record: &StatementRecord) {
        let statement = record.statement.as_ref().map(NormalizedSql::as_str);
        match record.decision {
            Decision::Allow => tracing::debug!(
                target: "audit",
                session_id = %session.session_id,
                user = %session.user,
                statement,
                "statement allowed"
            ),
            Decision::Deny | Decision::WouldDeny => tracing::warn!(
                target: "audit",
                session_id = %session.session_id,
                user = %session.user,
                role = session.role.as_deref(),
                decision = record.decision.as_str(),
                reason = record.reason.as_deref(),
                statement,
                "statement denied"
            ),
        }
        let fields = StatementFields {
            statement: record.statement.as_ref(),
            kind: record.kind,
            decision: record.decision.as_str(),
            reason: record.reason.as_deref(),
            tables: &record.tables,
            columns: &record.columns,
            functions: &record.functions,
        };
        self.send(line(session, "statement", None, Some(fields)));
    }

    /// Writes out every accepted line and stops the writer thread.
    pub fn close(mut self) {
        self.close_inner();
    }

    fn close_inner(&mut self) {
        drop(self.tx.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }

    fn send(&self, line: Option<String>) {
        let (Some(tx), Some(line)) = (&self.tx, line) else {
            return;
        };
        match tx.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.inc();
            }
        }
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.close_inner();
    }
}

fn line(
    session: &SessionInfo,
    event: &'static str,
    outcome: Option<&str>,
    statement: Option<StatementFields<'_>>,
) -> Option<String> {
    let line = Line {
        time: rfc3339(SystemTime::now()),
        event,
        session_id: &session.session_id,
        user: &session.user,
        role: session.role.as_deref(),
        client_address: session.client_address.ip().to_string(),
        client_port: session.client_address.port(),
        database: &session.database,
        outcome,
        statement,
    };
    match serde_json::to_string(&line) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!(target: "audit", error = %e, "serializing an audit line");
            None
        }
    }
}

/// Blocks for a line, then drains what is queued before flushing, so a burst costs one
/// flush and a quiet log is always flushed.
fn write_lines(rx: Receiver<String>, mut out: BufWriter<Box<dyn Write + Send>>) {
    let mut failed = false;
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(line) = next {
            let result = out
                .write_all(line.as_bytes())
                .and_then(|()| out.write_all(b"\n"));
            report(&mut failed, result);
            next = rx.try_recv().ok();
        }
        let flushed = out.flush();
        report(&mut failed, flushed);
    }
}

/// Logs the first write error only: a full disk must not turn into a log flood.
fn report(failed: &mut bool, result: std::io::Result<()>) {
    if let Err(e) = result {
        if !*failed {
            tracing::error!(target: "audit", error = %e, "writing the audit log failed");
        }
        *failed = true;
    }
}
