//! Reuse of upstream sessions between clients (issue 8, `upstream.pool`): a client that
//! ends cleanly leaves its backend, reset with DISCARD ALL, to the next login with the
//! same startup packet; nothing the first client set survives; a client that ends inside
//! a transaction or without Terminate, another login, database or startup parameter, a
//! pool of size 0 and a rotated upstream certificate never get a used backend.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pgward_integration::raw::{message, read_message, startup_message, tls, write};
use pgward_integration::{
    admin_sql, client_cert, client_tls_config, cluster, start_proxy, Proxy, ProxyOptions,
    OWN_SERVER_CERT, OWN_SERVER_KEY, OWN_UPSTREAM_CERT, OWN_UPSTREAM_KEY, PERMISSIVE_POLICY,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;
use tokio_postgres::{Client, SimpleQueryMessage};
use tokio_postgres_rustls::MakeRustlsConnect;

/// The permissive policy plus the functions these tests call to look at session state.
fn policies() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("pgward-pool-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let policy = PERMISSIVE_POLICY.replace(
            "pg_catalog.generate_series]",
            "pg_catalog.generate_series, pg_catalog.pg_advisory_lock, \
             pg_catalog.pg_listening_channels, pg_catalog.current_setting]",
        );
        std::fs::write(dir.join("permissive.yaml"), policy).unwrap();
        dir
    })
    .clone()
}

fn options(upstream_extra: &[&str]) -> ProxyOptions {
    ProxyOptions {
        policies: Some(policies()),
        upstream_extra: upstream_extra.iter().map(|l| (*l).to_owned()).collect(),
        ..ProxyOptions::default()
    }
}

/// A session through pgward whose connection task the test owns (to cut it off).
struct Session {
    client: Client,
    task: JoinHandle<()>,
}

async fn open(proxy: &Proxy, login: &str, app_name: Option<&str>) -> Session {
    let l = proxy.login(login);
    let mut config = tokio_postgres::Config::new();
    config
        .host("localhost")
        .port(proxy.addr.port())
        .user(login)
        .dbname(&l.database)
        .ssl_mode(tokio_postgres::config::SslMode::Require)
        .connect_timeout(Duration::from_secs(10));
    if let Some(name) = app_name {
        config.application_name(name);
    }
    let cert = match &l.auth {
        pgward_sandbox::DevAuth::Password(pw) => {
            config.password(pw);
            None
        }
        pgward_sandbox::DevAuth::Cert => Some(client_cert(login)),
    };
    let tls = MakeRustlsConnect::new(client_tls_config(cluster().ca_path(), cert.as_ref()));
    let (client, connection) = config.connect(tls).await.unwrap();
    let task = tokio::spawn(async move {
        let _ = connection.await;
    });
    Session { client, task }
}

/// The first column of the first row.
async fn one(client: &Client, sql: &str) -> Option<String> {
    let msgs = client.simple_query(sql).await.unwrap();
    msgs.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(r) => Some(r.get(0).map(str::to_owned)),
        _ => None,
    })?
}

async fn pid(client: &Client) -> i32 {
    one(client, "SELECT pg_backend_pid()")
        .await
        .unwrap()
        .parse()
        .unwrap()
}

/// What the sandbox says about a backend: `state|query`, or "" once it is gone.
fn activity(pid: i32) -> String {
    admin_sql(
        "shop",
        &format!("SELECT state || '|' || query FROM pg_stat_activity WHERE pid = {pid}"),
    )
}

