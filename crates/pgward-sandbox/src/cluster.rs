//! One throwaway PostgreSQL cluster: temp dir, certificates, initdb, configuration, the server
//! process and its teardown.
//!
//! The server is started under a small shell wrapper whose stdin is a pipe we hold. When the
//! pipe closes — `Drop`, a normal exit with the cluster in a static, or our process being
//! killed — the wrapper asks the server for a fast shutdown and removes the temp dir, so no
//! cluster outlives the process that made it.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::conf;
use crate::psql::{conninfo_pair, run_psql, PsqlOutput};
use crate::runas::{sh_quote, RunAs};
use crate::{CertPair, DevCa, PgBinaries, SandboxError};

/// The CN of pgward's upstream client certificate; pg_ident maps it to each upstream user.
pub const PROXY_CN: &str = "pgward";

const HOST: &str = "127.0.0.1";
const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
const RELOAD_TIMEOUT: Duration = Duration::from_secs(10);
const PORT_ATTEMPTS: usize = 5;
const SIGHUP_LINE: &str = "received SIGHUP, reloading configuration files";

#[derive(Debug, Clone, Default)]
pub struct ClusterOptions {
    /// TCP port on 127.0.0.1; `None` picks a free one.
    pub port: Option<u16>,
    /// Keep the temp dir (data, certificates, log) after the cluster stops.
    pub keep: bool,
    /// Where to create the temp dir; default: the system temp dir.
    pub base_dir: Option<PathBuf>,
    /// The server's `max_connections`; default `DEFAULT_MAX_CONNECTIONS` (benchmarks with
    /// a thousand idle sessions through a proxy need more).
    pub max_connections: Option<u32>,
}

/// `max_connections` unless `ClusterOptions` says otherwise.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 300;

