//! Errors of the proxy layer, and the allowlist of what a client may see of them.
//!
//! STYLE rule 4: `UserFacing` decides exactly what text reaches a client. Internal
//! errors reach the client as "internal error, reference <id>" and the log in full.

use std::io;

use thiserror::Error;

/// Configuration and users-file errors. Each names the file and, where serde knows
/// it, the line, column and key.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("{key}: {reason}")]
    Secret { key: String, reason: String },
    #[error("{what} {path}: {reason}")]
    Tls {
        what: &'static str,
        path: String,
        reason: String,
    },
}

/// The small set of error kinds, also used as the metrics label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Protocol,
    Auth,
    Upstream,
    Tls,
    Io,
    Timeout,
    Shutdown,
    Internal,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Protocol => "protocol",
            ErrorKind::Auth => "auth",
            ErrorKind::Upstream => "upstream",
            ErrorKind::Tls => "tls",
            ErrorKind::Io => "io",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Shutdown => "shutdown",
            ErrorKind::Internal => "internal",
        }
    }
}

/// What ends a session. Each variant maps to what the client sees (if anything).
#[derive(Debug, Error)]
pub enum SessionError {
    /// The client broke the protocol; the text is ours and safe to show.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// A message over the configured size cap.
    #[error("message of {len} bytes exceeds the maximum of {max}")]
    TooLarge { len: usize, max: usize },
    /// Authentication failed. `client` is the generic text PostgreSQL itself would
    /// send; `reason` is for the log only.
    #[error("authentication failed: {reason}")]
    Auth {
        sqlstate: &'static str,
        client: String,
        reason: String,
    },
    /// The client did not authenticate in time.
    #[error("authentication timed out")]
    AuthTimeout,
    /// An error the upstream sent during startup; already relayed to the client verbatim.
    #[error("upstream refused the session: {0}")]
    UpstreamRefused(String),
    /// pgward could not reach or talk to the upstream.
    #[error("upstream: {0}")]
    Upstream(String),
    #[error("tls: {0}")]
    Tls(String),
    #[error("shutting down")]
    Shutdown,
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
}

impl SessionError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            SessionError::Protocol(_) | SessionError::TooLarge { .. } => ErrorKind::Protocol,
            SessionError::Auth { .. } => ErrorKind::Auth,
            SessionError::AuthTimeout => ErrorKind::Timeout,
            SessionError::UpstreamRefused(_) | SessionError::Upstream(_) => ErrorKind::Upstream,
            SessionError::Tls(_) => ErrorKind::Tls,
            SessionError::Shutdown => ErrorKind::Shutdown,
            SessionError::Io(_) => ErrorKind::Io,
        }
    }
}

/// A FATAL error as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientError {
    pub sqlstate: &'static str,
    pub message: String,
}

/// Decides what a client may see of an error. Never implemented for `anyhow::Error`
/// or `io::Error`: those become "internal error, reference <id>".
pub trait UserFacing {
    /// `None` when nothing should be sent (the peer is gone, or it was already sent).
    fn to_client(&self, reference: &str) -> Option<ClientError>;
}

impl UserFacing for SessionError {
    fn to_client(&self, reference: &str) -> Option<ClientError> {
        let (sqlstate, message) = match self {
            SessionError::Protocol(m) => ("08P01", format!("protocol violation: {m}")),
            SessionError::TooLarge { .. } => ("08P01", "invalid message length".to_owned()),
            SessionError::Auth {
                sqlstate, client, ..
            } => (*sqlstate, client.clone()),
            SessionError::AuthTimeout => ("08006", "authentication timed out".to_owned()),
            SessionError::UpstreamRefused(_) | SessionError::Io(_) => return None,
            SessionError::Upstream(_) => (
                "08006",
                format!("could not connect to the database server, reference {reference}"),
            ),
            SessionError::Tls(_) => return None,
            SessionError::Shutdown => (
                "57P01",
                "terminating connection due to administrator command".to_owned(),
            ),
        };
        Some(ClientError { sqlstate, message })
    }
}
