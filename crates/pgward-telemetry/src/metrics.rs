//! The proxy's Prometheus metrics and their text rendering (OpenMetrics text format,
//! which Prometheus scrapes natively).
//!
//! Label values are `&'static str` on purpose: every label comes from a small fixed set
//! (decisions, statement kinds, error kinds), never from client input, so a hostile client
//! cannot blow up the series count.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::histogram::DurationHistogram;
use crate::spans::Decision;

/// One labelled series of `pgward_statements_total`.
#[derive(Clone, Debug)]
pub struct StatementCounter(Counter);

impl StatementCounter {
    pub fn inc(&self) {
        self.0.inc();
    }
}

/// Seconds, 0.1 ms to ~13 s: statements through a proxy are mostly sub-millisecond.
const STATEMENT_BUCKETS: [f64; 18] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0,
];
/// Seconds, for TCP + TLS + startup to the upstream.
const CONNECT_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatementLabels {
    decision: &'static str,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// Every metric the proxy exports. One instance per process, shared via `Arc` in the
/// proxy's `Deps`; all methods take `&self` and are lock-free on the hot path apart from
/// the label families' read lock (which sessions skip: they keep their counters).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    sessions_active: Gauge,
    sessions: Counter,
    statements: Family<StatementLabels, Counter>,
    statement_duration: DurationHistogram,
    auth_failures: Family<ReasonLabels, Counter>,
    upstream_connect_errors: Family<ReasonLabels, Counter>,
    upstream_connect_duration: DurationHistogram,
    policy_reloads: Family<ResultLabels, Counter>,
    audit_dropped: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("pgward");
        let sessions_active = Gauge::default();
        registry.register(
            "sessions_active",
            "Client sessions currently open",
            sessions_active.clone(),
        );
        let sessions = Counter::default();
        registry.register("sessions", "Client sessions accepted", sessions.clone());
        let statements = Family::<StatementLabels, Counter>::default();
        registry.register(
            "statements",
            "Statements by policy decision and statement kind",
            statements.clone(),
        );
        let statement_duration = DurationHistogram::new(&STATEMENT_BUCKETS);
        registry.register(
            "statement_duration_seconds",
            "From the statement reaching pgward to its CommandComplete or ErrorResponse",
            statement_duration.clone(),
        );
        let auth_failures = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "auth_failures",
            "Failed client authentications by reason",
            auth_failures.clone(),
        );
        let upstream_connect_errors = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "upstream_connect_errors",
            "Failed connections to the upstream PostgreSQL by reason",
            upstream_connect_errors.clone(),
        );
        let upstream_connect_duration = DurationHistogram::new(&CONNECT_BUCKETS);
        registry.register(
            "upstream_connect_duration_seconds",
            "Time to connect to the upstream (TCP, TLS, startup and auth)",
            upstream_connect_duration.clone(),
        );
        let policy_reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "policy_reloads",
            "Policy reloads by result (ok or error)",
            policy_reloads.clone(),
        );
        let audit_dropped = Counter::default();
        registry.register(
            "audit_dropped",
            "Audit lines dropped because the audit writer could not keep up",
            audit_dropped.clone(),
        );
        Self {
            registry,
            sessions_active,
            sessions,
            statements,
            statement_duration,
            auth_failures,
            upstream_connect_errors,
            upstream_connect_duration,
            policy_reloads,
            audit_dropped,
        }
    }

    /// A client connection was accepted.
    pub fn session_started(&self) {
        self.sessions.inc();
        self.sessions_active.inc();
    }

    /// A client connection closed (call exactly once per `session_started`).
    pub fn session_ended(&self) {
        self.sessions_active.dec();
    }

    /// One statement decided; `kind` is `StatementKind::operation_name()` (or `"UNKNOWN"`),
    /// `duration` until its CommandComplete/ErrorResponse (or the denial was sent).
    pub fn statement(&self, decision: Decision, kind: &'static str, duration: Duration) {
        self.statement_counter(decision, kind).inc();
        self.statement_duration(duration);
    }

    /// The counter behind [`Metrics::statement`] for one decision and kind, to keep and
    /// bump without a label lookup per statement (a session keeps the few it uses).
    pub fn statement_counter(&self, decision: Decision, kind: &'static str) -> StatementCounter {
        StatementCounter(
            self.statements
                .get_or_create(&StatementLabels {
                    decision: decision.as_str(),
                    kind,
                })
                .clone(),
        )
    }

    /// The duration half of [`Metrics::statement`].
    pub fn statement_duration(&self, duration: Duration) {
        self.statement_duration.observe(duration);
    }

    /// `reason`: a fixed error-kind label, e.g. `"bad_password"`, `"unknown_user"`,
    /// `"source_denied"`, `"locked_out"`, `"timeout"`.
    pub fn auth_failure(&self, reason: &'static str) {
        self.auth_failures
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// A successful upstream connection and how long it took.
    pub fn upstream_connected(&self, duration: Duration) {
        self.upstream_connect_duration.observe(duration);
    }

    /// A failed upstream connection; `reason` is a fixed error-kind label (`"tcp"`,
    /// `"tls"`, `"auth"`, `"timeout"`, ...).
    pub fn upstream_connect_error(&self, reason: &'static str) {
        self.upstream_connect_errors
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// A policy reload finished (`ok == false`: the previous policy stays in force).
    pub fn policy_reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.policy_reloads
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    pub(crate) fn audit_dropped_counter(&self) -> Counter {
        self.audit_dropped.clone()
    }

    /// The text exposition of every metric, ending in `# EOF`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_with_labels() {
        let m = Metrics::new();
        m.session_started();
        m.session_started();
        m.session_ended();
        m.statement(Decision::Allow, "SELECT", Duration::from_micros(300));
        m.statement(Decision::Deny, "SELECT", Duration::from_micros(50));
        m.auth_failure("bad_password");
        m.upstream_connected(Duration::from_millis(3));
        m.upstream_connect_error("tls");
        m.policy_reload(true);
        m.policy_reload(false);
        let text = m.render();
        for needle in [
            "pgward_sessions_active 1",
            "pgward_sessions_total 2",
            "pgward_statements_total{decision=\"allow\",kind=\"SELECT\"} 1",
            "pgward_statements_total{decision=\"deny\",kind=\"SELECT\"} 1",
            "pgward_statement_duration_seconds_count 2",
            "pgward_auth_failures_total{reason=\"bad_password\"} 1",
            "pgward_upstream_connect_errors_total{reason=\"tls\"} 1",
            "pgward_upstream_connect_duration_seconds_count 1",
            "pgward_policy_reloads_total{result=\"ok\"} 1",
            "pgward_policy_reloads_total{result=\"error\"} 1",
            "pgward_audit_dropped_total 0",
            "# EOF",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
    }
}