/// Ends a session politely (tokio-postgres sends Terminate) and waits until pgward has
/// reset its backend and pooled it.
async fn close_and_wait_pooled(s: Session, pid: i32) {
    drop(s.client);
    let _ = s.task.await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while activity(pid) != "idle|DISCARD ALL" {
        assert!(
            Instant::now() < deadline,
            "backend {pid} never reset: {}",
            activity(pid)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // pgward puts it in the pool right after ReadyForQuery.
    tokio::time::sleep(Duration::from_millis(100)).await;
}

async fn wait_gone(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !activity(pid).is_empty() {
        assert!(
            Instant::now() < deadline,
            "backend {pid} still alive: {}",
            activity(pid)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_clean_session_leaves_a_reset_backend_to_the_next_one() {
    let proxy = start_proxy(options(&[])).await;
    let a = open(&proxy, "app", None).await;
    let first = pid(&a.client).await;
    let pinned = (
        one(&a.client, "SHOW search_path").await,
        one(&a.client, "SHOW standard_conforming_strings").await,
    );
    // (A custom GUC cannot be SET through pgward: the gate refuses it.)
    a.client
        .batch_execute(
            "SET application_name = 'pool-first'; SET statement_timeout = '4321s'; \
             CREATE TEMP TABLE pool_leftover (v int); LISTEN pool_channel; \
             SELECT pg_advisory_lock(4242)",
        )
        .await
        .unwrap();
    // Kept until the session ends (a dropped Statement is closed).
    let _prepared = a
        .client
        .prepare("SELECT name FROM products WHERE id = $1")
        .await
        .unwrap();
    assert_ne!(
        one(&a.client, "SELECT count(*) FROM pg_prepared_statements").await,
        Some("0".into())
    );
    let locks =
        format!("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = {first}");
    assert_eq!(admin_sql("shop", &locks), "1");
    close_and_wait_pooled(a, first).await;

    let b = open(&proxy, "app", None).await;
    assert_eq!(
        pid(&b.client).await,
        first,
        "the idle backend was not reused"
    );
    assert_eq!(
        one(&b.client, "SHOW application_name").await,
        Some(String::new())
    );
    assert_eq!(
        one(&b.client, "SHOW statement_timeout").await,
        Some("0".into())
    );
    // The pinned settings are what the login pinned (DISCARD ALL resets to the startup
    // packet's values, which carry the pins).
    assert_eq!(
        (
            one(&b.client, "SHOW search_path").await,
            one(&b.client, "SHOW standard_conforming_strings").await,
        ),
        pinned
    );
    assert_eq!(
        one(&b.client, "SELECT count(*) FROM pg_prepared_statements").await,
        Some("0".into())
    );
    assert_eq!(
        one(&b.client, "SELECT count(*) FROM pg_listening_channels()").await,
        Some("0".into())
    );
    assert_eq!(admin_sql("shop", &locks), "0");
    assert_eq!(
        admin_sql(
            "shop",
            "SELECT count(*) FROM pg_class WHERE relname = 'pool_leftover'"
        ),
        "0"
    );
    // The reused session works like a fresh one, extended protocol included.
    let row = b
        .client
        .query_one("SELECT $1::int4 + 1", &[&41i32])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 42);
}

/// A cert login over the raw protocol: the ParameterStatus set and the pid it was sent.
async fn raw_login(
    addr: SocketAddr,
) -> (
    tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    Vec<(String, String)>,
    i32,
) {
    let cert = client_cert("bob");
    let mut s = tls(addr, Some(&cert), false).await;
    write(
        &mut s,
        &startup_message(&[("user", "bob"), ("database", "shop")]),
    )
    .await;
    let mut params = Vec::new();
    let mut pid = 0;
    while let Some((tag, body)) = read_message(&mut s).await {
        match tag {
            b'S' => {
                let mut parts = body.split(|b| *b == 0);
                let name = String::from_utf8_lossy(parts.next().unwrap()).into_owned();
                let value = String::from_utf8_lossy(parts.next().unwrap()).into_owned();
                params.push((name, value));
            }
            b'K' => pid = i32::from_be_bytes(body[..4].try_into().unwrap()),
            b'Z' => {
                assert_eq!(body, b"I");
                break;
            }
            b'E' => panic!("login refused: {}", String::from_utf8_lossy(&body)),
            _ => {}
        }
    }
    params.sort();
    (s, params, pid)
}

#[tokio::test]
async fn a_reused_backend_is_announced_like_a_fresh_login() {
    let proxy = start_proxy(options(&[])).await;
    let (mut s, fresh, first) = raw_login(proxy.addr).await;
    assert!(
        fresh.iter().any(|(n, _)| n == "server_version"),
        "{fresh:?}"
    );
    write(
        &mut s,
        &message(
            b'Q',
            b"SET application_name = 'changed'; SET DateStyle = 'SQL, DMY'\0",
        ),
    )
    .await;
    while let Some((tag, _)) = read_message(&mut s).await {
        if tag == b'Z' {
            break;
        }
    }
    write(&mut s, &message(b'X', b"")).await;
    let _ = s.shutdown().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while activity(first) != "idle|DISCARD ALL" {
        assert!(Instant::now() < deadline, "{}", activity(first));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (_s, again, second) = raw_login(proxy.addr).await;
    assert_eq!(second, first, "not reused");
    assert_eq!(again, fresh);
}

#[tokio::test]
async fn a_session_ended_in_a_transaction_or_without_terminate_is_not_reused() {
    let proxy = start_proxy(options(&[])).await;
    // Terminate inside an open transaction: DISCARD ALL refuses, the backend is closed.
    let a = open(&proxy, "app", None).await;
    let in_tx = pid(&a.client).await;
    a.client
        .batch_execute(
            "BEGIN; SET LOCAL application_name = 'in-tx'; CREATE TEMP TABLE pool_tx (v int)",
        )
        .await
        .unwrap();
    drop(a.client);
    let _ = a.task.await;
    wait_gone(in_tx).await;

    // Cut off without Terminate (the connection task is dropped mid-session).
    let b = open(&proxy, "app", None).await;
    let cut = pid(&b.client).await;
    assert_ne!(cut, in_tx);
    b.client
        .batch_execute("SET application_name = 'cut-off'")
        .await
        .unwrap();
    b.task.abort();
    let _ = b.task.await;
    wait_gone(cut).await;

    let c = open(&proxy, "app", None).await;
    let third = pid(&c.client).await;
    assert!(third != in_tx && third != cut);
    assert_eq!(
        one(&c.client, "SHOW application_name").await,
        Some(String::new())
    );
}

#[tokio::test]
async fn other_logins_databases_and_startup_parameters_get_their_own_backends() {
    let proxy = start_proxy(options(&[])).await;
    let a = open(&proxy, "app", None).await;
    let pooled = pid(&a.client).await;
    close_and_wait_pooled(a, pooled).await;

    // Another login (another upstream user), another database, another parameter.
    for (login, app_name) in [("alice", None), ("bench", None), ("app", Some("other-app"))] {
        let s = open(&proxy, login, app_name).await;
        assert_ne!(pid(&s.client).await, pooled, "{login} {app_name:?}");
        drop(s.client);
        let _ = s.task.await;
    }
    assert_eq!(activity(pooled), "idle|DISCARD ALL");
    // The same login again still finds it.
    let again = open(&proxy, "app", None).await;
    assert_eq!(pid(&again.client).await, pooled);
}

#[tokio::test]
async fn max_idle_zero_turns_reuse_off() {
    let proxy = start_proxy(options(&["  pool: { max_idle: 0 }"])).await;
    let a = open(&proxy, "app", None).await;
    let first = pid(&a.client).await;
    drop(a.client);
    let _ = a.task.await;
    wait_gone(first).await;
    let b = open(&proxy, "app", None).await;
    assert_ne!(pid(&b.client).await, first);
}

#[tokio::test]
async fn idle_backends_expire_and_dead_ones_are_replaced() {
    let proxy = start_proxy(options(&["  pool: { max_idle: 4, idle_timeout_secs: 1 }"])).await;
    let a = open(&proxy, "app", None).await;
    let expiring = pid(&a.client).await;
    close_and_wait_pooled(a, expiring).await;
    // The sweeper closes it without any new session arriving.
    wait_gone(expiring).await;

    let b = open(&proxy, "app", None).await;
    let killed = pid(&b.client).await;
    assert_ne!(killed, expiring);
    close_and_wait_pooled(b, killed).await;
    // The server ends the pooled backend behind pgward's back: the next client gets a
    // working fresh one.
    admin_sql("shop", &format!("SELECT pg_terminate_backend({killed})"));
    wait_gone(killed).await;
    let c = open(&proxy, "app", None).await;
    assert_ne!(pid(&c.client).await, killed);
    assert_eq!(one(&c.client, "SELECT 1").await, Some("1".into()));
}

#[tokio::test]
async fn cancel_reaches_a_reused_backend() {
    let proxy = start_proxy(options(&[])).await;
    let a = open(&proxy, "app", None).await;
    let first = pid(&a.client).await;
    close_and_wait_pooled(a, first).await;

    let b = open(&proxy, "app", None).await;
    assert_eq!(pid(&b.client).await, first);
    let token = b.client.cancel_token();
    let started = Instant::now();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let tls = MakeRustlsConnect::new(client_tls_config(cluster().ca_path(), None));
        token.cancel_query(tls).await
    });
    let err = b
        .client
        .batch_execute("SELECT pg_sleep(10)")
        .await
        .unwrap_err();
    canceller.await.unwrap().unwrap();
    assert_eq!(err.code().map(|c| c.code()), Some("57014"), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(one(&b.client, "SELECT 1").await, Some("1".into()));
    // Delivered: the backend goes back to the pool once more.
    close_and_wait_pooled(b, first).await;
    let c = open(&proxy, "app", None).await;
    assert_eq!(pid(&c.client).await, first);
}

/// The DER certificate pgward presents to a client.
async fn presented_cert(addr: SocketAddr) -> Vec<u8> {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
        .await
        .unwrap();
    let mut answer = [0u8; 1];
    tcp.read_exact(&mut answer).await.unwrap();
    let connector =
        tokio_rustls::TlsConnector::from(Arc::new(client_tls_config(cluster().ca_path(), None)));
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

async fn upstream_serial(client: &Client) -> String {
    one(
        client,
        "SELECT client_serial::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn a_rotated_upstream_certificate_is_never_served_by_an_old_backend() {
    let proxy = start_proxy(ProxyOptions {
        own_tls_files: true,
        ..options(&[])
    })
    .await;
    let dir = proxy.dir().to_path_buf();
    let a = open(&proxy, "app", None).await;
    let old_pid = pid(&a.client).await;
    let old_serial = upstream_serial(&a.client).await;
    close_and_wait_pooled(a, old_pid).await;

    let ca = cluster().ca();
    let tag = format!("{}-pool", std::process::id());
    let server = ca
        .issue_server(
            &format!("rotated-server-{tag}"),
            &["localhost", "127.0.0.1"],
        )
        .unwrap();
    let upstream = ca
        .issue_client_as(
            &format!("rotated-pgward-{tag}"),
            pgward_integration::PROXY_CN,
        )
        .unwrap();
    let old_cert = presented_cert(proxy.addr).await;
    for (name, from) in [
        (OWN_SERVER_KEY, &server.key_path),
        (OWN_SERVER_CERT, &server.cert_path),
        (OWN_UPSTREAM_KEY, &upstream.key_path),
        (OWN_UPSTREAM_CERT, &upstream.cert_path),
    ] {
        let tmp = dir.join(format!("{name}.new"));
        std::fs::copy(from, &tmp).unwrap();
        std::fs::rename(&tmp, dir.join(name)).unwrap();
    }
    let users = dir.join("users.yaml");
    let text = std::fs::read_to_string(&users).unwrap();
    std::fs::write(&users, format!("{text}\n# reload {:?}\n", Instant::now())).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while presented_cert(proxy.addr).await == old_cert {
        assert!(Instant::now() < deadline, "the reload never happened");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let b = open(&proxy, "app", None).await;
    assert_ne!(
        pid(&b.client).await,
        old_pid,
        "an old-certificate backend was reused"
    );
    assert_ne!(upstream_serial(&b.client).await, old_serial);
    // The reload closed the old one too.
    wait_gone(old_pid).await;
}

/// At shutdown every pooled backend gets a Terminate: PostgreSQL logs nothing about its
/// end (a dropped TLS connection makes it log a lost connection instead).
#[tokio::test]
async fn pooled_backends_are_terminated_at_shutdown() {
    let proxy = start_proxy(options(&[])).await;
    let a = open(&proxy, "app", Some("pooled-at-shutdown")).await;
    let p = pid(&a.client).await;
    close_and_wait_pooled(a, p).await;
    let log_path = cluster().log_path().to_owned();
    let log_start = std::fs::metadata(&log_path).map_or(0, |m| m.len());
    proxy.stop().await;
    wait_gone(p).await;
    let log = std::fs::read(&log_path).unwrap();
    let start = usize::try_from(log_start).unwrap().min(log.len());
    let tag = format!("[{p}]");
    let about_it: Vec<_> = String::from_utf8_lossy(&log[start..])
        .lines()
        .filter(|l| l.contains(&tag))
        .map(str::to_owned)
        .collect();
    assert!(about_it.is_empty(), "{about_it:#?}");
}
