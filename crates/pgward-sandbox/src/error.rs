//! The sandbox's one error type. Every variant's Display is a single line a developer can act
//! on; the detail that explains it (a log tail, a command's stderr) is part of that line.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(
        "PostgreSQL server binaries not found (initdb); install them: sudo apt-get install -y postgresql"
    )]
    BinariesNotFound,

    #[error(
        "running as root, but there is no `postgres` OS user to run the server as; create one: sudo useradd --system --user-group postgres"
    )]
    NoPostgresUser,

    #[error("{what} ({path}): {source}", path = .path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("generating certificate {name:?}: {source}")]
    Cert {
        name: String,
        #[source]
        source: rcgen::Error,
    },

    #[error("{what} failed ({status}): {detail}")]
    Command {
        what: String,
        status: String,
        detail: String,
    },

    #[error("PostgreSQL did not become ready within {secs} s; server log ends with: {log_tail}")]
    StartTimeout { secs: u64, log_tail: String },

    #[error("PostgreSQL exited during startup; server log ends with: {log_tail}")]
    ServerExited { log_tail: String },

    #[error("the server did not reload its configuration within {secs} s")]
    ReloadTimeout { secs: u64 },
}

impl SandboxError {
    pub(crate) fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| SandboxError::Io { what, path, source }
    }
}
