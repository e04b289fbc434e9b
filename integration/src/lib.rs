//! The harness for the end-to-end tests: one real PostgreSQL per test binary (TLS on,
//! client-certificate auth only, demo schema loaded), and clients that connect to it — or to
//! pgward in front of it — the way applications do: tokio-postgres over rustls, and psql.
//!
//! Everything here panics with a clear message on setup failure: it is test support, and a
//! test cannot do anything better with a broken harness than fail.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, Config, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

pub use pgward_sandbox::{
    conninfo_pair, CertPair, Cluster, ClusterOptions, PsqlOutput, BENCH_DATABASE, DEMO_DATABASE,
    DEMO_USERS, PROXY_CN,
};

pub mod otlp;
pub mod otlp_sink;
mod proxy;
pub mod raw;
pub use proxy::{
    policies_dir, start_proxy, Proxy, ProxyOptions, OWN_SERVER_CERT, OWN_SERVER_KEY,
    OWN_UPSTREAM_CERT, OWN_UPSTREAM_KEY, PERMISSIVE_POLICY,
};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();

/// The process-wide cluster with the demo loaded, started on first use. It lives in a static
/// and is never dropped: when the test binary exits the server is stopped and its temp dir
/// removed by the sandbox's shutdown pipe.
pub fn cluster() -> &'static Cluster {
    let started = CLUSTER.get_or_init(|| {
        let cluster = Cluster::start(ClusterOptions::default()).map_err(|e| e.to_string())?;
        cluster.load_demo().map_err(|e| e.to_string())?;
        Ok(cluster)
    });
    match started {
        Ok(cluster) => cluster,
        Err(err) => panic!("sandbox PostgreSQL: {err}"),
    }
}

/// A rustls client config (ring provider) trusting `ca`, presenting `client_cert` if given.
pub fn client_tls_config(ca: &Path, client_cert: Option<&CertPair>) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for cert in read_certs(ca) {
        if let Err(err) = roots.add(cert) {
            panic!("CA certificate {}: {err}", ca.display());
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = match rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
    {
        Ok(builder) => builder.with_root_certificates(roots),
        Err(err) => panic!("rustls protocol versions: {err}"),
    };
    match client_cert {
        None => builder.with_no_client_auth(),
        Some(pair) => {
            let key = match PrivateKeyDer::from_pem_file(&pair.key_path) {
                Ok(key) => key,
                Err(err) => panic!("client key {}: {err}", pair.key_path.display()),
            };
            match builder.with_client_auth_cert(read_certs(&pair.cert_path), key) {
                Ok(config) => config,
                Err(err) => panic!("client certificate {}: {err}", pair.cert_path.display()),
            }
        }
    }
}

fn read_certs(path: &Path) -> Vec<CertificateDer<'static>> {
    let certs: Result<Vec<_>, _> = match CertificateDer::pem_file_iter(path) {
        Ok(iter) => iter.collect(),
        Err(err) => panic!("certificate file {}: {err}", path.display()),
    };
    match certs {
        Ok(certs) if !certs.is_empty() => certs,
        Ok(_) => panic!("certificate file {}: no certificate in it", path.display()),
        Err(err) => panic!("certificate file {}: {err}", path.display()),
    }
}

fn config(host: &str, port: u16, user: &str, db: &str, password: Option<&str>) -> Config {
    let mut config = Config::new();
    config
        .host(host)
        .port(port)
        .user(user)
        .dbname(db)
        .connect_timeout(CONNECT_TIMEOUT);
    if let Some(password) = password {
        config.password(password);
    }
    config
}

/// Runs the connection task in the background, as every tokio-postgres user must.
fn spawn_connection<S, T>(connection: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            eprintln!("tokio-postgres connection ended: {err}");
        }
    });
}

