//! A bounded load test, loopback only (issue 7): `PGWARD_LOAD_SESSIONS` (default 200)
//! TLS sessions — SCRAM and client-certificate logins of the demo — run a paced, mixed
//! workload (simple queries, prepared and unnamed extended-protocol statements, small
//! transactions, and now and then a statement the policy denies) for `PGWARD_LOAD_SECS`
//! (default 30), while a brute-forcer on another loopback address guesses passwords and a
//! third client sends malformed packets and frames. The good sessions must see nothing but
//! their expected denials (42501, session still usable), the attacker must be locked out,
//! pgward must keep accepting logins, and memory must stay bounded.
//!
//! Memory is the whole test process's RSS, and the clients (tokio-postgres, rustls) live in
//! the same process as pgward: the per-session figure is an upper bound, not pgward's own.
//!
//! Each session sleeps `PGWARD_LOAD_PACE_MS` (default 500) ±50% between units of work, so
//! the default run stays near half a core on the 2-core CI machine. The figures are
//! printed: `cargo test -p pgward-integration --test e2e load:: -- --nocapture`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use pgward_integration::raw::{
    message, read_message, read_until_ready, sqlstate, startup_message, tcp, tls, write,
    SSL_REQUEST,
};
use pgward_integration::{client_cert, client_tls_config, cluster, start_proxy, ProxyOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::Client;
use tokio_postgres_rustls::MakeRustlsConnect;

/// Failed logins from one address before pgward locks it out (passed to the proxy).
const LOCKOUT_AFTER: u64 = 10;
/// The brute-forcer's source address: lockout is per client address, and every good
/// session (and the churn logins) come from 127.0.0.1, which must stay unaffected.
const ATTACKER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// Logins opened at once while the sessions connect.
const CONNECT_CONCURRENCY: usize = 16;
/// Generous: the process RSS per idle session, clients' TLS and driver state included.
const MAX_RSS_PER_SESSION_KIB: u64 = 512;

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v}: not a number")),
        Err(_) => default,
    }
}

