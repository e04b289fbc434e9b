//! End to end through pgward with real clients: everything PostgreSQL speaks passes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use pgward_integration::{
    client_tls_config, cluster, connect_direct, psql_with_stdin, start_proxy, ProxyOptions,
};
use tokio_postgres::types::ToSql;
use tokio_postgres::{AsyncMessage, SimpleQueryMessage};
use tokio_postgres_rustls::MakeRustlsConnect;

fn simple_values(msgs: &[SimpleQueryMessage]) -> Vec<Vec<Option<String>>> {
    msgs.iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect())
            }
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn simple_extended_binary_and_prepared_match_direct() {
    let proxy = start_proxy(ProxyOptions::permissive()).await;
    let via = proxy.connect("app").await;
    let direct = connect_direct("app_rw", "shop").await;

    let sql = "SELECT id, name, email, country FROM customers ORDER BY id";
    let a = simple_values(&via.simple_query(sql).await.unwrap());
    let b = simple_values(&direct.simple_query(sql).await.unwrap());
    assert!(!a.is_empty());
    assert_eq!(a, b);

    // Extended protocol with binary parameters and results of several types.
    let q = "SELECT $1::int4 + 1, $2::text || '!', $3::bytea, $4::float8 * 2, $5::bool";
    let bytes: Vec<u8> = vec![0, 1, 2, 255];
    let params: [&(dyn ToSql + Sync); 5] = [&41i32, &"hi", &bytes, &1.25f64, &true];
    let row = via.query_one(q, &params).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 42);
    assert_eq!(row.get::<_, String>(1), "hi!");
    assert_eq!(row.get::<_, Vec<u8>>(2), bytes);
    assert_eq!(row.get::<_, f64>(3), 2.5);
    assert!(row.get::<_, bool>(4));

    // A named prepared statement, executed repeatedly (Bind/Execute only).
    let stmt = via
        .prepare("SELECT name FROM products WHERE id = $1")
        .await
        .unwrap();
    let dstmt = direct
        .prepare("SELECT name FROM products WHERE id = $1")
        .await
        .unwrap();
    for id in 1..=5i32 {
        let x: String = via.query_one(&stmt, &[&id]).await.unwrap().get(0);
        let y: String = direct.query_one(&dstmt, &[&id]).await.unwrap().get(0);
        assert_eq!(x, y);
    }

    // Pipelining: several extended queries in flight at once.
    let futures = (0..20i32).map(|i| {
        let via = &via;
        async move {
            let r = via.query_one("SELECT $1::int4 * 2", &[&i]).await.unwrap();
            r.get::<_, i32>(0)
        }
    });
    let got = futures::future::join_all(futures).await;
    assert_eq!(got, (0..20).map(|i| i * 2).collect::<Vec<_>>());
    proxy.stop().await;
}

#[tokio::test]
async fn hundred_thousand_rows_have_the_direct_checksum() {
    let proxy = start_proxy(ProxyOptions::permissive()).await;
    let via = proxy.connect("app").await;
    let direct = connect_direct("app_rw", "shop").await;
    let sql = "SELECT i, md5(i::text), repeat('x', i % 50) FROM generate_series(1, 100000) i";
    let checksum = |rows: Vec<tokio_postgres::Row>| {
        let mut h: u64 = 1469598103934665603;
        for r in &rows {
            let s = format!(
                "{}|{}|{}",
                r.get::<_, i32>(0),
                r.get::<_, String>(1),
                r.get::<_, String>(2)
            );
            for b in s.bytes() {
                h = (h ^ u64::from(b)).wrapping_mul(1099511628211);
            }
        }
        (rows.len(), h)
    };
    let a = checksum(via.query(sql, &[]).await.unwrap());
    let b = checksum(direct.query(sql, &[]).await.unwrap());
    assert_eq!(a.0, 100_000);
    assert_eq!(a, b);
}