/// Connects over TLS (required) to any server — PostgreSQL directly or pgward — verifying it
/// against `ca`, with an optional password and an optional client certificate.
pub async fn connect_tls(
    host: &str,
    port: u16,
    user: &str,
    db: &str,
    password: Option<&str>,
    client_cert: Option<&CertPair>,
    ca: &Path,
) -> Result<Client, tokio_postgres::Error> {
    let mut config = config(host, port, user, db, password);
    config.ssl_mode(SslMode::Require);
    let tls = MakeRustlsConnect::new(client_tls_config(ca, client_cert));
    let (client, connection) = config.connect(tls).await?;
    spawn_connection(connection);
    Ok(client)
}

/// Connects without TLS (`sslmode=disable`), for the tests that prove plaintext is refused.
pub async fn connect_plaintext(
    host: &str,
    port: u16,
    user: &str,
    db: &str,
    password: Option<&str>,
) -> Result<Client, tokio_postgres::Error> {
    let mut config = config(host, port, user, db, password);
    config.ssl_mode(SslMode::Disable);
    let (client, connection) = config.connect(NoTls).await?;
    spawn_connection(connection);
    Ok(client)
}

/// Connects straight to the sandbox PostgreSQL as `user` with that user's client certificate.
pub async fn try_connect_direct(user: &str, db: &str) -> Result<Client, tokio_postgres::Error> {
    let cluster = cluster();
    let cert = client_cert(user);
    connect_tls(
        cluster.host(),
        cluster.port(),
        user,
        db,
        None,
        Some(&cert),
        cluster.ca_path(),
    )
    .await
}

/// [`try_connect_direct`], panicking on failure.
pub async fn connect_direct(user: &str, db: &str) -> Client {
    match try_connect_direct(user, db).await {
        Ok(client) => client,
        Err(err) => panic!("direct connection as {user} to {db}: {err:?}"),
    }
}

/// The sandbox CA's client certificate for `user` (CN = user), issued on first use.
pub fn client_cert(user: &str) -> CertPair {
    match cluster().client_cert(user) {
        Ok(cert) => cert,
        Err(err) => panic!("client certificate for {user}: {err}"),
    }
}

/// A libpq conninfo for any server (e.g. pgward), verifying it against the sandbox CA.
pub fn conninfo(host: &str, port: u16, user: &str, db: &str, cert: Option<&CertPair>) -> String {
    let mut info = format!(
        "host={host} port={port} {} {} sslmode=verify-full {} gssencmode=disable connect_timeout=10",
        conninfo_pair("dbname", db),
        conninfo_pair("user", user),
        conninfo_pair("sslrootcert", cluster().ca_path()),
    );
    if let Some(cert) = cert {
        info.push(' ');
        info.push_str(&conninfo_pair("sslcert", &cert.cert_path));
        info.push(' ');
        info.push_str(&conninfo_pair("sslkey", &cert.key_path));
    }
    info
}

/// A direct conninfo to the sandbox PostgreSQL as `user`, with that user's certificate.
pub fn direct_conninfo(user: &str, db: &str) -> String {
    match cluster().conninfo(user, db) {
        Ok(info) => info,
        Err(err) => panic!("conninfo for {user}: {err}"),
    }
}

/// Runs `psql -X -d <conninfo> <args...>` (the psql matching the server binaries).
pub fn psql(conninfo: &str, args: &[&str]) -> PsqlOutput {
    psql_with_stdin(conninfo, args, None)
}

/// [`psql`] with a script on stdin (use `-f -`).
pub fn psql_with_stdin(conninfo: &str, args: &[&str], stdin: Option<&str>) -> PsqlOutput {
    match cluster().psql(conninfo, args, stdin) {
        Ok(out) => out,
        Err(err) => panic!("psql: {err}"),
    }
}

/// Runs SQL as the superuser in `db` (setup only; tests exercise real roles).
pub fn admin_sql(db: &str, sql: &str) -> String {
    match cluster().psql_admin_in(db, sql) {
        Ok(out) => out,
        Err(err) => panic!("admin SQL in {db}: {err}"),
    }
}