/// What one demo login runs. Every statement is allowed for its role except `denied`,
/// which pgward must refuse itself (PostgreSQL would run it: pg_sleep(0) and the
/// columns are granted upstream).
struct Script {
    login: &'static str,
    simple: &'static str,
    /// Prepared once per session, executed with an integer id.
    prepared: &'static str,
    /// Sent with the unnamed statement each time (Parse/Bind/Execute/Sync).
    unnamed: &'static str,
    /// Two reads inside BEGIN ... COMMIT.
    transaction: [&'static str; 2],
    denied: &'static str,
}

const SCRIPTS: [Script; 4] = [
    Script {
        login: "alice", // SCRAM, analyst
        simple: "SELECT count(*), sum(total) FROM orders WHERE status <> 'cancelled'",
        prepared: "SELECT id, total, status FROM orders WHERE id = $1",
        unnamed: "SELECT country, count(*) FROM customers WHERE id <= $1 GROUP BY country",
        transaction: [
            "SELECT id, customer_id FROM orders WHERE id = $1",
            "SELECT name, price FROM products WHERE id = $1",
        ],
        denied: "SELECT email FROM customers WHERE id = 1",
    },
    Script {
        login: "bob", // client certificate, support
        simple: "SELECT id, name, email FROM customers WHERE id = 3",
        prepared: "SELECT id, status FROM orders WHERE customer_id = $1",
        unnamed: "SELECT email FROM customers WHERE id = $1",
        transaction: [
            "SELECT status FROM orders WHERE id = $1",
            "SELECT country FROM customers WHERE id = $1",
        ],
        denied: "SELECT phone FROM customers WHERE id = 1",
    },
    Script {
        login: "app", // SCRAM, app
        simple: "SELECT id, status, note FROM orders ORDER BY id LIMIT 5",
        prepared: "SELECT total FROM orders WHERE id = $1",
        unnamed: "SELECT count(*) FROM orders WHERE customer_id = $1",
        transaction: [
            "SELECT status FROM orders WHERE id = $1",
            "SELECT note FROM orders WHERE id = $1",
        ],
        denied: "SELECT name FROM customers",
    },
    Script {
        login: "mia", // client certificate, migrator
        simple: "SELECT count(*) FROM customers",
        prepared: "SELECT phone FROM customers WHERE id = $1",
        unnamed: "SELECT stock FROM products WHERE id = $1",
        transaction: [
            "SELECT name FROM customers WHERE id = $1",
            "SELECT total FROM orders WHERE id = $1",
        ],
        denied: "SELECT pg_sleep(0)",
    },
];

/// Counters shared by the good sessions.
#[derive(Default)]
struct Work {
    statements: AtomicU64,
    denials: AtomicU64,
    transactions: AtomicU64,
    units: AtomicU64,
    errors: Mutex<Vec<String>>,
    /// Per unit of work, in microseconds.
    latencies: Mutex<Vec<u32>>,
}

impl Work {
    fn error(&self, what: String) {
        self.errors.lock().unwrap().push(what);
    }
}

fn code(e: &tokio_postgres::Error) -> Option<&str> {
    e.as_db_error().map(|d| d.code().code())
}

/// A denial from pgward: 42501 with pgward's own message, not PostgreSQL's.
fn is_pgward_denial(e: &tokio_postgres::Error) -> bool {
    code(e) == Some("42501")
        && e.as_db_error()
            .is_some_and(|d| d.message().starts_with("permission denied: role"))
}

/// A small deterministic generator for ids and jitter.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// What one unit of a good session's work was.
enum Unit {
    Plain,
    Transaction,
    Denial,
}

/// One good session's loop until `deadline`. Every error is recorded: a good session
/// must see none but its expected denials.
async fn good_session(
    index: usize,
    mut client: Client,
    script: &'static Script,
    work: Arc<Work>,
    deadline: Instant,
    pace: Duration,
    stagger: Duration,
) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (index as u64 + 1));
    let who = format!("session {index} ({})", script.login);
    let prepared = match client.prepare(script.prepared).await {
        Ok(s) => s,
        Err(e) => return work.error(format!("{who} prepare: {e:?}")),
    };
    // Spread the sessions over one pace period so they do not run in lockstep.
    tokio::time::sleep(stagger).await;
    let mut step: u64 = 0;
    while Instant::now() < deadline {
        let id = i32::try_from(rng.next() % 30 + 1).unwrap();
        let started = Instant::now();
        let outcome: Result<(Unit, u64), String> = match step % 10 {
            0 | 3 | 6 => client
                .simple_query(script.simple)
                .await
                .map(|_| (Unit::Plain, 1))
                .map_err(|e| format!("simple query: {e:?}")),
            1 | 4 | 7 => client
                .query(&prepared, &[&id])
                .await
                .map(|_| (Unit::Plain, 1))
                .map_err(|e| format!("prepared statement: {e:?}")),
            2 | 5 => client
                .query(script.unnamed, &[&id])
                .await
                .map(|_| (Unit::Plain, 1))
                .map_err(|e| format!("unnamed statement: {e:?}")),
            8 => transaction(&mut client, script, id)
                .await
                .map(|()| (Unit::Transaction, 4)),
            // Every other time inside a transaction block: the denial aborts it, COMMIT
            // rolls back, and the session goes on.
            _ if step % 20 == 19 => denied(&client, script, true)
                .await
                .map(|()| (Unit::Denial, 3)),
            _ => denied(&client, script, false)
                .await
                .map(|()| (Unit::Denial, 1)),
        };
        match outcome {
            Ok((unit, statements)) => {
                work.statements.fetch_add(statements, Ordering::Relaxed);
                work.units.fetch_add(1, Ordering::Relaxed);
                match unit {
                    Unit::Plain => {}
                    Unit::Transaction => {
                        work.transactions.fetch_add(1, Ordering::Relaxed);
                    }
                    Unit::Denial => {
                        work.denials.fetch_add(1, Ordering::Relaxed);
                    }
                }
                let micros = u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX);
                work.latencies.lock().unwrap().push(micros);
            }
            Err(e) => work.error(format!("{who} step {step}: {e}")),
        }
        step += 1;
        let jitter = pace.mul_f64((rng.next() % 1000) as f64 / 1000.0);
        tokio::time::sleep_until(tokio::time::Instant::from_std(
            (Instant::now() + pace / 2 + jitter).min(deadline),
        ))
        .await;
    }
}

