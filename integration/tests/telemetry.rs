//! Telemetry building blocks end to end: spans exported over real OTLP/gRPC to an
//! in-process receiver, the admin endpoints over real HTTP, the audit log's JSON lines.
//!
//! The global tracing subscriber can be installed once per process, so exactly one test
//! in this binary (`spans_reach_the_collector`) installs it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pgward_integration::otlp::{start_otlp_receiver, ReceivedSpan};
use pgward_sql::{analyse, AnalyseContext, Catalog, RelKind, StatementAccess};
use pgward_telemetry::{
    fields, install, serve_admin, session_span, AdminState, AuditLog, Decision, LogFormat, Metrics,
    NormalizedSql, ParseSpan, QueryFields, QuerySpan, SessionInfo, SpanAttributes, SpanParent,
    StatementRecord, TelemetryConfig,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

const APP_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const APP_SPAN: &str = "00f067aa0ba902b7";
/// Literal values in the test statements: none may appear in a span or an audit line.
const LITERALS: [&str; 3] = ["4711", "s3cret", "alice@example.com"];

fn access(sql: &str) -> StatementAccess {
    let mut catalog = Catalog::new();
    catalog.add_relation(
        "public",
        "customers",
        RelKind::Table,
        vec!["id".into(), "name".into(), "email".into()],
    );
    let search_path = vec!["public".to_string()];
    let ctx = AnalyseContext {
        catalog: &catalog,
        search_path: &search_path,
    };
    analyse(sql, &ctx).unwrap().remove(0)
}

fn client() -> SocketAddr {
    "127.0.0.1:50123".parse().unwrap()
}

fn by_name<'a>(spans: &'a [ReceivedSpan], name: &str) -> Vec<&'a ReceivedSpan> {
    spans.iter().filter(|s| s.name == name).collect()
}