/// A running cluster. Dropping it stops the server and (unless kept) deletes its files.
pub struct Cluster {
    root: PathBuf,
    keep: bool,
    bins: PgBinaries,
    run_as: RunAs,
    port: u16,
    data_dir: PathBuf,
    socket_dir: PathBuf,
    log_path: PathBuf,
    ca: DevCa,
    server_cert: CertPair,
    proxy_server_cert: CertPair,
    proxy_client_cert: CertPair,
    client_certs: Mutex<HashMap<String, CertPair>>,
    /// Serialises pg_ident.conf edits and the reload that follows.
    ident: Mutex<()>,
    server: Mutex<Option<Child>>,
    /// Removes the tree when dropped, which happens after `Drop::drop` stopped the server.
    _temp: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("root", &self.root)
            .field("port", &self.port)
            .field("bindir", &self.bins.bindir())
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Creates, configures and starts a cluster, returning once it accepts TLS logins.
    pub fn start(opts: ClusterOptions) -> Result<Cluster, SandboxError> {
        let bins = PgBinaries::find()?;
        let run_as = RunAs::detect()?;
        let base = opts.base_dir.clone().unwrap_or_else(std::env::temp_dir);
        let temp = tempfile::Builder::new()
            .prefix("pgward-sandbox-")
            .tempdir_in(&base)
            .map_err(SandboxError::io("creating the sandbox temp dir", &base))?;
        let root = temp.path().to_path_buf();
        let temp = if opts.keep {
            let _kept: PathBuf = temp.keep();
            None
        } else {
            Some(temp)
        };

        let certs_dir = root.join("certs");
        let socket_dir = root.join("run");
        for dir in [&certs_dir, &socket_dir] {
            std::fs::create_dir(dir).map_err(SandboxError::io("creating a directory", dir))?;
        }
        // The server's user owns the whole tree so that the wrapper, running as that user,
        // can remove it after the server stopped (files in it stay root's where they are
        // ours: the CA key and client keys).
        for dir in [&root, &certs_dir, &socket_dir] {
            run_as.chown(dir)?;
        }

        let ca = DevCa::create(&certs_dir)?;
        let server_cert = ca.issue_server("postgres-server", &["localhost", HOST])?;
        run_as.chown(&server_cert.key_path)?;
        let proxy_server_cert = ca.issue_server("pgward-server", &["localhost", HOST])?;
        let proxy_client_cert = ca.issue_client(PROXY_CN)?;
        let admin_cert = ca.issue_client("postgres")?;
        let client_certs = HashMap::from([
            (PROXY_CN.to_owned(), proxy_client_cert.clone()),
            ("postgres".to_owned(), admin_cert),
        ]);

        let mut cluster = Cluster {
            data_dir: root.join("data"),
            log_path: socket_dir.join("postgres.log"),
            root,
            keep: opts.keep,
            bins,
            run_as,
            port: 0,
            socket_dir,
            ca,
            server_cert,
            proxy_server_cert,
            proxy_client_cert,
            client_certs: Mutex::new(client_certs),
            ident: Mutex::new(()),
            server: Mutex::new(None),
            _temp: temp,
        };
        cluster.initdb()?;
        cluster.configure(opts.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS))?;
        cluster.run_server(opts.port)?;
        tracing::info!(port = cluster.port, dir = %cluster.root.display(), "sandbox PostgreSQL ready");
        Ok(cluster)
    }

    pub fn host(&self) -> &str {
        HOST
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The dev CA (issue more certificates with it; its file verifies every cert here).
    pub fn ca(&self) -> &DevCa {
        &self.ca
    }

    pub fn ca_path(&self) -> &Path {
        self.ca.cert_path()
    }

    /// PostgreSQL's own server certificate.
    pub fn server_cert(&self) -> &CertPair {
        &self.server_cert
    }

    /// A server certificate for pgward's client-facing side (SAN localhost, 127.0.0.1).
    pub fn proxy_server_cert(&self) -> &CertPair {
        &self.proxy_server_cert
    }

    /// pgward's upstream client certificate (CN `pgward`).
    pub fn proxy_client_cert(&self) -> &CertPair {
        &self.proxy_client_cert
    }

    /// A client certificate with CN = `user`, issued on first use.
    pub fn client_cert(&self, user: &str) -> Result<CertPair, SandboxError> {
        let mut certs = lock(&self.client_certs);
        if let Some(pair) = certs.get(user) {
            return Ok(pair.clone());
        }
        let pair = self.ca.issue_client(user)?;
        certs.insert(user.to_owned(), pair.clone());
        Ok(pair)
    }

    /// The temp dir holding everything (certs/, data/, run/).
    pub fn root_dir(&self) -> &Path {
        &self.root
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The Unix socket directory (pg_hba.conf has no `local` line: nothing logs in there).
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// The server's log file.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    pub fn binaries(&self) -> &PgBinaries {
        &self.bins
    }

    /// A libpq conninfo logging in directly as `user` to `db` with that user's client
    /// certificate (issued on demand), verifying the server against the dev CA.
    pub fn conninfo(&self, user: &str, db: &str) -> Result<String, SandboxError> {
        let cert = self.client_cert(user)?;
        Ok(self.conninfo_with(user, db, Some(&cert)))
    }

    /// A direct conninfo presenting `cert` (or no certificate at all).
    pub fn conninfo_with(&self, user: &str, db: &str, cert: Option<&CertPair>) -> String {
        let mut info = format!(
            "host={HOST} port={} {} {} sslmode=verify-full {} gssencmode=disable connect_timeout=10",
            self.port,
            conninfo_pair("dbname", db),
            conninfo_pair("user", user),
            conninfo_pair("sslrootcert", self.ca_path()),
        );
        if let Some(cert) = cert {
            let _ = write!(
                info,
                " {} {}",
                conninfo_pair("sslcert", &cert.cert_path),
                conninfo_pair("sslkey", &cert.key_path)
            );
        }
        info
    }

    /// Runs `psql` (the one next to the server binaries) against any conninfo.
    pub fn psql(
        &self,
        conninfo: &str,
        args: &[&str],
        stdin: Option<&str>,
    ) -> Result<PsqlOutput, SandboxError> {
        run_psql(&self.bins.program("psql"), conninfo, args, stdin)
    }

    /// Runs SQL as the superuser in database `postgres`; returns unaligned, tuples-only output.
    pub fn psql_admin(&self, sql: &str) -> Result<String, SandboxError> {
        self.psql_admin_in("postgres", sql)
    }

    /// Runs SQL as the superuser in `db`, stopping at the first error.
    pub fn psql_admin_in(&self, db: &str, sql: &str) -> Result<String, SandboxError> {
        let conninfo = self.conninfo("postgres", db)?;
        let out = self.psql(
            &conninfo,
            &["-q", "-v", "ON_ERROR_STOP=1", "-At", "-f", "-"],
            Some(sql),
        )?;
        if !out.success() {
            return Err(SandboxError::Command {
                what: format!("psql as postgres in {db}"),
                status: out.status.to_string(),
                detail: one_line(&out.stderr),
            });
        }
        Ok(out.stdout.trim_end_matches('\n').to_owned())
    }

    /// Lets pgward's certificate (CN `pgward`) log in as `user`: appends
    /// `pgward pgward "<user>"` to pg_ident.conf and waits for the server to reload it.
    pub fn allow_proxy_login(&self, user: &str) -> Result<(), SandboxError> {
        self.allow_proxy_logins(&[user])
    }

    /// [`Cluster::allow_proxy_login`] for several users with one reload.
    pub fn allow_proxy_logins(&self, users: &[&str]) -> Result<(), SandboxError> {
        let _guard = lock(&self.ident);
        if conf::append_proxy_ident_lines(&self.data_dir, PROXY_CN, users)? {
            self.reload()?;
        }
        Ok(())
    }

    /// Reloads the server's configuration and waits until the postmaster has done so.
    pub fn reload(&self) -> Result<(), SandboxError> {
        // pg_reload_conf() only sends SIGHUP; the postmaster logs SIGHUP_LINE when it has
        // processed it (hba and ident are reloaded in the same handler, before it accepts
        // the next connection).
        let before = self.count_in_log(SIGHUP_LINE);
        self.psql_admin("SELECT pg_reload_conf()")?;
        let deadline = Instant::now() + RELOAD_TIMEOUT;
        while self.count_in_log(SIGHUP_LINE) <= before {
            if Instant::now() > deadline {
                return Err(SandboxError::ReloadTimeout {
                    secs: RELOAD_TIMEOUT.as_secs(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    fn initdb(&self) -> Result<(), SandboxError> {
        let initdb = self.bins.program("initdb");
        let args: Vec<&OsStr> = [
            OsStr::new("-D"),
            self.data_dir.as_os_str(),
            OsStr::new("-U"),
            OsStr::new("postgres"),
            // No trust anywhere, not even for the moment before we write pg_hba.conf.
            OsStr::new("--auth=reject"),
            OsStr::new("--encoding=UTF8"),
            OsStr::new("--locale=C"),
            OsStr::new("--no-sync"),
        ]
        .into();
        let out = self
            .run_as
            .command(&initdb, &args)
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .output()
            .map_err(SandboxError::io("running initdb", &initdb))?;
        if !out.status.success() {
            return Err(SandboxError::Command {
                what: "initdb".into(),
                status: out.status.to_string(),
                detail: one_line(&String::from_utf8_lossy(&out.stderr)),
            });
        }
        Ok(())
    }

    fn configure(&self, max_connections: u32) -> Result<(), SandboxError> {
        conf::write_server_config(&conf::ServerConfig {
            max_connections,
            data_dir: &self.data_dir,
            socket_dir: &self.socket_dir,
            cert: &self.server_cert.cert_path,
            key: &self.server_cert.key_path,
            ca: self.ca_path(),
            host: HOST,
        })
    }

    /// Starts the server, moving to another free port if the probed one was taken meanwhile.
    fn run_server(&mut self, fixed_port: Option<u16>) -> Result<(), SandboxError> {
        let attempts = if fixed_port.is_some() {
            1
        } else {
            PORT_ATTEMPTS
        };
        let mut last = None;
        for _ in 0..attempts {
            self.port = match fixed_port {
                Some(port) => port,
                None => free_port()?,
            };
            match self.try_start() {
                Ok(()) => return Ok(()),
                Err(StartFailure::PortTaken(err)) => {
                    tracing::debug!(port = self.port, "port taken, retrying");
                    last = Some(err);
                }
                Err(StartFailure::Other(err)) => return Err(err),
            }
        }
        Err(last.unwrap_or(SandboxError::ServerExited {
            log_tail: String::new(),
        }))
    }

    fn try_start(&self) -> Result<(), StartFailure> {
        let log_start = std::fs::metadata(&self.log_path).map_or(0, |m| m.len());
        let postgres = self.bins.program("postgres");
        let cleanup = if self.keep {
            ":".to_owned()
        } else {
            format!("rm -rf -- {}", sh_quote(self.root.as_os_str()))
        };
        // fd 3 keeps our pipe; the server gets /dev/null. The watcher subshell waits for EOF
        // on the pipe (we closed it or died), asks for a fast shutdown (SIGINT), waits for
        // the server to go and cleans up. The wrapper itself exits when the server does,
        // which is how a failed start shows.
        let script = format!(
            "exec 3<&0 </dev/null\n\
             {pg} -D {data} -p {port} >>{log} 2>&1 3<&- &\n\
             pid=$!\n\
             (\n\
               read _ignored <&3\n\
               kill -INT \"$pid\" 2>/dev/null\n\
               while kill -0 \"$pid\" 2>/dev/null; do sleep 0.1; done\n\
               {cleanup}\n\
             ) &\n\
             exec 3<&-\n\
             wait \"$pid\"\n",
            pg = sh_quote(postgres.as_os_str()),
            data = sh_quote(self.data_dir.as_os_str()),
            port = self.port,
            log = sh_quote(self.log_path.as_os_str()),
        );
        let mut child = self
            .run_as
            .shell(&script)
            .current_dir(&self.root)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                StartFailure::Other(SandboxError::io("starting postgres", &postgres)(e))
            })?;

        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(_status)) = child.try_wait() {
                let new_log = self.log_since(log_start);
                let err = SandboxError::ServerExited {
                    log_tail: tail(&new_log),
                };
                return Err(if new_log.contains("could not bind") {
                    StartFailure::PortTaken(err)
                } else {
                    StartFailure::Other(err)
                });
            }
            // Wait for the postmaster to say it is ready before connecting: a client probing
            // a port someone else holds could hang until its connect timeout.
            if self.postmaster_ready() && self.psql_admin("SELECT 1").is_ok() {
                *lock(&self.server) = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                // Closing stdin (dropping the child) stops the server.
                drop(child.stdin.take());
                let _ = child.wait();
                return Err(StartFailure::Other(SandboxError::StartTimeout {
                    secs: START_TIMEOUT.as_secs(),
                    log_tail: tail(&self.log_since(log_start)),
                }));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// postmaster.pid says "ready" for our port (what `pg_ctl -w` waits for).
    fn postmaster_ready(&self) -> bool {
        let Ok(pid_file) = std::fs::read_to_string(self.data_dir.join("postmaster.pid")) else {
            return false;
        };
        let lines: Vec<&str> = pid_file.lines().map(str::trim).collect();
        lines.get(3) == Some(&self.port.to_string().as_str()) && lines.get(7) == Some(&"ready")
    }

    fn stop(&self) {
        let Some(mut child) = lock(&self.server).take() else {
            return;
        };
        drop(child.stdin.take());
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                _ => {
                    tracing::warn!("sandbox PostgreSQL did not stop in time; killing the wrapper");
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
            }
        }
        if !self.keep {
            // The wrapper removes the tree right after the server exits; give it a moment
            // so that it and TempDir's removal do not trip over each other.
            let deadline = Instant::now() + Duration::from_secs(2);
            while self.root.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    fn log_since(&self, offset: u64) -> String {
        let text = std::fs::read(&self.log_path).unwrap_or_default();
        let start = usize::try_from(offset).unwrap_or(0).min(text.len());
        String::from_utf8_lossy(&text[start..]).into_owned()
    }

    fn count_in_log(&self, needle: &str) -> usize {
        self.log_since(0).matches(needle).count()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
        if self.keep {
            tracing::info!(dir = %self.root.display(), "sandbox cluster kept");
        }
    }
}

enum StartFailure {
    PortTaken(SandboxError),
    Other(SandboxError),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test must not take every other test's cluster access down with it.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn free_port() -> Result<u16, SandboxError> {
    let listener = TcpListener::bind((HOST, 0))
        .map_err(SandboxError::io("probing a free port", "127.0.0.1:0"))?;
    let port = listener
        .local_addr()
        .map_err(SandboxError::io("probing a free port", "127.0.0.1:0"))?
        .port();
    Ok(port)
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(8);
    let joined = lines[start..].join(" | ");
    if joined.is_empty() {
        "(empty)".to_owned()
    } else {
        joined
    }
}

fn one_line(text: &str) -> String {
    let joined = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ");
    if joined.is_empty() {
        "(no output)".to_owned()
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines_on_one_line() {
        let log = (1..=20).map(|i| format!("line {i}\n")).collect::<String>();
        let t = tail(&log);
        assert!(t.starts_with("line 13 | "));
        assert!(t.ends_with("line 20"));
        assert_eq!(tail(""), "(empty)");
    }
}