async fn transaction(client: &mut Client, script: &Script, id: i32) -> Result<(), String> {
    let t = client
        .transaction()
        .await
        .map_err(|e| format!("BEGIN: {e:?}"))?;
    for sql in script.transaction {
        t.query(sql, &[&id])
            .await
            .map_err(|e| format!("in a transaction: {sql}: {e:?}"))?;
    }
    t.commit().await.map_err(|e| format!("COMMIT: {e:?}"))
}

/// Runs the denied statement: it must fail with pgward's 42501, and the session must stay
/// usable (the caller's next statement proves it).
async fn denied(client: &Client, script: &Script, in_block: bool) -> Result<(), String> {
    if in_block {
        client
            .batch_execute("BEGIN")
            .await
            .map_err(|e| format!("BEGIN: {e:?}"))?;
    }
    match client.simple_query(script.denied).await {
        Err(e) if is_pgward_denial(&e) => {}
        Err(e) => return Err(format!("{}: not pgward's denial: {e:?}", script.denied)),
        Ok(_) => return Err(format!("{}: allowed, must be denied", script.denied)),
    }
    if in_block {
        // PostgreSQL aborted the block: COMMIT answers ROLLBACK, without an error.
        let done = client
            .simple_query("COMMIT")
            .await
            .map_err(|e| format!("COMMIT after a denial: {e:?}"))?;
        let rolled_back = done
            .iter()
            .any(|m| matches!(m, tokio_postgres::SimpleQueryMessage::CommandComplete(_)));
        if !rolled_back {
            return Err("COMMIT after a denial: no CommandComplete".into());
        }
    }
    Ok(())
}

