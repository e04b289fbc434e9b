//! pgward in-process in front of the shared sandbox cluster: the real server (`run`)
//! on port 0 with the demo logins, as the tests and benchmarks need it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use pgward_sandbox::{demo_logins, DevAuth, DevLogin, PgwardFiles};
use tokio::task::JoinHandle;
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

use crate::{client_cert, cluster, connect_tls, conninfo, conninfo_pair};

/// How to configure a test proxy.
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    pub tls_required: bool,
    /// Extra lines under `limits:` in pgward.yaml, e.g. `"  auth_timeout_ms: 500"`.
    pub limits: Vec<String>,
    /// `upstream.password` (a secret reference).
    pub upstream_password: Option<String>,
    /// Replaces the demo logins.
    pub logins: Option<Vec<DevLogin>>,
    /// Replaces the repository's `policies/` directory.
    pub policies: Option<PathBuf>,
    /// Extra top-level lines for pgward.yaml (`audit:`, `admin:`, `telemetry:`).
    pub extra: Vec<String>,
    /// Extra top-level lines for users.yaml (`jwt:`).
    pub users_extra: Vec<String>,
    /// Copy pgward's TLS files (client-facing certificate and key, upstream client
    /// certificate and key) into the proxy's own directory (`Proxy::dir`) and configure
    /// those copies, so a test can rotate them without touching the shared ones.
    pub own_tls_files: bool,
    /// Point pgward's `upstream.port` somewhere else (a test's misbehaving server) and
    /// add these lines (e.g. `"  connect_timeout_ms: 300"`) to its `upstream:` section.
    pub upstream_port: Option<u16>,
    pub upstream_extra: Vec<String>,
}

impl ProxyOptions {
    /// Options for tests of the relay itself: every demo role may do everything
    /// (see [`PERMISSIVE_POLICY`]), so protocol features are tested, not policies.
    pub fn permissive() -> Self {
        Self {
            policies: Some(permissive_policies_dir()),
            ..Self::default()
        }
    }
}

/// A policy giving each demo role every table, DDL and the functions the relay tests
/// call. Only for testing the relay; never an example.
pub const PERMISSIVE_POLICY: &str = "\
roles:
  everything:
    ddl: true
    tables: { \"*\": { select: \"*\", insert: \"*\", update: \"*\", delete: true, truncate: true } }
    functions: [pg_catalog.pg_sleep, pg_catalog.pg_backend_pid, pg_catalog.md5, pg_catalog.repeat, pg_catalog.generate_series]
  analyst: { inherit: [everything] }
  support: { inherit: [everything] }
  app: { inherit: [everything] }
  migrator: { inherit: [everything] }
  legacy_batch: { inherit: [everything] }
  bench: { inherit: [everything] }
";

fn permissive_policies_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("pgward-permissive-{}", std::process::id()));
        if let Err(e) = std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(dir.join("permissive.yaml"), PERMISSIVE_POLICY))
        {
            panic!("writing the permissive policy: {e}");
        }
        dir
    })
    .clone()
}

impl Default for ProxyOptions {
    fn default() -> Self {
        Self {
            tls_required: true,
            limits: Vec::new(),
            upstream_password: None,
            logins: None,
            policies: None,
            extra: Vec::new(),
            users_extra: Vec::new(),
            own_tls_files: false,
            upstream_port: None,
            upstream_extra: Vec::new(),
        }
    }
}

/// A running in-process pgward. Dropping it stops the listener.
pub struct Proxy {
    pub addr: SocketAddr,
    pub logins: Vec<DevLogin>,
    pub config_path: PathBuf,
    shutdown: CancellationToken,
    handle: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

/// The repository's `policies/` directory.
pub fn policies_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../policies")
}

/// Starts pgward on 127.0.0.1:0 in the current runtime.
pub async fn start_proxy(opts: ProxyOptions) -> Proxy {
    let cluster = cluster();
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("temp dir: {e}"),
    };
    let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => panic!("bind: {e}"),
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => panic!("local_addr: {e}"),
    };
    let logins = opts.logins.clone().unwrap_or_else(demo_logins);
    let files = PgwardFiles {
        listen: addr,
        policies: opts.policies.clone().unwrap_or_else(policies_dir),
        tls_required: opts.tls_required,
        otlp_endpoint: None,
        limits: opts.limits.clone(),
        upstream_password: opts.upstream_password.clone(),
        extra: opts.extra.clone(),
        users_extra: opts.users_extra.clone(),
    };
    let config_path = match cluster.write_pgward_files(dir.path(), &files, &logins) {
        Ok(p) => p,
        Err(e) => panic!("writing pgward files: {e}"),
    };
    if opts.own_tls_files {
        own_tls_files(cluster, dir.path(), &config_path);
    }
    if opts.upstream_port.is_some() || !opts.upstream_extra.is_empty() {
        edit_upstream(cluster.port(), &opts, &config_path);
    }
    let config = match pgward_proxy::Config::load(&config_path) {
        Ok(c) => c,
        Err(e) => panic!("pgward config: {e}"),
    };
    let deps = match pgward_proxy::Deps::from_config(config) {
        Ok(d) => d,
        Err(e) => panic!("pgward deps: {e}"),
    };
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(pgward_proxy::run(listener, deps, shutdown.clone()));
    Proxy {
        addr,
        logins,
        config_path,
        shutdown,
        handle: Some(handle),
        _dir: dir,
    }
}