#[tokio::test]
async fn spans_reach_the_collector() {
    let receiver = start_otlp_receiver().await;
    let guard = install(&TelemetryConfig {
        otlp_endpoint: Some(receiver.endpoint()),
        service_name: "pgward-test".into(),
        log_format: LogFormat::Text,
        default_filter: "warn".into(),
    })
    .unwrap();
    assert!(guard.exporting());

    let allowed = access("SELECT id, name FROM customers WHERE id = 4711");
    let traced_sql = format!(
        "SELECT name FROM customers WHERE email = 'alice@example.com' \
         /*controller='checkout',traceparent='00-{APP_TRACE}-{APP_SPAN}-01'*/"
    );
    let traced = access(&traced_sql);
    {
        let session = session_span(client());
        session.record(fields::DB_USER, "alice");
        session.record(fields::ROLE, "analyst");
        session.record(fields::DB_NAMESPACE, "shop");
        session.record(fields::TLS_PROTOCOL_VERSION, "1.3");
        session.record(fields::AUTH_METHOD, "scram-sha-256");
        {
            let auth =
                tracing::info_span!(target: "pgward::session", parent: &session, "pgward.auth");
            let _entered = auth.enter();
        }

        // Extended protocol: the Execute's query span links to its Parse.
        let allowed_text = NormalizedSql::from_access(&allowed);
        let parent = SpanParent::of(&session);
        // One encoding of a statement's attributes serves its parse and query spans.
        let attributes = SpanAttributes::new(&QueryFields {
            database: "shop",
            operation: allowed.kind.operation_name(),
            text: Some(allowed_text.as_str()),
            collection: Some("customers".into()),
            decision: Decision::Allow,
            reason: None,
        });
        let parse = ParseSpan::start(&parent, &attributes);
        let query = QuerySpan::start(
            &parent,
            &attributes,
            Some(&parse),
            // No sqlcommenter comment: the session stays the parent.
            Some("SELECT id, name FROM customers WHERE id = 4711"),
        );
        // Recorded when CommandComplete passes through.
        query.finish(Some(1), None);

        let traced_text = NormalizedSql::from_access(&traced);
        let denied = QuerySpan::start(
            &parent,
            &SpanAttributes::new(&QueryFields {
                database: "shop",
                operation: traced.kind.operation_name(),
                text: Some(traced_text.as_str()),
                collection: Some("customers".into()),
                decision: Decision::Deny,
                reason: Some("role \"analyst\" may not select column customers.email"),
            }),
            None,
            Some(&traced_sql),
        );
        denied.finish(None, Some("42501"));
        drop(parse);

        session.record(fields::OUTCOME, "ok");
    }
    tokio::task::spawn_blocking(move || guard.shutdown())
        .await
        .unwrap();

    let spans = receiver
        .wait_for(|s| s.len() >= 5, Duration::from_secs(10))
        .await;
    let sessions = by_name(&spans, "pgward.session");
    let queries = by_name(&spans, "pgward.query");
    assert_eq!(sessions.len(), 1, "{spans:#?}");
    assert_eq!(queries.len(), 2, "{spans:#?}");
    let session = sessions[0];
    assert_eq!(session.parent_span_id, "");
    for (key, value) in [
        ("client.address", "127.0.0.1"),
        ("client.port", "50123"),
        ("db.user", "alice"),
        ("pgward.role", "analyst"),
        ("db.namespace", "shop"),
        ("tls.protocol.version", "1.3"),
        ("pgward.auth.method", "scram-sha-256"),
        ("outcome", "ok"),
    ] {
        assert_eq!(
            session.attr(key),
            Some(value),
            "session {key}: {session:#?}"
        );
    }
    assert_eq!(
        session.resource.get("service.name").map(String::as_str),
        Some("pgward-test")
    );
    assert_eq!(
        session.resource.get("service.version").map(String::as_str),
        Some(env!("CARGO_PKG_VERSION"))
    );

    let auth = by_name(&spans, "pgward.auth");
    assert_eq!(auth.len(), 1);
    assert_eq!(auth[0].parent_span_id, session.span_id);
    let parse = by_name(&spans, "pgward.parse")[0];
    assert_eq!(parse.trace_id, session.trace_id);
    assert_eq!(parse.parent_span_id, session.span_id);
    assert_eq!(
        parse.attr("db.query.text"),
        Some("SELECT id, name FROM customers WHERE id = ?")
    );
    assert_eq!(parse.attr("pgward.decision"), Some("allow"));
    assert_eq!(parse.status_code, 0);

    let query = queries
        .iter()
        .find(|q| q.attr("pgward.decision") == Some("allow"))
        .unwrap();
    assert_eq!(query.trace_id, session.trace_id);
    assert_eq!(query.parent_span_id, session.span_id);
    assert_eq!(
        query.links,
        vec![(parse.trace_id.clone(), parse.span_id.clone())]
    );
    for (key, value) in [
        ("db.system.name", "postgresql"),
        ("db.namespace", "shop"),
        ("db.operation.name", "SELECT"),
        ("db.collection.name", "customers"),
        (
            "db.query.text",
            "SELECT id, name FROM customers WHERE id = ?",
        ),
        ("db.response.returned_rows", "1"),
    ] {
        assert_eq!(query.attr(key), Some(value), "query {key}: {query:#?}");
    }

    let denied = queries
        .iter()
        .find(|q| q.attr("pgward.decision") == Some("deny"))
        .unwrap();
    assert_eq!(
        denied.trace_id, APP_TRACE,
        "the application's trace continues"
    );
    assert_eq!(denied.parent_span_id, APP_SPAN);
    assert_eq!(denied.attr("db.response.status_code"), Some("42501"));
    assert_eq!(denied.status_code, 2, "an error status: {denied:#?}");
    assert_eq!(query.status_code, 0);
    assert!(denied
        .attr("pgward.deny.reason")
        .unwrap()
        .contains("customers.email"));
    assert_eq!(
        denied.attr("db.query.text"),
        Some("SELECT name FROM customers WHERE email = ?")
    );

    for span in &spans {
        for value in span.attributes.values() {
            for literal in LITERALS {
                assert!(!value.contains(literal), "{literal} leaked into {span:#?}");
            }
        }
    }
}

/// A minimal HTTP/1.1 GET: (status, body).
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: pgward\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