/// A login from `source` (any loopback address), over TLS, with this password.
async fn login_from(
    proxy_addr: SocketAddr,
    source: Ipv4Addr,
    user: &str,
    password: &str,
) -> Result<Client, tokio_postgres::Error> {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(IpAddr::V4(source), 0))
        .unwrap_or_else(|e| panic!("bind {source}: {e} (loopback 127.0.0.0/8 must be local)"));
    let stream = socket.connect(proxy_addr).await.expect("connect to pgward");
    let mut make = MakeRustlsConnect::new(client_tls_config(cluster().ca_path(), None));
    let tls =
        MakeTlsConnect::<TcpStream>::make_tls_connect(&mut make, "localhost").expect("server name");
    let mut config = tokio_postgres::Config::new();
    config
        .user(user)
        .dbname("shop")
        .password(password)
        .ssl_mode(SslMode::Require);
    let (client, connection) = config.connect_raw(stream, tls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

#[derive(Default)]
struct Attack {
    attempts: u64,
    password_refused: u64,
    locked_out: u64,
    first_lockout_after: Option<Duration>,
    unexpected: Vec<String>,
}

/// Wrong passwords for alice from 127.0.0.2 until `deadline`.
async fn brute_force(proxy_addr: SocketAddr, deadline: Instant) -> Attack {
    let started = Instant::now();
    let mut attack = Attack::default();
    while Instant::now() < deadline {
        attack.attempts += 1;
        let guess = format!("guess-{}", attack.attempts);
        let attempt = tokio::time::timeout(
            Duration::from_secs(15),
            login_from(proxy_addr, ATTACKER, "alice", &guess),
        )
        .await;
        match attempt {
            Ok(Err(e)) if code(&e) == Some("28P01") && attack.locked_out == 0 => {
                attack.password_refused += 1
            }
            Ok(Err(e))
                if code(&e) == Some("28000")
                    && e.as_db_error()
                        .is_some_and(|d| d.message().contains("too many failed")) =>
            {
                attack.locked_out += 1;
                attack.first_lockout_after.get_or_insert(started.elapsed());
            }
            Ok(Err(e)) => attack
                .unexpected
                .push(format!("attempt {}: {e:?}", attack.attempts)),
            Ok(Ok(_)) => attack.unexpected.push(format!(
                "attempt {}: a wrong password logged in",
                attack.attempts
            )),
            Err(_) => attack
                .unexpected
                .push(format!("attempt {}: no answer in 15 s", attack.attempts)),
        }
        // Before the lockout pgward itself slows the attempts down; after it, keep the
        // pressure bounded.
        if attack.locked_out > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    attack
}

/// Reads until EOF (or a 10 s cap); true if the peer closed the connection.
async fn closed<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

/// What the malformed-input client sends, one kind per connection.
const MALFORMED_KINDS: usize = 10;

/// One malformed connection of kind `kind`; `Err` says how pgward failed to end it.
async fn malformed(proxy_addr: SocketAddr, kind: usize) -> Result<(), String> {
    // Before any authentication: pgward drops the connection.
    let pre_auth: Option<Vec<u8>> = match kind {
        0 => Some(b"\xff\xff\xff\xffGET / HTTP/1.1\r\n\r\n".to_vec()),
        1 => Some(vec![0, 0, 0, 3, 0, 3, 0, 0]), // length below the minimum
        2 => Some([&20_000u32.to_be_bytes()[..], &[0, 3, 0, 0]].concat()), // over 10000
        3 => {
            // A startup packet cut short, then the client stops sending.
            let m = startup_message(&[("user", "bob"), ("database", "shop")]);
            Some(m[..m.len() / 2].to_vec())
        }
        4 => {
            // Plaintext bytes queued behind an SSLRequest (CVE-2021-23214 pattern).
            let mut m = SSL_REQUEST.to_vec();
            m.extend_from_slice(&startup_message(&[("user", "bob")]));
            Some(m)
        }
        _ => None,
    };
    if let Some(bytes) = pre_auth {
        let mut s = tcp(proxy_addr).await;
        write(&mut s, &bytes).await;
        if kind == 3 {
            let _ = s.shutdown().await;
        }
        return if closed(&mut s).await {
            Ok(())
        } else {
            Err(format!("kind {kind}: connection left open"))
        };
    }
    // After a certificate login: an ErrorResponse 08P01, then the connection closes.
    let bad: Vec<u8> = match kind {
        5 => [&b"Q"[..], &1_000_000u32.to_be_bytes()].concat(), // over max_message_bytes
        6 => vec![b'Q', 0xff, 0xff, 0xff, 0xf0],                // negative length
        7 => message(b'!', b"unknown type"),
        8 => vec![b'Q', 0, 0, 0, 3],     // length below 4
        _ => message(b'F', b"\x00\x01"), // FunctionCall too short for its OID
    };
    let cert = client_cert("bob");
    let mut s = tls(proxy_addr, Some(&cert), false).await;
    write(
        &mut s,
        &startup_message(&[("user", "bob"), ("database", "shop")]),
    )
    .await;
    let (_, last) = read_until_ready(&mut s).await;
    if last.as_ref().map(|(t, _)| *t) != Some(b'Z') {
        return Err(format!("kind {kind}: login failed: {last:?}"));
    }
    write(&mut s, &bad).await;
    match read_message(&mut s).await {
        Some((b'E', body)) if sqlstate(&body).as_deref() == Some("08P01") => {}
        other => return Err(format!("kind {kind}: expected 08P01, got {other:?}")),
    }
    if closed(&mut s).await {
        Ok(())
    } else {
        Err(format!("kind {kind}: connection left open after the error"))
    }
}

async fn malformed_sender(proxy_addr: SocketAddr, deadline: Instant) -> (u64, Vec<String>) {
    let mut sent = 0u64;
    let mut unexpected = Vec::new();
    while Instant::now() < deadline {
        let kind = usize::try_from(sent).unwrap() % MALFORMED_KINDS;
        if let Err(e) = malformed(proxy_addr, kind).await {
            unexpected.push(e);
        }
        sent += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (sent, unexpected)
}

/// Fresh SCRAM logins from 127.0.0.1 during the attack: the lockout is the attacker's only.
async fn churn_logins(
    proxy: Arc<pgward_integration::Proxy>,
    deadline: Instant,
    work: Arc<Work>,
) -> u64 {
    let mut logins = 0;
    while Instant::now() < deadline {
        match proxy.try_connect("alice").await {
            Ok(c) => match c.simple_query("SELECT 1").await {
                Ok(_) => logins += 1,
                Err(e) => work.error(format!("churn login {logins}: {e:?}")),
            },
            Err(e) => work.error(format!("churn login {logins}: {e:?}")),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    logins
}

/// A memory figure of this process from /proc/self/status (`VmRSS`: resident now,
/// `VmHWM`: peak resident), in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"))
}

fn rss_kib() -> u64 {
    status_kib("VmRSS")
}

/// CPU time (user + system) of this process, assuming USER_HZ = 100 (Linux's value).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the command name, which is in parentheses and may contain spaces.
    let after = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

async fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
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

/// The value of a metric line such as `pgward_auth_failures_total{reason="lockout"}`.
fn metric(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_sessions_under_attack_see_no_errors() {
    let sessions = usize::try_from(env_u64("PGWARD_LOAD_SESSIONS", 200)).unwrap();
    let secs = env_u64("PGWARD_LOAD_SECS", 30);
    let pace = Duration::from_millis(env_u64("PGWARD_LOAD_PACE_MS", 500));
    let admin_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let proxy = Arc::new(
        start_proxy(ProxyOptions {
            limits: vec![
                format!("  login_lockout_after: {LOCKOUT_AFTER}"),
                "  login_lockout_secs: 600".into(),
                "  max_message_bytes: 65536".into(),
            ],
            extra: vec![format!("admin:\n  listen: 127.0.0.1:{admin_port}")],
            ..ProxyOptions::default()
        })
        .await,
    );
    let addr = proxy.addr;

    // Warm up (catalog, TLS configs, allocator arenas), then the baseline.
    for s in &SCRIPTS {
        let c = proxy.connect(s.login).await;
        c.simple_query(s.simple).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_before = rss_kib();

    // Open every session, a few at a time, and let them sit idle.
    let connect_started = Instant::now();
    let clients: Vec<(usize, Result<Client, tokio_postgres::Error>)> =
        futures::stream::iter(0..sessions)
            .map(|i| {
                // A task each: the clients' SCRAM work then runs on both worker threads.
                let proxy = proxy.clone();
                tokio::spawn(async move {
                    (i, proxy.try_connect(SCRIPTS[i % SCRIPTS.len()].login).await)
                })
            })
            .buffer_unordered(CONNECT_CONCURRENCY)
            .map(|joined| joined.expect("a login task panicked"))
            .collect()
            .await;
    let connect_time = connect_started.elapsed();
    let mut connected = Vec::with_capacity(sessions);
    for (i, c) in clients {
        match c {
            Ok(c) => connected.push((i, c)),
            Err(e) => panic!(
                "session {i} ({}) could not log in: {e:?}",
                SCRIPTS[i % 4].login
            ),
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_idle = rss_kib();
    let per_session = rss_idle.saturating_sub(rss_before) as f64 / sessions as f64;
    println!(
        "load: {sessions} sessions logged in in {:.1} s (alice/app SCRAM, bob/mia certificate)",
        connect_time.as_secs_f64()
    );
    println!(
        "load: process RSS {rss_before} KiB before, {rss_idle} KiB with {sessions} idle sessions: \
         {per_session:.1} KiB per session (upper bound: clients, their TLS and pgward in one process)"
    );

    // The load: good sessions, the brute-forcer, the malformed sender and fresh logins.
    let work = Arc::new(Work::default());
    let cpu_start = cpu_seconds();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for (i, client) in connected {
        tasks.push(tokio::spawn(good_session(
            i,
            client,
            &SCRIPTS[i % SCRIPTS.len()],
            work.clone(),
            deadline,
            pace,
            pace.mul_f64(i as f64 / sessions as f64),
        )));
    }
    let attacker = tokio::spawn(brute_force(addr, deadline));
    let junk = tokio::spawn(malformed_sender(addr, deadline));
    let churn = tokio::spawn(churn_logins(proxy.clone(), deadline, work.clone()));
    for t in tasks {
        t.await.expect("a good session task panicked");
    }
    let attack = attacker.await.expect("brute-forcer panicked");
    let (malformed_sent, malformed_unexpected) = junk.await.expect("malformed sender panicked");
    let churned = churn.await.expect("churn task panicked");
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_start;
    let rss_after = rss_kib();

    // After the run: a new login of each kind works, from 127.0.0.1, and the attacker's
    // address is still locked out even with the right password.
    for login in ["alice", "bob"] {
        let c = proxy.connect(login).await;
        c.simple_query("SELECT 1").await.unwrap();
    }
    let right = proxy.password("alice");
    let e = login_from(addr, ATTACKER, "alice", &right)
        .await
        .map(drop)
        .expect_err("the attacker's address is locked out");
    assert_eq!(code(&e), Some("28000"), "{e:?}");
    assert_eq!(http_get(admin_port, "/healthz").await.0, 200);
    let (_, metrics) = http_get(admin_port, "/metrics").await;

    let statements = work.statements.load(Ordering::Relaxed);
    let units = work.units.load(Ordering::Relaxed);
    let mut latencies = std::mem::take(&mut *work.latencies.lock().unwrap());
    latencies.sort_unstable();
    println!(
        "load: {elapsed:.1} s: {statements} statements ({:.0}/s) in {units} units of work, \
         {} denials (42501), {} transactions; unit latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; \
         process CPU {cpu:.1} s ({:.0}% of one core)",
        statements as f64 / elapsed,
        work.denials.load(Ordering::Relaxed),
        work.transactions.load(Ordering::Relaxed),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
        100.0 * cpu / elapsed,
    );
    println!(
        "load: process RSS after the run {rss_after} KiB, peak {} KiB",
        status_kib("VmHWM")
    );
    println!(
        "load: brute-forcer (127.0.0.2): {} attempts, {} refused as wrong password, {} refused by \
         the lockout (first after {:.1} s)",
        attack.attempts,
        attack.password_refused,
        attack.locked_out,
        attack.first_lockout_after.map_or(0.0, |d| d.as_secs_f64()),
    );
    println!(
        "load: malformed sender: {malformed_sent} sessions, {} not ended as expected",
        malformed_unexpected.len()
    );
    println!("load: {churned} fresh SCRAM logins from 127.0.0.1 during the attack");
    for l in metrics.lines().filter(|l| {
        l.starts_with("pgward_auth_failures_total") || l.starts_with("pgward_sessions_total")
    }) {
        println!("load: metric {l}");
    }

    let errors = work.errors.lock().unwrap();
    assert!(
        errors.is_empty(),
        "{} errors in good sessions, first: {:#?}",
        errors.len(),
        &errors[..errors.len().min(10)]
    );
    assert!(units >= sessions as u64, "only {units} units of work");
    assert!(
        work.denials.load(Ordering::Relaxed) > 0,
        "no denial exercised"
    );
    assert!(churned > 0, "no fresh login during the attack");
    assert!(attack.unexpected.is_empty(), "{:#?}", attack.unexpected);
    assert_eq!(
        attack.password_refused, LOCKOUT_AFTER,
        "failures before the lockout"
    );
    assert!(attack.locked_out > 0, "the attacker was never locked out");
    assert_eq!(
        metric(&metrics, "pgward_auth_failures_total{reason=\"lockout\"}"),
        1,
        "{metrics}"
    );
    assert!(malformed_sent > 0);
    assert!(
        malformed_unexpected.is_empty(),
        "{:#?}",
        &malformed_unexpected[..malformed_unexpected.len().min(10)]
    );
    assert!(
        per_session <= MAX_RSS_PER_SESSION_KIB as f64,
        "{per_session:.1} KiB per idle session (bound {MAX_RSS_PER_SESSION_KIB})"
    );
}
