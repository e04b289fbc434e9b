//! Memory per idle session: open N TLS sessions to a proxy with tokio-postgres (rustls),
//! each authenticated and through one `SELECT 1` (so a pooler has given it a server
//! connection too), leave them idle, and read the proxy's resident memory before and after.

use std::path::Path;
use std::time::Duration;

use futures::stream::{self, StreamExt as _, TryStreamExt as _};
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;
use tokio_postgres::config::SslMode;
use tokio_postgres::Client;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::sys::{nofile_limit, rss_kib};
use crate::targets::{Login, Target};

/// Logins in flight at once: enough to be quick, few enough not to overrun a listen backlog
/// or trip an auth timeout on 2 cores.
const OPEN_CONCURRENCY: usize = 16;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Time for allocations to settle (and pgward's per-session tasks to park) before reading.
const SETTLE: Duration = Duration::from_secs(1);

pub struct IdleResult {
    pub sessions: usize,
    pub rss_before_kib: u64,
    pub rss_open_kib: u64,
    pub rss_closed_kib: u64,
    /// The proxy's soft and hard open-files limit (inherited from relay-bench).
    pub nofile: String,
}

impl IdleResult {
    pub fn kib_per_session(&self) -> f64 {
        (self.rss_open_kib as f64 - self.rss_before_kib as f64) / self.sessions.max(1) as f64
    }
}

type Session = (Client, JoinHandle<Result<(), tokio_postgres::Error>>);

/// Opens `sessions` idle sessions to `target`, verifying its certificate against `ca`.
pub fn measure(
    rt: &Runtime,
    target: &Target,
    sessions: usize,
    ca: &Path,
) -> Result<IdleResult, String> {
    let pid = target.pid().ok_or("the target has no proxy process")?;
    let nofile = nofile_limit(pid).map_or_else(|| "?".to_owned(), |(s, h)| format!("{s} / {h}"));
    let tls = MakeRustlsConnect::new(pgward_integration::client_tls_config(ca, None));
    rt.block_on(async {
        tokio::time::sleep(SETTLE).await;
        let rss_before_kib = rss_kib(pid)?;
        let open: Vec<Session> = stream::iter(0..sessions)
            .map(|_| open_one(target.login.clone(), tls.clone()))
            .buffer_unordered(OPEN_CONCURRENCY)
            .try_collect()
            .await?;
        tokio::time::sleep(SETTLE).await;
        let rss_open_kib = rss_kib(pid)?;
        // Every session must still be there after idling.
        futures::future::try_join_all(open.iter().map(|(c, _)| c.simple_query("SELECT 1")))
            .await
            .map_err(|e| format!("an idle session died: {}", pg_error(&e)))?;
        let (clients, tasks): (Vec<Client>, Vec<_>) = open.into_iter().unzip();
        drop(clients);
        for task in tasks {
            let _ = task.await;
        }
        tokio::time::sleep(SETTLE).await;
        let rss_closed_kib = rss_kib(pid)?;
        Ok(IdleResult {
            sessions,
            rss_before_kib,
            rss_open_kib,
            rss_closed_kib,
            nofile,
        })
    })
}

async fn open_one(login: Login, tls: MakeRustlsConnect) -> Result<Session, String> {
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(login.port)
        .user(&login.user)
        .dbname(&login.database)
        .ssl_mode(SslMode::Require)
        .connect_timeout(CONNECT_TIMEOUT);
    if let Some(password) = &login.password {
        config.password(password);
    }
    let (client, connection) = config
        .connect(tls)
        .await
        .map_err(|e| format!("opening an idle session: {}", pg_error(&e)))?;
    let task = tokio::spawn(connection);
    client
        .simple_query("SELECT 1")
        .await
        .map_err(|e| format!("first query of an idle session: {}", pg_error(&e)))?;
    Ok((client, task))
}

/// The server's message when there is one (tokio-postgres's Display says only "db error").
fn pg_error(err: &tokio_postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => match std::error::Error::source(err) {
            Some(source) => format!("{err}: {source}"),
            None => err.to_string(),
        },
    }
}