#[tokio::test]
async fn copy_in_and_out() {
    let proxy = start_proxy(ProxyOptions::permissive()).await;
    // pgward resolves names against the catalog, which has no session's temp tables:
    // the relay tests use real tables, created by the migrator.
    let via = proxy.connect("mia").await;
    via.batch_execute(
        "DROP TABLE IF EXISTS relay_copy; CREATE TABLE relay_copy (id int, label text)",
    )
    .await
    .unwrap();
    let sink = via
        .copy_in("COPY relay_copy (id, label) FROM STDIN")
        .await
        .unwrap();
    futures::pin_mut!(sink);
    let mut data = String::new();
    for i in 0..5000 {
        data.push_str(&format!("{i}\tlabel {i}\n"));
    }
    sink.send(bytes::Bytes::from(data.clone())).await.unwrap();
    let n = sink.finish().await.unwrap();
    assert_eq!(n, 5000);

    let out = via
        .copy_out("COPY (SELECT id, label FROM relay_copy ORDER BY id) TO STDOUT")
        .await
        .unwrap();
    futures::pin_mut!(out);
    let mut got = Vec::new();
    while let Some(chunk) = out.next().await {
        got.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(String::from_utf8(got).unwrap(), data);
}

#[tokio::test]
async fn transaction_savepoint_and_rollback() {
    let proxy = start_proxy(ProxyOptions::permissive()).await;
    let mut via = proxy.connect("mia").await;
    via.batch_execute("DROP TABLE IF EXISTS relay_tx; CREATE TABLE relay_tx (v int)")
        .await
        .unwrap();
    let mut tx = via.transaction().await.unwrap();
    tx.execute("INSERT INTO relay_tx VALUES (1)", &[])
        .await
        .unwrap();
    let sp = tx.savepoint("sp").await.unwrap();
    sp.execute("INSERT INTO relay_tx VALUES (2)", &[])
        .await
        .unwrap();
    sp.rollback().await.unwrap();
    tx.execute("INSERT INTO relay_tx VALUES (3)", &[])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let rows = via
        .query("SELECT v FROM relay_tx ORDER BY v", &[])
        .await
        .unwrap();
    let v: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(v, vec![1, 3]);

    // An error inside a transaction aborts it, as upstream says.
    via.batch_execute("BEGIN").await.unwrap();
    assert!(via.batch_execute("SELECT 1/0").await.is_err());
    let err = via.batch_execute("SELECT 1").await.unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("25P02"));
    via.batch_execute("ROLLBACK").await.unwrap();
}

/// Connects through pgward keeping the connection's asynchronous messages.
async fn connect_with_messages(
    proxy: &pgward_integration::Proxy,
    name: &str,
) -> (
    tokio_postgres::Client,
    tokio::sync::mpsc::UnboundedReceiver<AsyncMessage>,
) {
    let mut config = tokio_postgres::Config::new();
    config
        .host("localhost")
        .port(proxy.addr.port())
        .user(name)
        .dbname("shop")
        .password(proxy.password(name))
        .ssl_mode(tokio_postgres::config::SslMode::Require);
    let tls = MakeRustlsConnect::new(client_tls_config(cluster().ca_path(), None));
    let (client, mut connection) = config.connect(tls).await.unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut stream = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(m)) = stream.next().await {
            let _ = tx.send(m);
        }
    });
    (client, rx)
}

#[tokio::test]
async fn notify_between_two_sessions_carries_the_real_backend_pid() {
    let proxy = start_proxy(ProxyOptions::permissive()).await;
    let (listener, mut messages) = connect_with_messages(&proxy, "app").await;
    let notifier = proxy.connect("app").await;
    listener
        .batch_execute("LISTEN orders_changed")
        .await
        .unwrap();
    let listener_pid: i32 = listener
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let notifier_pid: i32 = notifier
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    notifier
        .batch_execute("NOTIFY orders_changed, 'order 7'")
        .await
        .unwrap();
    // The listener sees it on its next round trip (or right away).
    listener.batch_execute("SELECT 1").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let n = loop {
        match tokio::time::timeout(Duration::from_millis(200), messages.recv()).await {
            Ok(Some(AsyncMessage::Notification(n))) => break n,
            Ok(Some(_)) => continue,
            Ok(None) => panic!("connection ended"),
            Err(_) if Instant::now() < deadline => continue,
            Err(_) => panic!("no notification"),
        }
    };
    assert_eq!(n.channel(), "orders_changed");
    assert_eq!(n.payload(), "order 7");
    // The pid in the notification is the notifier's real upstream backend pid.
    assert_eq!(n.process_id(), notifier_pid);
    assert_ne!(listener_pid, notifier_pid);
    // And it is a real backend, visible in pg_stat_activity.
    let seen = pgward_integration::admin_sql(
        "shop",
        &format!("SELECT count(*) FROM pg_stat_activity WHERE pid = {notifier_pid}"),
    );
    assert_eq!(seen, "1");
}

