//! The upstream may ask for a password on top of pgward's client certificate: pgward
//! answers SCRAM-SHA-256 and md5 with `upstream.password` (never inline: env:/file:).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pgward_integration::{cluster, start_proxy, ProxyOptions};
use pgward_sandbox::{DevAuth, DevLogin, PasswordMethod};

fn login(name: &str, upstream: &str) -> DevLogin {
    DevLogin {
        name: name.to_owned(),
        role: "app".to_owned(),
        upstream_user: upstream.to_owned(),
        database: "shop".to_owned(),
        auth: DevAuth::Password("client-side-password".to_owned()),
    }
}

#[tokio::test]
async fn scram_md5_and_a_missing_password() {
    let c = cluster();
    c.add_password_user(
        "up_scram",
        "upstream-secret",
        PasswordMethod::ScramSha256,
        "shop",
    )
    .unwrap();
    c.add_password_user("up_md5", "upstream-secret", PasswordMethod::Md5, "shop")
        .unwrap();
    std::env::set_var("PGWARD_TEST_UPSTREAM_PASSWORD", "upstream-secret");

    let proxy = start_proxy(ProxyOptions {
        upstream_password: Some("env:PGWARD_TEST_UPSTREAM_PASSWORD".into()),
        logins: Some(vec![login("s", "up_scram"), login("m", "up_md5")]),
        ..ProxyOptions::permissive()
    })
    .await;
    for (name, upstream) in [("s", "up_scram"), ("m", "up_md5")] {
        let client = proxy.connect(name).await;
        let who: String = client
            .query_one("SELECT current_user", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(who, upstream);
    }

    // Without upstream.password the login fails cleanly with a generic error.
    let bare = start_proxy(ProxyOptions {
        logins: Some(vec![login("s", "up_scram")]),
        ..ProxyOptions::permissive()
    })
    .await;
    let err = bare
        .try_connect("s")
        .await
        .map(|_| ())
        .expect_err("refused");
    let db = err.as_db_error().expect("an ErrorResponse");
    assert_eq!(db.code().code(), "08006");
    assert!(db.message().contains("reference"), "{}", db.message());
    assert!(!db.message().contains("password"), "{}", db.message());
}

/// An upstream that accepts the connection and then says nothing: the login ends after
/// `upstream.connect_timeout_ms` with pgward's generic error, not after the client's patience.
#[tokio::test]
async fn a_silent_upstream_times_out_with_a_generic_error() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((conn, _)) = silent.accept().await {
            conns.push(conn);
        }
    });
    let proxy = start_proxy(ProxyOptions {
        upstream_port: Some(port),
        upstream_extra: vec!["  connect_timeout_ms: 300".into()],
        ..ProxyOptions::permissive()
    })
    .await;
    let started = std::time::Instant::now();
    let err = proxy
        .try_connect("alice")
        .await
        .map(|_| ())
        .expect_err("no upstream");
    let elapsed = started.elapsed();
    let db = err.as_db_error().expect("an ErrorResponse");
    assert_eq!(db.code().code(), "08006", "{db:?}");
    assert!(db.message().contains("reference"), "{}", db.message());
    // Well before the 10 s authentication timeout: the connect timeout ended it.
    assert!(elapsed < std::time::Duration::from_secs(5), "{elapsed:?}");
    held.abort();
}
