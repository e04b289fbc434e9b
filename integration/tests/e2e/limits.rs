//! Limits and hostile clients (SPEC §7): failed logins lock an address out, sessions per
//! user are capped (53300), statements are rate limited (53400) without breaking the session.
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
