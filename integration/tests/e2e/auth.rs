//! Authentication at pgward: SCRAM and client certificates, and the generic errors a
//! probe gets (the same ones PostgreSQL gives).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pgward_integration::{
    client_cert, cluster, connect_plaintext, connect_tls, start_proxy, ProxyOptions,
};

fn sqlstate(e: &tokio_postgres::Error) -> Option<&str> {
    e.as_db_error().map(|d| d.code().code())
}

fn message(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.message().to_owned())
        .unwrap_or_else(|| e.to_string())
}

#[tokio::test]
async fn scram_and_cert_logins_reach_their_upstream_users() {
    let proxy = start_proxy(ProxyOptions::permissive()).await;
    let alice = proxy.connect("alice").await; // SCRAM
    let bob = proxy.connect("bob").await; // client certificate
    let a: String = alice
        .query_one("SELECT current_user", &[])
        .await
        .unwrap()
        .get(0);
    let b: String = bob
        .query_one("SELECT current_user", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(a, "app_readonly");
    assert_eq!(b, "app_support");
    // The upstream leg is TLS with pgward's certificate.
    let ssl: (bool, String) = {
        let r = alice
            .query_one(
                "SELECT ssl, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(ssl, (true, "/CN=pgward".to_owned()));
}

#[tokio::test]
async fn wrong_password_and_unknown_user_look_the_same() {
    let proxy = start_proxy(ProxyOptions::permissive()).await;
    let ca = cluster().ca_path();
    let port = proxy.addr.port();
    let wrong = connect_tls("localhost", port, "alice", "shop", Some("nope"), None, ca)
        .await
        .map(|_| ())
        .expect_err("wrong password refused");
    assert_eq!(sqlstate(&wrong), Some("28P01"));
    assert_eq!(
        message(&wrong),
        "password authentication failed for user \"alice\""
    );

    let unknown = connect_tls("localhost", port, "mallory", "shop", Some("nope"), None, ca)
        .await
        .map(|_| ())
        .expect_err("unknown user refused");
    assert_eq!(sqlstate(&unknown), Some("28P01"));
    assert_eq!(
        message(&unknown),
        "password authentication failed for user \"mallory\""
    );
}

#[tokio::test]
async fn cert_login_needs_the_matching_certificate() {
    let proxy = start_proxy(ProxyOptions::permissive()).await;
    let ca = cluster().ca_path();
    let port = proxy.addr.port();
    let none = connect_tls("localhost", port, "bob", "shop", None, None, ca)
        .await
        .map(|_| ())
        .expect_err("no certificate refused");
    assert_eq!(sqlstate(&none), Some("28000"));

    let other = client_cert("alice");
    let wrong = connect_tls("localhost", port, "bob", "shop", None, Some(&other), ca)
        .await
        .map(|_| ())
        .expect_err("someone else's certificate refused");
    assert_eq!(sqlstate(&wrong), Some("28000"));
    assert_eq!(
        message(&wrong),
        "certificate authentication failed for user \"bob\""
    );
}

#[tokio::test]
async fn plaintext_is_refused_when_tls_is_required() {
    let proxy = start_proxy(ProxyOptions::permissive()).await;
    let err = connect_plaintext("127.0.0.1", proxy.addr.port(), "alice", "shop", Some("x"))
        .await
        .map(|_| ())
        .expect_err("plaintext refused");
    assert_eq!(sqlstate(&err), Some("28000"), "{err:?}");
    assert!(message(&err).contains("requires TLS"), "{err:?}");
}

#[tokio::test]
async fn plaintext_works_when_tls_is_optional() {
    let proxy = start_proxy(ProxyOptions {
        tls_required: false,
        ..ProxyOptions::permissive()
    })
    .await;
    let pw = proxy.password("alice");
    let c = connect_plaintext("127.0.0.1", proxy.addr.port(), "alice", "shop", Some(&pw))
        .await
        .unwrap();
    let one: i32 = c.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
}

#[tokio::test]
async fn upstream_errors_pass_through_unchanged() {
    let proxy = start_proxy(ProxyOptions::permissive()).await;
    let pw = proxy.password("alice");
    let err = connect_tls(
        "localhost",
        proxy.addr.port(),
        "alice",
        "no_such_db",
        Some(&pw),
        None,
        cluster().ca_path(),
    )
    .await
    .map(|_| ())
    .expect_err("missing database refused");
    assert_eq!(sqlstate(&err), Some("3D000"), "{err:?}");
    assert_eq!(message(&err), "database \"no_such_db\" does not exist");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_channel_binding_is_offered_over_tls() {
    let proxy = start_proxy(ProxyOptions::permissive()).await;
    for binding in ["require", "disable"] {
        let info = format!("{} channel_binding={binding}", proxy.conninfo("alice"));
        let out = tokio::task::spawn_blocking(move || {
            pgward_integration::psql_with_stdin(&info, &["-Atc", "SELECT 1"], None)
        })
        .await
        .unwrap();
        assert!(out.success(), "channel_binding={binding}: {}", out.stderr);
        assert_eq!(out.stdout.trim(), "1");
    }
}
