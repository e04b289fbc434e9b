//! Enforcement end to end with the example policies: every path a client can take is
//! decided, denials look like PostgreSQL's own, and the session stays consistent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use pgward_integration::raw::{message, read_until_ready, sqlstate, startup_message, tls, write};
use pgward_integration::{
    admin_sql, client_cert, client_tls_config, cluster, connect_direct, psql_with_stdin,
    start_proxy, ProxyOptions,
};
use tokio_postgres_rustls::MakeRustlsConnect;

fn code(e: &tokio_postgres::Error) -> Option<&str> {
    e.as_db_error().map(|d| d.code().code())
}

fn denied(e: &tokio_postgres::Error) -> (String, String) {
    let db = e
        .as_db_error()
        .unwrap_or_else(|| panic!("not a server error: {e:?}"));
    assert_eq!(db.code().code(), "42501", "{db:?}");
    (
        db.message().to_owned(),
        db.hint().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn allowed_reads_match_direct_and_denied_columns_get_42501() {
    let proxy = start_proxy(ProxyOptions::default()).await;
    let alice = proxy.connect("alice").await; // analyst
    let direct = connect_direct("app_readonly", "shop").await;
    let sql = "SELECT id, country FROM customers ORDER BY id";
    let a: Vec<(i32, String)> = alice
        .query(sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let b: Vec<(i32, String)> = direct
        .query(sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert!(!a.is_empty());
    assert_eq!(a, b);

    for sql in [
        "SELECT email FROM customers",
        "SELECT * FROM customers",
        "SELECT id FROM customers WHERE email LIKE '%@example.com'",
        "SELECT id FROM customers ORDER BY phone",
        "SELECT c.id FROM customers c JOIN orders o ON o.customer_id = c.id AND c.name = 'x'",
        "WITH x AS (SELECT email FROM customers) SELECT 1",
        "SELECT (SELECT max(email) FROM customers)",
        "SELECT row_to_json(c) FROM customers c",
    ] {
        let err = alice.simple_query(sql).await.expect_err(sql);
        let (msg, hint) = denied(&err);
        assert!(
            msg.starts_with("permission denied: role \"analyst\""),
            "{sql}: {msg}"
        );
        assert!(hint.contains("analyst"), "{sql}: {hint}");
    }
    let err = alice
        .simple_query("SELECT email FROM customers")
        .await
        .unwrap_err();
    assert_eq!(
        denied(&err).0,
        "permission denied: role \"analyst\" may not select column customers.email"
    );
    // The session is still usable, in both protocols.
    let n: i64 = alice
        .query_one("SELECT count(*) FROM orders", &[])
        .await
        .unwrap()
        .get(0);
    assert!(n > 0);
    let err = alice
        .prepare("SELECT email FROM customers WHERE id = $1")
        .await
        .map(|_| ())
        .unwrap_err();
    denied(&err);
    let again: i64 = alice
        .query_one("SELECT count(*) FROM products WHERE id > $1", &[&0i32])
        .await
        .unwrap()
        .get(0);
    assert!(again > 0);
}

#[tokio::test]
async fn a_denial_in_a_transaction_aborts_it_and_nothing_denied_reaches_upstream() {
    let proxy = start_proxy(ProxyOptions::default()).await;
    let app = proxy.connect("app").await;
    let count = || {
        admin_sql(
            "shop",
            "SELECT count(*) FROM orders WHERE note = 'pgward-tx-test'",
        )
    };
    let before = count();
    app.batch_execute("BEGIN").await.unwrap();
    app.execute(
        "INSERT INTO orders (customer_id, total, status, note) VALUES (1, 5, 'new', 'pgward-tx-test')",
        &[],
    )
    .await
    .unwrap();
    // app may not delete customers: denied, and the transaction is aborted upstream.
    let err = app
        .batch_execute("DELETE FROM customers WHERE id = 1")
        .await
        .unwrap_err();
    denied(&err);
    let err = app.batch_execute("SELECT 1").await.unwrap_err();
    assert_eq!(code(&err), Some("25P02"), "{err:?}");
    // COMMIT of an aborted transaction rolls back.
    let done = app.simple_query("COMMIT").await.unwrap();
    assert!(matches!(
        done.last(),
        Some(tokio_postgres::SimpleQueryMessage::CommandComplete(_))
    ));
    assert_eq!(count(), before, "the earlier insert was rolled back");

    // A denied write outside a transaction leaves the table unchanged.
    let products = || admin_sql("shop", "SELECT count(*) FROM products");
    let p0 = products();
    let err = app
        .batch_execute("INSERT INTO products (name, price, stock) VALUES ('x', 1, 1)")
        .await
        .unwrap_err();
    denied(&err);
    assert_eq!(products(), p0);

    // Multi-statement smuggling: one denied statement denies the whole message.
    let err = app
        .batch_execute(
            "INSERT INTO orders (customer_id, total, status, note) VALUES (1, 5, 'new', 'pgward-tx-test'); SELECT email FROM customers",
        )
        .await
        .unwrap_err();
    denied(&err);
    assert_eq!(count(), before);
}

#[tokio::test]
async fn pipelined_extended_queries_keep_their_order_around_a_denial() {
    let proxy = start_proxy(ProxyOptions::default()).await;
    let alice = proxy.connect("alice").await;
    let ok1 = alice.query_one("SELECT $1::int4 + 1", &[&1i32]);
    let bad = alice.query("SELECT email FROM customers WHERE id = $1", &[&1i32]);
    let ok2 = alice.query_one("SELECT count(*) FROM orders WHERE id > $1", &[&0i32]);
    let (r1, r2, r3) = tokio::join!(ok1, bad, ok2);
    assert_eq!(r1.unwrap().get::<_, i32>(0), 2);
    denied(&r2.unwrap_err());
    assert!(r3.unwrap().get::<_, i64>(0) > 0);
}

#[tokio::test]
async fn session_settings_that_change_meaning_are_pinned() {
    let proxy = start_proxy(ProxyOptions::default()).await;
    let alice = proxy.connect("alice").await;
    for sql in [
        "SET search_path = secret, public",
        "SET standard_conforming_strings = off",
        "SET ROLE postgres",
        "SET SESSION AUTHORIZATION postgres",
        "RESET ALL",
        "DISCARD ALL",
        "SET client_encoding = 'SJIS'",
        "SELECT set_config('search_path', 'secret', false)",
    ] {
        let err = alice.batch_execute(sql).await.expect_err(sql);
        denied(&err);
    }
    // Harmless settings pass.
    alice
        .batch_execute("SET application_name = 'x'; SET statement_timeout = '5s'")
        .await
        .unwrap();
    let sp: String = alice
        .query_one("SHOW search_path", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(sp, "\"public\"");
    let scs: String = alice
        .query_one("SHOW standard_conforming_strings", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(scs, "on");

    // The same settings are refused in the startup packet.
    for options in [
        "-c search_path=secret",
        "-c standard_conforming_strings=off",
        "-c role=postgres",
    ] {
        let mut config = tokio_postgres::Config::new();
        config
            .host("localhost")
            .port(proxy.addr.port())
            .user("alice")
            .dbname("shop")
            .password(proxy.password("alice"))
            .options(options)
            .ssl_mode(tokio_postgres::config::SslMode::Require);
        let tls = MakeRustlsConnect::new(client_tls_config(cluster().ca_path(), None));
        let err = config.connect(tls).await.map(|_| ()).expect_err(options);
        assert_eq!(code(&err), Some("42501"), "{options}: {err:?}");
    }
}

#[tokio::test]
async fn dangerous_functions_and_statements_are_denied() {
    let proxy = start_proxy(ProxyOptions::default()).await;
    let alice = proxy.connect("alice").await;
    for sql in [
        "SELECT query_to_xml('select email from customers', true, true, '')",
        "SELECT * FROM ts_stat('select 1')",
        "SELECT pg_read_file('/etc/passwd')",
        "SELECT lo_import('/etc/passwd')",
        "SELECT pg_sleep(1)",
        "SELECT pg_terminate_backend(1)",
        "SELECT nextval('orders_id_seq')",
        "COPY orders TO PROGRAM 'cat > /tmp/x'",
        "COPY orders FROM '/etc/passwd'",
        "DO $$ BEGIN PERFORM 1; END $$",
        "CREATE TABLE evil (x int)",
        "VACUUM orders",
        "LOCK orders",
        "EXPLAIN SELECT email FROM customers",
        "PREPARE p AS SELECT email FROM customers",
        "SELECT U&\"em\\0061il\" FROM customers",
        "SELECT id FROM customers WHERE 'a' = 'a' /* ' */ AND email IS NOT NULL",
    ] {
        let err = alice.batch_execute(sql).await.expect_err(sql);
        denied(&err);
    }
    // Allowed forms of the same paths.
    alice
        .batch_execute("EXPLAIN SELECT id FROM orders")
        .await
        .unwrap();
    alice
        .batch_execute(
            "PREPARE q AS SELECT id FROM orders WHERE id = $1; EXECUTE q(1); DEALLOCATE q",
        )
        .await
        .unwrap();
    alice
        .batch_execute("BEGIN; DECLARE c CURSOR FOR SELECT id, status FROM orders; FETCH 2 FROM c; CLOSE c; COMMIT")
        .await
        .unwrap();
    let err = alice
        .batch_execute("BEGIN; DECLARE d CURSOR FOR SELECT email FROM customers")
        .await
        .unwrap_err();
    denied(&err);
    alice.batch_execute("ROLLBACK").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_follows_the_policy() {
    let proxy = start_proxy(ProxyOptions::default()).await;
    let info = proxy.conninfo("alice");
    let run = move |cmd: &'static str| {
        let info = info.clone();
        tokio::task::spawn_blocking(move || psql_with_stdin(&info, &["-c", cmd], None))
    };
    let ok = run("\\copy orders (id, status) to stdout").await.unwrap();
    assert!(ok.success(), "{}", ok.stderr);
    assert!(ok.stdout.lines().count() > 10);
    let bad = run("\\copy customers to stdout").await.unwrap();
    assert!(!bad.success());
    assert!(bad.stderr.contains("permission denied"), "{}", bad.stderr);
}

#[tokio::test]
async fn audit_mode_forwards_what_enforce_would_deny() {
    let proxy = start_proxy(ProxyOptions::default()).await;
    let legacy = proxy.connect("legacy").await; // legacy_batch: mode audit
    let rows = legacy
        .query("SELECT email FROM customers ORDER BY id LIMIT 2", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
}

#[tokio::test]
async fn function_call_messages_are_decided_by_oid() {
    let proxy = start_proxy(ProxyOptions::default()).await;
    let abs = admin_sql(
        "shop",
        "SELECT 'pg_catalog.abs(integer)'::regprocedure::oid",
    );
    let lo_creat = admin_sql(
        "shop",
        "SELECT 'pg_catalog.lo_creat(integer)'::regprocedure::oid",
    );
    let call = |oid: &str, arg: &[u8], format: i16| {
        let mut body = oid.parse::<u32>().unwrap().to_be_bytes().to_vec();
        body.extend_from_slice(&1i16.to_be_bytes()); // one argument format code
        body.extend_from_slice(&format.to_be_bytes());
        body.extend_from_slice(&1i16.to_be_bytes()); // one argument
        body.extend_from_slice(&(arg.len() as i32).to_be_bytes());
        body.extend_from_slice(arg);
        body.extend_from_slice(&0i16.to_be_bytes()); // result format text
        message(b'F', &body)
    };
    let cert = client_cert("bob"); // support role
    let mut s = tls(proxy.addr, Some(&cert), false).await;
    write(
        &mut s,
        &startup_message(&[("user", "bob"), ("database", "shop")]),
    )
    .await;
    let (_, last) = read_until_ready(&mut s).await;
    assert_eq!(last.map(|(t, _)| t), Some(b'Z'));
    // abs(-5) is on the safe list: the fastpath answer comes back.
    write(&mut s, &call(&abs, b"-5", 0)).await;
    let (tags, last) = read_until_ready(&mut s).await;
    assert!(
        tags.contains(&b'V'),
        "{tags:?} {:?}",
        last.as_ref()
            .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
    );
    assert_eq!(last.map(|(t, _)| t), Some(b'Z'));
    // lo_creat is a large-object function the role does not list: 42501, then ready.
    write(&mut s, &call(&lo_creat, &(-1i32).to_be_bytes(), 1)).await;
    let (_, last) = read_until_ready(&mut s).await;
    let (tag, body) = last.unwrap();
    assert_eq!(tag, b'E');
    assert_eq!(sqlstate(&body).as_deref(), Some("42501"));
    let (_, last) = read_until_ready(&mut s).await;
    assert_eq!(last.map(|(t, _)| t), Some(b'Z'), "session still usable");
}

#[tokio::test]
async fn a_policy_change_applies_to_live_sessions() {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(pgward_integration::policies_dir()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    let proxy = start_proxy(ProxyOptions {
        policies: Some(dir.path().to_path_buf()),
        ..ProxyOptions::default()
    })
    .await;
    let alice = proxy.connect("alice").await;
    alice
        .batch_execute("SELECT id FROM products")
        .await
        .unwrap();
    // A broken file keeps the old policy.
    std::fs::write(dir.path().join("broken.yaml"), "roles: [not a map").unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    alice
        .batch_execute("SELECT id FROM products")
        .await
        .unwrap();
    std::fs::remove_file(dir.path().join("broken.yaml")).unwrap();
    // Narrow analyst to no products at all; the live session sees it.
    let analyst = std::fs::read_to_string(dir.path().join("analyst.yaml")).unwrap();
    let narrowed = analyst.replace("      public.products:\n        select: \"*\"\n", "");
    assert_ne!(analyst, narrowed, "fixture changed: {analyst}");
    std::fs::write(dir.path().join("analyst.yaml"), narrowed).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match alice.batch_execute("SELECT id FROM products").await {
            Err(e) => {
                denied(&e);
                break;
            }
            Ok(()) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Ok(()) => panic!("the narrowed policy never applied"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_describe_family_works_for_a_catalog_role() {
    let proxy = start_proxy(ProxyOptions::default()).await;
    let info = proxy.conninfo("alice");
    for cmd in [
        "\\d",
        "\\dt",
        "\\d customers",
        "\\d+ orders",
        "\\l",
        "\\dn",
        "\\df",
        "\\du",
        "\\dv",
        "\\di",
    ] {
        let info = info.clone();
        let out = tokio::task::spawn_blocking(move || psql_with_stdin(&info, &["-c", cmd], None))
            .await
            .unwrap();
        assert!(out.success(), "{cmd}: {}", out.stderr);
        assert!(
            !out.stderr.contains("permission denied"),
            "{cmd}: {}",
            out.stderr
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latin1_clients_keep_working() {
    let proxy = start_proxy(ProxyOptions::default()).await;
    let info = proxy.conninfo("alice");
    // psql sends the bytes as given: 'café' in LATIN1 is 4 bytes, the last 0xE9.
    let out = tokio::task::spawn_blocking(move || {
        use std::os::unix::ffi::OsStrExt;
        let arg =
            std::ffi::OsStr::from_bytes(b"SELECT length('caf\xe9') AS n, count(*) FROM orders");
        std::process::Command::new(cluster().binaries().program("psql"))
            .arg("-X")
            .arg("-At")
            .arg("-d")
            .arg(&info)
            .arg("-c")
            .arg(arg)
            .env("PGCLIENTENCODING", "LATIN1")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("4|"), "{stdout}");
}