#[tokio::test]
async fn admin_endpoints() {
    let metrics = Arc::new(Metrics::new());
    let state = Arc::new(AdminState::new(metrics.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(serve_admin(listener, state.clone(), shutdown.clone()));

    assert_eq!(get(addr, "/healthz").await.0, 200);
    assert_eq!(
        get(addr, "/readyz").await.0,
        503,
        "not ready before the catalog loads"
    );
    state.set_ready(true);
    assert_eq!(get(addr, "/readyz").await.0, 200);
    assert_eq!(get(addr, "/nope").await.0, 404);

    metrics.session_started();
    metrics.statement(Decision::Deny, "SELECT", Duration::from_millis(2));
    metrics.auth_failure("bad_password");
    metrics.policy_reload(true);
    let (status, body) = get(addr, "/metrics").await;
    assert_eq!(status, 200);
    let mut samples = std::collections::BTreeMap::new();
    for line in body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad sample {line:?}"));
        samples.insert(series.to_string(), value);
    }
    assert!(body.trim_end().ends_with("# EOF"));
    assert_eq!(samples["pgward_sessions_active"], 1.0);
    assert_eq!(samples["pgward_sessions_total"], 1.0);
    assert_eq!(
        samples["pgward_statements_total{decision=\"deny\",kind=\"SELECT\"}"],
        1.0
    );
    assert_eq!(samples["pgward_statement_duration_seconds_count"], 1.0);
    assert_eq!(
        samples["pgward_auth_failures_total{reason=\"bad_password\"}"],
        1.0
    );
    assert_eq!(samples["pgward_policy_reloads_total{result=\"ok\"}"], 1.0);

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap();
}

#[test]
fn audit_log_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let metrics = Metrics::new();
    let audit = AuditLog::open(path.to_str().unwrap())
        .unwrap()
        .count_drops_in(&metrics);
    let session = SessionInfo {
        session_id: "7".into(),
        user: "alice".into(),
        role: Some("analyst".into()),
        client_address: client(),
        database: "shop".into(),
    };
    audit.session_start(&session);
    let allowed = access("SELECT id, name FROM customers WHERE id = 4711");
    audit.statement(
        &session,
        &StatementRecord::new(&allowed, Decision::Allow, None),
    );
    let denied = access("SELECT email FROM customers WHERE name = 's3cret'");
    let reason = "role \"analyst\" may not select column customers.email";
    audit.statement(
        &session,
        &StatementRecord::new(&denied, Decision::Deny, Some(reason)),
    );
    audit.statement(
        &session,
        &StatementRecord::unanalysed(Decision::Deny, Some("syntax error")),
    );
    audit.session_end(&session, "ok");
    assert_eq!(audit.dropped(), 0);
    audit.close();

    let text = std::fs::read_to_string(&path).unwrap();
    for literal in LITERALS {
        assert!(
            !text.contains(literal),
            "{literal} leaked into the audit log"
        );
    }
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let events: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(
        events,
        [
            "session_start",
            "statement",
            "statement",
            "statement",
            "session_end"
        ]
    );
    for line in &lines {
        assert_eq!(line["session_id"], "7");
        assert_eq!(line["user"], "alice");
        assert_eq!(line["role"], "analyst");
        assert_eq!(line["client_address"], "127.0.0.1");
        assert_eq!(line["database"], "shop");
        let time = line["time"].as_str().unwrap();
        assert!(
            time.len() == 24 && time.ends_with('Z') && &time[10..11] == "T",
            "{time}"
        );
    }
    assert_eq!(lines[1]["decision"], "allow");
    assert_eq!(
        lines[1]["statement"],
        "SELECT id, name FROM customers WHERE id = ?"
    );
    assert_eq!(lines[1]["kind"], "SELECT");
    assert_eq!(lines[1]["tables"], serde_json::json!(["public.customers"]));
    assert_eq!(
        lines[1]["columns"],
        serde_json::json!(["public.customers.id", "public.customers.name"])
    );
    assert_eq!(lines[1]["reason"], serde_json::Value::Null);
    assert_eq!(lines[2]["decision"], "deny");
    assert_eq!(lines[2]["reason"], reason);
    assert_eq!(
        lines[2]["statement"],
        "SELECT email FROM customers WHERE name = ?"
    );
    assert_eq!(lines[3]["statement"], serde_json::Value::Null);
    assert_eq!(lines[3]["kind"], "UNKNOWN");
    assert_eq!(lines[4]["outcome"], "ok");
}

#[test]
fn a_full_audit_queue_drops_instead_of_blocking() {
    // A one-line queue and a burst: the caller never waits; whatever did not fit is counted.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let audit = AuditLog::with_capacity(path.to_str().unwrap(), 1).unwrap();
    let session = SessionInfo {
        session_id: "1".into(),
        user: "u".into(),
        role: None,
        client_address: client(),
        database: "d".into(),
    };
    let started = std::time::Instant::now();
    for _ in 0..10_000 {
        audit.session_start(&session);
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    let dropped = audit.dropped();
    audit.close();
    let written = std::fs::read_to_string(&path).unwrap().lines().count() as u64;
    assert_eq!(written + dropped, 10_000);
}
