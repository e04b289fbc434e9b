//! What SREs see of real traffic through pgward: the span tree exported over OTLP (with
//! decisions, SQLSTATEs, row counts, normalized text and an application's traceparent),
//! the audit log, and the admin endpoints. The global subscriber is installed once per
//! process, so this binary has one test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use pgward_integration::otlp::{start_otlp_receiver, ReceivedSpan};
use pgward_integration::{start_proxy, ProxyOptions};
use pgward_telemetry::{install, LogFormat, TelemetryConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const APP_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const APP_SPAN: &str = "00f067aa0ba902b7";
/// Literal values in the statements: none may appear in a span or an audit line.
const LITERALS: [&str; 3] = ["4711", "s3cret", "Zanzibar"];

async fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, out)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_is_traced_audited_and_counted() {
    let receiver = start_otlp_receiver().await;
    let guard = install(&TelemetryConfig {
        otlp_endpoint: Some(receiver.endpoint()),
        service_name: "pgward-e2e".into(),
        log_format: LogFormat::Text,
        default_filter: "warn".into(),
    })
    .unwrap();
    let audit_dir = tempfile::tempdir().unwrap();
    let audit_path = audit_dir.path().join("audit.jsonl");
    let admin_port = free_port();
    let proxy = start_proxy(ProxyOptions {
        extra: vec![
            format!("audit:\n  path: {}", audit_path.display()),
            format!("admin:\n  listen: 127.0.0.1:{admin_port}"),
        ],
        ..ProxyOptions::default()
    })
    .await;

    // /healthz at once; /readyz once the catalog is loaded.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(http_get(admin_port, "/healthz").await.0, 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while http_get(admin_port, "/readyz").await.0 != 200 {
        assert!(std::time::Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let alice = proxy.connect("alice").await;
    alice
        .simple_query("SELECT id FROM customers WHERE country = 'Zanzibar' AND id > 4711")
        .await
        .unwrap();
    alice
        .simple_query("SELECT email FROM customers WHERE name = 's3cret'")
        .await
        .unwrap_err();
    let rows = alice
        .query("SELECT id, status FROM orders WHERE id <= $1", &[&3i32])
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    // The unnamed statement (Parse "" each time): a query span, no parse span.
    let rows = alice
        .query_typed(
            "SELECT id FROM products WHERE stock >= $1",
            &[(&0i32, tokio_postgres::types::Type::INT4)],
        )
        .await
        .unwrap();
    assert!(!rows.is_empty());
    alice
        .simple_query(&format!(
            "/*traceparent='00-{APP_TRACE}-{APP_SPAN}-01'*/ SELECT count(*) FROM products WHERE price > 4711"
        ))
        .await
        .unwrap();
    drop(alice);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (status, metrics) = http_get(admin_port, "/metrics").await;
    assert_eq!(status, 200);
    assert!(metrics.contains("pgward_sessions_total"), "{metrics}");
    assert!(metrics.contains("decision=\"deny\""), "{metrics}");
    assert!(metrics.contains("decision=\"allow\""), "{metrics}");

    proxy.stop().await;
    guard.shutdown();

    let spans = receiver
        .wait_for(
            |spans: &[ReceivedSpan]| spans.iter().filter(|s| s.name == "pgward.query").count() >= 5,
            Duration::from_secs(10),
        )
        .await;
    let session = spans
        .iter()
        .find(|s| s.name == "pgward.session" && s.attr("db.user") == Some("alice"))
        .expect("a session span for alice");
    assert_eq!(session.attr("pgward.role"), Some("analyst"));
    assert_eq!(session.attr("db.namespace"), Some("shop"));
    assert_eq!(session.attr("pgward.auth.method"), Some("scram-sha-256"));
    assert!(session.attr("tls.protocol.version").is_some());
    assert_eq!(
        session.resource.get("service.name").map(String::as_str),
        Some("pgward-e2e")
    );

    let queries: Vec<&ReceivedSpan> = spans.iter().filter(|s| s.name == "pgward.query").collect();
    let denied = queries
        .iter()
        .find(|s| s.attr("pgward.decision") == Some("deny"))
        .expect("a denied query span");
    assert_eq!(denied.attr("db.response.status_code"), Some("42501"));
    assert!(denied
        .attr("pgward.deny.reason")
        .unwrap()
        .contains("customers.email"));
    assert_eq!(denied.parent_span_id, session.span_id);

    let allowed = queries
        .iter()
        .find(|s| s.attr("db.collection.name") == Some("public.orders"))
        .expect("the extended-protocol query span");
    assert_eq!(allowed.attr("pgward.decision"), Some("allow"));
    assert_eq!(allowed.attr("db.operation.name"), Some("SELECT"));
    assert_eq!(allowed.attr("db.response.returned_rows"), Some("3"));
    assert_eq!(allowed.attr("db.system.name"), Some("postgresql"));
    // The Execute's span links to the Parse it executes.
    let parse = spans
        .iter()
        .find(|s| {
            s.name == "pgward.parse"
                && s.attr("db.query.text")
                    .is_some_and(|t| t.contains("orders"))
        })
        .expect("a pgward.parse span");
    assert!(
        allowed
            .links
            .iter()
            .any(|(_, span_id)| *span_id == parse.span_id),
        "links: {:?}, parse: {}",
        allowed.links,
        parse.span_id
    );
    let unnamed = queries
        .iter()
        .find(|s| s.attr("db.query.text").is_some_and(|t| t.contains("stock")))
        .expect("the unnamed statement's query span");
    assert_eq!(unnamed.attr("pgward.decision"), Some("allow"));
    assert!(
        !spans.iter().any(|s| s.name == "pgward.parse"
            && s.attr("db.query.text").is_some_and(|t| t.contains("stock"))),
        "a parse span for the unnamed statement: {spans:#?}"
    );

    let app = queries
        .iter()
        .find(|s| s.trace_id == APP_TRACE)
        .expect("the traceparent query joined the application's trace");
    assert_eq!(app.parent_span_id, APP_SPAN);

    for s in &spans {
        for (k, v) in &s.attributes {
            for lit in LITERALS {
                assert!(!v.contains(lit), "literal {lit} in {}.{k} = {v}", s.name);
            }
        }
    }
    let text = queries
        .iter()
        .find_map(|s| s.attr("db.query.text").filter(|t| t.contains("country")))
        .expect("normalized text");
    assert!(text.contains('?'), "{text}");

    // The audit log: one line per session start/end and per decision, no literals.
    let audit = std::fs::read_to_string(&audit_path).unwrap();
    let lines: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines
        .iter()
        .any(|l| l["event"] == "session_start" && l["user"] == "alice"));
    assert!(lines.iter().any(|l| l["event"] == "session_end"));
    let deny = lines
        .iter()
        .find(|l| l["decision"] == "deny")
        .expect("a deny line");
    assert_eq!(deny["role"], "analyst");
    assert!(deny["columns"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == "public.customers.email"));
    for lit in LITERALS {
        assert!(!audit.contains(lit), "literal {lit} in the audit log");
    }
}