#[tokio::test]
async fn cancel_stops_pg_sleep_promptly() {
    let proxy = start_proxy(ProxyOptions::permissive()).await;
    let via = proxy.connect("app").await;
    let token = via.cancel_token();
    let started = Instant::now();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let tls = MakeRustlsConnect::new(client_tls_config(cluster().ca_path(), None));
        token.cancel_query(tls).await
    });
    let err = via.batch_execute("SELECT pg_sleep(30)").await.unwrap_err();
    canceller.await.unwrap().unwrap();
    assert_eq!(err.code().map(|c| c.code()), Some("57014"), "{err:?}");
    // Functional bound, not a benchmark: the 30 s sleep was cut short.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // The session is still usable after the cancel.
    let one: i32 = via.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
}

#[tokio::test]
async fn wrong_cancel_key_does_nothing() {
    let proxy = start_proxy(ProxyOptions::permissive()).await;
    let via = proxy.connect("app").await;
    let pid: i32 = via
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    // A CancelRequest with the right pid and a guessed key, over plain TCP.
    let mut s = pgward_integration::raw::tcp(proxy.addr).await;
    let mut req = vec![0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e];
    req.extend_from_slice(&pid.to_be_bytes());
    req.extend_from_slice(&12345i32.to_be_bytes());
    pgward_integration::raw::write(&mut s, &req).await;
    drop(s);
    let r = via.query_one("SELECT pg_sleep(0.5), 1", &[]).await.unwrap();
    assert_eq!(r.get::<_, i32>(1), 1);
}

#[tokio::test]
async fn startup_parameters_reach_upstream() {
    let proxy = start_proxy(ProxyOptions::permissive()).await;
    let mut config = tokio_postgres::Config::new();
    config
        .host("localhost")
        .port(proxy.addr.port())
        .user("app")
        .dbname("shop")
        .password(proxy.password("app"))
        .application_name("pgward-startup-test")
        .options("-c statement_timeout=4321 -c DateStyle=SQL,DMY")
        .ssl_mode(tokio_postgres::config::SslMode::Require);
    let tls = MakeRustlsConnect::new(client_tls_config(cluster().ca_path(), None));
    let (client, connection) = config.connect(tls).await.unwrap();
    tokio::spawn(connection);
    let row = client
        .query_one(
            "SELECT current_setting('application_name'), current_setting('statement_timeout'), current_setting('DateStyle'), current_user",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "pgward-startup-test");
    assert_eq!(row.get::<_, String>(1), "4321ms");
    assert_eq!(row.get::<_, String>(2), "SQL, DMY");
    assert_eq!(row.get::<_, String>(3), "app_rw");
}

/// psql is a blocking child process: run it off the runtime the proxy lives on.
async fn psql_async(
    info: String,
    args: Vec<&'static str>,
    stdin: Option<&'static str>,
) -> pgward_integration::PsqlOutput {
    tokio::task::spawn_blocking(move || psql_with_stdin(&info, &args, stdin))
        .await
        .unwrap()
}

#[tokio::test]
async fn parameter_status_changes_pass_through() {
    use pgward_integration::raw::{message, read_until_ready, startup_message, tls, write};
    let proxy = start_proxy(ProxyOptions::permissive()).await;
    let cert = pgward_integration::client_cert("bob");
    let mut s = tls(proxy.addr, Some(&cert), false).await;
    write(
        &mut s,
        &startup_message(&[("user", "bob"), ("database", "shop")]),
    )
    .await;
    let (_, last) = read_until_ready(&mut s).await;
    assert_eq!(last.map(|(t, _)| t), Some(b'Z'));
    write(
        &mut s,
        &message(b'Q', b"SET application_name = 'changed'\0"),
    )
    .await;
    // The upstream's ParameterStatus for the new value reaches the client as sent.
    let mut seen = false;
    while let Some((tag, body)) = pgward_integration::raw::read_message(&mut s).await {
        if tag == b'S' && body == b"application_name\0changed\0" {
            seen = true;
        }
        if tag == b'Z' {
            break;
        }
    }
    assert!(seen, "no ParameterStatus application_name=changed");
}

