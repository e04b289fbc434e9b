//! pgward's own files for a sandbox cluster: `pgward.yaml` and `users.yaml` wired to the
//! cluster's certificates, with the demo logins. Used by `pgward dev` and the tests.
//!
//! Passwords are random per sandbox and only ever written as SCRAM verifiers.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::{Cluster, SandboxError};

/// How a demo login authenticates to pgward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DevAuth {
    /// SCRAM-SHA-256 with this (random, per sandbox) password.
    Password(String),
    /// A client certificate with CN = the login name.
    Cert,
}

/// One pgward login of the sandbox.
#[derive(Debug, Clone)]
pub struct DevLogin {
    pub name: String,
    pub role: String,
    pub upstream_user: String,
    pub database: String,
    pub auth: DevAuth,
}

/// The demo logins: one per example policy role, each mapped to the least-privileged
/// upstream user that can serve it.
pub fn demo_logins() -> Vec<DevLogin> {
    let login = |name: &str, role: &str, upstream: &str, db: &str, cert: bool| DevLogin {
        name: name.to_owned(),
        role: role.to_owned(),
        upstream_user: upstream.to_owned(),
        database: db.to_owned(),
        auth: if cert {
            DevAuth::Cert
        } else {
            DevAuth::Password(random_password())
        },
    };
    vec![
        login("alice", "analyst", "app_readonly", "shop", false),
        login("bob", "support", "app_support", "shop", true),
        login("app", "app", "app_rw", "shop", false),
        login("mia", "migrator", "migrator", "shop", true),
        login("legacy", "legacy_batch", "app_readonly", "shop", false),
        login("bench", "bench", "pgbench_user", "bench", false),
    ]
}

fn random_password() -> String {
    // 128 bits from the OS, hex: a throwaway secret for a throwaway cluster.
    let mut bytes = [0u8; 16];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut bytes);
    }
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Options for the generated `pgward.yaml`.
#[derive(Debug, Clone)]
pub struct PgwardFiles {
    pub listen: SocketAddr,
    pub policies: PathBuf,
    pub tls_required: bool,
    pub otlp_endpoint: Option<String>,
    /// Extra YAML appended under `limits:` (e.g. `  auth_timeout_ms: 500`).
    pub limits: Vec<String>,
    /// `upstream.password` as a secret reference (`env:NAME` or `file:path`).
    pub upstream_password: Option<String>,
    /// Extra top-level YAML lines (e.g. `audit:` or `admin:` sections).
    pub extra: Vec<String>,
    /// Extra top-level lines for users.yaml (e.g. a `jwt:` section).
    pub users_extra: Vec<String>,
}

impl Cluster {
    /// Writes `pgward.yaml` and `users.yaml` into `dir` for these logins, issuing the
    /// client certificates of cert logins. Returns the path of `pgward.yaml`.
    pub fn write_pgward_files(
        &self,
        dir: &Path,
        files: &PgwardFiles,
        logins: &[DevLogin],
    ) -> Result<PathBuf, SandboxError> {
        let mut users = String::from("users:\n");
        for l in logins {
            let _ = writeln!(users, "  {}:\n    role: {}", l.name, l.role);
            let _ = writeln!(users, "    upstream_user: {}", l.upstream_user);
            match &l.auth {
                DevAuth::Password(pw) => {
                    let verifier = postgres_protocol::password::scram_sha_256(pw.as_bytes());
                    let _ = writeln!(users, "    scram: \"{verifier}\"");
                }
                DevAuth::Cert => {
                    self.client_cert(&l.name)?;
                    let _ = writeln!(users, "    auth: cert");
                }
            }
        }
        for line in &files.users_extra {
            let _ = writeln!(users, "{line}");
        }
        let users_path = dir.join("users.yaml");
        std::fs::write(&users_path, users).map_err(SandboxError::io("writing", &users_path))?;

        let server = self.proxy_server_cert();
        let client = self.proxy_client_cert();
        let ca = self.ca_path();
        let mut cfg = String::new();
        let _ = writeln!(cfg, "listen: {}", files.listen);
        let _ = writeln!(cfg, "tls:");
        let _ = writeln!(cfg, "  cert: {}", server.cert_path.display());
        let _ = writeln!(cfg, "  key: {}", server.key_path.display());
        let _ = writeln!(cfg, "  client_ca: {}", ca.display());
        let _ = writeln!(cfg, "  required: {}", files.tls_required);
        let _ = writeln!(cfg, "upstream:");
        let _ = writeln!(cfg, "  host: {}", self.host());
        let _ = writeln!(cfg, "  port: {}", self.port());
        let _ = writeln!(cfg, "  catalog_user: pgward_catalog");
        if let Some(reference) = &files.upstream_password {
            let _ = writeln!(cfg, "  password: {reference}");
        }
        let _ = writeln!(cfg, "  tls:");
        let _ = writeln!(cfg, "    ca: {}", ca.display());
        let _ = writeln!(cfg, "    cert: {}", client.cert_path.display());
        let _ = writeln!(cfg, "    key: {}", client.key_path.display());
        let _ = writeln!(cfg, "    server_name: localhost");
        let _ = writeln!(cfg, "users: {}", users_path.display());
        let _ = writeln!(cfg, "policies: {}", files.policies.display());
        if let Some(endpoint) = &files.otlp_endpoint {
            let _ = writeln!(cfg, "telemetry:\n  otlp_endpoint: {endpoint}");
        }
        if !files.limits.is_empty() {
            let _ = writeln!(cfg, "limits:");
            for line in &files.limits {
                let _ = writeln!(cfg, "{line}");
            }
        }
        for line in &files.extra {
            let _ = writeln!(cfg, "{line}");
        }
        let path = dir.join("pgward.yaml");
        std::fs::write(&path, cfg).map_err(SandboxError::io("writing", &path))?;
        Ok(path)
    }
}