/// The names of the TLS files in `Proxy::dir` when `ProxyOptions::own_tls_files` is set.
pub const OWN_SERVER_CERT: &str = "server.crt";
pub const OWN_SERVER_KEY: &str = "server.key";
pub const OWN_UPSTREAM_CERT: &str = "upstream.crt";
pub const OWN_UPSTREAM_KEY: &str = "upstream.key";

fn own_tls_files(cluster: &pgward_sandbox::Cluster, dir: &Path, config_path: &Path) {
    let server = cluster.proxy_server_cert();
    let client = cluster.proxy_client_cert();
    let mut config = match std::fs::read_to_string(config_path) {
        Ok(c) => c,
        Err(e) => panic!("reading {}: {e}", config_path.display()),
    };
    for (from, to) in [
        (&server.cert_path, OWN_SERVER_CERT),
        (&server.key_path, OWN_SERVER_KEY),
        (&client.cert_path, OWN_UPSTREAM_CERT),
        (&client.key_path, OWN_UPSTREAM_KEY),
    ] {
        let target = dir.join(to);
        if let Err(e) = std::fs::copy(from, &target) {
            panic!("copying {}: {e}", from.display());
        }
        config = config.replace(
            &format!(": {}\n", from.display()),
            &format!(": {}\n", target.display()),
        );
    }
    if let Err(e) = std::fs::write(config_path, config) {
        panic!("writing {}: {e}", config_path.display());
    }
}

fn edit_upstream(cluster_port: u16, opts: &ProxyOptions, config_path: &Path) {
    let config = match std::fs::read_to_string(config_path) {
        Ok(c) => c,
        Err(e) => panic!("reading {}: {e}", config_path.display()),
    };
    let port_line = format!("  port: {cluster_port}\n");
    assert!(
        config.contains(&port_line),
        "no upstream port line in {config}"
    );
    let mut replacement = format!("  port: {}\n", opts.upstream_port.unwrap_or(cluster_port));
    for line in &opts.upstream_extra {
        replacement.push_str(line);
        replacement.push('\n');
    }
    if let Err(e) = std::fs::write(config_path, config.replacen(&port_line, &replacement, 1)) {
        panic!("writing {}: {e}", config_path.display());
    }
}

impl Proxy {
    /// The directory holding this proxy's pgward.yaml and users.yaml.
    pub fn dir(&self) -> &Path {
        self._dir.path()
    }

    pub fn login(&self, name: &str) -> &DevLogin {
        match self.logins.iter().find(|l| l.name == name) {
            Some(l) => l,
            None => panic!("no demo login {name}"),
        }
    }

    /// The password of a SCRAM login.
    pub fn password(&self, name: &str) -> String {
        match &self.login(name).auth {
            DevAuth::Password(pw) => pw.clone(),
            DevAuth::Cert => panic!("{name} authenticates with a certificate"),
        }
    }

    /// Connects through pgward as a demo login (password or certificate) to its database.
    pub async fn try_connect(&self, name: &str) -> Result<Client, tokio_postgres::Error> {
        let login = self.login(name);
        let (password, cert) = match &login.auth {
            DevAuth::Password(pw) => (Some(pw.clone()), None),
            DevAuth::Cert => (None, Some(client_cert(name))),
        };
        connect_tls(
            "localhost",
            self.addr.port(),
            name,
            &login.database,
            password.as_deref(),
            cert.as_ref(),
            cluster().ca_path(),
        )
        .await
    }

    pub async fn connect(&self, name: &str) -> Client {
        match self.try_connect(name).await {
            Ok(c) => c,
            Err(e) => panic!("connecting through pgward as {name}: {e:?}"),
        }
    }

    /// A libpq conninfo through pgward for a demo login (with its password or its
    /// client certificate).
    pub fn conninfo(&self, name: &str) -> String {
        let login = self.login(name);
        let (cert, password) = match &login.auth {
            DevAuth::Cert => (Some(client_cert(name)), None),
            DevAuth::Password(pw) => (None, Some(pw)),
        };
        let mut info = conninfo(
            "localhost",
            self.addr.port(),
            name,
            &login.database,
            cert.as_ref(),
        );
        if let Some(pw) = password {
            info.push(' ');
            info.push_str(&conninfo_pair("password", pw));
        }
        info
    }

    /// Stops accepting and waits for the server task (sessions drain).
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
