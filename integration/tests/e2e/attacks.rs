//! The decision corpus (crates/pgward-sql/tests/corpus.sql: the analyser's and policy's
//! cases, attacks included) replayed end to end through pgward over both protocols:
//! whatever the gate decides offline is exactly what a client gets — a denial is a
//! 42501 from pgward over the simple protocol and on Parse, an allowed statement never is.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pgward_integration::{start_proxy, ProxyOptions};
use pgward_proxy::gate::SessionPolicy;

const CORPUS: &str = include_str!("../../../crates/pgward-sql/tests/corpus.sql");

/// Transaction control would end the test's own BEGIN ... ROLLBACK around each line.
fn controls_transactions(line: &str) -> bool {
    let l = line.to_ascii_lowercase();
    [
        "commit",
        "rollback",
        "abort",
        "begin",
        "start transaction",
        "end",
        "savepoint",
        "prepare transaction",
        "release",
    ]
    .iter()
    .any(|w| {
        l.split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .any(|t| t == *w)
            || l.starts_with(w)
    })
}

/// pgward's own denials say `permission denied: role "..."`; PostgreSQL's own say
/// `permission denied for ...`.
fn pgward_denied(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_some_and(|d| {
        d.code().code() == "42501" && d.message().starts_with("permission denied: role \"")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_decisions_hold_end_to_end_over_both_protocols() {
    let proxy = start_proxy(ProxyOptions::default()).await;
    // The same gate and catalog the proxy uses, offline.
    let config = pgward_proxy::Config::load(&proxy.config_path).unwrap();
    let deps = pgward_proxy::Deps::from_config(config).unwrap();
    let catalog = deps.catalogs.get_or_load("shop").await.expect("catalog");

    let mut checked = 0;
    let mut denied = 0;
    for (login, role) in [("alice", "analyst"), ("app", "app")] {
        let client = proxy.connect(login).await;
        let session = SessionPolicy {
            role: role.to_owned(),
            search_path: vec!["public".to_owned()],
        };
        let mut previous = String::new();
        for line in CORPUS.lines() {
            let sql = line.trim();
            // COPY's sub-protocol needs a COPY-aware client call (tested in enforce.rs).
            let copy = sql.to_ascii_lowercase().starts_with("copy");
            if sql.is_empty() || sql.starts_with("--") || controls_transactions(sql) || copy {
                continue;
            }
            let offline = deps.gate.decide_sql(&session, Some(&catalog), sql);
            let expect_denied = offline.result.is_err();

            client.batch_execute("BEGIN").await.unwrap_or_else(|e| {
                panic!("{role}: session lost before {sql}: {e:?} (previous: {previous})")
            });
            let simple = client.simple_query(sql).await;
            let _ = client.batch_execute("ROLLBACK").await;
            let simple_denied = simple.as_ref().err().is_some_and(pgward_denied);
            assert_eq!(
                simple_denied,
                expect_denied,
                "{role}, simple protocol: {sql}\n  offline: {:?}\n  proxy: {:?}",
                offline.result.as_ref().err().map(|d| d.message()),
                simple.err()
            );

            let parsed = client.prepare(sql).await;
            let parse_denied = parsed.as_ref().err().is_some_and(pgward_denied);
            assert_eq!(
                parse_denied,
                expect_denied,
                "{role}, extended protocol: {sql}\n  proxy: {:?}",
                parsed.err()
            );
            checked += 1;
            denied += usize::from(expect_denied);
            previous = sql.to_owned();
        }
        // Still one healthy session after hundreds of denials.
        client.batch_execute("SELECT 1").await.unwrap();
    }
    eprintln!("corpus replayed: {checked} statement/role pairs, {denied} denied, both protocols");
    assert!(checked > 300, "only {checked} cases");
}
