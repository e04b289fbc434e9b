//! The span names and attribute keys of SPEC §6, and constructors of the `tracing`
//! spans (session, parse) that declare every field up front (a tracing span can only
//! `record` fields it declared). Statement spans are records: see query.rs.
//!
//! Field values must never hold a raw literal: `db.query.text` takes the normalized
//! statement only.

use std::net::SocketAddr;

use tracing::{field, Span};

/// One per client connection.
pub const SESSION_SPAN: &str = "pgward.session";
/// One per statement (per Execute in the extended protocol).
pub const QUERY_SPAN: &str = "pgward.query";
/// An extended-protocol Parse; the `pgward.query` span of each Execute links to it.
pub const PARSE_SPAN: &str = "pgward.parse";
/// Suggested names for the session's phase spans:
/// `#[tracing::instrument(name = "pgward.auth", skip_all)]`.
pub const AUTH_SPAN: &str = "pgward.auth";
pub const UPSTREAM_CONNECT_SPAN: &str = "pgward.upstream.connect";

/// Attribute keys, for `span.record(fields::DB_USER, user)`.
pub mod fields {
    // pgward.session
    pub const CLIENT_ADDRESS: &str = "client.address";
    pub const CLIENT_PORT: &str = "client.port";
    pub const DB_USER: &str = "db.user";
    pub const ROLE: &str = "pgward.role";
    pub const DB_NAMESPACE: &str = "db.namespace";
    pub const TLS_PROTOCOL_VERSION: &str = "tls.protocol.version";
    pub const AUTH_METHOD: &str = "pgward.auth.method";
    /// How the session ended: `ok`, `auth_failed`, `client_error`, ... (caller's words).
    pub const OUTCOME: &str = "outcome";
    // pgward.query
    pub const DB_SYSTEM_NAME: &str = "db.system.name";
    pub const DB_OPERATION_NAME: &str = "db.operation.name";
    pub const DB_COLLECTION_NAME: &str = "db.collection.name";
    /// The normalized statement (literals replaced by `?`), never the raw text.
    pub const DB_QUERY_TEXT: &str = "db.query.text";
    pub const DECISION: &str = "pgward.decision";
    pub const DENY_REASON: &str = "pgward.deny.reason";
    /// The SQLSTATE, on error only.
    pub const DB_RESPONSE_STATUS_CODE: &str = "db.response.status_code";
    pub const DB_RESPONSE_RETURNED_ROWS: &str = "db.response.returned_rows";
}

/// What the policy decided for one statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    Allow,
    Deny,
    /// Denied by policy but forwarded anyway (audit-only mode).
    WouldDeny,
}

impl Decision {
    /// The `pgward.decision` value and the metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
            Decision::WouldDeny => "would_deny",
        }
    }
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `pgward.session` span for a new connection, a root span (no parent), with the other
/// SPEC §6 fields declared empty for the session to `record` as it learns them.
pub fn session_span(client: SocketAddr) -> Span {
    tracing::info_span!(
        target: "pgward::session",
        parent: None,
        "pgward.session",
        otel.kind = "server",
        client.address = %client.ip(),
        client.port = client.port(),
        db.user = field::Empty,
        pgward.role = field::Empty,
        db.namespace = field::Empty,
        tls.protocol.version = field::Empty,
        pgward.auth.method = field::Empty,
        outcome = field::Empty,
    )
}

/// What is known of a statement when its `pgward.query` span starts.
#[derive(Debug, Clone)]
pub struct QueryFields<'a> {
    pub database: &'a str,
    /// `db.operation.name`: `SELECT`, `INSERT`, ... (`UNKNOWN` when unanalysed).
    pub operation: &'static str,
    /// `db.query.text`: the normalized statement only, never the raw text.
    pub text: Option<&'a str>,
    /// `db.collection.name`: the first relation the statement touches, `schema.name`.
    pub collection: Option<String>,
    pub decision: Decision,
    pub reason: Option<&'a str>,
}
