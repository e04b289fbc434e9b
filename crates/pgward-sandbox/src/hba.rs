//! Test-only pg_hba.conf lines for password logins, so the proxy's upstream SCRAM and md5
//! paths run against the real server. The lines are `hostssl` (TLS still required) but
//! cannot demand a client certificate: PostgreSQL 15 compares a certificate's CN with the
//! user name under `clientcert=verify-full` and allows no `map` there, and pgward's one
//! certificate says CN=pgward. Only the tests that need them add such lines.

use crate::{Cluster, SandboxError};

/// The password method an added pg_hba line asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordMethod {
    ScramSha256,
    Md5,
}

impl Cluster {
    /// Creates `user` (LOGIN, with `password` stored as the method needs it) and makes
    /// the server ask for that password (over TLS) when it logs in. Reloads the server.
    pub fn add_password_user(
        &self,
        user: &str,
        password: &str,
        method: PasswordMethod,
        database: &str,
    ) -> Result<(), SandboxError> {
        let (encryption, hba_method) = match method {
            PasswordMethod::ScramSha256 => ("scram-sha-256", "scram-sha-256"),
            PasswordMethod::Md5 => ("md5", "md5"),
        };
        let quoted_pw = password.replace('\'', "''");
        self.psql_admin(&format!(
            "SET password_encryption = '{encryption}';\n\
             CREATE ROLE \"{user}\" LOGIN PASSWORD '{quoted_pw}';\n\
             GRANT CONNECT ON DATABASE \"{database}\" TO \"{user}\";"
        ))?;
        let hba = self.data_dir().join("pg_hba.conf");
        let existing =
            std::fs::read_to_string(&hba).map_err(SandboxError::io("reading pg_hba.conf", &hba))?;
        let line = format!("hostssl all {user} 127.0.0.1/32 {hba_method}\n");
        std::fs::write(&hba, format!("{line}{existing}"))
            .map_err(SandboxError::io("writing pg_hba.conf", &hba))?;
        self.allow_proxy_login(user)?;
        self.reload()
    }
}
