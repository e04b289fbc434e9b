//! Limits and hostile clients (SPEC §7): failed logins lock an address out, sessions per
//! user are capped (53300), statements are rate limited (53400) without breaking the session,
//! and `limits.users` / `limits.roles` override the caps and rates per login and per role.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use pgward_integration::{cluster, connect_tls, start_proxy, ProxyOptions};

fn code(e: &tokio_postgres::Error) -> Option<&str> {
    e.as_db_error().map(|d| d.code().code())
}

#[tokio::test]
async fn repeated_failed_logins_lock_the_address_out() {
    let proxy = start_proxy(ProxyOptions {
        limits: vec![
            "  login_lockout_after: 4".into(),
            "  login_lockout_secs: 60".into(),
        ],
        ..ProxyOptions::default()
    })
    .await;
    let port = proxy.addr.port();
    let ca = cluster().ca_path();
    for _ in 0..4 {
        let e = connect_tls("localhost", port, "alice", "shop", Some("guess"), None, ca)
            .await
            .map(|_| ())
            .expect_err("wrong password");
        assert_eq!(code(&e), Some("28P01"));
    }
    // Now even the right password is refused from this address.
    let pw = proxy.password("alice");
    let e = connect_tls("localhost", port, "alice", "shop", Some(&pw), None, ca)
        .await
        .map(|_| ())
        .expect_err("locked out");
    assert_eq!(code(&e), Some("28000"), "{e:?}");
    assert!(e
        .as_db_error()
        .unwrap()
        .message()
        .contains("too many failed"));
}

#[tokio::test]
async fn sessions_per_user_are_capped() {
    let proxy = start_proxy(ProxyOptions {
        limits: vec!["  max_sessions_per_user: 2".into()],
        ..ProxyOptions::default()
    })
    .await;
    let a = proxy.connect("alice").await;
    let b = proxy.connect("alice").await;
    let e = proxy
        .try_connect("alice")
        .await
        .map(|_| ())
        .expect_err("third session");
    assert_eq!(code(&e), Some("53300"), "{e:?}");
    // Another user is not affected; a freed slot can be used again.
    let _app = proxy.connect("app").await;
    drop(a);
    let mut again = None;
    for _ in 0..50 {
        if let Ok(c) = proxy.try_connect("alice").await {
            again = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(again.is_some(), "the released slot was never reusable");
    b.batch_execute("SELECT 1").await.unwrap();
}

#[tokio::test]
async fn statements_over_the_rate_get_53400_and_the_session_survives() {
    let proxy = start_proxy(ProxyOptions {
        limits: vec![
            "  statements_per_second: 5".into(),
            "  statement_burst: 5".into(),
        ],
        ..ProxyOptions::default()
    })
    .await;
    let alice = proxy.connect("alice").await;
    let mut refused = 0;
    for _ in 0..20 {
        match alice.simple_query("SELECT count(*) FROM orders").await {
            Ok(_) => {}
            Err(e) => {
                assert_eq!(code(&e), Some("53400"), "{e:?}");
                refused += 1;
            }
        }
    }
    assert!(refused >= 10, "only {refused} of 20 refused");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let n: i64 = alice
        .query_one("SELECT count(*) FROM orders", &[])
        .await
        .unwrap()
        .get(0);
    assert!(n > 0);
}

#[tokio::test]
async fn idle_sessions_are_ended_but_busy_ones_are_not() {
    let proxy = start_proxy(ProxyOptions {
        limits: vec!["  idle_session_timeout_ms: 700".into()],
        ..ProxyOptions::permissive()
    })
    .await;
    let busy = proxy.connect("alice").await;
    // A statement running longer than the idle timeout is not idleness.
    busy.batch_execute("SELECT pg_sleep(1.2)").await.unwrap();
    busy.batch_execute("SELECT 1").await.unwrap();
    let idle = proxy.connect("alice").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let e = idle.batch_execute("SELECT 1").await.unwrap_err();
    assert!(e.is_closed() || code(&e) == Some("57P05"), "{e:?}");
}

#[tokio::test]
async fn per_user_and_per_role_limits_override_the_defaults() {
    let proxy = start_proxy(ProxyOptions {
        limits: vec![
            "  max_sessions_per_user: 1".into(),
            "  users:".into(),
            "    alice: { max_sessions: 3, statements_per_second: 2, statement_burst: 3 }".into(),
            "    app: { max_sessions: 2 }".into(),
            "  roles:".into(),
            "    app: { statements_per_second: 2, statement_burst: 4 }".into(),
            "    support: { source: [10.0.0.0/8] }".into(),
        ],
        ..ProxyOptions::default()
    })
    .await;

    // alice's own cap (3) replaces the default of 1.
    let alice: Vec<_> = futures::future::join_all((0..3).map(|_| proxy.connect("alice"))).await;
    let e = proxy.try_connect("alice").await.map(|_| ()).unwrap_err();
    assert_eq!(code(&e), Some("53300"), "{e:?}");

    // alice's own rate: a burst of 3, then 53400 naming her.
    let mut refused = Vec::new();
    for _ in 0..8 {
        if let Err(e) = alice[0].simple_query("SELECT count(*) FROM orders").await {
            refused.push(e);
        }
    }
    assert!(refused.len() >= 4, "only {} of 8 refused", refused.len());
    let db = refused[0].as_db_error().unwrap();
    assert_eq!(db.code().code(), "53400");
    assert!(db.message().contains("\"alice\""), "{}", db.message());

    // The role app's bucket (burst 4) is shared by both of app's sessions.
    let app1 = proxy.connect("app").await;
    let app2 = proxy.connect("app").await;
    let mut ok = 0;
    let mut role_refusals = 0;
    for i in 0..10 {
        let session = if i % 2 == 0 { &app1 } else { &app2 };
        match session.simple_query("SELECT 1").await {
            Ok(_) => ok += 1,
            Err(e) => {
                let db = e.as_db_error().unwrap();
                assert_eq!(db.code().code(), "53400");
                assert!(
                    db.message().contains("pgward role \"app\""),
                    "{}",
                    db.message()
                );
                role_refusals += 1;
            }
        }
    }
    assert!(ok <= 6, "{ok} of 10 allowed past a shared burst of 4");
    assert!(role_refusals >= 4, "{role_refusals}");

    // support may only come from 10.0.0.0/8: bob (a support login) is refused from here,
    // with PostgreSQL's wording for a missing pg_hba rule.
    let e = proxy.try_connect("bob").await.map(|_| ()).unwrap_err();
    let db = e.as_db_error().unwrap();
    assert_eq!(db.code().code(), "28000");
    assert!(db.message().contains("no access rule"), "{}", db.message());
}
