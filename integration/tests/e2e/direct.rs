//! Proves the harness and the sandbox's security claims against PostgreSQL directly (no
//! pgward): certificate logins work, and nothing but TLS with a client certificate gets in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pgward_integration::{
    admin_sql, client_cert, cluster, connect_direct, connect_plaintext, connect_tls,
    direct_conninfo, psql, try_connect_direct, DEMO_DATABASE, PROXY_CN,
};
use tokio_postgres::error::SqlState;

/// The SQLSTATE and message of a refused connection.
fn refusal(err: &tokio_postgres::Error) -> (SqlState, String) {
    let db = err
        .as_db_error()
        .unwrap_or_else(|| panic!("expected a server error, got {err:?}"));
    (db.code().clone(), db.message().to_owned())
}

#[tokio::test]
async fn client_certificate_login_reads_the_demo_data() {
    let client = connect_direct("app_readonly", DEMO_DATABASE).await;
    let row = client
        .query_one("SELECT count(*) FROM customers", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 30);
    let row = client
        .query_one(
            "SELECT ssl, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0));
    assert_eq!(row.get::<_, String>(1), "/CN=app_readonly");
}

#[tokio::test]
async fn plaintext_is_refused() {
    let c = cluster();
    let err = connect_plaintext(c.host(), c.port(), "app_readonly", DEMO_DATABASE, None)
        .await
        .expect_err("plaintext login must fail");
    let (code, message) = refusal(&err);
    assert_eq!(code, SqlState::INVALID_AUTHORIZATION_SPECIFICATION);
    assert!(message.contains("no pg_hba.conf entry"), "{message}");

    let info = format!(
        "host={} port={} user=app_readonly dbname={DEMO_DATABASE} sslmode=disable",
        c.host(),
        c.port()
    );
    let out = psql(&info, &["-c", "SELECT 1"]);
    assert!(!out.success());
    assert!(
        out.stderr.contains("no pg_hba.conf entry"),
        "{}",
        out.stderr
    );
}

#[test]
fn unix_socket_logins_are_refused() {
    let c = cluster();
    let info = format!(
        "host={} port={} user=postgres dbname=postgres",
        c.socket_dir().display(),
        c.port()
    );
    let out = psql(&info, &["-c", "SELECT 1"]);
    assert!(!out.success());
    assert!(
        out.stderr.contains("no pg_hba.conf entry"),
        "{}",
        out.stderr
    );
}

/// The upstream really demands mutual TLS: TLS alone is not enough.
#[tokio::test]
async fn tls_without_a_client_certificate_is_refused() {
    let c = cluster();
    let err = connect_tls(
        c.host(),
        c.port(),
        "app_readonly",
        DEMO_DATABASE,
        Some("any password"),
        None,
        c.ca_path(),
    )
    .await
    .expect_err("login without a certificate must fail");
    let (code, message) = refusal(&err);
    assert_eq!(code, SqlState::INVALID_AUTHORIZATION_SPECIFICATION);
    assert!(
        message.contains("requires a valid client certificate"),
        "{message}"
    );
}

#[tokio::test]
async fn a_certificate_only_logs_in_as_its_own_name() {
    let c = cluster();
    let alice = client_cert("alice");
    let err = connect_tls(
        c.host(),
        c.port(),
        "app_readonly",
        DEMO_DATABASE,
        None,
        Some(&alice),
        c.ca_path(),
    )
    .await
    .expect_err("CN alice must not log in as app_readonly");
    let (code, message) = refusal(&err);
    assert_eq!(code, SqlState::INVALID_AUTHORIZATION_SPECIFICATION);
    assert!(
        message.contains("certificate authentication failed"),
        "{message}"
    );
}

#[tokio::test]
async fn the_proxy_certificate_logs_in_as_mapped_upstream_users_only() {
    let c = cluster();
    let proxy = c.proxy_client_cert();
    let client = connect_tls(
        c.host(),
        c.port(),
        "app_readonly",
        DEMO_DATABASE,
        None,
        Some(proxy),
        c.ca_path(),
    )
    .await
    .unwrap();
    let row = client
        .query_one(
            "SELECT current_user::text, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "app_readonly");
    assert_eq!(row.get::<_, String>(1), format!("/CN={PROXY_CN}"));

    // The superuser is never mapped.
    let err = connect_tls(
        c.host(),
        c.port(),
        "postgres",
        "postgres",
        None,
        Some(proxy),
        c.ca_path(),
    )
    .await
    .expect_err("the proxy certificate must not log in as postgres");
    let (code, message) = refusal(&err);
    assert_eq!(code, SqlState::INVALID_AUTHORIZATION_SPECIFICATION);
    assert!(
        message.contains("certificate authentication failed"),
        "{message}"
    );
}

#[tokio::test]
async fn allow_proxy_login_admits_a_new_role() {
    let c = cluster();
    admin_sql("postgres", "CREATE ROLE harness_new_role LOGIN");
    let connect = || {
        connect_tls(
            c.host(),
            c.port(),
            "harness_new_role",
            DEMO_DATABASE,
            None,
            Some(c.proxy_client_cert()),
            c.ca_path(),
        )
    };
    assert!(connect().await.is_err(), "not mapped yet");
    c.allow_proxy_login("harness_new_role").unwrap();
    let client = connect().await.unwrap();
    let row = client
        .query_one("SELECT current_user::text", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "harness_new_role");
}

#[tokio::test]
async fn the_server_certificate_is_valid_for_localhost_too() {
    let c = cluster();
    let cert = client_cert("app_readonly");
    let client = connect_tls(
        "localhost",
        c.port(),
        "app_readonly",
        DEMO_DATABASE,
        None,
        Some(&cert),
        c.ca_path(),
    )
    .await
    .unwrap();
    client.simple_query("SELECT 1").await.unwrap();
}

#[test]
fn psql_runs_queries_with_a_client_certificate() {
    let out = psql(
        &direct_conninfo("app_readonly", DEMO_DATABASE),
        &["-At", "-c", "SELECT count(*) FROM products"],
    );
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(out.stdout.trim(), "12");
}

/// pgward enforces its own policy, but the upstream roles are least-privilege too.
#[tokio::test]
async fn upstream_roles_follow_least_privilege() {
    let ro = connect_direct("app_readonly", DEMO_DATABASE).await;
    let err = ro
        .execute("UPDATE orders SET status = 'paid' WHERE id = 1", &[])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::INSUFFICIENT_PRIVILEGE));
    let err = ro
        .query_one("SELECT place_order(1, 1, 1)", &[])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::INSUFFICIENT_PRIVILEGE));

    let rw = connect_direct("app_rw", DEMO_DATABASE).await;
    let order: i32 = rw
        .query_one("SELECT place_order(1, 3, 2)", &[])
        .await
        .unwrap()
        .get(0);
    let row = rw
        .query_one(
            "SELECT total::text, note FROM orders WHERE id = $1",
            &[&order],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "18.00");
    assert_eq!(row.get::<_, String>(1), "2 x Ceramic mug");
    let err = rw.execute("TRUNCATE orders", &[]).await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::INSUFFICIENT_PRIVILEGE));

    // The catalog reader sees names, not data.
    let catalog = try_connect_direct("pgward_catalog", DEMO_DATABASE)
        .await
        .unwrap();
    let columns = catalog
        .query_one(
            "SELECT count(*) FROM pg_attribute \
             WHERE attrelid = 'public.customers'::regclass AND attnum > 0",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(columns.get::<_, i64>(0), 6);
    let err = catalog
        .query_one("SELECT count(*) FROM customers", &[])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::INSUFFICIENT_PRIVILEGE));
}