#[tokio::test]
async fn psql_describe_copy_and_a_script_with_errors() {
    let proxy = start_proxy(ProxyOptions::permissive()).await;
    let info = proxy.conninfo("app");
    let d = psql_async(info.clone(), vec!["-c", "\\d customers"], None).await;
    assert!(d.success(), "{}", d.stderr);
    assert!(d.stdout.contains("email"), "{}", d.stdout);

    let copy = psql_async(
        info.clone(),
        vec![
            "-c",
            "\\copy (SELECT id, name FROM products ORDER BY id LIMIT 3) to stdout",
        ],
        None,
    )
    .await;
    assert!(copy.success(), "{}", copy.stderr);
    assert_eq!(copy.stdout.lines().count(), 3, "{}", copy.stdout);

    let script = "DROP TABLE IF EXISTS relay_script;\nCREATE TABLE relay_script (v int);\n\\copy relay_script from stdin\n1\n2\n\\.\nSELECT no_such_column FROM relay_script;\nSELECT sum(v) FROM relay_script;\n";
    let out = psql_async(proxy.conninfo("mia"), vec!["-At", "-f", "-"], Some(script)).await;
    assert!(out.stderr.contains("no_such_column"), "{}", out.stderr);
    assert!(out.stdout.lines().any(|l| l == "3"), "{}", out.stdout);
}

#[tokio::test]
async fn dropped_client_ends_its_upstream_session() {
    // Without session reuse: a client that ends cleanly leaves a reusable session behind
    // otherwise (pool::).
    let proxy = start_proxy(ProxyOptions {
        upstream_extra: vec!["  pool: { max_idle: 0 }".to_owned()],
        ..ProxyOptions::permissive()
    })
    .await;
    let via = proxy.connect("app").await;
    via.batch_execute("SET application_name = 'pgward-drop-test'")
        .await
        .unwrap();
    let pid: i32 = via
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    drop(via);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n = pgward_integration::admin_sql(
            "shop",
            &format!("SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}"),
        );
        if n == "0" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "upstream backend {pid} still alive"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_upstream_that_goes_away_ends_the_client_session() {
    let proxy = start_proxy(ProxyOptions::permissive()).await;
    let via = proxy.connect("app").await;
    let pid: i32 = via
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    pgward_integration::admin_sql("shop", &format!("SELECT pg_terminate_backend({pid})"));
    // PostgreSQL's own FATAL reaches the client, then the connection closes.
    let err = via.batch_execute("SELECT 1").await.unwrap_err();
    assert!(
        err.is_closed() || err.code().map(|c| c.code()) == Some("57P01"),
        "{err:?}"
    );
    assert!(via.is_closed() || via.batch_execute("SELECT 1").await.is_err());
}

#[tokio::test]
async fn shutdown_drains_then_ends_sessions() {
    let proxy = start_proxy(ProxyOptions {
        limits: vec!["  drain_timeout_ms: 300".into()],
        ..ProxyOptions::permissive()
    })
    .await;
    let via = proxy.connect("app").await;
    let addr = proxy.addr;
    proxy.stop().await;
    // After the drain timeout the idle session was ended with 57P01.
    let err = via.batch_execute("SELECT 1").await.unwrap_err();
    assert!(
        err.is_closed() || err.code().map(|c| c.code()) == Some("57P01"),
        "{err:?}"
    );
    // And nothing listens any more.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

fn run_pgbench(args: Vec<String>) -> (bool, String, String) {
    let pgbench = cluster().binaries().program("pgbench");
    let out = std::process::Command::new(pgbench)
        .args(&args)
        .output()
        .expect("pgbench runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_all_protocols_without_errors() {
    let proxy = start_proxy(ProxyOptions::permissive()).await;
    let info = proxy.conninfo("bench");
    // pgward always denies VACUUM: initialize without it, run with -n. Server-side
    // generation (G): the analyser cannot parse COPY ... WITH (FREEZE ON) yet.
    let init: Vec<String> = ["-i", "-q", "-I", "dtGp", "-s", "1", &info]
        .map(String::from)
        .to_vec();
    let (ok, _, err) = tokio::task::spawn_blocking(move || run_pgbench(init))
        .await
        .unwrap();
    assert!(ok, "pgbench -i: {err}");
    for mode in ["simple", "extended", "prepared"] {
        let args: Vec<String> = ["-n", "-M", mode, "-c", "4", "-j", "2", "-T", "2", &info]
            .map(String::from)
            .to_vec();
        let (ok, out, err) = tokio::task::spawn_blocking(move || run_pgbench(args))
            .await
            .unwrap();
        assert!(ok, "pgbench -M {mode}: {err}\n{out}");
        assert!(
            out.contains("number of failed transactions: 0"),
            "{mode}: {out}"
        );
        assert!(out.contains("tps = "), "{mode}: {out}");
    }
}
